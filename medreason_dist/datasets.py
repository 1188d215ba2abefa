"""Every dataset the pipeline reads or writes, declared once: name, kind, owner stage.

A name is also the dataset's place: ``kg/...`` under the KG root (``kg.dir``, shared across runs
on clusters), everything else under ``run.out``; ``run.locations`` can point any name elsewhere
(e.g. the paths job reading pairs some other tool wrote). Stages refer to these objects, never
to path strings, and the runner refuses any dataset a stage did not declare
(:mod:`medreason_dist.runner.contract`). The report and the CLI take names from here too.

Kinds:
  dataset  Parquet + manifest (:mod:`medreason_dist.storage`); opens in any Parquet reader
  folder   a folder of datasets keyed at run time (per model, per embedder)
  file     one file (the JSONL export, the HTML report)
  model    a Hugging Face model folder
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["dataset", "folder", "file", "model"]


@dataclass(frozen=True)
class DatasetRef:
    name: str
    owner: str  # the one stage that writes it
    description: str
    kind: Kind = "dataset"
    main: bool = False  # the owner's main output: its manifest carries the stage's fingerprint

    def __str__(self) -> str:
        return self.name


def _d(name: str, owner: str, description: str, kind: Kind = "dataset", main: bool = False) -> DatasetRef:
    return DatasetRef(name, owner, description, kind, main)


SOURCES_QA = _d("sources/qa", "sources", "QA rows of the training sources, one schema", main=True)
SOURCES_QUARANTINE = _d("sources/quarantine", "sources", "source rows that could not be used, with file, row, reason")
EVAL_QA = _d("eval_sets/qa", "eval_sets", "evaluation benchmarks, one schema", main=True)
EVAL_QUARANTINE = _d("eval_sets/quarantine", "eval_sets", "evaluation rows that could not be used")

KG_NODES = _d("kg/nodes", "kg", "PrimeKG nodes (node_id, name, type, ...)", main=True)
KG_EDGES = _d("kg/edges", "kg", "PrimeKG edges, each undirected edge once")
KG_QUARANTINE = _d("kg/quarantine", "kg", "kg.csv lines that could not be used, with line number and reason")
KG_LEXICON = _d("kg/lexicon", "lexicon", "matching keys of every node name, synonym and spelling variant", main=True)
KG_EMBEDDINGS = _d("kg/embeddings", "link", "node-name vectors, one dataset per embedder (a cache)", "folder")

EXTRACT = _d("reason/extract", "extract", "entities of each question and answer", main=True)
EXTRACT_REJECTS = _d("reason/extract_rejects", "extract", "rows extraction could not handle")
LINK = _d("reason/link", "link", "entities linked to KG nodes", main=True)
LINK_REJECTS = _d("reason/link_rejects", "link",
                  "QA rows link dropped: none by design (an entity without a node is recorded with its method)")
REFORMAT = _d("reason/reformat", "reformat", "description, conclusion and entity pairs per question", main=True)
REFORMAT_REJECTS = _d("reason/reformat_rejects", "reformat", "rows reformat could not handle")
PAIRS = _d("reason/pairs", "reformat", "unique (question node, answer node) pairs of the run")
PATHS = _d("reason/paths", "paths", "all shortest KG paths per pair", main=True)
PATHS_PAIR_STATUS = _d("reason/paths_pair_status", "paths", "why each pair has or has no paths")
PRUNE = _d("reason/prune", "prune", "the most relevant paths per question", main=True)
PRUNE_REJECTS = _d("reason/prune_rejects", "prune",
                   "QA rows prune dropped: none by design (a group the LLM cannot rank only loses its paths)")
GENERATE = _d("reason/generate", "generate", "grounded chains of thought", main=True)
GENERATE_REJECTS = _d("reason/generate_rejects", "generate", "rows generation could not handle")
VERIFIED = _d("reason/verified", "verify", "multiple-choice rows whose reasoning re-answers gold")
VERIFY_REJECTS = _d("reason/verify_rejects", "verify", "multiple-choice rows that failed verification")
VERIFIED_FREE_TEXT = _d("reason/verified_free_text", "verify", "free-text rows the judge accepted")
VERIFY_REJECTS_FREE_TEXT = _d("reason/verify_rejects_free_text", "verify", "free-text rows the judge refused")
SFT = _d("reason/sft", "verify", "the SFT dataset: verified, KG-grounded reasoning", main=True)
SFT_JSONL = _d("reason/sft_jsonl", "verify", "the SFT dataset as JSONL (sft.jsonl)", "file")
REJECTS = _d("reason/rejects", "verify", "every QA row a reasoning stage dropped, with stage and reason")

SFT_CLEAN = _d("train/sft_clean", "decontaminate", "SFT rows with no overlap with the evaluation sets", main=True)
DECONTAM_REJECTS = _d("train/decontam_rejects", "decontaminate", "SFT rows dropped for overlap")
TRAIN_LOSS = _d("train/loss", "sft", "training loss per step (the summary is in its manifest)", main=True)
TRAIN_MODEL = _d("train/model", "sft", "the fine-tuned model", "model")
TRAIN_REJECTS = _d("train/rejects", "sft", "training rows not trained on (too long, empty), with reason")
TRAIN_HISTORY = _d("train/train_history.json", "sft", "loss and learning rate per step", "file")
TRAIN_SUMMARY = _d("train/_SFT.json", "sft", "what the training run did (tokens, steps, timings)", "file")
TRAIN_CHECKPOINTS = _d("train/_ray_train", "sft", "Ray Train checkpoints, when sft.storage_path is unset", "folder")

EVAL_RESULTS = _d("eval/results", "eval", "accuracy per model and benchmark with 95% intervals", main=True)
EVAL_ITEMS = _d("eval/items", "eval", "every answer with its extracted letter")
EVAL_RAW = _d("eval/raw", "eval", "raw model outputs, one dataset per model", "folder")

REPORT_STATUS = _d("report/status", "report", "where the report was written", main=True)
REPORT_HTML = _d("report/index.html", "report", "the self-contained HTML report", "file")

# -- literature mining (LEADS); the stages are in medreason_dist/leads_pipeline.py ---------------
LEADS_PROTOCOLS = _d("leads/protocols", "leads_inputs", "one row per review: protocol (PICO, criteria, fields)",
                     main=True)
LEADS_RECORDS = _d("leads/records", "leads_inputs",
                   "candidate records per review, duplicates merged, with gold label and full text when known")
LEADS_QUARANTINE = _d("leads/quarantine", "leads_inputs", "input records and files that could not be used, with reason")
LEADS_SEARCH = _d("leads/search", "leads_search", "generated PubMed and ClinicalTrials.gov queries that parse",
                  main=True)
LEADS_SEARCH_REJECTS = _d("leads/search_rejects", "leads_search", "reviews whose generated query was refused, with reason")
LEADS_RETRIEVED = _d("leads/retrieved", "leads_retrieve", "PubMed records the generated queries found", main=True)
LEADS_RETRIEVED_TRIALS = _d("leads/retrieved_trials", "leads_retrieve", "ClinicalTrials.gov studies they found")
LEADS_RETRIEVED_ARMS = _d("leads/retrieved_arms", "leads_retrieve", "arm groups of those studies")
LEADS_RETRIEVED_MEASUREMENTS = _d("leads/retrieved_measurements", "leads_retrieve",
                                  "baseline and outcome measurements of those studies")
LEADS_RETRIEVE_ERRORS = _d("leads/retrieve_errors", "leads_retrieve", "queries a service refused or failed, with reason")
LEADS_SCREENING = _d("leads/screening", "leads_screen", "label per criterion, score and decision per record", main=True)
LEADS_SCREEN_REJECTS = _d("leads/screen_rejects", "leads_screen", "records the model could not label, with reason")
LEADS_SCREENING_CSV = _d("leads/screening.csv", "leads_screen", "the screening ranked by score, as CSV", "file")
LEADS_SCREENING_RIS = _d("leads/screening.ris", "leads_screen",
                         "the screening as RIS with ASReview labels in the notes", "file")
LEADS_EXTRACTION = _d("leads/extraction", "leads_extract",
                      "characteristics, arms, participant statistics and results per full text", main=True)
LEADS_EXTRACTION_CSV = _d("leads/extraction.csv", "leads_extract",
                          "one row per study and extracted value (characteristics, arms, statistics, results)", "file")
LEADS_EXTRACT_REJECTS = _d("leads/extract_rejects", "leads_extract", "full texts no chunk could be extracted from")
LEADS_EVAL = _d("leads/eval", "leads_eval", "search, screening and extraction metrics with 95% intervals", main=True)
LEADS_EVAL_CSV = _d("leads/eval.csv", "leads_eval", "the evaluation figures as CSV", "file")
LEADS_EVAL_ITEMS = _d("leads/eval_items", "leads_eval", "every extracted value next to its gold value")
# LEADSInstruct-style curation (Spark), the literature student's fine-tuning and its evaluation
LEADS_INSTRUCTIONS = _d("leads/instructions", "leads_curate",
                        "instruction rows for the six tasks: task, split, instruction, response, source ids, rule",
                        main=True)
LEADS_CURATE_QUARANTINE = _d("leads/curate_quarantine", "leads_curate",
                             "corpus rows the curation could not use (dangling ids, no text, bad registry JSON), "
                             "with reason")
LEADS_CURATE_REMOVED = _d("leads/curate_removed", "leads_curate",
                          "instruction rows removed by hygiene (duplicates, test leakage, evaluation overlap), "
                          "with reason")
LEADS_CURATE_STATS = _d("leads/curate_stats", "leads_curate", "rows and length quantiles per task and split")
LEADS_TRAIN_DATA = _d("leads/train_data", "leads_train", "the task-mixture sample of the train split trained on")
LEADS_TRAIN_LOSS = _d("leads/train/loss", "leads_train", "training loss per step of the literature student", main=True)
LEADS_TRAIN_MODEL = _d("leads/train/model", "leads_train", "the fine-tuned literature student", "model")
LEADS_TRAIN_REJECTS = _d("leads/train/rejects", "leads_train", "training rows not trained on, with reason")
LEADS_TRAIN_HISTORY = _d("leads/train/train_history.json", "leads_train", "loss and learning rate per step", "file")
LEADS_TRAIN_SUMMARY = _d("leads/train/_SFT.json", "leads_train", "what the training run did", "file")
LEADS_TRAIN_CHECKPOINTS = _d("leads/train/_ray_train", "leads_train", "Ray Train checkpoints", "folder")
LEADS_MODEL_EVAL = _d("leads/model_eval", "leads_model_eval",
                      "base vs fine-tuned student per task on the held-out split, with 95% intervals", main=True)
LEADS_MODEL_EVAL_ITEMS = _d("leads/model_eval_items", "leads_model_eval", "every test row's answer and score per model")
LEADS_MODEL_EVAL_RAW = _d("leads/model_eval_raw", "leads_model_eval", "raw generations per model (resumable)", "folder")
LEADS_TASK_LOSS = _d("leads/task_loss", "leads_model_eval", "held-out loss per task, base vs fine-tuned")
LEADS_REPORT_STATUS = _d("leads/report_status", "leads_report", "where the literature report was written", main=True)
LEADS_REPORT_HTML = _d("leads/report.html", "leads_report", "the self-contained HTML report of the literature run",
                       "file")

ALL: tuple[DatasetRef, ...] = tuple(v for v in dict(globals()).values() if isinstance(v, DatasetRef))
BY_NAME: dict[str, DatasetRef] = {d.name: d for d in ALL}
LEADS: tuple[DatasetRef, ...] = tuple(d for d in ALL if d.name.startswith("leads/"))
MEDREASON: tuple[DatasetRef, ...] = tuple(d for d in ALL if d not in LEADS)
MAIN_OUTPUTS: tuple[DatasetRef, ...] = tuple(d for d in MEDREASON if d.main)  # in pipeline order

# Datasets of dropped rows that the reasoning stages write, gathered into REJECTS by verify.
REASON_REJECTS = (EXTRACT_REJECTS, REFORMAT_REJECTS, GENERATE_REJECTS, VERIFY_REJECTS, VERIFY_REJECTS_FREE_TEXT)


def get(name: str) -> DatasetRef:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; declared: {', '.join(sorted(BY_NAME))}") from None
