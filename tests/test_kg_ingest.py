"""KG ingest: demo KG, quarantine of every kind of bad line, sources (HTTP, S3, gzip)."""

from __future__ import annotations

import csv
import gzip
import http.server
import importlib.util
import threading
from pathlib import Path

import networkx as nx
import pyarrow as pa
import pytest

from medreason_dist import storage
from medreason_dist.kg import ingest
from medreason_dist.kg.schema import (
    EDGES_SCHEMA,
    KG_COLUMNS,
    NODE_TYPES,
    NODES_SCHEMA,
    QUARANTINE_SCHEMA,
    normalize_name,
    normalize_names,
)
from medreason_dist.kg.transform import KGFormatError, transform_kg_table

REPO = Path(__file__).resolve().parent.parent
DEMO_DIR = REPO / "medreason_dist" / "data" / "demo_kg"
DEMO_CSV = DEMO_DIR / "kg.csv"
HEADER = ",".join(KG_COLUMNS)


def _load_builder():
    spec = importlib.util.spec_from_file_location("build_demo_kg", DEMO_DIR / "build_demo_kg.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def demo_ingested(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo_kg")
    summary = ingest.ingest_to_dir("packaged:demo_kg/kg.csv", str(out), config_hash="abc")
    return out, summary


# -- demo KG ----------------------------------------------------------------------------------


def test_demo_kg_csv_is_reproducible_from_the_triple_list(tmp_path):
    builder = _load_builder()
    builder.main(tmp_path)
    assert (tmp_path / "kg.csv").read_bytes() == DEMO_CSV.read_bytes()
    assert (tmp_path / "PLACEHOLDER_IDS.md").read_text() == (DEMO_DIR / "PLACEHOLDER_IDS.md").read_text()


def test_demo_ingest_counts_types_and_undirected_edges(demo_ingested):
    out, summary = demo_ingested
    lines = DEMO_CSV.read_text().splitlines()[1:]
    nodes = storage.read_table(str(out / "nodes"))
    edges = storage.read_table(str(out / "edges"))
    quarantine = storage.read_table(str(out / "quarantine"))
    assert nodes.schema.equals(NODES_SCHEMA) and edges.schema.equals(EDGES_SCHEMA)
    assert quarantine.schema.equals(QUARANTINE_SCHEMA)
    assert quarantine.num_rows == 0 and summary["rejects"] == {}
    # every line is one direction of an edge: each undirected edge exactly once
    assert edges.num_rows * 2 == len(lines) == summary["rows_read"]
    src, dst = edges["src"].to_numpy(), edges["dst"].to_numpy()
    assert (src <= dst).all()
    keys = set(zip(src.tolist(), dst.tolist(), edges["relation"].to_pylist()))
    assert len(keys) == edges.num_rows
    assert summary["edges_single_direction"] == 0 and summary["duplicate_rows"] == 0
    # all node indexes of the file, all ten types, ids unique per (type, source, source_id)
    records = list(csv.reader(lines))
    indexes = {int(r[2]) for r in records} | {int(r[7]) for r in records}
    assert set(nodes["node_id"].to_pylist()) == indexes
    assert set(nodes["type"].to_pylist()) == set(NODE_TYPES)
    ident = list(zip(nodes["type"].to_pylist(), nodes["source"].to_pylist(), nodes["source_id"].to_pylist()))
    assert len(set(ident)) == len(ident)
    assert set(src.tolist()) | set(dst.tolist()) <= indexes
    manifest = storage.read_manifest(str(out / "nodes"))
    assert manifest.stage == "kg_nodes" and manifest.config_hash == "abc"
    assert sum(manifest.extra["node_types"].values()) == nodes.num_rows
    assert sum(storage.read_manifest(str(out / "edges")).extra["relations"].values()) == edges.num_rows


def test_demo_kg_connects_every_demo_question_within_three_hops(demo_ingested):
    out, _ = demo_ingested
    nodes = storage.read_table(str(out / "nodes"))
    edges = storage.read_table(str(out / "edges"))
    graph = nx.Graph()
    graph.add_edges_from(zip(edges["src"].to_pylist(), edges["dst"].to_pylist()))
    by_name = dict(zip(nodes["name"].to_pylist(), nodes["node_id"].to_pylist()))
    by_norm: dict[str, list[int]] = {}
    for node_id, norm in zip(nodes["node_id"].to_pylist(), nodes["name_norm"].to_pylist()):
        by_norm.setdefault(norm, []).append(node_id)
    for question_entity, answer_entity in _load_builder().DEMO_QUESTION_LINKS:
        a, b = by_name[question_entity], by_name[answer_entity]
        # a lookup by normalised name finds the node (a disease and its HPO namesake share a key)
        assert a in by_norm[normalize_name(question_entity.upper())]
        assert nx.has_path(graph, a, b), (question_entity, answer_entity)
        assert nx.shortest_path_length(graph, a, b) <= 3, (question_entity, answer_entity)


