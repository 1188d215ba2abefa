"""PrimeKG vocabulary and the Arrow schemas of the ingested KG datasets.

PrimeKG (Chandak, Huang & Zitnik, 2023) ships one wide table, ``kg.csv``: every row is a
directed copy of an undirected edge with both endpoint definitions inlined. Ingest turns it
into two datasets, ``nodes`` and ``edges`` (each undirected edge once), plus ``quarantine``.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

# The ten node types of PrimeKG, spelled exactly as in kg.csv's x_type / y_type columns.
NODE_TYPES: tuple[str, ...] = (
    "gene/protein",
    "drug",
    "disease",
    "effect/phenotype",
    "anatomy",
    "biological_process",
    "molecular_function",
    "cellular_component",
    "pathway",
    "exposure",
)

# Where PrimeKG takes each type's identifiers from (x_source / y_source). Informational: ingest
# does not enforce it, because other KGs in the same format use other sources.
TYPE_SOURCES: dict[str, tuple[str, ...]] = {
    "gene/protein": ("NCBI",),
    "drug": ("DrugBank",),
    "disease": ("MONDO", "MONDO_grouped"),
    "effect/phenotype": ("HPO",),
    "anatomy": ("UBERON",),
    "biological_process": ("GO",),
    "molecular_function": ("GO",),
    "cellular_component": ("GO",),
    "pathway": ("REACTOME",),
    "exposure": ("CTD",),
}

# PrimeKG relation -> display_relation values seen with it. Ingest accepts any non-empty
# relation; this table documents the vocabulary (the demo KG sticks to it).
RELATIONS: dict[str, tuple[str, ...]] = {
    "protein_protein": ("ppi",),
    "drug_protein": ("target", "enzyme", "carrier", "transporter"),
    "contraindication": ("contraindication",),
    "indication": ("indication",),
    "off-label use": ("off-label use",),
    "drug_drug": ("synergistic interaction",),
    "phenotype_protein": ("associated with",),
    "phenotype_phenotype": ("parent-child",),
    "disease_phenotype_negative": ("phenotype absent",),
    "disease_phenotype_positive": ("phenotype present",),
    "disease_protein": ("associated with",),
    "disease_disease": ("parent-child",),
    "drug_effect": ("side effect",),
    "bioprocess_bioprocess": ("parent-child",),
    "molfunc_molfunc": ("parent-child",),
    "cellcomp_cellcomp": ("parent-child",),
    "molfunc_protein": ("interacts with",),
    "cellcomp_protein": ("interacts with",),
    "bioprocess_protein": ("interacts with",),
    "exposure_protein": ("interacts with",),
    "exposure_disease": ("linked to",),
    "exposure_exposure": ("parent-child",),
    "exposure_bioprocess": ("interacts with",),
    "exposure_molfunc": ("interacts with",),
    "exposure_cellcomp": ("interacts with",),
    "pathway_pathway": ("parent-child",),
    "pathway_protein": ("interacts with",),
    "anatomy_anatomy": ("parent-child",),
    "anatomy_protein_present": ("expression present",),
    "anatomy_protein_absent": ("expression absent",),
}

# kg.csv header, in file order.
KG_COLUMNS: tuple[str, ...] = (
    "relation",
    "display_relation",
    "x_index",
    "x_id",
    "x_type",
    "x_name",
    "x_source",
    "y_index",
    "y_id",
    "y_type",
    "y_name",
    "y_source",
)

NODES_SCHEMA = pa.schema(
    [
        pa.field("node_id", pa.int64(), nullable=False),  # PrimeKG's x_index / y_index
        pa.field("name", pa.string(), nullable=False),
        pa.field("name_norm", pa.string(), nullable=False),  # normalize_name(name), for lookups
        pa.field("type", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("source_id", pa.string(), nullable=False),
    ]
)

EDGES_SCHEMA = pa.schema(
    [
        pa.field("src", pa.int64(), nullable=False),  # src <= dst: one row per undirected edge
        pa.field("dst", pa.int64(), nullable=False),
        pa.field("relation", pa.string(), nullable=False),
        pa.field("display_relation", pa.string(), nullable=False),
    ]
)

# One row per rejected kg.csv line. The twelve kg.csv columns hold the raw text of the line's
# fields (null where the line could not be split into fields); raw_line holds the whole line
# for lines with the wrong number of fields.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("line_number", pa.int64()),  # 1-based physical line; the header is line 1
        pa.field("reason", pa.string(), nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        *[pa.field(c, pa.string()) for c in KG_COLUMNS],
        pa.field("raw_line", pa.string()),
    ]
)

# Whitespace that normalize_name collapses: ASCII only, so the rule is the same in Arrow's
# RE2 and in any other engine (Spark, Python) that may need to reproduce it.
_WHITESPACE_RUN = r"[ \t\n\r\f\v]+"


def normalize_names(names: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Vectorised lookup key: lower-case, whitespace runs collapsed to one space, stripped."""
    lowered = pc.utf8_lower(names)
    collapsed = pc.replace_substring_regex(lowered, pattern=_WHITESPACE_RUN, replacement=" ")
    return pc.utf8_trim(collapsed, characters=" ")


def normalize_name(name: str) -> str:
    """Lookup key of one name; exactly the rule of :func:`normalize_names`.

    It runs the same Arrow kernels rather than ``str.lower`` because Python and Arrow
    (utf8proc) lower-case a few code points differently (e.g. 'İ'), and a lookup key must
    match the stored ``name_norm`` byte for byte.
    """
    if not isinstance(name, str):
        raise TypeError(f"normalize_name expects str, got {type(name).__name__}")
    return normalize_names(pa.array([name], pa.string()))[0].as_py()
