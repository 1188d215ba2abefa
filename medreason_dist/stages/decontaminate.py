"""Stage `decontaminate`: drop training rows that overlap any evaluation item.

Two tests, both on normalised text (NFKC, lower-case, punctuation replaced by spaces,
whitespace collapsed) of the configured fields (default: question + options):

* **exact** — the normalised texts are identical (a string join, no hashing, so no collisions);
* **n-gram** — the rows share at least ``min_shared`` distinct word ``n``-grams (default 13, the
  GPT-3 / MedReason-style contamination test); optionally also at least ``min_fraction`` of the
  evaluation item's distinct n-grams. Texts shorter than ``n`` words are covered by the exact test.

How it stays off the quadratic path
-----------------------------------
Text is tokenised with Arrow compute kernels. Every distinct token is hashed once (blake2b, so the
hash is stable across processes and machines); an n-gram hash is a fixed random-weighted sum of its
token hashes followed by a 64-bit mixer, computed for all n-grams of a batch at once with NumPy.
The evaluation side becomes an :class:`EvalIndex` — sorted unique n-gram hashes plus the exact keys,
a few MB even for tens of thousands of benchmark items. A training batch is checked with
``np.isin`` against it (sort-based, O((N+M) log)), and only the hits are joined
(``pyarrow.Table.join``) back to the evaluation rows they came from. Cost is linear in training
size; the evaluation index is built once.

Scaling out: the index is plain NumPy/Arrow and pickles, so it is broadcast to workers and
:func:`find_matches` runs per partition — ``ray.data.Dataset.map_batches`` (see
:func:`decontaminate_ray_batches`) or Spark ``mapInArrow`` — because each training row is judged
independently of all other training rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

TextField = Literal["question", "options", "answer_text", "reference_reasoning"]

# Match kinds, recorded per rejected row.
EXACT = "exact"
NGRAM = "ngram"
REJECT_REASON = "eval_contamination"

_BITMAP_BITS = 22  # 4 MiB pre-filter in front of the binary search
# Punctuation and symbols become spaces: "beta-blocker" and "beta blocker" normalise alike.
_PUNCT = r"[^\p{L}\p{N}\s]+"


class DecontamConfig(BaseModel):
    """Settings of the decontamination stage."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(13, ge=1, le=64, description="Word n-gram length.")
    min_shared: int = Field(1, ge=1, description="Contaminated when at least this many distinct n-grams are shared.")
    min_fraction: float | None = Field(
        None, gt=0, le=1,
        description="If set, also require this fraction of the evaluation item's distinct n-grams to be shared.",
    )
    boilerplate_df: int | None = Field(
        3, ge=2,
        description="n-grams found in at least this many distinct evaluation texts are exam template "
                    "('which of the following is the most likely cause of this patient's ...') and are "
                    "ignored; None keeps every n-gram.",
    )
    train_fields: list[TextField] = Field(default_factory=lambda: ["question", "options"])
    eval_fields: list[TextField] = Field(default_factory=lambda: ["question", "options"])
    exact: bool = Field(True, description="Also run the normalised exact-match test.")
    batch_rows: int = Field(20_000, ge=1, description="Training rows hashed per batch (bounds memory).")
    verify: bool = Field(True, description="Re-check the clean output; raise if any overlap remains.")


class ContaminationRemainsError(RuntimeError):
    """The verification pass still found overlap in the clean output (a bug, never expected)."""


# --------------------------------------------------------------------------------------------
# Text


def _column_text(table: pa.Table, field: str) -> pa.Array:
    """One string per row for ``field``; maps and lists are joined with spaces, nulls become ''."""
    if field not in table.column_names:
        raise KeyError(f"decontamination field {field!r} is not a column (have {table.column_names})")
    col = table.column(field).combine_chunks()
    if pa.types.is_map(col.type):
        # The normalised schema stores options in letter order, so value order is stable.
        values = pa.ListArray.from_arrays(col.offsets, col.items, mask=col.is_null())
        col = pc.binary_join(values, " ")
    elif pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        col = pc.binary_join(pc.cast(col, pa.list_(pa.string())), " ")
    elif not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
        col = pc.cast(col, pa.string())
    return pc.fill_null(col, "")


