"""Stage `leads_curate`: a literature corpus -> LEADS instruction rows for six tasks (Spark).

Reads ``leads.curate.corpus``: a folder with ``reviews``, ``publications`` and ``registry``, each a
committed dataset, a folder of Parquet files or a ``<name>.parquet`` file, in the schemas of
:mod:`medreason_dist.literature.synthetic_corpus` (the synthetic generator writes exactly that;
real corpora are mapped to it). The Spark work is :func:`medreason_dist.spark.curate.curate`;
this module resolves inputs, gathers the evaluation reviews to decontaminate against, and
commits the four outputs with their counts in the manifests.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import pyarrow as pa

from medreason_dist import storage
from medreason_dist.config import REPO_DIR, Config, ConfigError, resolve_packaged
from medreason_dist.literature.instructions import norm_title

log = logging.getLogger(__name__)

TABLES = ("reviews", "publications", "registry")
SHARED_TRIALMIND = REPO_DIR.parent / "shared" / "data" / "leads" / "trialmind_slr"
STATS_SCHEMA = pa.schema([
    ("task", pa.string()), ("split", pa.string()), ("rows", pa.int64()),
    ("instruction_words_p50", pa.int64()), ("instruction_words_p95", pa.int64()), ("instruction_words_max", pa.int64()),
    ("response_words_p50", pa.int64()), ("response_words_p95", pa.int64()), ("response_words_max", pa.int64()),
    # tokens of the student's tokenizer, from a sample of leads.curate.token_sample_rows rows per task
    ("token_sample", pa.int64()), ("instruction_tokens_p50", pa.int64()), ("instruction_tokens_p95", pa.int64()),
    ("response_tokens_p50", pa.int64()), ("response_tokens_p95", pa.int64()),
    ("total_tokens_p50", pa.int64()), ("total_tokens_p95", pa.int64()), ("total_tokens_max", pa.int64()),
])


class MissingCorpusError(FileNotFoundError):
    exit_code = 3  # missing inputs


def corpus_location(ref: str) -> str:
    """The corpus folder as a storage URI (``packaged:`` and relative paths resolved)."""
    ref = resolve_packaged(ref)
    if "://" not in ref:
        ref = str(Path(ref).expanduser().resolve())
    return storage.check_uri(ref)


def table_uri(corpus: str, name: str, options) -> tuple[str, str]:
    """(kind, uri) of one input table: a committed dataset, a Parquet folder or a .parquet file."""
    folder = storage.join(corpus, name)
    if storage.exists(storage.join(folder, storage.MANIFEST_NAME), options):
        return "dataset", folder
    single = storage.join(corpus, f"{name}.parquet")
    if storage.exists(single, options):
        return "parquet", single
    if "://" in folder and folder.startswith("file://") and Path(storage.local_path(folder)).is_dir():
        return "parquet", folder
    raise MissingCorpusError(f"leads.curate.corpus: no {name} in {corpus} (expected {name}/ as a dataset or Parquet "
                             f"folder, or {name}.parquet)")


def read_corpus(spark, corpus: str, options) -> dict[str, Any]:
    from medreason_dist.spark.io import configure_object_store, read_dataset

    tables = {}
    for name in TABLES:
        kind, uri = table_uri(corpus, name, options)
        if kind == "dataset":
            tables[name] = read_dataset(spark, uri, options)
        else:
            configure_object_store(spark, options)
            tables[name] = spark.read.parquet(storage.spark_uri(uri))
    return tables


# -- evaluation reviews ------------------------------------------------------------------------


def _add(keys: dict[str, str], key: str, value: str | None, label: str) -> None:
    if value and str(value).strip():
        keys.setdefault(f"{key}:{str(value).strip().lower() if key == 'doi' else str(value).strip()}", label)


def _published_review_keys(folder: Path, keys: dict[str, str]) -> int:
    from medreason_dist.literature.protocol import load_review_folder

    reviews = load_review_folder(folder)
    for r in reviews:
        label = f"{folder.name}/{r.pmid}"
        _add(keys, "review_pmid", r.pmid, label)
        _add(keys, "pmid", r.pmid, label)
        _add(keys, "review_title", norm_title(r.title), label)
        _add(keys, "title", norm_title(r.title), label)
        for s in r.included:
            _add(keys, "pmid", s.pmid, label)
            _add(keys, "doi", s.doi, label)
            _add(keys, "nct", (s.nct_id or "").upper() or None, label)
            if s.title and len(norm_title(s.title)) >= 20:  # short titles ("Results") would match by chance
                _add(keys, "title", norm_title(s.title), label)
    return len(reviews)


def _configured_review_keys(cfg: Config, keys: dict[str, str]) -> int:
    from medreason_dist.stages.leads_inputs import load_inputs

    inputs = load_inputs(cfg.leads, seed=cfg.run.seed)
    for p in inputs.protocols:
        label = f"review {p['review_id']}"
        _add(keys, "review_title", norm_title(p["title"]), label)
        _add(keys, "title", norm_title(p["title"]), label)
    for rec in inputs.records:
        label = f"review {rec.get('review_id')}"
        _add(keys, "pmid", rec.get("pmid"), label)
        _add(keys, "doi", rec.get("doi"), label)
        for nct in rec.get("nct_ids") or []:
            _add(keys, "nct", nct.upper(), label)
        if len(norm_title(rec.get("title"))) >= 20:
            _add(keys, "title", norm_title(rec.get("title")), label)
    return len(inputs.protocols)


def evaluation_keys(cfg: Config) -> tuple[dict[str, str], list[dict]]:
    """Ids and normalised titles of every evaluation review and its studies -> which review, plus
    a note per source (what was used, or why an optional one was not)."""
    keys: dict[str, str] = {}
    used = []
    for i, entry in enumerate(cfg.leads.curate.decontaminate_against):
        if entry == "auto":
            used.append({"source": "leads.review" if not cfg.leads.reviews_dir else "leads.reviews_dir",
                         "reviews": _configured_review_keys(cfg, keys)})
            if SHARED_TRIALMIND.is_dir():
                used.append({"source": str(SHARED_TRIALMIND), "reviews": _published_review_keys(SHARED_TRIALMIND, keys)})
            else:
                used.append({"source": str(SHARED_TRIALMIND), "reviews": 0, "note": "absent: skipped"})
            continue
        folder = Path(resolve_packaged(entry)).expanduser()
        if not folder.is_dir():
            raise ConfigError(f"leads.curate.decontaminate_against[{i}]: {entry} is not a folder of reviews")
        used.append({"source": str(folder), "reviews": _published_review_keys(folder, keys)})
    return keys, used


# -- the stage body ----------------------------------------------------------------------------


def run_curation(cfg: Config, uris: dict[str, str], *, fingerprint: str, options) -> storage.Manifest:
    from medreason_dist.spark.curate import CurateParams, curate
    from medreason_dist.spark.io import write_dataset
    from medreason_dist.spark.session import spark_session

    settings = cfg.leads.curate
    corpus = corpus_location(settings.corpus)
    eval_keys, eval_sources = evaluation_keys(cfg)
    started = time.monotonic()
    spark = spark_session(cfg.spark.master, app_name=f"{cfg.spark.app_name}-leads-curate",
                          conf={"spark.driver.memory": cfg.spark.driver_memory, **cfg.spark.conf})
    tables = read_corpus(spark, corpus, options)
    params = CurateParams(
        seed=cfg.run.seed, negatives_per_positive=settings.negatives_per_positive, test_fraction=settings.test_fraction,
        screen_max_chars=settings.screen_max_chars, extract_max_chars=settings.extract_max_chars,
        near_duplicate_threshold=settings.near_duplicate_threshold, minhash_hashes=settings.minhash_hashes,
        minhash_bands=settings.minhash_bands, shingle_words=settings.shingle_words, eval_keys=eval_keys,
        tokenizer_path=_tokenizer_path(cfg), token_sample_rows=settings.token_sample_rows)
    result = curate(spark, tables["reviews"], tables["publications"], tables["registry"], params)
    try:
        counts = dict(result.counts, seconds=round(time.monotonic() - started, 1), corpus=corpus,
                      decontaminated_against=eval_sources, eval_keys=len(eval_keys))
        write_dataset(result.quarantine, uris["quarantine"], stage="leads_curate.quarantine", config_hash=fingerprint,
                      rejects=counts["quarantine_by_reason"], options=options)
        write_dataset(result.removed, uris["removed"], stage="leads_curate.removed", config_hash=fingerprint,
                      rejects=counts["removed_by_reason"], options=options)
        storage.write_table(uris["stats"], stats_table(result.stats), stage="leads_curate.stats",
                            config_hash=fingerprint, options=options)
        manifest = write_dataset(result.rows.orderBy("task", "split", "row_id"), uris["instructions"],
                                 stage="leads_curate", config_hash=fingerprint,
                                 rejects={**counts["quarantine_by_reason"], **counts["removed_by_reason"]},
                                 extra={"counts": counts, "stats": result.stats}, options=options)
    finally:
        result.release()
    log.info("leads_curate: %d rows %s in %.0fs", counts["rows"], counts["rows_by_task"], counts["seconds"])
    return manifest


def _tokenizer_path(cfg: Config) -> str | None:
    """The student's tokenizer as a local folder (token statistics), or None when not configured."""
    ref = cfg.leads.curate.tokenizer
    if not ref:
        return None
    from medreason_dist.models import resolve_model

    return resolve_model(cfg.sft.model if ref == "student" else ref, cfg.models.cache_dir,
                         storage_options=cfg.storage)


def stats_table(stats: list[dict]) -> pa.Table:
    rows = []
    for s in stats:
        ip50, ip95 = s["instruction_words_p50_p95"]
        rp50, rp95 = s["response_words_p50_p95"]
        row = {"task": s["task"], "split": s["split"], "rows": s["rows"], "instruction_words_p50": ip50,
               "instruction_words_p95": ip95, "instruction_words_max": s["instruction_words_max"],
               "response_words_p50": rp50, "response_words_p95": rp95, "response_words_max": s["response_words_max"],
               "token_sample": s.get("token_sample"), "total_tokens_max": s.get("total_tokens_max")}
        for kind in ("instruction", "response", "total"):
            p50, p95 = s.get(f"{kind}_tokens_p50_p95") or (None, None)
            row[f"{kind}_tokens_p50"], row[f"{kind}_tokens_p95"] = p50, p95
        rows.append(row)
    return pa.Table.from_pylist(rows, schema=STATS_SCHEMA)