def test_demo_kg_relation_vocabulary_is_primekg():
    from medreason_dist.kg.schema import RELATIONS

    import pyarrow.csv as pacsv

    table = pacsv.read_csv(DEMO_CSV, convert_options=pacsv.ConvertOptions(
        column_types={c: pa.string() for c in KG_COLUMNS}))
    for rel, disp in zip(table["relation"].to_pylist(), table["display_relation"].to_pylist()):
        assert disp in RELATIONS[rel], (rel, disp)


# -- quarantine -------------------------------------------------------------------------------

GOOD = [
    "indication,indication,0,DB00331,drug,Metformin,DrugBank,1,5148,disease,type 2 diabetes mellitus,MONDO",
    "indication,indication,1,5148,disease,type 2 diabetes mellitus,MONDO,0,DB00331,drug,Metformin,DrugBank",
    "drug_protein,target,0,DB00331,drug,Metformin,DrugBank,2,5564,gene/protein,PRKAB1,NCBI",
    "drug_protein,enzyme,2,5564,gene/protein,PRKAB1,NCBI,0,DB00331,drug,Metformin,DrugBank",
    'exposure_disease,linked to,3,D1,exposure,"1,2-dichloroethane",CTD,1,5148,disease,type 2 diabetes mellitus,MONDO',
    "disease_protein,associated with,1,5148,disease,type 2 diabetes mellitus,MONDO,2,,,,",  # index-only, resolves
]
BAD = {  # line text -> expected reason
    "too,few,columns": "wrong_column_count",
    ",,,,,,,,,,,": "blank_line",
    "disease_phenotype_positive,phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4.0,123,"
    "effect/phenotype,Polyuria,HPO": "invalid_index",
    "disease_phenotype_positive,phenotype present,x1,5148,disease,type 2 diabetes mellitus,MONDO,4,123,"
    "effect/phenotype,Polyuria,HPO": "invalid_index",
    "disease_phenotype_positive,phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4,123,"
    "phenotype,Polyuria,HPO": "unknown_type",
    "disease_phenotype_positive,phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4,123,"
    "effect/phenotype,,HPO": "missing_name",
    "disease_phenotype_positive,phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4,123,"
    "effect/phenotype,NaN,HPO": "non_text_name",
    "disease_phenotype_positive,phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4,123,"
    "effect/phenotype,1.0,HPO": "non_text_name",
    "disease_phenotype_positive,phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4,,"
    "effect/phenotype,Polyuria,HPO": "missing_source_id",
    ",phenotype present,1,5148,disease,type 2 diabetes mellitus,MONDO,4,123,effect/phenotype,Polyuria,HPO":
        "missing_relation",
    "disease_protein,associated with,1,5148,disease,type 2 diabetes mellitus,MONDO,99,,,,": "dangling_index",
    "disease_protein,associated with,1,5148,disease,Type II diabetes,MONDO,2,5564,gene/protein,PRKAB1,NCBI":
        "conflicting_node_definition",
    "disease_protein,associated with,7,5148,disease,type 2 diabetes mellitus,MONDO,2,5564,gene/protein,PRKAB1,NCBI":
        "duplicate_node_identity",
    "a,b,c,d,e,f,g,h,i,j,k,l,m": "wrong_column_count",
}


def _bad_csv(path: Path) -> dict[int, str]:
    """Interleave good and bad lines; returns line number -> expected reason."""
    lines, expected = [HEADER], {}
    bad_items = list(BAD.items())
    for i in range(max(len(GOOD), len(bad_items))):
        if i < len(GOOD):
            lines.append(GOOD[i])
        if i < len(bad_items):
            lines.append(bad_items[i][0])
            expected[len(lines)] = bad_items[i][1]
    path.write_bytes(("\n".join(lines) + "\n").encode() + b"drug_effect,side effect,0,DB00331,drug,Metformin,"
                     b"DrugBank,5,9,effect/phenotype,Na\xff\xfeusea,HPO\n")
    expected[len(lines) + 1] = "invalid_utf8"
    return expected


def test_every_bad_line_kind_is_quarantined_with_line_number_and_reason(tmp_path):
    expected = _bad_csv(tmp_path / "kg.csv")
    out = tmp_path / "out"
    summary = ingest.ingest_to_dir(str(tmp_path / "kg.csv"), str(out))
    quarantine = storage.read_table(str(out / "quarantine"))
    got = dict(zip(quarantine["line_number"].to_pylist(), quarantine["reason"].to_pylist()))
    assert got == expected
    counts: dict[str, int] = {}
    for reason in expected.values():
        counts[reason] = counts.get(reason, 0) + 1
    for name in ("nodes", "edges", "quarantine"):
        assert storage.read_manifest(str(out / name)).rejects == counts
    assert summary["rejects"] == counts and summary["quarantined"] == len(expected)
    # raw values are kept as text, and the whole line for a line that could not be split
    rows = {r["line_number"]: r for r in quarantine.to_pylist()}
    float_name = next(n for n, r in expected.items() if r == "non_text_name")
    assert rows[float_name]["y_name"] == "NaN" and rows[float_name]["y_index"] == "4"
    short = next(n for n, r in expected.items() if r == "wrong_column_count")
    assert rows[short]["raw_line"] == "too,few,columns" and rows[short]["relation"] is None
    conflict = next(n for n, r in expected.items() if r == "conflicting_node_definition")
    assert rows[conflict]["x_name"] == "Type II diabetes" and rows[conflict]["detail"].startswith("x:")
    # the good lines survive: 4 nodes (1,2-dichloroethane is a name), 4 undirected edges
    nodes = storage.read_table(str(out / "nodes"))
    edges = storage.read_table(str(out / "edges"))
    assert sorted(nodes["name"].to_pylist()) == ["1,2-dichloroethane", "Metformin", "PRKAB1",
                                                 "type 2 diabetes mellitus"]
    assert edges.num_rows == 4
    merged = edges.filter(pa.compute.equal(edges["relation"], "drug_protein"))
    assert merged["display_relation"].to_pylist() == ["enzyme; target"]
    assert summary["index_only_references"] == 1 and summary["merged_display_relations"] == 1