def normalized_tokens(text: pa.Array) -> pa.ListArray:
    """NFKC, lower-case, punctuation to spaces, split on whitespace (Arrow kernels, vectorised)."""
    text = pc.fill_null(text, "")
    if isinstance(text, pa.ChunkedArray):
        text = text.combine_chunks()
    # NFKC is the slowest kernel here and a no-op on ASCII: run it only on the other rows.
    non_ascii = pc.invert(pc.string_is_ascii(text))
    if pc.any(non_ascii).as_py():
        text = pc.replace_with_mask(text, non_ascii, pc.utf8_normalize(text.filter(non_ascii), "NFKC"))
    text = pc.utf8_lower(text)
    text = pc.utf8_trim_whitespace(pc.replace_substring_regex(text, _PUNCT, " "))
    lists = pc.utf8_split_whitespace(text)
    if isinstance(lists, pa.ChunkedArray):
        lists = lists.combine_chunks()
    # Splitting "" yields [""]: drop empty tokens so empty text has no tokens at all.
    flat = pc.list_flatten(lists)
    keep = pc.not_equal(flat, "").to_numpy(zero_copy_only=False)
    if keep.all():
        return lists
    parents = pc.list_parent_indices(lists).to_numpy()
    counts = np.bincount(parents[keep], minlength=len(lists))
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), flat.filter(pa.array(keep)))


def normalize_text(text: str) -> str:
    """The normalised form of one string (for tests and ad-hoc checks)."""
    tokens = normalized_tokens(pa.array([text], pa.string()))
    return " ".join(tokens[0].as_py())


@dataclass
class _Tokenized:
    exact_key: pa.Array  # normalised full text per row ('' when there is no text)
    seg_row: np.ndarray  # row of each segment (one segment per row and field)
    seg_tokens: pa.ListArray  # tokens of each segment


def _tokenize(table: pa.Table, fields: list[str]) -> _Tokenized:
    per_field = [normalized_tokens(_column_text(table, f)) for f in fields]
    joined = [pc.binary_join(t, " ") for t in per_field]
    if len(joined) == 1:
        exact = joined[0]
    else:
        exact = pc.binary_join_element_wise(*joined, " ")
        exact = pc.utf8_trim_whitespace(pc.replace_substring_regex(exact, " {2,}", " "))
    # Segments do not run into each other: an n-gram never spans question and options.
    seg_tokens = pa.concat_arrays(per_field) if per_field else pa.array([], pa.list_(pa.string()))
    seg_row = np.tile(np.arange(table.num_rows, dtype=np.int64), len(fields))
    return _Tokenized(exact, seg_row, seg_tokens)


# --------------------------------------------------------------------------------------------
# Hashing


def _token_hashes(tokens: pa.Array) -> np.ndarray:
    """Stable 64-bit hash per token; each distinct token is hashed once."""
    if len(tokens) == 0:
        return np.zeros(0, dtype=np.uint64)
    encoded = pc.dictionary_encode(tokens).combine_chunks() if isinstance(tokens, pa.ChunkedArray) else pc.dictionary_encode(tokens)
    vocab = encoded.dictionary.to_pylist()
    vocab_hash = np.fromiter(
        (int.from_bytes(hashlib.blake2b(w.encode(), digest_size=8).digest(), "little") for w in vocab),
        dtype=np.uint64, count=len(vocab),
    )
    return vocab_hash[encoded.indices.to_numpy(zero_copy_only=False)]


