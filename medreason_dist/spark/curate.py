"""LEADSInstruct-style curation on Spark: reviews + publications + registry -> instruction rows.

The engine layer of the ``leads_curate`` stage (``jobs/leads_curate.py`` under spark-submit):
everything here is DataFrame work on the executors; the driver only plans, and collects the
small things (per-task statistics, counts by reason, the evaluation reviews' ids).

Flow (``curate``):

1. Inputs are checked (missing columns name the table and column). Publications without any id
   or without title and abstract, duplicate PMIDs, reviews without id/title/PICO, included PMIDs,
   DOIs and NCT ids that name no record, publications naming an unknown NCT id: quarantine rows
   (table, key, reason), never dropped silently.
2. Joins: review -> included publications by PMID and, for studies known only by DOI, by DOI;
   publication -> the registry record it reports by NCT id.
3. Split by review (a seeded hash of the review id, ``test_fraction``); a study included by a
   test review is test-side, and any train row built on it is removed (``study_in_test_split``),
   so no review's studies sit in both splits. Extraction rows follow their study.
4. Rows for the six tasks (:mod:`medreason_dist.literature.instructions` formats them in
   ``mapInArrow``). Screening negatives are drawn per review from publications of its topic that
   it did not include (``negatives_per_positive``), by seeded index lookups into a per-topic
   numbering: equi-joins only, never a reviews x publications product.
5. Hygiene: rows touching an evaluation review (its PMID or title, an included study's PMID, DOI,
   NCT id or title) are removed; exact duplicates (same task, instruction and response) and near
   duplicates (MinHash over word shingles, LSH banding) are removed, keeping test rows first.
   Every removal is a row of ``removed`` (row id, task, reason, detail).

Near duplicates: Spark ML's ``MinHashLSH.approxSimilarityJoin`` compares every pair that shares a
bucket, which is quadratic for templated text where thousands of rows share one; here each band
bucket keeps its first row (test first, then row id) and every other member is compared with that
one only, by the share of equal MinHash values (an unbiased Jaccard estimate): linear in rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import pyarrow as pa
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from medreason_dist.literature import instructions as I

_S = pa.string()
ROW_SCHEMA = pa.schema([
    ("task", _S), ("rule", _S), ("split", _S), ("review_id", _S), ("instruction", _S), ("response", _S),
    ("source_ids", pa.list_(_S)), ("target_ids", pa.list_(_S)), ("match_keys", pa.list_(_S)),
    ("dedup_text", _S), ("dedup_scope", _S), ("error", _S), ("error_key", _S),
])
QUARANTINE_COLUMNS = ("source", "key", "reason", "detail")

REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "reviews": ("review_id", "pmid", "title", "topic", "pico", "pico_terms", "criteria", "included_pmids",
                "included_nct_ids", "included_dois"),
    "publications": ("pmid", "doi", "title", "abstract", "full_text", "topic", "nct_id"),
    "registry": ("nct_id", "protocol_section", "results_section", "has_results"),
}


class CurateInputError(ValueError):
    """An input table cannot be curated (names the table and what is wrong)."""


@dataclass
class CurateParams:
    seed: int = 0
    negatives_per_positive: float = 1.0
    test_fraction: float = 0.05
    screen_max_chars: int = 3000
    extract_max_chars: int = 6000
    near_duplicate_threshold: float = 0.8
    minhash_hashes: int = 16
    minhash_bands: int = 4
    shingle_words: int = 5
    eval_keys: dict[str, str] = field(default_factory=dict)  # "pmid:123" -> which evaluation review
    tokenizer_path: str | None = None  # token-length statistics on a sample, with this tokenizer
    token_sample_rows: int = 2000  # rows per task tokenized


@dataclass
class Curated:
    rows: DataFrame  # the instruction rows (persisted; call ``release``)
    quarantine: DataFrame
    removed: DataFrame
    stats: list[dict[str, Any]]  # per (task, split): rows, word-length quantiles
    counts: dict[str, Any]
    _persisted: list[DataFrame] = field(default_factory=list)

    def release(self) -> None:
        for df in self._persisted:
            df.unpersist()


def check_inputs(tables: dict[str, DataFrame]) -> None:
    for name, needed in REQUIRED_COLUMNS.items():
        have = set(tables[name].columns)
        missing = [c for c in needed if c not in have]
        if missing:
            raise CurateInputError(f"{name}: missing column(s) {', '.join(missing)} (has {', '.join(sorted(have))})")


def _q(df: DataFrame, source: str, key, reason: str, detail=None) -> DataFrame:
    return df.select(F.lit(source).alias("source"), key.cast("string").alias("key"), F.lit(reason).alias("reason"),
                     (detail if detail is not None else F.lit(None)).cast("string").alias("detail"))


# -- formatting in the Python workers ----------------------------------------------------------


def _emit(out: dict[str, list], **row: Any) -> None:
    for name in ROW_SCHEMA.names:
        out[name].append(row.get(name))


def _batches(iterator: Iterator[pa.RecordBatch], build) -> Iterator[pa.RecordBatch]:
    for batch in iterator:
        out: dict[str, list] = {name: [] for name in ROW_SCHEMA.names}
        for rec in batch.to_pylist():
            build(rec, out)
        yield pa.RecordBatch.from_pydict(out, schema=ROW_SCHEMA)


def _review_keys(rec: dict) -> list[str]:
    keys = [f"review:{rec['review_id']}", f"review_title:{I.norm_title(rec.get('title'))}"]
    if rec.get("review_pmid") or rec.get("pmid"):
        keys.append(f"review_pmid:{rec.get('review_pmid') or rec.get('pmid')}")
    return keys


def _study_keys(rec: dict) -> list[str]:
    keys = []
    for name, prefix in (("pub_pmid", "pmid"), ("pub_doi", "doi"), ("pub_nct_id", "nct")):
        if rec.get(name):
            keys.append(f"{prefix}:{rec[name]}")
    return keys


def _format_search(params: CurateParams):
    def build(rec: dict, out: dict[str, list]) -> None:
        sources = [f"review:{rec['review_id']}"] + ([f"review_pmid:{rec['pmid']}"] if rec.get("pmid") else [])
        try:
            instruction, response = I.search_example(rec)
        except ValueError as err:
            _emit(out, task="search", error=str(err), error_key=rec["review_id"])
            return
        _emit(out, task="search", rule=I.RULE_SEARCH, split=rec["split"], review_id=rec["review_id"],
              instruction=instruction, response=response, source_ids=sources, target_ids=rec.get("targets") or [],
              match_keys=_review_keys(rec), dedup_text=I.review_text(rec), dedup_scope="")

    return lambda it: _batches(it, build)


def _format_screening(params: CurateParams):
    def build(rec: dict, out: dict[str, list]) -> None:
        review = {"title": rec["title"], "pico": rec["pico"], "criteria": rec["criteria"]}
        pub = {"title": rec["pub_title"], "abstract": rec["pub_abstract"]}
        instruction, response = I.screening_example(review, pub, rec["included"], max_chars=params.screen_max_chars)
        sources = [f"review:{rec['review_id']}"] + _study_keys(rec)
        _emit(out, task="screening", rule=I.RULE_SCREEN_INCLUDED if rec["included"] else I.RULE_SCREEN_NEGATIVE,
              split=rec["split"], review_id=rec["review_id"], instruction=instruction, response=response,
              source_ids=sources, match_keys=_review_keys(rec) + _study_keys(rec)
              + [f"title:{I.norm_title(rec['pub_title'])}"],
              dedup_text=f"{rec['pub_title']}\n{rec['pub_abstract'] or ''}", dedup_scope=rec["review_id"])

    return lambda it: _batches(it, build)


def _format_extraction(params: CurateParams):
    def build(rec: dict, out: dict[str, list]) -> None:
        pub = {"title": rec["pub_title"], "abstract": rec["pub_abstract"], "full_text": rec["pub_full_text"]}
        try:
            examples = I.extraction_examples(pub, rec["protocol_section"], rec["results_section"], rec["has_results"],
                                             max_chars=params.extract_max_chars)
        except ValueError as err:
            _emit(out, task="extraction", error=str(err), error_key=rec["pub_nct_id"])
            return
        sources = _study_keys(rec)
        keys = sources + [f"title:{I.norm_title(rec['pub_title'])}"]
        for task, (instruction, response) in examples.items():
            _emit(out, task=task, rule=I.RULE_EXTRACTION[task], split=rec["split"], review_id=None,
                  instruction=instruction, response=response, source_ids=sources, match_keys=keys,
                  dedup_text=f"{rec['pub_title']}\n{rec['pub_abstract'] or ''}\n{rec['pub_full_text'] or ''}",
                  dedup_scope=task)

    return lambda it: _batches(it, build)


def _arrow_ddl() -> str:
    return ", ".join(f"{f.name} {'array<string>' if pa.types.is_list(f.type) else 'string'}" for f in ROW_SCHEMA)


# -- the job -----------------------------------------------------------------------------------


def curate(spark: SparkSession, reviews: DataFrame, publications: DataFrame, registry: DataFrame,
           params: CurateParams) -> Curated:
    check_inputs({"reviews": reviews, "publications": publications, "registry": registry})
    seed = F.lit(int(params.seed))
    quarantine: list[DataFrame] = []
    persisted: list[DataFrame] = []

    # 1. publications: one row per id; quarantine what cannot be used
    pubs = publications.select(
        F.nullif(F.trim("pmid"), F.lit("")).alias("pmid"), F.nullif(F.lower(F.trim("doi")), F.lit("")).alias("doi"),
        "title", "abstract", "full_text", "topic", F.nullif(F.upper(F.trim("nct_id")), F.lit("")).alias("nct_id"))
    no_id = pubs.pmid.isNull() & pubs.doi.isNull()
    no_text = F.coalesce(F.length(F.trim("title")), F.lit(0)) == 0
    quarantine.append(_q(pubs.filter(no_id), "publications", F.substring("title", 1, 80), "publication_without_id"))
    quarantine.append(_q(pubs.filter(~no_id & no_text), "publications", F.coalesce("pmid", "doi"),
                         "publication_without_title"))
    pubs = pubs.filter(~no_id & ~no_text).withColumn(
        "pub_key", F.coalesce(F.concat(F.lit("pmid:"), "pmid"), F.concat(F.lit("doi:"), "doi")))
    best = Window.partitionBy("pub_key").orderBy(F.col("full_text").isNull(), F.length("abstract").desc_nulls_last(),
                                                 "title")
    pubs = pubs.withColumn("_n", F.row_number().over(best))
    quarantine.append(_q(pubs.filter("_n > 1"), "publications", F.col("pub_key"), "duplicate_publication",
                         F.lit("a fuller record with the same id is kept")))
    pubs = pubs.filter("_n = 1").drop("_n").persist()
    persisted.append(pubs)

    # 2. reviews, inclusions by PMID and DOI, registry ids
    rev = reviews.select("review_id", F.nullif(F.trim("pmid"), F.lit("")).alias("pmid"), "title", "topic", "pico",
                         "pico_terms", "criteria", "included_pmids", "included_dois", "included_nct_ids")
    incomplete = F.col("review_id").isNull() | F.col("title").isNull() | F.col("pico").isNull() | F.col("topic").isNull()
    quarantine.append(_q(rev.filter(incomplete), "reviews", F.coalesce("review_id", "pmid"), "review_incomplete",
                         F.lit("needs review_id, title, topic and pico")))
    rev = rev.filter(~incomplete)
    dup_rev = Window.partitionBy("review_id").orderBy("pmid", "title")
    rev = rev.withColumn("_n", F.row_number().over(dup_rev))
    quarantine.append(_q(rev.filter("_n > 1"), "reviews", F.col("review_id"), "duplicate_review_id"))
    test_cut = int(round(params.test_fraction * 10_000))
    rev = rev.filter("_n = 1").drop("_n").withColumn(
        "split", F.when(F.pmod(F.xxhash64(seed, "review_id"), F.lit(10_000)) < test_cut, "test").otherwise("train"))
    rev = rev.persist()
    persisted.append(rev)

    by_pmid = pubs.filter(F.col("pmid").isNotNull()).select("pmid", "pub_key")
    by_doi = pubs.filter(F.col("doi").isNotNull()).select("doi", F.col("pub_key").alias("doi_key"))
    inc_p = rev.select("review_id", F.explode_outer("included_pmids").alias("pmid")).filter(F.col("pmid").isNotNull())
    inc_p = inc_p.join(by_pmid, "pmid", "left")
    quarantine.append(_q(inc_p.filter(F.col("pub_key").isNull()), "reviews", F.concat_ws(" ", "review_id", "pmid"),
                         "included_pmid_not_found"))
    inc_d = (rev.select("review_id", F.explode_outer("included_dois").alias("doi")).filter(F.col("doi").isNotNull())
             .withColumn("doi", F.lower(F.trim("doi"))))
    inc_d = inc_d.join(by_doi, "doi", "left")
    quarantine.append(_q(inc_d.filter(F.col("doi_key").isNull()), "reviews", F.concat_ws(" ", "review_id", "doi"),
                         "included_doi_not_found"))
    inclusions = (inc_p.filter(F.col("pub_key").isNotNull()).select("review_id", "pub_key")
                  .unionByName(inc_d.filter(F.col("doi_key").isNotNull()).select("review_id", F.col("doi_key").alias("pub_key")))
                  .distinct().persist())
    persisted.append(inclusions)
    reg_ids = registry.select(F.upper(F.trim("nct_id")).alias("nct_id")).distinct()
    inc_n = (rev.select("review_id", "split", F.explode_outer("included_nct_ids").alias("nct_id"))
             .filter(F.col("nct_id").isNotNull()).withColumn("nct_id", F.upper(F.trim("nct_id"))))
    quarantine.append(_q(inc_n.join(reg_ids, "nct_id", "left_anti"), "reviews", F.concat_ws(" ", "review_id", "nct_id"),
                         "included_nct_not_found"))

    # 3. test-side studies: everything a test review includes
    test_reviews = rev.filter(F.col("split") == "test").select("review_id")
    test_keys = (inclusions.join(test_reviews, "review_id").select(F.col("pub_key").alias("key"))
                 .unionByName(inc_n.filter(F.col("split") == "test").select(F.concat(F.lit("nct:"), "nct_id").alias("key")))
                 .distinct())

    # 4a. search: one row per review, targets = its included studies
    targets = inclusions.groupBy("review_id").agg(F.sort_array(F.collect_list("pub_key")).alias("targets"))
    search_in = rev.join(targets, "review_id", "left").select("review_id", "pmid", "title", "pico", "pico_terms", "split",
                                                             "targets")
    search = search_in.mapInArrow(_format_search(params), _arrow_ddl())

    # 4b. screening: positives and same-topic negatives
    review_cols = rev.select("review_id", F.col("pmid").alias("review_pmid"), "title", "pico", "criteria", "topic", "split")
    pub_cols = pubs.select("pub_key", F.col("pmid").alias("pub_pmid"), F.col("doi").alias("pub_doi"),
                           F.col("nct_id").alias("pub_nct_id"), F.col("title").alias("pub_title"),
                           F.col("abstract").alias("pub_abstract"), F.col("topic").alias("pub_topic"))
    positives = inclusions.withColumn("included", F.lit(True))
    n_pos = inclusions.groupBy("review_id").agg(F.count("*").alias("n_pos"))
    pool = pubs.select("topic", "pub_key").withColumn(
        "idx", F.row_number().over(Window.partitionBy("topic").orderBy(F.xxhash64(seed, "pub_key"))) - 1)
    sizes = pool.groupBy("topic").agg(F.count("*").alias("n_topic"))
    want = (rev.select("review_id", "topic").join(n_pos, "review_id")
            .withColumn("n_neg", F.ceil(F.col("n_pos") * F.lit(float(params.negatives_per_positive))).cast("int"))
            .filter("n_neg > 0").join(sizes, "topic"))
    draws = want.select("review_id", "topic", "n_neg", "n_topic", F.explode(F.sequence(
        F.lit(0), F.least(F.col("n_neg") * 3 + 5, F.col("n_topic")) - 1)).alias("j"))
    draws = draws.withColumn("idx", F.pmod(F.xxhash64(seed, "review_id", "j"), F.col("n_topic")))
    negatives = (draws.join(pool, ["topic", "idx"]).join(inclusions, ["review_id", "pub_key"], "left_anti")
                 .groupBy("review_id", "pub_key").agg(F.min("j").alias("j"), F.first("n_neg").alias("n_neg")))
    negatives = (negatives.withColumn("_r", F.row_number().over(Window.partitionBy("review_id").orderBy("j")))
                 .filter(F.col("_r") <= F.col("n_neg")).select("review_id", "pub_key", F.lit(False).alias("included")))
    screening_in = (positives.unionByName(negatives).join(review_cols, "review_id").join(pub_cols, "pub_key")
                    .select("review_id", "review_pmid", "title", "pico", "criteria", "split", "included", "pub_pmid",
                            "pub_doi", "pub_nct_id", "pub_title", "pub_abstract"))
    screening = screening_in.mapInArrow(_format_screening(params), _arrow_ddl())

    # 4c. extraction: publication -> the registry record it reports
    reported = pubs.filter(F.col("nct_id").isNotNull())
    reg = registry.select(F.upper(F.trim("nct_id")).alias("nct_id"), "protocol_section", "results_section",
                          "has_results").dropDuplicates(["nct_id"])
    quarantine.append(_q(reported.join(reg.select("nct_id"), "nct_id", "left_anti"), "publications",
                         F.concat_ws(" ", "pub_key", "nct_id"), "reported_nct_not_found"))
    test_set = test_keys.withColumn("_test", F.lit(True))
    extraction_in = (reported.join(reg, "nct_id")
                     .join(test_set.withColumnRenamed("key", "pub_key"), "pub_key", "left")
                     .join(test_set.select(F.col("key").alias("_nk"), F.col("_test").alias("_test_n")),
                           F.concat(F.lit("nct:"), F.col("nct_id")) == F.col("_nk"), "left")
                     .select(F.col("pmid").alias("pub_pmid"), F.col("doi").alias("pub_doi"),
                             F.col("nct_id").alias("pub_nct_id"), F.col("title").alias("pub_title"),
                             F.col("abstract").alias("pub_abstract"), F.col("full_text").alias("pub_full_text"),
                             "protocol_section", "results_section", "has_results",
                             F.when(F.coalesce("_test", "_test_n", F.lit(False)), "test").otherwise("train").alias("split")))
    extraction = extraction_in.mapInArrow(_format_extraction(params), _arrow_ddl())

    # 5. all rows; formatting failures to quarantine
    formatted = search.unionByName(screening).unionByName(extraction).localCheckpoint()
    quarantine.append(formatted.filter(F.col("error").isNotNull()).select(
        F.lit("formatting").alias("source"), F.concat_ws(" ", "task", "error_key").alias("key"),
        F.col("error").alias("reason"), F.lit(None).cast("string").alias("detail")))
    rows = formatted.filter(F.col("error").isNull()).drop("error", "error_key").withColumn(
        "row_id", F.substring(F.sha2(F.concat_ws("\x1f", "task", "rule", F.coalesce("review_id", F.lit("")),
                                                 F.array_join("source_ids", ",")), 256), 1, 16))

    removed: list[DataFrame] = []

    def drop(df: DataFrame, hits: DataFrame, reason: str) -> DataFrame:
        """Rows of ``df`` whose row_id is in ``hits`` (row_id, detail) become removal rows.

        Both results are checkpointed: each step joins the rows with something computed from
        them, so without cutting the lineage the plan doubles with every step (the optimizer
        alone ran out of heap after six)."""
        hits = hits.groupBy("row_id").agg(F.min("detail").alias("detail")).localCheckpoint()
        removed.append(df.join(hits, "row_id").select("row_id", "task", "split", F.lit(reason).alias("reason"),
                                                      F.col("detail").cast("string")).localCheckpoint())
        return df.join(hits.select("row_id"), "row_id", "left_anti").localCheckpoint()

    # 6. leakage: train rows on a test-side study
    leaks = (rows.filter(F.col("split") == "train").select("row_id", F.explode("source_ids").alias("key"))
             .join(test_keys, "key").select("row_id", F.col("key").alias("detail")))
    rows = drop(rows, leaks, "study_in_test_split")

    # 7. decontamination against the evaluation reviews
    if params.eval_keys:
        eval_df = spark.createDataFrame([(k, v) for k, v in sorted(params.eval_keys.items())], "key string, eval_review string")
        hits = (rows.select("row_id", F.explode("match_keys").alias("key")).join(F.broadcast(eval_df), "key")
                .select("row_id", "key", F.concat_ws(" ", "key", F.concat(F.lit("(eval "), "eval_review", F.lit(")"))).alias("detail")))
        review_hits = hits.filter(F.col("key").startswith("review_")).select("row_id", "detail")
        rows = drop(rows, review_hits, "eval_review_overlap")
        rows = drop(rows, hits.select("row_id", "detail"), "eval_study_overlap")

    # 8. exact duplicates, then near duplicates (test rows are kept first)
    order = [F.when(F.col("split") == "test", 0).otherwise(1), F.col("row_id")]
    rows = rows.withColumn("_h", F.sha2(F.concat_ws("\x1f", "task", "instruction", "response"), 256))
    first = Window.partitionBy("_h").orderBy(*order)
    ranked = rows.withColumn("_n", F.row_number().over(first)).withColumn("_first", F.first("row_id").over(first))
    rows = drop(rows.drop("_h"), ranked.filter("_n > 1").select("row_id", F.col("_first").alias("detail")),
                "exact_duplicate")
    rows = drop(rows, near_duplicates(rows, params), "near_duplicate")

    rows = rows.drop("match_keys", "dedup_text", "dedup_scope").withColumn(
        "instruction_words", F.size(F.split(F.trim("instruction"), r"\s+")).cast("int")).withColumn(
        "response_words", F.size(F.split(F.trim("response"), r"\s+")).cast("int"))
    rows = rows.select("row_id", "task", "split", "instruction", "response", "review_id", "source_ids", "target_ids",
                       "rule", "instruction_words", "response_words").localCheckpoint()

    quarantine_df = quarantine[0]
    for q in quarantine[1:]:
        quarantine_df = quarantine_df.unionByName(q)
    removed_df = removed[0]
    for r in removed[1:]:
        removed_df = removed_df.unionByName(r)
    quarantine_df = quarantine_df.localCheckpoint()
    removed_df = removed_df.localCheckpoint()

    stats = [r.asDict() for r in rows.groupBy("task", "split").agg(
        F.count("*").alias("rows"),
        F.percentile_approx("instruction_words", [0.5, 0.95], 1000).alias("instruction_words_p50_p95"),
        F.max("instruction_words").alias("instruction_words_max"),
        F.percentile_approx("response_words", [0.5, 0.95], 1000).alias("response_words_p50_p95"),
        F.max("response_words").alias("response_words_max")).orderBy("task", "split").collect()]
    if params.tokenizer_path:
        tokens = token_stats(rows, params)
        for st in stats:
            st.update(tokens.get((st["task"], st["split"]), {}))
    counts = {
        "rows_by_task": _pairs(rows.groupBy("task").count().collect()),
        "rows_by_split": _pairs(rows.groupBy("split").count().collect()),
        "quarantine_by_reason": _pairs(quarantine_df.groupBy("reason").count().collect()),
        "removed_by_reason": _pairs(removed_df.groupBy("reason").count().collect()),
        "inputs": {"reviews": reviews.count(), "publications": publications.count(), "registry": registry.count()},
    }
    counts["rows"] = sum(counts["rows_by_task"].values())
    return Curated(rows, quarantine_df, removed_df, stats, counts, persisted)


def _pairs(collected) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in sorted(collected, key=lambda r: str(r[0]))}


def _count_tokens(tokenizer_path: str):
    def run(iterator: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        from medreason_dist.train.data import load_tokenizer

        tok = load_tokenizer(tokenizer_path)  # once per Python worker
        for batch in iterator:
            cols = batch.to_pydict()
            n_in = [len(ids) for ids in tok(cols["instruction"], add_special_tokens=False)["input_ids"]]
            n_out = [len(ids) for ids in tok(cols["response"], add_special_tokens=False)["input_ids"]]
            yield pa.RecordBatch.from_pydict({"task": cols["task"], "split": cols["split"],
                                              "instruction_tokens": pa.array(n_in, pa.int32()),
                                              "response_tokens": pa.array(n_out, pa.int32())})
    return run


def token_stats(rows: DataFrame, params: CurateParams) -> dict[tuple[str, str], dict]:
    """Token-length quantiles per (task, split) from a seeded sample of ``token_sample_rows`` per task,
    tokenized on the workers (tokenizing every row would cost more than the rest of the job)."""
    pick = Window.partitionBy("task").orderBy(F.xxhash64(F.lit(params.seed), "row_id"))
    sample = (rows.select("row_id", "task", "split", "instruction", "response")
              .withColumn("_r", F.row_number().over(pick)).filter(F.col("_r") <= params.token_sample_rows)
              .drop("_r", "row_id"))
    counted = sample.mapInArrow(_count_tokens(params.tokenizer_path),
                                "task string, split string, instruction_tokens int, response_tokens int")
    total = F.col("instruction_tokens") + F.col("response_tokens")
    out = {}
    for r in counted.groupBy("task", "split").agg(
            F.count("*").alias("token_sample"),
            F.percentile_approx("instruction_tokens", [0.5, 0.95], 1000).alias("instruction_tokens_p50_p95"),
            F.percentile_approx("response_tokens", [0.5, 0.95], 1000).alias("response_tokens_p50_p95"),
            F.percentile_approx(total, [0.5, 0.95], 1000).alias("total_tokens_p50_p95"),
            F.max(total).alias("total_tokens_max")).collect():
        d = r.asDict()
        out[(d.pop("task"), d.pop("split"))] = d
    return out


def near_duplicates(rows: DataFrame, params: CurateParams) -> DataFrame:
    """(row_id, detail = the kept row's id) for rows whose MinHash Jaccard estimate with a band
    bucket's kept row reaches ``near_duplicate_threshold``.

    What is compared is the text a row was made from (``dedup_text``), within ``dedup_scope``:
    a review's title and PICO for search (two reviews asking the same question are one example);
    the publication for screening, within one review (the same study screened for two reviews is
    two examples, two near-identical reports in one review's candidates are one); the
    publication for extraction. Shingles are lower-case word n-grams; MinHash values are
    seeded xxhash64s computed in SQL (no Python in the loop)."""
    h, b = params.minhash_hashes, params.minhash_bands
    if h % b:
        raise ValueError(f"minhash_hashes ({h}) must be a multiple of minhash_bands ({b})")
    r = h // b
    n = params.shingle_words
    words = F.filter(F.split(F.lower("dedup_text"), r"[^a-z0-9]+"), lambda w: F.length(w) > 0)
    df = rows.select("row_id", "task", "dedup_scope", "split", words.alias("_w"))
    shingles = F.when(F.size("_w") <= n, F.array(F.array_join("_w", " "))).otherwise(
        F.transform(F.sequence(F.lit(1), F.size("_w") - n + 1), lambda i: F.array_join(F.slice("_w", i, n), " ")))
    df = df.select("row_id", "task", "dedup_scope", "split", F.array_distinct(shingles).alias("_s"))
    def hashed_with(salt: int):
        # one-argument lambda: F.transform passes the element index as a second argument when the
        # function takes two, which would silently replace the salt and make every MinHash equal
        return lambda s: F.xxhash64(F.lit(salt), s)

    sig = F.array(*[F.array_min(F.transform("_s", hashed_with(params.seed * 1_000_003 + k))) for k in range(h)])
    df = df.select("row_id", "task", "dedup_scope", "split", sig.alias("sig"))
    bands = F.array(*[F.struct(F.lit(i).alias("band"), F.xxhash64(*[F.col("sig")[i * r + j] for j in range(r)]).alias("key"))
                      for i in range(b)])
    exploded = df.select("row_id", "task", "dedup_scope", "split", "sig", F.explode(bands).alias("_b"))
    bucket = Window.partitionBy("task", "dedup_scope", "_b.band", "_b.key").orderBy(F.when(F.col("split") == "test", 0).otherwise(1),
                                                                     "row_id")
    exploded = exploded.withColumn("_rep", F.first("row_id").over(bucket)).withColumn("_rep_sig", F.first("sig").over(bucket))
    same = F.size(F.filter(F.zip_with("sig", "_rep_sig", lambda x, y: x == y), lambda e: e))
    close = exploded.filter((F.col("row_id") != F.col("_rep")) & (same >= math.ceil(params.near_duplicate_threshold * h)))
    return close.select("row_id", F.col("_rep").alias("detail"))
