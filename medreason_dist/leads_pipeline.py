"""Literature mining (LEADS, arXiv 2501.16255) in one file: every stage, what it reads and writes.

    protocol + candidate files ──► leads_inputs ──► leads_search ──► leads_retrieve (--execute)
     (or a folder of reviews)          │  │               │
                                       │  └──► leads_screen ──┐
                                       └────► leads_extract ──┴──► leads_eval ──────────┐
                                                                                        ▼
    corpus (reviews, publications, ──► leads_curate ──► leads_train ──► leads_model_eval ──► leads_report
     registry; Spark)                  (instructions)    (Ray Train)    (base vs fine-tuned)

The same runner, stage contract, fingerprints and engine layer as MedReason's pipeline
(:mod:`medreason_dist.pipeline`): datasets are declared in :mod:`medreason_dist.datasets`
(``leads/...``), config lives in the ``leads:`` section (:mod:`medreason_dist.literature.settings`),
and the LLM stages share the run's engine. ``medreason-dist leads graph`` prints this graph;
``medreason-dist leads run --plan`` says what would run and why.
"""

from __future__ import annotations

from medreason_dist import datasets as D
from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.runner.contract import Stage, StageContext, StageEmpty, StageResult

LLM = ("llm", "run.seed")  # as in pipeline.py: the engine settings and the sampling seed
INPUTS = ("leads.review", "leads.reviews_dir", "leads.max_candidates_per_review", "leads.limit")


def _llm_fn():
    from medreason_dist.stages.common import default_llm_fn

    return default_llm_fn()


def _ray(cfg: Config) -> None:
    from medreason_dist.ray_runtime import ensure_ray

    ensure_ray(cfg.ray)


def _manifest(ctx: StageContext, ref: D.DatasetRef) -> storage.Manifest:
    return storage.read_manifest(ctx.uri(ref), ctx.options)


# -- stage bodies -------------------------------------------------------------------------------