def _weights(n: int) -> np.ndarray:
    """Fixed odd 64-bit weights per n-gram position (derived from n, identical everywhere)."""
    out = []
    for k in range(n):
        digest = hashlib.blake2b(f"medreason_dist.ngram/{n}/{k}".encode(), digest_size=8).digest()
        out.append(int.from_bytes(digest, "little") | 1)
    return np.array(out, dtype=np.uint64)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the weighted sum over all 64 bits."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def _window_hashes(tok: np.ndarray, starts: int, n: int) -> np.ndarray:
    weights = _weights(n)
    with np.errstate(over="ignore"):
        acc = np.zeros(starts, dtype=np.uint64)
        for k in range(n):  # n vector operations over all windows, not a loop over rows
            acc += tok[k : k + starts] * weights[k]
        return _mix64(acc).view(np.int64)


_NUMBER_TOKEN = r"^\p{N}+$"
_NUMBER_HASH = np.uint64(int.from_bytes(hashlib.blake2b(b"<number>", digest_size=8).digest(), "little"))


def _gram_arrays(seg_tokens: pa.ListArray, seg_row: np.ndarray, n: int, masked: bool = False
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(row, hash, hash with numbers masked or None) for every n-gram window inside a segment."""
    if isinstance(seg_tokens, pa.ChunkedArray):
        seg_tokens = seg_tokens.combine_chunks()
    lengths = pc.list_value_length(seg_tokens).to_numpy(zero_copy_only=False)
    lengths = np.nan_to_num(lengths.astype(np.float64), nan=0).astype(np.int64)
    flat = pc.list_flatten(seg_tokens)
    tok = _token_hashes(flat)
    total = len(tok)
    empty = np.zeros(0, np.int64)
    if total < n:
        return empty, empty, (empty if masked else None)
    starts = total - n + 1
    hashes = _window_hashes(tok, starts, n)
    masked_hashes = None
    if masked:
        is_number = pc.match_substring_regex(flat, _NUMBER_TOKEN).to_numpy(zero_copy_only=False)
        masked_hashes = _window_hashes(np.where(is_number, _NUMBER_HASH, tok), starts, n)
    # Keep only windows that lie inside one segment.
    seg_of_token = np.repeat(np.arange(len(lengths)), lengths)
    valid = seg_of_token[:starts] == seg_of_token[n - 1 :]
    rows = seg_row[seg_of_token[:starts][valid]].astype(np.int64)
    return rows, hashes[valid], (masked_hashes[valid] if masked else None)


def ngram_hashes(seg_tokens: pa.ListArray, seg_row: np.ndarray, n: int,
                 distinct: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """All word n-grams of all segments: (row index, int64 hash); ``distinct`` dedupes per row."""
    rows, hashes, _ = _gram_arrays(seg_tokens, seg_row, n)
    if distinct and len(rows):
        return _distinct_pairs(rows, hashes)
    return rows, hashes


def _distinct_pairs(rows: np.ndarray, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    order = np.lexsort((hashes, rows))
    rows, hashes = rows[order], hashes[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (hashes[1:] != hashes[:-1])
    return rows[first], hashes[first]


# --------------------------------------------------------------------------------------------
# The evaluation index


@dataclass
class EvalIndex:
    """Everything needed to test training rows against the evaluation sets; picklable."""

    n: int
    fields: list[str]
    ids: np.ndarray  # eval id per eval row (object array of str)
    sources: np.ndarray  # benchmark per eval row
    ngram_count: np.ndarray  # distinct n-grams per eval row
    gram_hash: np.ndarray  # int64, one entry per distinct (eval row, n-gram)
    gram_row: np.ndarray  # eval row of each entry
    unique_hashes: np.ndarray  # sorted distinct hashes (membership test)
    exact_table: pa.Table  # (key, eval_row) for rows with non-empty text
    boilerplate: int = 0  # distinct n-grams dropped as template text
    boilerplate_df: int | None = None
    _bitmap: np.ndarray | None = field(default=None, repr=False)

    @classmethod
    def build(cls, evals: pa.Table, n: int = 13, fields: Iterable[str] = ("question", "options"),
              boilerplate_df: int | None = 3) -> "EvalIndex":
        fields = list(fields)
        tok = _tokenize(evals, fields)
        rows, hashes, masked = _gram_arrays(tok.seg_tokens, tok.seg_row, n, masked=boilerplate_df is not None)
        dropped = 0
        if boilerplate_df is not None and len(hashes):
            # Exam template text ("which of the following is the most likely cause of this
            # patient s", vital-sign sentences) recurs across unrelated questions. Its document
            # frequency is counted with numbers masked (vitals differ only in their values) and
            # over distinct segment texts (a question repeated in MedBullets op4 and op5 counts once).
            seg_text = pc.binary_join(tok.seg_tokens, " ")
            seg_key = pc.dictionary_encode(seg_text).indices.to_numpy(zero_copy_only=False).astype(np.int64)
            seg_rows_of_gram, _, _ = _gram_arrays(tok.seg_tokens, seg_key, n)
            key_rows, key_masked = _distinct_pairs(seg_rows_of_gram, masked)
            uniq, df = np.unique(key_masked, return_counts=True)
            template = uniq[df >= boilerplate_df]
            is_template = np.isin(masked, template)
            dropped = int(len(np.unique(hashes[is_template])))
            rows, hashes = rows[~is_template], hashes[~is_template]
        if len(rows):
            rows, hashes = _distinct_pairs(rows, hashes)
        counts = np.bincount(rows, minlength=evals.num_rows) if len(rows) else np.zeros(evals.num_rows, np.int64)
        exact = pa.table({"key": tok.exact_key, "eval_row": pa.array(np.arange(evals.num_rows), pa.int64())})
        exact = exact.filter(pc.not_equal(exact["key"], ""))
        sources = evals.column("source").to_numpy(zero_copy_only=False) if "source" in evals.column_names \
            else np.array(["eval"] * evals.num_rows, dtype=object)
        return cls(
            n=n, fields=fields,
            ids=np.asarray(evals.column("id").to_pylist(), dtype=object),
            sources=np.asarray(sources, dtype=object),
            ngram_count=counts, gram_hash=hashes, gram_row=rows,
            unique_hashes=np.unique(hashes), exact_table=exact,
            boilerplate=dropped, boilerplate_df=boilerplate_df,
        )

    @property
    def rows(self) -> int:
        return len(self.ids)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        """Membership of each hash in the index, vectorised.

        A bitmap on the low bits rejects almost every non-member with one gather; only the
        survivors are binary-searched in the sorted hashes.
        """
        if self._bitmap is None:
            self._bitmap = np.zeros(1 << _BITMAP_BITS, dtype=bool)
            self._bitmap[self.unique_hashes & ((1 << _BITMAP_BITS) - 1)] = True
        out = self._bitmap[hashes & ((1 << _BITMAP_BITS) - 1)]
        cand = np.flatnonzero(out)
        if len(cand) and len(self.unique_hashes):
            pos = np.searchsorted(self.unique_hashes, hashes[cand])
            pos[pos == len(self.unique_hashes)] = 0
            out[cand] = self.unique_hashes[pos] == hashes[cand]
        return out


MATCH_SCHEMA = pa.schema([
    pa.field("train_row", pa.int64()),
    pa.field("eval_row", pa.int64()),
    pa.field("kind", pa.string()),
    pa.field("shared", pa.int64()),  # distinct shared n-grams (0 for exact-only matches)
])


def find_matches(train: pa.Table, index: EvalIndex, cfg: DecontamConfig | None = None,
                 row_offset: int = 0) -> pa.Table:
    """Every (training row, evaluation row) pair that counts as contaminated, with its kind.

    ``train_row`` is the position in ``train`` plus ``row_offset``.
    """
    cfg = cfg or DecontamConfig(n=index.n)
    if cfg.n != index.n:
        raise ValueError(f"index was built for n={index.n}, config asks n={cfg.n}")
    parts: list[pa.Table] = []
    tok = _tokenize(train, list(cfg.train_fields))

    if cfg.exact and index.exact_table.num_rows:
        keys = pa.table({"key": tok.exact_key, "train_row": pa.array(np.arange(train.num_rows), pa.int64())})
        keys = keys.filter(pc.not_equal(keys["key"], ""))
        joined = keys.join(index.exact_table, "key", join_type="inner")
        if joined.num_rows:
            parts.append(pa.table({
                "train_row": pc.add(joined["train_row"], row_offset),
                "eval_row": joined["eval_row"],
                "kind": pa.array([EXACT] * joined.num_rows, pa.string()),
                "shared": pa.array(np.zeros(joined.num_rows, np.int64)),
            }, schema=MATCH_SCHEMA))

    # Training n-grams are not deduplicated up front (the big side); only the hits are.
    rows, hashes = ngram_hashes(tok.seg_tokens, tok.seg_row, cfg.n, distinct=False)
    if len(hashes) and len(index.unique_hashes):
        hit = index.contains(hashes)
        if hit.any():
            hit_rows, hit_hashes = _distinct_pairs(rows[hit], hashes[hit])
            t_hits = pa.table({"h": hit_hashes, "train_row": hit_rows})
            e_grams = pa.table({"h": index.gram_hash, "eval_row": index.gram_row})
            pairs = t_hits.join(e_grams, "h", join_type="inner")
            shared = pairs.group_by(["train_row", "eval_row"]).aggregate([("h", "count")])
            shared_n = shared["h_count"].to_numpy()
            keep = shared_n >= cfg.min_shared
            if cfg.min_fraction is not None:
                eval_rows = shared["eval_row"].to_numpy()
                denom = np.maximum(index.ngram_count[eval_rows], 1)
                keep &= shared_n / denom >= cfg.min_fraction
            if keep.any():
                shared = shared.filter(pa.array(keep))
                parts.append(pa.table({
                    "train_row": pc.add(shared["train_row"], row_offset),
                    "eval_row": shared["eval_row"],
                    "kind": pa.array([NGRAM] * shared.num_rows, pa.string()),
                    "shared": pc.cast(shared["h_count"], pa.int64()),
                }, schema=MATCH_SCHEMA))
    if not parts:
        return MATCH_SCHEMA.empty_table()
    return pa.concat_tables(parts).combine_chunks()


# --------------------------------------------------------------------------------------------
# The stage function

REJECT_EXTRA_FIELDS = [
    pa.field("reason", pa.string()),
    pa.field("match_kind", pa.string()),  # exact | ngram | exact+ngram
    pa.field("eval_ids", pa.list_(pa.string())),
    pa.field("eval_sources", pa.list_(pa.string())),
    pa.field("max_shared_ngrams", pa.int64()),
]


def _overlap_by_source(matches: pa.Table, index: EvalIndex) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"train_rows": 0, "eval_items": 0, "pairs": 0})
    if matches.num_rows == 0:
        return {}
    t_rows = matches["train_row"].to_numpy()
    e_rows = matches["eval_row"].to_numpy()
    src = index.sources[e_rows]
    for s in np.unique(src):
        m = src == s
        out[str(s)] = {"train_rows": int(len(np.unique(t_rows[m]))),
                       "eval_items": int(len(np.unique(e_rows[m]))),
                       "pairs": int(len(np.unique(np.stack([t_rows[m], e_rows[m]]), axis=1)[0]))}
    return dict(out)


def _all_matches(train: pa.Table, index: EvalIndex, cfg: DecontamConfig) -> pa.Table:
    parts = [find_matches(train.slice(start, cfg.batch_rows), index, cfg, row_offset=start)
             for start in range(0, train.num_rows, cfg.batch_rows)]
    parts = [p for p in parts if p.num_rows]
    return pa.concat_tables(parts).combine_chunks() if parts else MATCH_SCHEMA.empty_table()


def _rejects_table(train: pa.Table, matches: pa.Table, index: EvalIndex) -> tuple[pa.Table, np.ndarray]:
    """One reject row per contaminated training row: the original columns + why."""
    t_rows = matches["train_row"].to_numpy()
    e_rows = matches["eval_row"].to_numpy()
    kinds = matches["kind"].to_numpy(zero_copy_only=False)
    shared = matches["shared"].to_numpy()
    order = np.lexsort((e_rows, t_rows))
    per_row: dict[int, dict[str, Any]] = {}
    for i in order:  # loops over matches only (a few per contaminated row), not over all pairs
        r = int(t_rows[i])
        info = per_row.setdefault(r, {"kinds": set(), "evals": {}, "shared": 0})
        info["kinds"].add(str(kinds[i]))
        info["evals"].setdefault(int(e_rows[i]), None)
        info["shared"] = max(info["shared"], int(shared[i]))
    bad_rows = np.array(sorted(per_row), dtype=np.int64)
    base = train.take(pa.array(bad_rows, pa.int64())) if len(bad_rows) else train.schema.empty_table()
    kind_order = [EXACT, NGRAM]
    extra = {
        "reason": [REJECT_REASON] * len(bad_rows),
        "match_kind": ["+".join(k for k in kind_order if k in per_row[r]["kinds"]) for r in bad_rows],
        "eval_ids": [list(dict.fromkeys(str(index.ids[e]) for e in per_row[r]["evals"])) for r in bad_rows],
        "eval_sources": [sorted({str(index.sources[e]) for e in per_row[r]["evals"]}) for r in bad_rows],
        "max_shared_ngrams": [per_row[r]["shared"] for r in bad_rows],
    }
    for f in REJECT_EXTRA_FIELDS:
        name = f.name if f.name not in base.column_names else f"decontam_{f.name}"
        base = base.append_column(pa.field(name, f.type), pa.array(extra[f.name], f.type))
    return base, bad_rows


def decontaminate(
    train: pa.Table, evals: pa.Table, n: int = 13, min_shared: int = 1, *,
    config: DecontamConfig | None = None, index: EvalIndex | None = None,
) -> tuple[pa.Table, pa.Table, dict]:
    """Split ``train`` into (clean, rejects) against ``evals``; also return a report dict.

    ``config`` overrides ``n``/``min_shared`` when given. The report's ``per_eval_source`` holds
    overlap counts before and after; ``after`` is recomputed on the clean output (verification
    pass) and must be all zeros.
    """
    cfg = config or DecontamConfig(n=n, min_shared=min_shared)
    t0 = time.perf_counter()
    index = index or EvalIndex.build(evals, n=cfg.n, fields=cfg.eval_fields, boilerplate_df=cfg.boilerplate_df)
    t_index = time.perf_counter() - t0
    matches = _all_matches(train, index, cfg)
    rejects, bad_rows = _rejects_table(train, matches, index)
    keep = np.ones(train.num_rows, dtype=bool)
    keep[bad_rows] = False
    clean = train.filter(pa.array(keep))
    t_match = time.perf_counter() - t0 - t_index

    before = _overlap_by_source(matches, index)
    after_matches = _all_matches(clean, index, cfg) if cfg.verify else None
    after = _overlap_by_source(after_matches, index) if after_matches is not None else None
    per_source: dict[str, dict[str, Any]] = {}
    eval_counts = Counter(str(s) for s in index.sources)
    for src in sorted(eval_counts):
        b = before.get(src, {"train_rows": 0, "eval_items": 0, "pairs": 0})
        per_source[src] = {
            "eval_rows": eval_counts[src],
            "train_rows_overlapping_before": b["train_rows"],
            "eval_items_hit_before": b["eval_items"],
            "train_rows_overlapping_after": None if after is None else after.get(src, {}).get("train_rows", 0),
        }
    kinds = Counter(rejects["match_kind"].to_pylist()) if rejects.num_rows else Counter()
    seconds = time.perf_counter() - t0
    report = {
        "n": cfg.n, "min_shared": cfg.min_shared, "min_fraction": cfg.min_fraction,
        "train_fields": list(cfg.train_fields), "eval_fields": list(cfg.eval_fields),
        "boilerplate_df": index.boilerplate_df, "boilerplate_ngrams_ignored": index.boilerplate,
        "train_rows": train.num_rows, "eval_rows": index.rows,
        "clean_rows": clean.num_rows, "rejected_rows": rejects.num_rows,
        "rejects_by_kind": dict(kinds),
        "per_eval_source": per_source,
        "verified": after is not None,
        "overlap_after_total": None if after is None else sum(v["train_rows"] for v in after.values()),
        "seconds": {"index": round(t_index, 3), "match": round(t_match, 3), "total": round(seconds, 3)},
        "train_rows_per_s": round(train.num_rows / t_match, 1) if t_match > 0 else None,
    }
    if after is not None and report["overlap_after_total"]:
        raise ContaminationRemainsError(f"verification found overlap after decontamination: {after}")
    log.info("decontaminate: %d -> %d rows (%d rejected: %s)", train.num_rows, clean.num_rows,
             rejects.num_rows, dict(kinds))
    return clean, rejects, report


def decontaminate_ray_batches(index: EvalIndex, cfg: DecontamConfig | None = None):
    """A ``map_batches`` function (batch_format="pyarrow") that keeps only clean rows.

    Use it as ``ds.map_batches(decontaminate_ray_batches(index, cfg), batch_format="pyarrow")``:
    the index (a few MB of NumPy arrays) is pickled with the function to every worker, and a row
    is kept only if :func:`find_matches` finds nothing for it. The same per-partition call works
    under Spark ``mapInArrow`` (convert each RecordBatch to a Table). For the rejects side, map
    :func:`find_matches` over the same batches and keep the matched rows.
    """
    cfg = cfg or DecontamConfig(n=index.n)

    def clean_batch(batch: pa.Table) -> pa.Table:
        matches = find_matches(batch, index, cfg)
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[np.unique(matches["train_row"].to_numpy())] = False
        return batch.filter(pa.array(keep))

    return clean_batch


# --------------------------------------------------------------------------------------------
# Dataset wiring (used by the pipeline / CLI)


def _split_batch(batch: pa.Table, index: EvalIndex, cfg: DecontamConfig, part: str) -> pa.Table:
    """One side of a batch's split, on a worker (the clean side re-verifies itself)."""
    clean, rejects, _ = decontaminate(batch, None, config=cfg, index=index)
    return clean if part == "clean" else rejects


def _batch_stats(batch: pa.Table, index: EvalIndex, cfg: DecontamConfig) -> pa.Table:
    """What the report needs from a batch, as one small row: overlapping rows per source, eval
    items hit (row numbers in the index) and reject kinds."""
    matches = _all_matches(batch, index, cfg)
    rejects, _ = _rejects_table(batch, matches, index)
    by_source: dict[str, dict] = {}
    if matches.num_rows:
        t_rows, e_rows = matches["train_row"].to_numpy(), matches["eval_row"].to_numpy()
        src = index.sources[e_rows]
        for s_ in np.unique(src):
            m = src == s_
            by_source[str(s_)] = {"train_rows": int(len(np.unique(t_rows[m]))),
                                  "eval_rows": sorted({int(e) for e in e_rows[m]})}
    kinds = Counter(rejects["match_kind"].to_pylist()) if rejects.num_rows else Counter()
    return pa.table({"stats": [json.dumps({"rows": batch.num_rows, "by_source": by_source, "kinds": dict(kinds)})]})


def _report(stats: list[dict], index: EvalIndex, cfg: DecontamConfig, clean_rows: int, seconds: float) -> dict:
    train_rows = sum(s["rows"] for s in stats)
    overlap: dict[str, int] = Counter()
    hit: dict[str, set] = defaultdict(set)
    kinds: Counter = Counter()
    for s in stats:
        kinds.update(s["kinds"])
        for src, v in s["by_source"].items():
            overlap[src] += v["train_rows"]
            hit[src].update(v["eval_rows"])
    eval_counts = Counter(str(s) for s in index.sources)
    per_source = {src: {"eval_rows": eval_counts[src], "train_rows_overlapping_before": overlap.get(src, 0),
                        "eval_items_hit_before": len(hit.get(src, ())),
                        "train_rows_overlapping_after": 0 if cfg.verify else None}
                  for src in sorted(eval_counts)}
    return {
        "n": cfg.n, "min_shared": cfg.min_shared, "min_fraction": cfg.min_fraction,
        "train_fields": list(cfg.train_fields), "eval_fields": list(cfg.eval_fields),
        "boilerplate_df": index.boilerplate_df, "boilerplate_ngrams_ignored": index.boilerplate,
        "train_rows": train_rows, "eval_rows": index.rows, "clean_rows": clean_rows,
        "rejected_rows": train_rows - clean_rows, "rejects_by_kind": dict(kinds), "per_eval_source": per_source,
        # each worker re-checks its clean rows and fails the stage if any overlap remains
        "verified": cfg.verify, "overlap_after_total": 0 if cfg.verify else None,
        "seconds": {"total": round(seconds, 3)},
        "train_rows_per_s": round(train_rows / seconds, 1) if seconds > 0 else None,
    }


def run_decontaminate(train_uri: str, evals_uri: str, clean_uri: str, rejects_uri: str, *,
                      config: DecontamConfig | None = None, config_hash: str = "",
                      options=None, num_cpus: float = 0.25) -> tuple[Any, dict]:
    """Decontaminate a committed training dataset against the evaluation sets; returns
    (manifest of the clean dataset, report).

    The evaluation index (a few MB of arrays, built here from the small evaluation sets) goes to
    the workers with the batch functions; the training rows are read, split and written by
    workers — one pass for the clean rows, one for the rejects, one for the report's counts.
    """
    from functools import partial

    from medreason_dist import raydata, storage

    cfg = config or DecontamConfig()
    t0 = time.perf_counter()
    index = EvalIndex.build(storage.read_table(evals_uri, options=options), n=cfg.n, fields=cfg.eval_fields,
                            boilerplate_df=cfg.boilerplate_df)
    train = storage.describe(train_uri, options)
    fs, path = storage.filesystem(train.files[0], options)  # even an empty dataset keeps one file
    empty = pq.read_schema(path, filesystem=fs).empty_table()
    clean_schema = _split_batch(empty, index, cfg, "clean").schema
    rejects_schema = _split_batch(empty, index, cfg, "rejects").schema
    stats = []
    if train.rows:
        batches = raydata.read(train_uri, options).map_batches(
            partial(_batch_stats, index=index, cfg=cfg), batch_format="pyarrow", batch_size=cfg.batch_rows,
            num_cpus=num_cpus)
        stats = [json.loads(r["stats"]) for r in batches.take_all()]  # one small row per batch
    rejected = sum(sum(s["kinds"].values()) for s in stats)
    reject_counts = {REJECT_REASON: rejected} if rejected else {}
    for part, uri, schema in (("rejects", rejects_uri, rejects_schema), ("clean", clean_uri, clean_schema)):
        manifest = raydata.transform(train_uri, uri, partial(_split_batch, index=index, cfg=cfg, part=part),
                                     stage="decontaminate" + (".rejects" if part == "rejects" else ""),
                                     schema=schema, options=options, num_cpus=num_cpus, config_hash=config_hash,
                                     rejects=reject_counts)
    report = _report(stats, index, cfg, manifest.rows, time.perf_counter() - t0)
    log.info("decontaminate: %d -> %d rows (%d rejected: %s)", report["train_rows"], manifest.rows, rejected,
             report["rejects_by_kind"])
    for uri in (rejects_uri, clean_uri):
        manifest = storage.annotate_manifest(uri, {"decontamination": report}, options)
    return manifest, report
