"""The whole flow in one file: every stage, what it reads, what it writes, what config it obeys.

    QA sources ──► sources ──► extract ──► link ──► reformat ──► paths ──► prune ──► generate
                                             ▲                     ▲                    │
                 PrimeKG kg.csv ──► kg ──► lexicon                 │                    │
                                    └──────┴───────────────────────┘                    ▼
     report ◄── eval ◄── sft ◄── decontaminate ◄──────────────────────────────────── verify

``medreason-dist graph`` prints the dataset graph from :data:`PIPELINE`; ``medreason-dist run
--plan`` prints which stages are up to date and why the others would run. Datasets are declared
in :mod:`medreason_dist.datasets`; the stage contract, fingerprints and the runner live in
:mod:`medreason_dist.runner`. The functions below only connect declared datasets to the stage
code in :mod:`medreason_dist.stages` (and the Spark/Train engines); they hold no logic of their own.
"""

from __future__ import annotations

import logging

from medreason_dist import datasets as D
from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.runner.contract import Stage, StageContext, StageEmpty, StageResult

log = logging.getLogger(__name__)

# Config every LLM stage depends on: the whole engine settings (execution-only fields masked,
# see runner/fingerprint.py) and the run seed that sampling uses.
LLM = ("llm", "run.seed")


def _llm_fn():
    from medreason_dist.stages.common import default_llm_fn

    return default_llm_fn()


def _ray(cfg: Config) -> None:
    from medreason_dist.ray_runtime import ensure_ray

    ensure_ray(cfg.ray)


def _manifest(ctx: StageContext, ref: D.DatasetRef) -> storage.Manifest:
    return storage.read_manifest(ctx.uri(ref), ctx.options)


# -- stage bodies -------------------------------------------------------------------------------