def test_majority_definition_wins_and_identity_duplicates_are_rejected():
    def row(x_index, x_name, y_index=1, y_name="B", x_id=None):
        return ["disease_disease", "parent-child", str(x_index), x_id or f"id{x_index}", "disease", x_name,
                "MONDO", str(y_index), f"id{y_index}", "disease", y_name, "MONDO"]

    rows = [row(0, "bad name"), row(0, "A"), row(0, "A"), row(2, "C"), row(3, "D", x_id="id2")]
    table = pa.table({c: [r[i] for r in rows] for i, c in enumerate(KG_COLUMNS)})
    result = transform_kg_table(table)
    assert result.rejects == {"conflicting_node_definition": 1, "duplicate_node_identity": 1}
    assert dict(zip(result.nodes["node_id"].to_pylist(), result.nodes["name"].to_pylist())) == {
        0: "A", 1: "B", 2: "C"}
    assert result.quarantine["line_number"].to_pylist() == [2, 6]


def test_not_a_kg_csv_is_a_clear_error(tmp_path):
    path = tmp_path / "other.csv"
    path.write_text("a,b,c\n1,2,3\n")
    with pytest.raises(KGFormatError, match="not a PrimeKG kg.csv"):
        ingest.ingest_to_dir(str(path), str(tmp_path / "out"))
    assert not storage.is_committed(str(tmp_path / "out" / "nodes"))


def test_normalize_name_matches_vectorised_rule():
    names = ["  Zenker's   Diverticulum ", "İstanbul\tFEVER", "Sjögren\nsyndrome", "type 2 DIABETES"]
    assert [normalize_name(n) for n in names] == normalize_names(pa.array(names)).to_pylist()
    assert normalize_name("  Zenker's   Diverticulum ") == "zenker's diverticulum"


# -- sources ----------------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep test output clean
        pass


@pytest.fixture
def http_root(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    handler = lambda *a, **kw: _Handler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_from_http_source(http_root, tmp_path):
    root, base = http_root
    (root / "kg.csv").write_bytes(DEMO_CSV.read_bytes())
    summary = ingest.ingest_to_dir(f"{base}/kg.csv", str(tmp_path / "out"))
    assert summary["source"] == f"{base}/kg.csv"
    assert summary["edges"] * 2 == len(DEMO_CSV.read_text().splitlines()) - 1
    assert storage.read_table(str(tmp_path / "out" / "nodes")).num_rows == summary["nodes"] > 300


def test_http_404_is_a_clear_error(http_root, tmp_path):
    _, base = http_root
    with pytest.raises(ingest.KGSourceError, match=r"HTTP 404"):
        ingest.ingest_to_dir(f"{base}/missing/kg.csv", str(tmp_path / "out"))
    assert not storage.is_committed(str(tmp_path / "out" / "edges"))


def test_truncated_download_is_detected(tmp_path):
    class Truncating(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"relation,display_relation\n")  # then hang up early

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Truncating)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ingest.KGSourceError, match="truncated|failed"):
            ingest.download(f"http://127.0.0.1:{server.server_address[1]}/kg.csv", tmp_path / "kg.csv",
                            timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_gzip_source_and_missing_file(tmp_path):
    gz = tmp_path / "kg.csv.gz"
    gz.write_bytes(gzip.compress(DEMO_CSV.read_bytes()))
    summary = ingest.ingest_to_dir(str(gz), str(tmp_path / "out"))
    assert summary["rejects"] == {} and summary["edges"] > 500
    with pytest.raises(ingest.KGSourceError, match="not a file"):
        ingest.ingest_to_dir(str(tmp_path / "nope.csv"), str(tmp_path / "out2"))


def test_s3_source_and_outputs(s3_bucket):
    bucket, options = s3_bucket
    storage.write_bytes(f"s3://{bucket}/raw/kg.csv", DEMO_CSV.read_bytes(), options)
    summary = ingest.ingest_to_dir(f"s3://{bucket}/raw/kg.csv", f"s3://{bucket}/kg", options=options)
    edges = storage.read_table(f"s3://{bucket}/kg/edges", options=options)
    assert edges.num_rows == summary["edges"] and summary["rejects"] == {}
