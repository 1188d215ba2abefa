"""``medreason-dist ground QA.jsonl --kg KG --method dictionary|llm|hybrid --out DIR``.

Grounding alone: the pipeline's own stages (sources, kg, lexicon, extract, link) run on one QA
file with their usual fingerprints, resume and quarantine, under DIR; then DIR/grounding gets
one row per question: ``id``, ``question`` and ``links`` (a list of structs: role question|answer,
surface, start, end, node_id = the kg.csv node index, node_name, type, method, evidence, score).
``--method dictionary`` asks no model. With gold links (``--gold``, or the QA file itself when
its rows carry a ``gold`` field, as the packaged gold set does) it prints precision and recall.
"""

from __future__ import annotations

import argparse
import json

import pyarrow as pa

from medreason_dist import datasets as D
from medreason_dist import storage
from medreason_dist.config import Config, ConfigError, SourceSpec, resolve_packaged

LINK_TYPE = pa.struct([("role", pa.string()), ("surface", pa.string()), ("start", pa.int64()), ("end", pa.int64()),
                       ("node_id", pa.int64()), ("node_name", pa.string()), ("type", pa.string()),
                       ("method", pa.string()), ("evidence", pa.string()), ("score", pa.float64())])
GROUNDING_SCHEMA = pa.schema([("id", pa.string()), ("question", pa.string()), ("links", pa.list_(LINK_TYPE))])
ROLES = {"q": "question", "a": "answer"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("qa", metavar="QA.jsonl", help="questions in the MedQA JSONL format (question, options, "
                                                  "answer_idx[, answer, id])")
    p.add_argument("--kg", required=True, help="a PrimeKG kg.csv (path or URI), or a folder of ingested KG "
                                               "datasets (with nodes/ and edges/, e.g. <run.out>/kg)")
    p.add_argument("--method", choices=["dictionary", "llm", "hybrid"], default="hybrid")
    p.add_argument("--out", required=True, help="output folder (URI); the grounding dataset is <out>/grounding")
    p.add_argument("--gold", help="gold links JSONL (question, options, answer, gold); default: the QA file "
                                  "itself when its rows have a 'gold' field")
    p.add_argument("--force", action="store_true", help="rerun the stages even if up to date")


def _has_gold(uri: str, options) -> bool:
    for line in storage.read_bytes(uri, options).decode("utf-8").splitlines():
        if line.strip():
            try:
                return "gold" in json.loads(line)
            except json.JSONDecodeError:
                return False
    return False


def grounding_config(cfg: Config, args: argparse.Namespace) -> tuple[Config, list[str]]:
    """The run's config with the QA file as its only source, and the stages to run."""
    cfg = cfg.model_copy(deep=True)
    qa = resolve_packaged(args.qa)
    if not storage.exists(qa, cfg.storage):
        raise ConfigError(f"ground: QA file {args.qa} does not exist")
    cfg.sources = [SourceSpec(name="ground", adapter="medqa", path=args.qa, format="jsonl", split="ground")]
    cfg.run.out = args.out
    cfg.reason.grounding = args.method
    cfg.reason.limit = None
    gold = args.gold or (args.qa if _has_gold(qa, cfg.storage) else None)
    cfg.reason.grounding_gold = gold
    stages = ["sources", "kg", "lexicon", "extract", "link"]
    kg = resolve_packaged(args.kg)
    if storage.exists(storage.join(kg, D.KG_NODES.name.split("/", 1)[1], storage.MANIFEST_NAME), cfg.storage):
        cfg.kg.dir = args.kg  # already ingested: read its nodes, build (or reuse) its lexicon there
        stages.remove("kg")
    elif storage.exists(kg, cfg.storage):
        cfg.kg.source = args.kg
        cfg.kg.dir = None
    else:
        raise ConfigError(f"ground: --kg {args.kg} is neither a kg.csv nor a folder with nodes/")
    return cfg, stages


def grounding_table(link_rows: pa.Table) -> pa.Table:
    """One row per question with typed links (roles spelt out)."""
    out = []
    for r in link_rows.select(["id", "question", "links_json"]).to_pylist():
        links = []
        for x in json.loads(r["links_json"]):
            links.append({"role": ROLES.get(x["role"], x["role"]), "surface": x.get("surface", x.get("name")),
                          "start": x.get("start"), "end": x.get("end"), "node_id": x.get("node_id"),
                          "node_name": x.get("node_name"), "type": x.get("type"), "method": x.get("method"),
                          "evidence": x.get("evidence"), "score": x.get("score")})
        out.append({"id": r["id"], "question": r["question"], "links": links})
    return pa.Table.from_pylist(out, schema=GROUNDING_SCHEMA)


def cmd_ground(cfg: Config, args: argparse.Namespace) -> int:
    from medreason_dist.run_command import run_selected
    from medreason_dist.stages.grounding import gold_counts, precision_recall

    cfg, stages = grounding_config(cfg, args)
    code = run_selected(cfg, stages, force=args.force, verbose=args.verbose)
    if code != 0:
        return code
    link_uri = cfg.dataset_uri(D.LINK.name)
    table = grounding_table(storage.read_table(link_uri, options=cfg.storage))
    out_uri = storage.join(cfg.out_uri(), "grounding")
    link_manifest = storage.read_manifest(link_uri, cfg.storage)
    counts = link_manifest.extra  # the stage's counts sit at the top of its manifest's extra
    gold = gold_counts(counts)
    summary = {"questions": table.num_rows, "method": args.method,
               "links": {k[len("methods."):]: v for k, v in counts.items() if k.startswith("methods.")},
               "gold": precision_recall(gold) if gold else None}
    storage.write_table(out_uri, table, stage="ground", config_hash=link_manifest.config_hash,
                        extra={"summary": summary}, options=cfg.storage)
    linked = sum(1 for links in table.column("links").to_pylist() if any(x["node_id"] is not None for x in links))
    print(f"grounding: {table.num_rows} questions, {linked} with at least one link -> {out_uri}")
    print("links by method: " + (", ".join(f"{k} {v}" for k, v in sorted(summary["links"].items())) or "none"))
    if summary["gold"]:
        g = summary["gold"]
        fmt = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        print(f"against gold ({g['questions']} questions): precision {fmt(g['precision'])}, "
              f"recall {fmt(g['recall'])}, F1 {fmt(g['f1'])}")
    return 0