def run_sources(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.sources import normalize_sources, write_sources

    result = normalize_sources(ctx.config.sources, ctx.options)
    manifest = write_sources(result, ctx.uri(D.SOURCES_QA), ctx.uri(D.SOURCES_QUARANTINE),
                             config_hash=ctx.fingerprint, options=ctx.options)
    return StageResult(manifest, {D.SOURCES_QUARANTINE.name: _manifest(ctx, D.SOURCES_QUARANTINE)})


def run_eval_sets(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.sources import normalize_sources, write_sources

    result = normalize_sources(ctx.config.eval_sets, ctx.options, dedupe=False)
    manifest = write_sources(result, ctx.uri(D.EVAL_QA), ctx.uri(D.EVAL_QUARANTINE), config_hash=ctx.fingerprint,
                             options=ctx.options, stage="eval_sets")
    return StageResult(manifest)


def run_kg(ctx: StageContext) -> StageResult:
    from medreason_dist.config import resolve_packaged
    from medreason_dist.kg.ingest import ingest_primekg

    ingest_primekg(resolve_packaged(ctx.config.kg.source), ctx.uri(D.KG_NODES), ctx.uri(D.KG_EDGES), ctx.uri(D.KG_QUARANTINE),
           options=ctx.options, config_hash=ctx.fingerprint)
    return StageResult(_manifest(ctx, D.KG_NODES))  # nodes are committed last


def run_lexicon(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.lexicon import build_kg_lexicon

    cfg = ctx.config
    _ray(cfg)
    manifest = build_kg_lexicon(ctx.uri(D.KG_NODES), ctx.uri(D.KG_LEXICON), settings=cfg.kg.lexicon,
                                synonyms_ref=cfg.kg.lexicon.synonyms_source(cfg.kg.source),
                                fingerprint=ctx.fingerprint, options=ctx.options, num_cpus=cfg.llm.light_stage_cpus)
    return StageResult(manifest)


def run_extract(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.extract import extract_entities

    _ray(ctx.config)
    res = extract_entities(ctx.config, ctx.uri(D.SOURCES_QA), out_uri=ctx.uri(D.EXTRACT),
                           rejects_uri=ctx.uri(D.EXTRACT_REJECTS), fingerprint=ctx.fingerprint, llm_fn=_llm_fn(),
                           force=ctx.force)
    return StageResult(res.output, {D.EXTRACT_REJECTS.name: res.rejects})


def run_link(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.link import link_entities

    _ray(ctx.config)
    res = link_entities(ctx.config, ctx.uri(D.EXTRACT), nodes_uri=ctx.uri(D.KG_NODES),
                        lexicon_uri=ctx.uri(D.KG_LEXICON), embeddings_uri=ctx.uri(D.KG_EMBEDDINGS), out_uri=ctx.uri(D.LINK),
                        rejects_uri=ctx.uri(D.LINK_REJECTS), fingerprint=ctx.fingerprint, llm_fn=_llm_fn(),
                        force=ctx.force)
    return StageResult(res.output, {D.LINK_REJECTS.name: res.rejects})


def run_reformat(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.reformat import reformat_rows

    _ray(ctx.config)
    res = reformat_rows(ctx.config, ctx.uri(D.LINK), out_uri=ctx.uri(D.REFORMAT),
                        rejects_uri=ctx.uri(D.REFORMAT_REJECTS), pairs_uri=ctx.uri(D.PAIRS),
                        fingerprint=ctx.fingerprint, llm_fn=_llm_fn(), force=ctx.force)
    return StageResult(res.output, {D.REFORMAT_REJECTS.name: res.rejects})


def run_paths_stage(ctx: StageContext) -> StageResult:
    from medreason_dist.spark.paths import run_paths
    from medreason_dist.spark.session import spark_session

    cfg = ctx.config
    spark = spark_session(cfg.spark.master, app_name=cfg.spark.app_name,
                          conf={"spark.driver.memory": cfg.spark.driver_memory, **cfg.spark.conf})
    run_paths(spark, ctx.uri(D.KG_NODES), ctx.uri(D.KG_EDGES), ctx.uri(D.PAIRS), ctx.uri(D.PATHS),
              max_hops=cfg.paths.max_hops, max_paths=cfg.paths.max_paths, seed=cfg.paths.seed,
              engine=cfg.paths.engine, options=ctx.options, config_hash=ctx.fingerprint,
              engine_options={"relation_column": cfg.paths.relation_column})
    # The engine names its status dataset <paths>_pair_status, which is PATHS_PAIR_STATUS.
    return StageResult(_manifest(ctx, D.PATHS))


def run_prune(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.prune import prune_paths

    _ray(ctx.config)
    res = prune_paths(ctx.config, ctx.uri(D.REFORMAT), paths_uri=ctx.uri(D.PATHS), nodes_uri=ctx.uri(D.KG_NODES),
                      out_uri=ctx.uri(D.PRUNE), rejects_uri=ctx.uri(D.PRUNE_REJECTS), fingerprint=ctx.fingerprint,
                      llm_fn=_llm_fn(), force=ctx.force)
    return StageResult(res.output, {D.PRUNE_REJECTS.name: res.rejects})


def run_generate(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.generate import generate_reasoning

    _ray(ctx.config)
    res = generate_reasoning(ctx.config, ctx.uri(D.PRUNE), out_uri=ctx.uri(D.GENERATE),
                             rejects_uri=ctx.uri(D.GENERATE_REJECTS), fingerprint=ctx.fingerprint,
                             llm_fn=_llm_fn(), force=ctx.force)
    return StageResult(res.output, {D.GENERATE_REJECTS.name: res.rejects})


def run_verify(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.verify import verify_and_build_sft

    _ray(ctx.config)
    manifest = verify_and_build_sft(ctx, llm_fn=_llm_fn())
    return StageResult(manifest)


def eval_models(cfg: Config) -> dict[str, str]:
    """The models to evaluate; ``run:<name>`` refers to a model folder this run wrote."""
    models = {}
    for name, ref in cfg.eval.models.items():
        if ref.startswith("run:"):
            uri = cfg.dataset_uri(ref[len("run:"):])
            if not storage.exists(storage.join(uri, "config.json"), cfg.storage):
                log.warning("eval: skipping %s (%s has no model yet)", name, uri)
                continue
            ref = uri if not uri.startswith("file://") else str(storage.local_path(uri))
        models[name] = ref
    return models


def _eval_model_identity(cfg: Config) -> dict:
    out = {}
    for name, ref in cfg.eval.models.items():
        if ref.startswith("run:"):
            out[name] = storage.file_identity(storage.join(cfg.dataset_uri(ref[4:]), "config.json"), cfg.storage)
    return out


def run_eval(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.evaluate import evaluate_models

    _ray(ctx.config)
    manifest = evaluate_models(ctx.config, ctx.read(D.EVAL_QA), eval_models(ctx.config),
                               results_uri=ctx.uri(D.EVAL_RESULTS), items_uri=ctx.uri(D.EVAL_ITEMS),
                               raw_uri=ctx.uri(D.EVAL_RAW), fingerprint=ctx.fingerprint, llm_fn=_llm_fn(),
                               force=ctx.force)
    return StageResult(manifest)


def run_decontaminate(ctx: StageContext) -> StageResult:
    from medreason_dist.stages.decontaminate import run_decontaminate as decontaminate

    _ray(ctx.config)
    decontaminate(ctx.uri(D.SFT), ctx.uri(D.EVAL_QA), ctx.uri(D.SFT_CLEAN), ctx.uri(D.DECONTAM_REJECTS),
                  config=ctx.config.decontam, config_hash=ctx.fingerprint, options=ctx.options,
                  num_cpus=ctx.config.llm.light_stage_cpus)
    return StageResult(_manifest(ctx, D.SFT_CLEAN))


def run_sft(ctx: StageContext) -> StageResult:
    from medreason_dist.train.trainer import run_sft as train
    from medreason_dist.train.trainer import write_loss_dataset

    cfg = ctx.config
    data_uri = ctx.uri(D.SFT_CLEAN)
    if storage.read_manifest(data_uri, ctx.options).rows == 0:
        raise StageEmpty("no training rows survived verification and decontamination; nothing to fine-tune")
    train_dir = ctx.uri(D.TRAIN_MODEL).rsplit("/", 1)[0]  # the trainer writes model/, rejects/, ... here
    summary = train(data_uri, train_dir, cfg.sft, ctx.options,
                    ray_address=cfg.ray.address, ray_num_cpus=cfg.ray.num_cpus)
    return StageResult(write_loss_dataset(summary, ctx.uri(D.TRAIN_LOSS), stage="sft", fingerprint=ctx.fingerprint,
                                          options=ctx.options))


def run_report(ctx: StageContext) -> StageResult:
    import pyarrow as pa

    from medreason_dist.report.html import write_report

    cfg = ctx.config
    uri = write_report(cfg.out_uri(), ctx.uri(D.REPORT_HTML), options=ctx.options, run_name=cfg.run.name)
    log.info("report written to %s", uri)
    manifest = storage.write_table(ctx.uri(D.REPORT_STATUS), pa.table({"report_uri": [uri]}), stage="report",
                                   config_hash=ctx.fingerprint, extra={"report_uri": uri}, options=ctx.options)
    return StageResult(manifest)


# -- identities of inputs that are not datasets of the run --------------------------------------


def _source_files(pick):
    def identity(cfg: Config) -> dict:
        from medreason_dist.config import resolve_packaged

        out = {}
        for spec in pick(cfg):
            if spec.path is None:
                out[spec.name] = spec.hf.model_dump() if spec.hf else None
            else:
                out[spec.name] = storage.file_identity(resolve_packaged(spec.path), cfg.storage)
        return out

    return identity


def _lexicon_inputs_identity(cfg: Config) -> dict:
    from medreason_dist.config import resolve_packaged

    lex = cfg.kg.lexicon
    refs = {"synonyms": lex.synonyms_source(cfg.kg.source), "reference_questions": lex.reference_questions}
    return {k: storage.file_identity(resolve_packaged(v), cfg.storage) if v else None for k, v in refs.items()}


def _gold_identity(cfg: Config) -> dict | None:
    from medreason_dist.config import resolve_packaged

    ref = cfg.reason.grounding_gold
    return storage.file_identity(resolve_packaged(ref), cfg.storage) if ref else None


def _kg_source_identity(cfg: Config) -> dict | None:
    from medreason_dist.config import resolve_packaged

    src = resolve_packaged(cfg.kg.source)
    if src.startswith(("http://", "https://")):
        return {"url": src}
    return storage.file_identity(src, cfg.storage)


# -- the pipeline -----------------------------------------------------------------------------

PIPELINE: list[Stage] = [
    Stage("sources", "normalise QA sources into one schema (+ quarantine)",
          reads=(), writes=(D.SOURCES_QA, D.SOURCES_QUARANTINE),
          config=("sources",), run=run_sources, external=_source_files(lambda c: c.sources)),
    Stage("eval_sets", "normalise the evaluation benchmarks",
          reads=(), writes=(D.EVAL_QA, D.EVAL_QUARANTINE),
          config=("eval_sets",), run=run_eval_sets, external=_source_files(lambda c: c.eval_sets)),
    Stage("kg", "ingest PrimeKG kg.csv into nodes/edges (+ quarantine)",
          reads=(), writes=(D.KG_NODES, D.KG_EDGES, D.KG_QUARANTINE),
          config=("kg",), run=run_kg, external=_kg_source_identity),
    Stage("lexicon", "KG lexicon: node names, synonyms and spelling variants as matching keys",
          reads=(D.KG_NODES,), writes=(D.KG_LEXICON,),
          config=("kg.source", "kg.lexicon"), run=run_lexicon, external=_lexicon_inputs_identity),
    Stage("extract", "LLM: medical entities of question and answer (none asked with grounding: dictionary)",
          reads=(D.SOURCES_QA,), writes=(D.EXTRACT, D.EXTRACT_REJECTS),
          config=LLM + ("reason.extract", "reason.limit", "reason.grounding"), engines=("llm.model",),
          run=run_extract),
    Stage("link", "dictionary (lexicon) + embeddings + LLM: link entities to KG nodes",
          reads=(D.EXTRACT, D.KG_NODES, D.KG_LEXICON), writes=(D.LINK, D.LINK_REJECTS, D.KG_EMBEDDINGS),
          config=LLM + ("models.embedder", "reason.link", "reason.link_top_k", "reason.link_min_similarity",
                        "reason.link_accept_similarity", "reason.link_any_type_fallback", "reason.grounding",
                        "reason.hybrid_llm_names", "reason.grounding_gold"),
          engines=("llm.model", "models.embedder"), run=run_link, external=_gold_identity, version=2),
    Stage("reformat", "LLM: description/conclusion and entity pairs",
          reads=(D.LINK,), writes=(D.REFORMAT, D.REFORMAT_REJECTS, D.PAIRS),
          config=LLM + ("reason.reformat",), engines=("llm.model",), run=run_reformat,
          version=2),  # 2: a node pair once per row, however many mentions link to its nodes
    Stage("paths", "Spark: all shortest KG paths per entity pair",
          reads=(D.PAIRS, D.KG_NODES, D.KG_EDGES), writes=(D.PATHS, D.PATHS_PAIR_STATUS),
          config=("paths",), run=run_paths_stage),
    Stage("prune", "LLM: keep the most relevant paths",
          reads=(D.REFORMAT, D.PATHS, D.KG_NODES), writes=(D.PRUNE, D.PRUNE_REJECTS),
          config=LLM + ("reason.prune", "reason.max_paths_per_group", "reason.keep_paths_per_group", "paths.seed"),
          engines=("llm.model",), run=run_prune),
    Stage("generate", "LLM: grounded chain of thought",
          reads=(D.PRUNE,), writes=(D.GENERATE, D.GENERATE_REJECTS),
          config=LLM + ("reason.generate", "reason.allow_pathless"), engines=("llm.model",), run=run_generate,
          version=2),  # 2: the model cites kept paths by number; the text lists them verbatim
    Stage("verify", "LLM: re-answer from the reasoning, keep matches; gather every reject",
          reads=(D.GENERATE, D.EXTRACT_REJECTS, D.REFORMAT_REJECTS, D.GENERATE_REJECTS),
          writes=(D.SFT, D.VERIFIED, D.VERIFY_REJECTS, D.VERIFIED_FREE_TEXT, D.VERIFY_REJECTS_FREE_TEXT,
                  D.SFT_JSONL, D.REJECTS),
          config=LLM + ("reason.verify",), engines=("llm.model",), run=run_verify),
    Stage("decontaminate", "drop training rows that overlap evaluation sets",
          reads=(D.SFT, D.EVAL_QA), writes=(D.SFT_CLEAN, D.DECONTAM_REJECTS),
          config=("decontam",), run=run_decontaminate),
    Stage("sft", "Ray Train: fine-tune the student",
          reads=(D.SFT_CLEAN,),
          writes=(D.TRAIN_LOSS, D.TRAIN_MODEL, D.TRAIN_REJECTS, D.TRAIN_HISTORY, D.TRAIN_SUMMARY, D.TRAIN_CHECKPOINTS),
          config=("sft",), engines=("sft.model",), run=run_sft, needs_engine_resources=True),
    Stage("eval", "benchmarks with confidence intervals",
          reads=(D.EVAL_QA,), optional_reads=(D.TRAIN_MODEL,), writes=(D.EVAL_RESULTS, D.EVAL_ITEMS, D.EVAL_RAW),
          config=LLM + ("eval",), run=run_eval, external=_eval_model_identity),
    Stage("report", "self-contained HTML report of the run",
          reads=(), optional_reads=tuple(d for d in D.MEDREASON if d.kind == "dataset" and d.owner != "report"),
          writes=(D.REPORT_STATUS, D.REPORT_HTML), config=("run.name",), run=run_report),
]

STAGES = PIPELINE  # the name older code and docs use


def get_stage(name: str) -> Stage:
    for stage in PIPELINE:
        if stage.name == name:
            return stage
    raise KeyError(f"unknown stage {name!r}; stages: {', '.join(s.name for s in PIPELINE)}")


def describe_graph(stages: list[Stage] | None = None) -> str:
    """The dataset graph as text: for every stage, what it reads and what it writes (this
    pipeline's stages unless ``stages`` is given, e.g. the literature-mining pipeline's)."""
    lines = []
    for stage in PIPELINE if stages is None else stages:
        lines.append(f"{stage.name}: {stage.summary}")
        # A report reads whatever earlier stages wrote; listing all of it says less than this.
        summary = stage.name.endswith("report")
        reads = [r.name for r in stage.reads] + ([] if summary else [f"{r.name} (if present)"
                                                                     for r in stage.optional_reads])
        if summary:
            reads.append("every dataset above, when present")
        lines.append("  reads:  " + (", ".join(reads) or "config-named sources"))
        lines.append("  writes: " + ", ".join(w.name + (f" [{w.kind}]" if w.kind != "dataset" else "")
                                             for w in stage.writes))
    return "\n".join(lines)