def run_inputs(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_inputs import load_inputs, write_inputs

    inputs = load_inputs(ctx.config.leads, seed=ctx.config.run.seed)
    manifest = write_inputs(inputs, ctx.uri(D.LEADS_PROTOCOLS), ctx.uri(D.LEADS_RECORDS),
                            ctx.uri(D.LEADS_QUARANTINE), fingerprint=ctx.fingerprint, options=ctx.options)
    return StageResult(manifest, {D.LEADS_QUARANTINE.name: _manifest(ctx, D.LEADS_QUARANTINE)})


def run_search(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_llm import generate_queries

    _ray(ctx.config)
    res = generate_queries(ctx.config, ctx.uri(D.LEADS_PROTOCOLS), out_uri=ctx.uri(D.LEADS_SEARCH),
                           rejects_uri=ctx.uri(D.LEADS_SEARCH_REJECTS), fingerprint=ctx.fingerprint,
                           llm_fn=_llm_fn(), force=ctx.force)
    return StageResult(res.output, {D.LEADS_SEARCH_REJECTS.name: res.rejects})


def run_retrieve(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_retrieve import retrieve

    _ray(ctx.config)
    uris = {"records": ctx.uri(D.LEADS_RETRIEVED), "trials": ctx.uri(D.LEADS_RETRIEVED_TRIALS),
            "arms": ctx.uri(D.LEADS_RETRIEVED_ARMS), "measurements": ctx.uri(D.LEADS_RETRIEVED_MEASUREMENTS),
            "errors": ctx.uri(D.LEADS_RETRIEVE_ERRORS)}
    manifests = retrieve(ctx.config, ctx.uri(D.LEADS_SEARCH), ctx.uri(D.LEADS_RECORDS), uris,
                         fingerprint=ctx.fingerprint, cpus=ctx.config.llm.light_stage_cpus)
    return StageResult(manifests["records"], {D.LEADS_RETRIEVE_ERRORS.name: manifests["errors"]})


def run_screen(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_export import export_screening, on_worker
    from medreason_dist.stages.leads_llm import screen_records

    _ray(ctx.config)
    res = screen_records(ctx.config, ctx.uri(D.LEADS_RECORDS), ctx.uri(D.LEADS_PROTOCOLS),
                         out_uri=ctx.uri(D.LEADS_SCREENING), rejects_uri=ctx.uri(D.LEADS_SCREEN_REJECTS),
                         fingerprint=ctx.fingerprint, llm_fn=_llm_fn(), force=ctx.force)
    on_worker(export_screening, ctx.uri(D.LEADS_SCREENING), ctx.uri(D.LEADS_SCREENING_CSV),
              ctx.uri(D.LEADS_SCREENING_RIS), ctx.options, cpus=ctx.config.llm.light_stage_cpus)
    return StageResult(res.output, {D.LEADS_SCREEN_REJECTS.name: res.rejects})


def run_extract(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_export import export_extraction, on_worker
    from medreason_dist.stages.leads_llm import extract_studies

    stats = _manifest(ctx, D.LEADS_RECORDS).extra.get("stats", {})
    if not stats.get("full_texts"):
        raise StageEmpty("no candidate record has a full text (leads.review.fulltexts); nothing to extract")
    _ray(ctx.config)
    res = extract_studies(ctx.config, ctx.uri(D.LEADS_RECORDS), ctx.uri(D.LEADS_PROTOCOLS),
                          out_uri=ctx.uri(D.LEADS_EXTRACTION), rejects_uri=ctx.uri(D.LEADS_EXTRACT_REJECTS),
                          fingerprint=ctx.fingerprint, llm_fn=_llm_fn(), force=ctx.force)
    on_worker(export_extraction, ctx.uri(D.LEADS_EXTRACTION), ctx.uri(D.LEADS_EXTRACTION_CSV), ctx.options,
              cpus=ctx.config.llm.light_stage_cpus)
    return StageResult(res.output, {D.LEADS_EXTRACT_REJECTS.name: res.rejects})


def run_curate(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_curate import run_curation

    uris = {"instructions": ctx.uri(D.LEADS_INSTRUCTIONS), "quarantine": ctx.uri(D.LEADS_CURATE_QUARANTINE),
            "removed": ctx.uri(D.LEADS_CURATE_REMOVED), "stats": ctx.uri(D.LEADS_CURATE_STATS)}
    return StageResult(run_curation(ctx.config, uris, fingerprint=ctx.fingerprint, options=ctx.options))


def run_train(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_train import train_student

    uris = {"instructions": ctx.uri(D.LEADS_INSTRUCTIONS), "data": ctx.uri(D.LEADS_TRAIN_DATA),
            "loss": ctx.uri(D.LEADS_TRAIN_LOSS), "model": ctx.uri(D.LEADS_TRAIN_MODEL)}
    return StageResult(train_student(ctx.config, uris, fingerprint=ctx.fingerprint, options=ctx.options))


def student_models(cfg: Config) -> tuple[dict[str, str], dict[str, str]]:
    """(engine references, local paths for the loss) of the base student and, once trained, the fine-tuned one."""
    from medreason_dist.models import resolve_model

    base = cfg.sft.model
    models = {"base": base}
    paths = {"base": resolve_model(base, cfg.models.cache_dir)}
    tuned = cfg.dataset_uri(D.LEADS_TRAIN_MODEL.name)
    if storage.exists(storage.join(tuned, "config.json"), cfg.storage):
        local = str(storage.local_path(tuned)) if tuned.startswith("file://") else tuned
        models["finetuned"] = local
        paths["finetuned"] = resolve_model(local, cfg.models.cache_dir, storage_options=cfg.storage)
    return models, paths


def run_model_eval(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_model_eval import evaluate_students

    _ray(ctx.config)
    models, paths = student_models(ctx.config)
    manifest = evaluate_students(ctx.config, ctx.uri(D.LEADS_INSTRUCTIONS), models, out_uri=ctx.uri(D.LEADS_MODEL_EVAL),
                                 items_uri=ctx.uri(D.LEADS_MODEL_EVAL_ITEMS), raw_uri=ctx.uri(D.LEADS_MODEL_EVAL_RAW),
                                 loss_uri=ctx.uri(D.LEADS_TASK_LOSS), fingerprint=ctx.fingerprint, llm_fn=_llm_fn(),
                                 force=ctx.force, loss_paths=paths)
    return StageResult(manifest)


def _present(ctx: StageContext, ref: D.DatasetRef) -> str | None:
    uri = ctx.uri(ref)
    return uri if storage.is_readable(uri, ctx.options) else None


def run_eval(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.leads_eval import evaluate, load_gold_extraction

    cfg = ctx.config
    gold = None if cfg.leads.reviews_dir else load_gold_extraction(cfg.leads.review.gold_extraction)
    manifest = evaluate(cfg, protocols_uri=ctx.uri(D.LEADS_PROTOCOLS), records_uri=ctx.uri(D.LEADS_RECORDS),
                        search_uri=_present(ctx, D.LEADS_SEARCH), screening_uri=_present(ctx, D.LEADS_SCREENING),
                        extraction_uri=_present(ctx, D.LEADS_EXTRACTION), gold_extraction=gold,
                        out_uri=ctx.uri(D.LEADS_EVAL), items_uri=ctx.uri(D.LEADS_EVAL_ITEMS),
                        csv_uri=ctx.uri(D.LEADS_EVAL_CSV), fingerprint=ctx.fingerprint)
    return StageResult(manifest)


def run_report(ctx: StageContext) -> StageResult:
    import pyarrow as pa

    from medreason_dist.report.leads import write_leads_report

    uris = {ref.name: ctx.uri(ref) for ref in ctx.stage.optional_reads}
    uri = write_leads_report(uris, ctx.uri(D.LEADS_REPORT_HTML), options=ctx.options, run_name=ctx.config.run.name)
    manifest = storage.write_table(ctx.uri(D.LEADS_REPORT_STATUS), pa.table({"report_uri": [uri]}),
                                   stage="leads_report", config_hash=ctx.fingerprint, extra={"report_uri": uri},
                                   options=ctx.options)
    return StageResult(manifest)


# -- identities of inputs that are not datasets of the run --------------------------------------


def _input_files(cfg: Config) -> dict:
    """File identities of the review's inputs, so editing a candidate file reruns the stage."""
    from pathlib import Path

    from medreason_dist.config import resolve_packaged

    def ident(ref: str | None):
        if not ref:
            return None
        src = resolve_packaged(ref)
        if "://" not in src and Path(src).is_dir():
            return {p.name: storage.file_identity(str(p)) for p in sorted(Path(src).rglob("*")) if p.is_file()}
        return storage.file_identity(src, cfg.storage)

    if cfg.leads.reviews_dir:
        return {"reviews_dir": ident(cfg.leads.reviews_dir)}
    r = cfg.leads.review
    return {"protocol": ident(r.protocol), "candidates": [ident(c) for c in r.candidates],
            "fulltexts": ident(r.fulltexts), "gold_labels": ident(r.gold_labels)}


def _curate_inputs(cfg: Config) -> dict:
    """The corpus tables' identities (manifest or file), and which evaluation reviews exist now."""
    from medreason_dist.stages.leads_curate import SHARED_TRIALMIND, TABLES, corpus_location, table_uri

    corpus = corpus_location(cfg.leads.curate.corpus)
    out: dict = {"trialmind_present": SHARED_TRIALMIND.is_dir(), "review": _input_files(cfg)}
    for name in TABLES:
        try:
            kind, uri = table_uri(corpus, name, cfg.storage)
        except FileNotFoundError:
            out[name] = None  # the stage itself says what is missing
            continue
        target = storage.join(uri, storage.MANIFEST_NAME) if kind == "dataset" else uri
        out[name] = storage.file_identity(target, cfg.storage) if storage.exists(target, cfg.storage) else uri
    return out


def _trained_model(cfg: Config) -> dict | None:
    uri = storage.join(cfg.dataset_uri(D.LEADS_TRAIN_MODEL.name), "config.json")
    return storage.file_identity(uri, cfg.storage) if storage.exists(uri, cfg.storage) else None


def _gold_extraction_file(cfg: Config) -> dict | None:
    from medreason_dist.config import resolve_packaged

    ref = cfg.leads.review.gold_extraction
    return storage.file_identity(resolve_packaged(ref), cfg.storage) if ref and not cfg.leads.reviews_dir else None


# -- the pipeline -------------------------------------------------------------------------------

LEADS_PIPELINE: list[Stage] = [
    Stage("leads_inputs", "protocol(s) and candidate records (duplicates merged, + quarantine)",
          reads=(), writes=(D.LEADS_PROTOCOLS, D.LEADS_RECORDS, D.LEADS_QUARANTINE),
          config=INPUTS + ("run.seed",), run=run_inputs, external=_input_files),
    Stage("leads_search", "LLM: PubMed and ClinicalTrials.gov queries from the PICO, checked by their grammars",
          reads=(D.LEADS_PROTOCOLS,), writes=(D.LEADS_SEARCH, D.LEADS_SEARCH_REJECTS),
          config=LLM + ("leads.search",), engines=("llm.model",), run=run_search),
    Stage("leads_retrieve", "run the accepted queries through the PubMed and ClinicalTrials.gov clients",
          reads=(D.LEADS_SEARCH,), optional_reads=(D.LEADS_RECORDS,),
          writes=(D.LEADS_RETRIEVED, D.LEADS_RETRIEVED_TRIALS, D.LEADS_RETRIEVED_ARMS,
                  D.LEADS_RETRIEVED_MEASUREMENTS, D.LEADS_RETRIEVE_ERRORS),
          config=("leads.pubmed", "leads.ctgov"), run=run_retrieve),
    Stage("leads_screen", "LLM: a label per criterion, a score and a decision per record (+ CSV, RIS)",
          reads=(D.LEADS_RECORDS, D.LEADS_PROTOCOLS),
          writes=(D.LEADS_SCREENING, D.LEADS_SCREEN_REJECTS, D.LEADS_SCREENING_CSV, D.LEADS_SCREENING_RIS),
          config=LLM + ("leads.screen",), engines=("llm.model",), run=run_screen),
    Stage("leads_extract", "LLM: characteristics, arms, participants and results per full text, by chunk",
          reads=(D.LEADS_RECORDS, D.LEADS_PROTOCOLS),
          writes=(D.LEADS_EXTRACTION, D.LEADS_EXTRACT_REJECTS, D.LEADS_EXTRACTION_CSV),
          config=LLM + ("leads.extract",), engines=("llm.model",), run=run_extract),
    Stage("leads_eval", "search, screening and extraction against gold, with Wilson intervals",
          reads=(D.LEADS_PROTOCOLS, D.LEADS_RECORDS),
          optional_reads=(D.LEADS_SEARCH, D.LEADS_SCREENING, D.LEADS_EXTRACTION),
          writes=(D.LEADS_EVAL, D.LEADS_EVAL_ITEMS, D.LEADS_EVAL_CSV), config=("leads.eval",),
          run=run_eval, external=_gold_extraction_file),
    Stage("leads_curate", "Spark: reviews, publications, registry -> instruction rows for six tasks (+ hygiene)",
          reads=(), writes=(D.LEADS_INSTRUCTIONS, D.LEADS_CURATE_QUARANTINE, D.LEADS_CURATE_REMOVED, D.LEADS_CURATE_STATS),
          config=("leads.curate", "run.seed", "leads.review", "leads.reviews_dir"), run=run_curate,
          external=_curate_inputs),
    Stage("leads_train", "Ray Train: fine-tune the literature student on a task mixture of the train split",
          reads=(D.LEADS_INSTRUCTIONS,),
          writes=(D.LEADS_TRAIN_LOSS, D.LEADS_TRAIN_DATA, D.LEADS_TRAIN_MODEL, D.LEADS_TRAIN_REJECTS,
                  D.LEADS_TRAIN_HISTORY, D.LEADS_TRAIN_SUMMARY, D.LEADS_TRAIN_CHECKPOINTS),
          config=("leads.train", "sft", "run.seed"), engines=("sft.model",), run=run_train,
          needs_engine_resources=True),
    Stage("leads_model_eval", "base vs fine-tuned student on the held-out split, six tasks, with intervals",
          reads=(D.LEADS_INSTRUCTIONS,), optional_reads=(D.LEADS_TRAIN_MODEL,),
          writes=(D.LEADS_MODEL_EVAL, D.LEADS_MODEL_EVAL_ITEMS, D.LEADS_MODEL_EVAL_RAW, D.LEADS_TASK_LOSS),
          config=LLM + ("leads.model_eval", "sft.model", "sft.max_seq_len"), engines=("llm.model",),
          run=run_model_eval, external=_trained_model),
    Stage("leads_report", "self-contained HTML report of the literature run",
          reads=(), optional_reads=tuple(d for d in D.LEADS if d.kind == "dataset" and d.owner != "leads_report"),
          writes=(D.LEADS_REPORT_STATUS, D.LEADS_REPORT_HTML), config=("run.name",), run=run_report),
]

# What each `medreason-dist leads` command runs (the runner skips what is up to date).
COMMAND_STAGES: dict[str, list[str]] = {
    "search": ["leads_inputs", "leads_search"],
    "screen": ["leads_inputs", "leads_screen"],
    "extract": ["leads_inputs", "leads_extract"],
    "eval": ["leads_inputs", "leads_search", "leads_screen", "leads_extract", "leads_eval"],
    "curate": ["leads_curate"],
    "train": ["leads_curate", "leads_train"],
    "instruct": ["leads_curate", "leads_train", "leads_model_eval", "leads_report"],
    "run": ["leads_inputs", "leads_search", "leads_screen", "leads_extract", "leads_eval", "leads_curate",
            "leads_train", "leads_model_eval", "leads_report"],
}


def describe_graph() -> str:
    from medreason_dist.pipeline import describe_graph as describe

    return describe(LEADS_PIPELINE)
