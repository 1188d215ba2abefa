"""PrimeKG ``kg.csv`` -> ``nodes`` / ``edges`` / ``quarantine`` tables (pure, no storage I/O).

Everything is vectorised (pyarrow.compute / numpy) per record batch; the only Python done per
*row* is on exceptional paths (a batch holding invalid UTF-8, the callback pyarrow makes for a
line with the wrong number of fields).

Validation rules, applied in this order; a line fails with the first rule it breaks:

``wrong_column_count``  the line does not split into the 12 kg.csv fields.
``blank_line``          every field is empty.
``invalid_utf8``        a field is not valid UTF-8.
``invalid_index``       x_index / y_index is not a canonical non-negative decimal integer
                        (``"12.0"``, ``"-1"``, ``"007"``, ``""``, ``"abc"`` all fail).
``unknown_type``        x_type / y_type is not one of PrimeKG's ten node types.
``missing_name``        the name is empty, whitespace or a null token (``NA``, ``N/A``,
                        ``#N/A``, ``null``, ``None``, ``<NA>``).
``non_text_name``       the name is entirely a number literal: ``1.0``, ``42``, ``-3e5``,
                        ``nan``, ``inf``. That is what a float column written back as text
                        produces (the damage truncated PrimeKG downloads show). Names that merely
                        contain digits, such as ``1,2-dichloroethane``, ``11-deoxycortisol`` or
                        ``COVID-19``, are ordinary names and pass.
``missing_source_id``   x_source / x_id (or y_*) is empty.
``missing_relation``    relation or display_relation is empty.

After the whole file has been read, nodes are settled, then lines are checked against them:

``dangling_index``      an endpoint given by index only (type, name, source and id all empty:
                        the shape of an edge-list row) whose index no valid line defines.
                        When some line does define it, the reference resolves to that node.
``conflicting_node_definition``  the index is defined elsewhere differently (type, source, id
                        or name). The definition carried by most lines wins; a tie goes to the
                        definition met first in the file. Lines with a losing one are rejected.
``duplicate_node_identity``  another index (the lowest) already owns the same
                        (type, source, source id); node identity must be unique.

Edges: each accepted line is an edge in one direction; the edge is stored once, oriented
``src = min(x, y)``, ``dst = max(x, y)``, deduplicated on ``(src, dst, relation)``. When copies
of one edge carry different display_relations (PrimeKG's ``drug_protein`` has target / enzyme /
carrier / transporter) they are joined, sorted, with ``"; "`` and counted in the statistics.
Self loops are kept (and counted). Only lines that pass every line-level rule define nodes; a
node whose lines were all rejected later, for a node-level reason of the other endpoint, stays
as a node without edges (counted as ``isolated_nodes``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from medreason_dist.kg.schema import (
    EDGES_SCHEMA,
    KG_COLUMNS,
    NODE_TYPES,
    NODES_SCHEMA,
    QUARANTINE_SCHEMA,
    normalize_names,
)

log = logging.getLogger(__name__)

# Reason codes; 0 means accepted. The order is the precedence of the line-level rules.
REASONS: tuple[str, ...] = (
    "",
    "wrong_column_count",
    "blank_line",
    "invalid_utf8",
    "invalid_index",
    "unknown_type",
    "missing_name",
    "non_text_name",
    "missing_source_id",
    "missing_relation",
    "dangling_index",
    "conflicting_node_definition",
    "duplicate_node_identity",
)
_CODE = {name: i for i, name in enumerate(REASONS)}

NULL_NAME_TOKENS = ("na", "n/a", "#n/a", "null", "none", "<na>")
_NUMBER_LITERAL = r"^[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[+-]?[0-9]+)?|nan|inf|infinity)$"
_CANONICAL_INDEX = r"^(?:0|[1-9][0-9]{0,17})$"  # 18 digits always fit in int64
_KEY_SEP = "\x1f"  # joins a node definition's fields into one hashable string key
_DEFAULT_BLOCK_SIZE = 16 << 20

BytesOpener = Callable[[], Any]  # returns a fresh readable binary stream (pyarrow NativeFile or file object)


class KGFormatError(ValueError):
    """The input is not a kg.csv at all (wrong header); row-level damage never raises."""


@dataclass
class TransformResult:
    nodes: pa.Table
    edges: pa.Table
    quarantine: pa.Table
    rejects: dict[str, int]
    stats: dict[str, Any] = field(default_factory=dict)


class _Registry:
    """Assigns stable integer codes to strings across batches (first seen -> lowest code)."""

    def __init__(self) -> None:
        self._chunks: list[pa.Array] = []
        self._values: pa.Array | None = pa.array([], pa.string())

    def values(self) -> pa.Array:
        if self._values is None:
            self._values = pa.concat_arrays(self._chunks)
        return self._values

    def __len__(self) -> int:
        return len(self.values())

    def encode(self, strings: pa.Array) -> np.ndarray:
        # One hash pass over the batch (dictionary_encode); the registry is consulted only for
        # the batch's distinct values, which are far fewer than its rows.
        encoded = pc.dictionary_encode(strings)
        distinct = encoded.dictionary
        if len(self):
            known = pc.index_in(distinct, value_set=self.values()).to_numpy(zero_copy_only=False)
            fresh = np.isnan(known) if known.dtype.kind == "f" else np.zeros(len(distinct), bool)
        else:
            known = np.zeros(len(distinct))
            fresh = np.ones(len(distinct), bool)
        codes = np.where(fresh, 0, np.nan_to_num(known)).astype(np.int64)
        if fresh.any():
            base = len(self)
            codes[fresh] = base + np.arange(int(fresh.sum()))
            self._chunks = [self.values(), distinct.filter(pa.array(fresh))]
            self._values = None
        return codes[encoded.indices.to_numpy(zero_copy_only=False)].astype(np.int32)


_DEF_FIELDS = ("type", "source", "source_id", "name")
_DENSE_INDEX_LIMIT = 1 << 26  # indexes below this get the O(1) fast path (64 Mi entries max)


class _DefinitionTable:
    """Distinct node definitions (index, type, source, source_id, name), coded in first-seen order.

    Hashing a composite string key for every endpoint of every line dominated ingest time, so
    lookups go through a fast path: each index remembers the code of its first definition, and
    an endpoint whose four fields equal that definition's (checked column-wise, vectorised)
    takes its code. Only endpoints of an index seen for the first time, or ones that disagree
    with its first definition (a conflict), pay for the string-key registry.
    """

    def __init__(self) -> None:
        self.keys = _Registry()
        self.index = np.zeros(0, dtype=np.int64)  # code -> node index
        self._fields: dict[str, list[pa.Array]] = {f: [] for f in _DEF_FIELDS}
        self._fields_cat: dict[str, pa.Array] | None = None
        self._first = np.zeros(0, dtype=np.int32)  # index -> code of its first definition, -1 none

    def __len__(self) -> int:
        return len(self.index)

    def fields(self) -> dict[str, pa.Array]:
        if self._fields_cat is None:
            self._fields_cat = {f: (pa.concat_arrays(v) if v else pa.array([], pa.string()))
                                for f, v in self._fields.items()}
            self._fields = {f: [a] for f, a in self._fields_cat.items()}
        return self._fields_cat

    def encode(self, idx: np.ndarray, idx_text: pa.Array, cols: dict[str, pa.Array]) -> np.ndarray:
        n = len(idx)
        codes = np.full(n, -1, dtype=np.int32)
        dense = idx < _DENSE_INDEX_LIMIT
        if dense.any():
            top = int(idx[dense].max()) + 1
            if top > len(self._first):
                grown = np.full(max(top, 2 * len(self._first)), -1, dtype=np.int32)
                grown[: len(self._first)] = self._first
                self._first = grown
            cand = np.full(n, -1, dtype=np.int32)
            cand[dense] = self._first[idx[dense]]
            known = np.flatnonzero(cand >= 0)
            if len(known):
                everything = len(known) == n  # the usual case: skip gathering the batch side
                sel, ref = pa.array(known), pa.array(cand[known])
                same = np.ones(len(known), dtype=bool)
                stored = self.fields()
                for f in _DEF_FIELDS:
                    mine = cols[f] if everything else cols[f].take(sel)
                    same &= _np(pc.equal(mine, stored[f].take(ref)))
                codes[known[same]] = cand[known[same]]
        slow = np.flatnonzero(codes < 0)
        if len(slow):
            sel = pa.array(slow)
            keys = pc.binary_join_element_wise(idx_text.take(sel), *(cols[f].take(sel) for f in _DEF_FIELDS),
                                               _KEY_SEP)
            before = len(self)
            slow_codes = self.keys.encode(keys)
            codes[slow] = slow_codes
            fresh = slow_codes >= before
            if fresh.any():
                new_codes, first_pos = np.unique(slow_codes[fresh], return_index=True)
                rows = slow[np.flatnonzero(fresh)[first_pos]]
                rows_arr = pa.array(rows)
                for f in _DEF_FIELDS:
                    self._fields[f].append(cols[f].take(rows_arr))
                self._fields_cat = None
                self.index = np.concatenate([self.index, idx[rows]])
                # an index seen for the first time remembers this definition for the fast path
                new_idx = idx[rows]
                in_dense = new_idx < _DENSE_INDEX_LIMIT
                unset = np.zeros(len(rows), dtype=bool)
                unset[in_dense] = self._first[new_idx[in_dense]] < 0
                uniq_idx, first_of_idx = np.unique(new_idx[unset], return_index=True)
                self._first[uniq_idx] = new_codes[np.flatnonzero(unset)[first_of_idx]]
        return codes


@dataclass
class _Detail:
    """Human-readable detail per (rule, column)."""

    texts: list[str] = field(default_factory=lambda: [""])
    index: dict[str, int] = field(default_factory=dict)

    def code(self, text: str) -> int:
        if text not in self.index:
            self.index[text] = len(self.texts)
            self.texts.append(text)
        return self.index[text]


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)


def _decode_utf8(column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """binary -> string; invalid UTF-8 values become U+FFFD-replaced text and are flagged."""
    try:
        return column.cast(pa.string()), np.zeros(len(column), dtype=bool)
    except pa.ArrowInvalid:
        # Rare path (a damaged batch): decode value by value to find the culprits.
        values = column.to_pylist()
        bad = np.zeros(len(values), dtype=bool)
        out = []
        for i, raw in enumerate(values):
            try:
                out.append(raw.decode("utf-8"))
            except UnicodeDecodeError:
                bad[i] = True
                out.append(raw.decode("utf-8", errors="replace"))
        return pa.array(out, pa.string()), bad


class KGAccumulator:
    """Consumes kg.csv record batches (12 binary or string columns) and builds the result.

    ``ordinal`` numbers every data line the CSV reader returned (0-based); lines the reader
    skipped for a wrong field count are tracked separately and merged back at the end.
    """

    def __init__(self) -> None:
        self.rows_read = 0
        self.defs = _DefinitionTable()
        self.relations = _Registry()
        self.details = _Detail()
        # accepted-so-far line data, one numpy chunk per batch
        self._ok: dict[str, list[np.ndarray]] = {k: [] for k in ("ord", "x", "y", "xc", "yc", "rel", "disp")}
        self._bad_tables: list[pa.Table] = []
        self._bad_ordinals: list[np.ndarray] = []
        self.wrong_column_lines: list[str] = []
        self.wrong_column_numbers: list[int] | None = None

    # -- line-level rules ------------------------------------------------------------------
    def add_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        n = batch.num_rows
        if n == 0:
            return
        ordinals = np.arange(self.rows_read, self.rows_read + n, dtype=np.int64)
        self.rows_read += n
        cols: dict[str, pa.Array] = {}
        utf8_bad = np.zeros(n, dtype=bool)
        for name in KG_COLUMNS:
            col = batch.column(name)
            if isinstance(col, pa.ChunkedArray):
                col = col.combine_chunks()
            if pa.types.is_binary(col.type) or pa.types.is_large_binary(col.type):
                col, bad = _decode_utf8(col)
                utf8_bad |= bad
            elif not pa.types.is_string(col.type):
                col = col.cast(pa.string())
            cols[name] = col.fill_null("")
        reason, detail, x_bare, y_bare = self._line_rules(cols, n, utf8_bad)

        bad = reason > 0
        if bad.any():
            mask = pa.array(bad)
            table = pa.table({c: cols[c].filter(mask) for c in KG_COLUMNS})
            table = table.append_column("reason_code", pa.array(reason[bad], pa.int8()))
            table = table.append_column("detail_code", pa.array(detail[bad], pa.int32()))
            self._bad_tables.append(table)
            self._bad_ordinals.append(ordinals[bad])
        ok = ~bad
        if not ok.any():
            return
        okm = pa.array(ok)
        take = cols if ok.all() else {c: cols[c].filter(okm) for c in KG_COLUMNS}
        xb, yb = x_bare[ok], y_bare[ok]
        x_idx = pc.cast(take["x_index"], pa.int64()).to_numpy()
        y_idx = pc.cast(take["y_index"], pa.int64()).to_numpy()
        # Index-only endpoints define nothing: code -1, resolved against settled nodes at the end.
        m = len(x_idx)
        defined = np.flatnonzero(~np.concatenate([xb, yb]))
        codes = np.full(2 * m, -1, dtype=np.int32)
        if len(defined):
            def gather(a: pa.Array, b: pa.Array) -> pa.Array:
                both = pa.concat_arrays([a, b])
                return both if len(defined) == 2 * m else both.take(pa.array(defined))

            both = {f: gather(take[f"x_{c}"], take[f"y_{c}"])
                    for f, c in zip(_DEF_FIELDS, ("type", "source", "id", "name"))}
            idx_text = gather(take["x_index"], take["y_index"])
            codes[defined] = self.defs.encode(np.concatenate([x_idx, y_idx])[defined], idx_text, both)
        xc, yc = codes[:m], codes[m:]
        rel = self.relations.encode(take["relation"])
        disp = self.relations.encode(take["display_relation"])
        for key, arr in (("ord", ordinals[ok]), ("x", x_idx), ("y", y_idx), ("xc", xc), ("yc", yc),
                         ("rel", rel), ("disp", disp)):
            self._ok[key].append(arr)

    def _line_rules(self, cols: dict[str, pa.Array], n: int, utf8_bad: np.ndarray):
        reason = np.zeros(n, dtype=np.int8)
        detail = np.zeros(n, dtype=np.int32)
        trimmed = {c: pc.utf8_trim_whitespace(cols[c]) for c in KG_COLUMNS}
        empty = {c: _np(pc.equal(trimmed[c], "")) for c in KG_COLUMNS}

        def bare(side: str) -> np.ndarray:
            return (empty[f"{side}_type"] & empty[f"{side}_name"] & empty[f"{side}_source"]
                    & empty[f"{side}_id"])

        x_bare, y_bare = bare("x"), bare("y")
        checks: list[tuple[str, list[tuple[str, np.ndarray, str]]]] = []
        blank = np.logical_and.reduce([empty[c] for c in KG_COLUMNS])
        checks.append(("blank_line", [("", blank, "the line has no content")]))
        checks.append(("invalid_utf8", [("", utf8_bad, "a field is not valid UTF-8 (shown with U+FFFD)")]))
        per_side: dict[str, list[tuple[str, np.ndarray, str]]] = {
            k: [] for k in ("invalid_index", "unknown_type", "missing_name", "non_text_name", "missing_source_id")}
        type_set = pa.array(NODE_TYPES, pa.string())
        for side, is_bare in (("x", x_bare), ("y", y_bare)):
            idx_ok = _np(pc.match_substring_regex(cols[f"{side}_index"], _CANONICAL_INDEX))
            per_side["invalid_index"].append(
                (f"{side}_index", ~idx_ok, f"{side}_index is not a canonical non-negative integer"))
            defined = ~is_bare
            type_ok = _np(pc.is_in(cols[f"{side}_type"], value_set=type_set))
            per_side["unknown_type"].append(
                (f"{side}_type", defined & ~type_ok, f"{side}_type is not a PrimeKG node type"))
            name = trimmed[f"{side}_name"]
            null_token = _np(pc.is_in(pc.utf8_lower(name), value_set=pa.array(NULL_NAME_TOKENS)))
            per_side["missing_name"].append(
                (f"{side}_name", defined & (empty[f"{side}_name"] | null_token),
                 f"{side}_name is empty or a null token"))
            numeric = _np(pc.match_substring_regex(name, _NUMBER_LITERAL, ignore_case=True))
            per_side["non_text_name"].append(
                (f"{side}_name", defined & numeric, f"{side}_name is a number literal, not text"))
            per_side["missing_source_id"].append(
                (f"{side}_id", defined & (empty[f"{side}_id"] | empty[f"{side}_source"]),
                 f"{side}_source or {side}_id is empty"))
        for name, items in per_side.items():
            checks.append((name, items))
        checks.append(("missing_relation", [
            ("relation", empty["relation"] | empty["display_relation"], "relation or display_relation is empty")]))
        # Apply in reverse precedence so the first failing rule (and, within it, x before y) wins.
        for name, items in reversed(checks):
            for _, mask, text in reversed(items):
                if mask.any():
                    reason[mask] = _CODE[name]
                    detail[mask] = self.details.code(text)
        return reason, detail, x_bare, y_bare

    # -- node settlement and edges ----------------------------------------------------------
    def finish(self, line_of_ordinal: Callable[[np.ndarray], np.ndarray] | None = None) -> TransformResult:
        """Settle nodes, apply node-level rules, build the three tables.

        ``line_of_ordinal`` maps reader ordinals to physical line numbers (default: the file had
        no skipped lines, so line = ordinal + 2, the header being line 1).
        """
        to_line = line_of_ordinal or (lambda o: o + 2)
        ok = {k: (np.concatenate(v) if v else np.zeros(0, dtype=np.int64)) for k, v in self._ok.items()}
        n_defs = len(self.defs)
        def_fields = self.defs.fields()
        def_idx = self.defs.index
        used = np.concatenate([ok["xc"], ok["yc"]]).astype(np.int64) if len(ok["xc"]) else np.zeros(0, np.int64)
        counts = np.bincount(used[used >= 0], minlength=n_defs)

        # status per definition: 0 node, 1 lost the vote for its index, 2 duplicate identity
        status = np.ones(n_defs, dtype=np.int8)
        codes = np.arange(n_defs)
        order = np.lexsort((codes, -counts, def_idx))
        first = np.ones(n_defs, dtype=bool)
        if n_defs:
            first[1:] = def_idx[order][1:] != def_idx[order][:-1]
        winners = order[first]
        status[winners] = 0
        conflicting_indexes = int(np.unique(def_idx[status == 1]).size)
        if len(winners):
            ident = pc.binary_join_element_wise(
                def_fields["type"].take(pa.array(winners)), def_fields["source"].take(pa.array(winners)),
                def_fields["source_id"].take(pa.array(winners)), _KEY_SEP)
            ident_code = pc.dictionary_encode(ident).indices.to_numpy(zero_copy_only=False)
            o = np.lexsort((def_idx[winners], ident_code))
            keep = np.ones(len(winners), dtype=bool)
            keep[1:] = ident_code[o][1:] != ident_code[o][:-1]
            status[winners[o][~keep]] = 2
        # index -> winning definition, for index-only references
        win_sorted = winners[np.argsort(def_idx[winners])]
        win_idx = def_idx[win_sorted]

        def resolve(code: np.ndarray, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            """Final definition per endpoint (-1 = dangling) and whether it was index-only."""
            bare = code < 0
            out = code.astype(np.int64)
            if bare.any():
                pos = np.searchsorted(win_idx, idx[bare])
                pos_c = np.minimum(pos, max(len(win_idx) - 1, 0))
                found = (pos < len(win_idx)) & (win_idx[pos_c] == idx[bare]) if len(win_idx) else np.zeros(
                    int(bare.sum()), bool)
                out[bare] = np.where(found, win_sorted[pos_c] if len(win_idx) else -1, -1)
            return out, bare

        xdef, xbare = resolve(ok["xc"], ok["x"])
        ydef, ybare = resolve(ok["yc"], ok["y"])
        xstat = np.where(xdef >= 0, status[np.maximum(xdef, 0)] if n_defs else 0, -1)
        ystat = np.where(ydef >= 0, status[np.maximum(ydef, 0)] if n_defs else 0, -1)
        late = np.zeros(len(xdef), dtype=np.int8)
        late_detail = np.zeros(len(xdef), dtype=np.int32)
        rules = [
            ("duplicate_node_identity", 2, "another index already has this endpoint's (type, source, source_id)"),
            ("conflicting_node_definition", 1, "this endpoint's index is defined differently by more (or earlier) lines"),
            ("dangling_index", -1, "this endpoint is given by index only and no valid line defines the index"),
        ]
        for name, code_value, text in rules:  # reverse precedence: later assignments win
            for side, st in (("y", ystat), ("x", xstat)):
                mask = st == code_value
                if mask.any():
                    late[mask] = _CODE[name]
                    late_detail[mask] = self.details.code(f"{side}: {text}")
        accepted = late == 0

        edges, edge_stats = self._build_edges(ok, accepted)
        nodes = self._build_nodes(def_fields, def_idx, status)
        quarantine = self._build_quarantine(ok, late, late_detail, xbare, ybare, def_fields, to_line)

        rejects = {}
        if len(quarantine):
            vc = pc.value_counts(quarantine["reason"])
            rejects = {v["values"].as_py(): int(v["counts"].as_py()) for v in vc}
        rejects = dict(sorted(rejects.items()))
        referenced = np.union1d(edges["src"].to_numpy(), edges["dst"].to_numpy()) if len(edges) else np.zeros(0)
        stats = {
            "rows_read": int(self.rows_read + len(self.wrong_column_lines)),
            "rows_accepted": int(accepted.sum()),
            "rows_quarantined": int(len(quarantine)),
            "nodes": int(len(nodes)),
            "edges": int(len(edges)),
            "isolated_nodes": int(len(nodes) - np.isin(nodes["node_id"].to_numpy(), referenced).sum()),
            "conflicting_indexes": conflicting_indexes,
            "index_only_references": int((xbare & (xdef >= 0) & accepted).sum() + (ybare & (ydef >= 0) & accepted).sum()),
            **edge_stats,
            "node_types": _counts(nodes["type"]),
            "relations": _counts(edges["relation"]),
        }
        return TransformResult(nodes=nodes, edges=edges, quarantine=quarantine, rejects=rejects, stats=stats)

    def _build_edges(self, ok: dict[str, np.ndarray], accepted: np.ndarray) -> tuple[pa.Table, dict]:
        x, y = ok["x"][accepted], ok["y"][accepted]
        rel, disp = ok["rel"][accepted].astype(np.int64), ok["disp"][accepted].astype(np.int64)
        src, dst = np.minimum(x, y), np.maximum(x, y)
        forward = x <= y
        backward = x >= y  # a self loop counts as both
        rel_values = self.relations.values()
        # rank codes alphabetically so merged display strings come out sorted and deterministic
        alpha_rank = np.empty(len(rel_values), dtype=np.int64)
        if len(rel_values):
            alpha_rank[pc.sort_indices(rel_values).to_numpy()] = np.arange(len(rel_values))
        disp_rank = alpha_rank[disp] if len(disp) else disp
        n_rel = max(len(rel_values), 1)
        if len(src) and dst.max() < 2**24 and n_rel * n_rel < 2**15:
            # Fast path (PrimeKG-sized graphs): one uint64 per line, src | dst | relation pair |
            # direction, sorted in place; much cheaper than a 4-key lexsort plus gathers.
            key = ((src.astype(np.uint64) << np.uint64(40)) | (dst.astype(np.uint64) << np.uint64(16))
                   | ((rel * n_rel + disp_rank).astype(np.uint64) << np.uint64(1)) | forward.astype(np.uint64))
            key.sort()
            src = (key >> np.uint64(40)).astype(np.int64)
            dst = ((key >> np.uint64(16)) & np.uint64(0xFFFFFF)).astype(np.int64)
            pair = ((key >> np.uint64(1)) & np.uint64(0x7FFF)).astype(np.int64)
            rel, disp_rank = pair // n_rel, pair % n_rel
            forward = (key & np.uint64(1)).astype(bool)
            backward = ~forward | (src == dst)
            del key, pair
        else:
            order = np.lexsort((disp_rank, rel, dst, src))
            src, dst, rel, disp_rank = src[order], dst[order], rel[order], disp_rank[order]
            forward, backward = forward[order], backward[order]
        n = len(src)
        if n == 0:
            return EDGES_SCHEMA.empty_table(), {"self_loops": 0, "edges_single_direction": 0,
                                                "merged_display_relations": 0, "duplicate_rows": 0}
        new_edge = np.ones(n, dtype=bool)
        new_edge[1:] = (src[1:] != src[:-1]) | (dst[1:] != dst[:-1]) | (rel[1:] != rel[:-1])
        new_disp = new_edge.copy()
        new_disp[1:] |= disp_rank[1:] != disp_rank[:-1]
        edge_start = np.flatnonzero(new_edge)
        seen_fwd = np.logical_or.reduceat(forward, edge_start)
        seen_bwd = np.logical_or.reduceat(backward, edge_start)
        # display strings: distinct display codes of each edge, joined
        disp_pos = np.flatnonzero(new_disp)
        edge_of_disp = np.cumsum(new_edge)[disp_pos] - 1
        n_disp_per_edge = np.bincount(edge_of_disp, minlength=len(edge_start))
        sorted_names = rel_values.take(pa.array(np.argsort(alpha_rank)))
        disp_strings = sorted_names.take(pa.array(disp_rank[disp_pos]))
        offsets = np.concatenate([[0], np.cumsum(n_disp_per_edge)]).astype(np.int32)
        display = pc.binary_join(pa.ListArray.from_arrays(pa.array(offsets), disp_strings), "; ")
        edges = pa.table(
            {
                "src": pa.array(src[edge_start], pa.int64()),
                "dst": pa.array(dst[edge_start], pa.int64()),
                "relation": rel_values.take(pa.array(rel[edge_start])),
                "display_relation": display,
            },
            schema=EDGES_SCHEMA,
        )
        self_loop = src[edge_start] == dst[edge_start]
        # PrimeKG stores an edge as 2 lines (one per direction) per display_relation; more is duplication
        rows_per_disp = np.diff(np.append(disp_pos, n))
        stats = {
            "self_loops": int(self_loop.sum()),
            "edges_single_direction": int((~(seen_fwd & seen_bwd)).sum()),
            "merged_display_relations": int((n_disp_per_edge > 1).sum()),
            "duplicate_rows": int(np.maximum(rows_per_disp - 2, 0)[~self_loop[edge_of_disp]].sum()),
        }
        return edges, stats

    def _build_nodes(self, def_fields: dict[str, pa.Array], def_idx: np.ndarray, status: np.ndarray) -> pa.Table:
        keep = np.flatnonzero(status == 0)
        keep = keep[np.argsort(def_idx[keep], kind="stable")]
        sel = pa.array(keep, pa.int64())
        names = def_fields["name"].take(sel) if len(keep) else pa.array([], pa.string())
        return pa.table(
            {
                "node_id": pa.array(def_idx[keep], pa.int64()),
                "name": names,
                "name_norm": normalize_names(names),
                "type": def_fields["type"].take(sel) if len(keep) else pa.array([], pa.string()),
                "source": def_fields["source"].take(sel) if len(keep) else pa.array([], pa.string()),
                "source_id": def_fields["source_id"].take(sel) if len(keep) else pa.array([], pa.string()),
            },
            schema=NODES_SCHEMA,
        )

    def _build_quarantine(self, ok, late, late_detail, xbare, ybare, def_fields, to_line) -> pa.Table:
        reasons = pa.array(REASONS, pa.string())
        pieces: list[pa.Table] = []

        def finish_piece(values: dict[str, pa.Array], ordinals: np.ndarray, rcode: np.ndarray,
                         dcode: np.ndarray, raw_line: pa.Array | None = None, lines: np.ndarray | None = None):
            n = len(rcode)
            line_numbers = to_line(ordinals) if lines is None else lines
            cols = {
                "line_number": pa.array(line_numbers, pa.int64()),
                "reason": reasons.take(pa.array(rcode.astype(np.int64))),
                "detail": pa.array(self.details.texts, pa.string()).take(pa.array(dcode.astype(np.int64))),
                **{c: values.get(c, pa.nulls(n, pa.string())) for c in KG_COLUMNS},
                "raw_line": raw_line if raw_line is not None else pa.nulls(n, pa.string()),
            }
            pieces.append(pa.table(cols, schema=QUARANTINE_SCHEMA))

        if self.wrong_column_lines:
            n = len(self.wrong_column_lines)
            lines = (np.asarray(self.wrong_column_numbers, dtype=object)
                     if self.wrong_column_numbers is not None else np.full(n, None, dtype=object))
            finish_piece({}, np.zeros(n, np.int64), np.full(n, _CODE["wrong_column_count"]),
                         np.full(n, self.details.code("the line does not have the 12 kg.csv fields")),
                         raw_line=pa.array(self.wrong_column_lines, pa.string()), lines=lines)
        for table, ordinals in zip(self._bad_tables, self._bad_ordinals):
            finish_piece({c: table[c].combine_chunks() for c in KG_COLUMNS}, ordinals,
                         table["reason_code"].to_numpy(), table["detail_code"].to_numpy())
        late_rows = np.flatnonzero(late > 0)
        if len(late_rows):
            # Rebuild the raw fields from the stored codes: for lines that passed the line-level
            # rules these strings are exactly the original field text.
            rel_values = self.relations.values()
            values = {
                "relation": rel_values.take(pa.array(ok["rel"][late_rows].astype(np.int64))),
                "display_relation": rel_values.take(pa.array(ok["disp"][late_rows].astype(np.int64))),
            }
            for side, code_key, idx_key, bare in (("x", "xc", "x", xbare), ("y", "yc", "y", ybare)):
                codes = ok[code_key][late_rows].astype(np.int64)
                is_bare = codes < 0
                values[f"{side}_index"] = pa.array(ok[idx_key][late_rows].astype(str), pa.string())
                for fname, col in (("type", "type"), ("name", "name"), ("source", "source"), ("source_id", "id")):
                    taken = def_fields[fname].take(pa.array(np.maximum(codes, 0))) if len(def_fields[fname]) else \
                        pa.array([""] * len(codes), pa.string())
                    values[f"{side}_{col}"] = pc.if_else(pa.array(is_bare), "", taken)
            finish_piece(values, ok["ord"][late_rows], late[late_rows], late_detail[late_rows])
        if not pieces:
            return QUARANTINE_SCHEMA.empty_table()
        out = pa.concat_tables(pieces)
        return out.sort_by([("line_number", "ascending")]) if len(out) else out


def _counts(column: pa.ChunkedArray | pa.Array) -> dict[str, int]:
    if len(column) == 0:
        return {}
    vc = pc.value_counts(column)
    return dict(sorted(((v["values"].as_py(), int(v["counts"].as_py())) for v in vc), key=lambda kv: -kv[1]))


# ----------------------------------------------------------------------------------------------
# CSV reading


def _read_options(block_size: int) -> tuple[pacsv.ReadOptions, pacsv.ConvertOptions]:
    read = pacsv.ReadOptions(block_size=block_size, use_threads=True)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.binary() for c in KG_COLUMNS},
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
        null_values=[],
    )
    return read, convert


def _locate_lines(opener: BytesOpener, texts: list[str], chunk_size: int = 16 << 20) -> list[tuple[int, str]]:
    """Physical line numbers (1-based) of the lines whose text is one of ``texts``.

    pyarrow reports a line with the wrong number of fields without its position, so the
    position is recovered with one more vectorised pass: split the file into lines and look
    the reported texts up.
    """
    wanted = pa.array(sorted({t.rstrip("\r") for t in texts}), pa.string()).cast(pa.binary())
    found: list[tuple[int, str]] = []
    first_line = 1
    carry = b""
    stream = opener()
    try:
        while True:
            chunk = stream.read(chunk_size)
            data = carry + (chunk or b"")
            if chunk:
                cut = data.rfind(b"\n")
                if cut < 0:
                    carry = data
                    continue
                body, carry = data[: cut], data[cut + 1:]
            else:
                if not data:
                    break
                body, carry = data, b""
            lines = pc.split_pattern(pa.array([body], pa.large_binary()), b"\n").flatten()
            lines = pc.replace_substring_regex(lines.cast(pa.large_binary()), pattern="\r$", replacement="")
            hits = np.flatnonzero(_np(pc.is_in(lines.cast(pa.binary()), value_set=wanted)))
            for h in hits:  # one iteration per *bad* line only
                found.append((first_line + int(h), lines[int(h)].as_py().decode("utf-8", errors="replace")))
            first_line += len(lines)
            if not chunk:
                break
    finally:
        stream.close()
    return found


def transform_kg_csv(opener: BytesOpener, *, block_size: int = _DEFAULT_BLOCK_SIZE,
                     progress: Callable[[int], None] | None = None) -> TransformResult:
    """Read a kg.csv stream (``opener()`` returns a fresh binary stream) and build the tables."""
    acc = KGAccumulator()

    def on_invalid_row(row) -> str:  # pyarrow calls this once per line with a wrong field count
        acc.wrong_column_lines.append(row.text)
        return "skip"

    read, convert = _read_options(block_size)
    parse = pacsv.ParseOptions(invalid_row_handler=on_invalid_row, ignore_empty_lines=False)
    stream = opener()
    try:
        try:
            reader = pacsv.open_csv(stream, read_options=read, parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as err:
            raise KGFormatError(f"cannot parse kg.csv header: {err}") from err
        names = reader.schema.names
        if tuple(names) != KG_COLUMNS:
            missing = [c for c in KG_COLUMNS if c not in names]
            extra = [c for c in names if c not in KG_COLUMNS]
            raise KGFormatError(
                f"not a PrimeKG kg.csv: header {names!r}; expected {list(KG_COLUMNS)!r}"
                f" (missing {missing}, unexpected {extra})")
        for batch in reader:
            acc.add_batch(batch)
            if progress:
                progress(acc.rows_read)
    finally:
        stream.close()
    return acc.finish(_line_mapper(acc, opener))


def _line_mapper(acc: KGAccumulator, opener: BytesOpener) -> Callable[[np.ndarray], np.ndarray] | None:
    """Ordinal -> physical line, accounting for the lines the CSV reader skipped."""
    if not acc.wrong_column_lines:
        return None
    located = _locate_lines(opener, acc.wrong_column_lines)
    if len(located) != len(acc.wrong_column_lines):
        log.warning("could not place %d malformed lines (found %d candidates); line numbers left empty",
                    len(acc.wrong_column_lines), len(located))
        acc.wrong_column_numbers = None
        return lambda o: np.full(len(o), None, dtype=object)
    acc.wrong_column_numbers = [line for line, _ in located]
    acc.wrong_column_lines = [text for _, text in located]
    skipped = np.asarray(acc.wrong_column_numbers, dtype=np.int64) - 2  # as 0-based data-line positions
    valid_before = skipped - np.arange(len(skipped))  # readable lines preceding each skipped one

    def to_line(ordinals: np.ndarray) -> np.ndarray:
        return ordinals + np.searchsorted(valid_before, ordinals, side="right") + 2

    return to_line


def transform_kg_table(table: pa.Table | Iterable[pa.RecordBatch]) -> TransformResult:
    """Same rules for an in-memory kg.csv table (12 string or binary columns, no skipped lines)."""
    acc = KGAccumulator()
    batches = table.to_batches() if isinstance(table, pa.Table) else table
    for batch in batches:
        acc.add_batch(batch)
    return acc.finish()
