"""Grounding benchmark: link quality per method on the gold set, paths and citations, and the
lexicon's cost at PrimeKG scale. Prints one JSON line.

1. Quality: ``medreason-dist ground`` with --method dictionary, llm and hybrid (packaged 135M
   model, embedded default config) on the gold set's "new" questions
   (medreason_dist/data/demo/grounding_gold.jsonl: hand-checked node ids, a third phrased with
   synonyms or lay terms); link precision / recall / F1 against the gold nodes of question and
   answer, with Wilson intervals.
2. Paths: share of those questions whose hybrid links join a question node to an answer node
   within paths.max_hops in the demo KG (breadth-first search).
3. Citations (``--pipeline``): the rest of the pipeline (reformat -> paths -> prune -> generate ->
   verify) on the hybrid run; share of kept reasonings that cite >= 1 KG path (verify's own count).
4. Scale: the lexicon of a PrimeKG-sized synthetic KG (129,375 nodes; names drawn from the words
   of the vendored MedQA questions so that matches happen at a realistic rate), its build time,
   and dictionary matching throughput over ``--match-questions`` MedQA question stems, in one
   process and as Ray Data map_batches on the local CPUs.

    python benchmarks/grounding_bench.py                 # all of it (~20-30 min on 2 cores)
    python benchmarks/grounding_bench.py --methods dictionary --no-pipeline   # no model: ~1 min
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from medreason_dist import storage  # noqa: E402
from medreason_dist.config import PACKAGED_DATA  # noqa: E402
from medreason_dist.eval.metrics import wilson_interval  # noqa: E402

GOLD = PACKAGED_DATA / "demo" / "grounding_gold.jsonl"
CLI = [sys.executable, "-m", "medreason_dist.cli"]
TARGETS = {"hybrid_recall": 0.8, "hybrid_precision": 0.8, "questions_with_path": 0.7, "kept_citing_path": 0.5}


def _interval(part: int, total: int) -> list[float] | None:
    return [round(x, 3) for x in wilson_interval(part, total)] if total else None


def gold_questions(out: Path) -> Path:
    rows = [json.loads(line) for line in GOLD.read_text().splitlines() if line.strip()]
    new = [r for r in rows if r.get("set") == "new"]
    path = out / "gold_new.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in new))
    return path


def run_ground(qa: Path, method: str, out: Path, logs: Path) -> dict:
    started = time.perf_counter()
    proc = subprocess.run(CLI + ["ground", str(qa), "--kg", "packaged:demo_kg/kg.csv", "--method", method,
                                 "--out", str(out), "--set", f"run.log_dir={logs}"],
                          capture_output=True, text=True, cwd=REPO)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"ground --method {method} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n"
                         f"{proc.stderr[-2000:]}")
    summary = storage.read_manifest(str(out / "grounding")).extra["summary"]
    g = summary["gold"]
    return {"precision": _round(g["precision"]), "recall": _round(g["recall"]), "f1": _round(g["f1"]),
            "precision_ci": _interval(g["tp"], g["tp"] + g["fp"]), "recall_ci": _interval(g["tp"], g["tp"] + g["fn"]),
            "tp": g["tp"], "fp": g["fp"], "fn": g["fn"], "links": summary["links"], "seconds": round(seconds, 1)}


def _round(v):
    return None if v is None else round(v, 3)


def questions_with_path(out: Path, max_hops: int) -> dict:
    """Share of questions whose linked question and answer nodes are within max_hops in the KG."""
    import csv

    import networkx as nx
    import pandas as pd

    graph = nx.Graph()
    with open(PACKAGED_DATA / "demo_kg" / "kg.csv") as f:
        for r in csv.DictReader(f):
            graph.add_edge(int(r["x_index"]), int(r["y_index"]))
    frame = pd.read_parquet(out / "grounding")
    with_path = 0
    for links in frame["links"]:
        q = {x["node_id"] for x in links if x["role"] == "question" and x["node_id"] is not None}
        a = {x["node_id"] for x in links if x["role"] == "answer" and x["node_id"] is not None}
        found = any(s != t and s in graph and t in graph and nx.has_path(graph, s, t)
                    and nx.shortest_path_length(graph, s, t) <= max_hops for s in q for t in a)
        with_path += found
    return {"questions": len(frame), "with_path": with_path, "share": _round(with_path / max(len(frame), 1)),
            "ci": _interval(with_path, len(frame))}


def rest_of_pipeline(qa: Path, out: Path, logs: Path) -> dict:
    """reformat -> paths -> prune -> generate -> verify over the hybrid ground run's datasets."""
    import yaml

    conf = yaml.safe_load((REPO / "conf" / "local.yaml").read_text())
    conf["sources"] = [{"name": "ground", "adapter": "medqa", "path": str(qa), "format": "jsonl", "split": "ground"}]
    conf.setdefault("run", {})["out"] = str(out)
    conf["run"]["log_dir"] = str(logs)
    conf.setdefault("reason", {})["grounding"] = "hybrid"
    conf["reason"]["grounding_gold"] = str(qa)
    cfg_path = out / "bench.yaml"
    cfg_path.write_text(yaml.safe_dump(conf))
    started = time.perf_counter()
    proc = subprocess.run(CLI + ["run", "--config", str(cfg_path), "--stages",
                                 "sources,kg,lexicon,extract,link,reformat,paths,prune,generate,verify"],
                          capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"pipeline failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    sft = storage.read_manifest(str(out / "reason" / "sft"))
    citing = int(sft.extra.get("citing_path_rows", 0))
    import pandas as pd

    kept = pd.read_parquet(out / "reason" / "prune", columns=["n_kept_paths"])["n_kept_paths"]
    return {"kept_reasonings": sft.rows, "citing_path": citing, "share": _round(citing / sft.rows) if sft.rows else None,
            "ci": _interval(citing, sft.rows), "questions_with_kept_path": int((kept > 0).sum()),
            "seconds": round(time.perf_counter() - started, 1)}


def scale(match_questions: int, seed: int) -> dict:
    """Lexicon build and dictionary matching on a PrimeKG-sized synthetic node table."""
    import pyarrow as pa

    from medreason_dist.kg.lexicon import build_lexicon, reference_questions_from_jsonl
    from medreason_dist.kg.matcher import LexiconMatcher
    from medreason_dist.kg.synthetic import generate_kg

    rng = random.Random(seed)
    reference = reference_questions_from_jsonl((PACKAGED_DATA / "eval" / "medqa_test.jsonl").read_text())
    vocab = sorted({w.strip(".,;:()").lower() for q in reference for w in q.split()
                    if len(w.strip(".,;:()")) > 5 and w.strip(".,;:()").isalpha()})
    kg = generate_kg(1.0, seed=seed)
    n = kg.nodes.num_rows
    names = [" ".join(rng.choice(vocab) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))) + f" {i}" * (i % 3 == 0)
             for i in range(n)]
    nodes = pa.table({"node_id": kg.nodes.column("node_id"), "name": names, "type": kg.nodes.column("type")})
    started = time.perf_counter()
    lexicon, counts = build_lexicon(nodes, None, reference)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    matcher = LexiconMatcher(lexicon)
    automaton_s = time.perf_counter() - started
    questions = [reference[i % len(reference)] for i in range(match_questions)]
    started = time.perf_counter()
    hits = sum(len(matcher.find(q)[0]) for q in questions)
    match_s = time.perf_counter() - started
    ray_qps = _ray_match(lexicon, questions)
    return {"nodes": n, "lexicon_keys": counts["keys"], "generic_keys": counts["generic"],
            "lexicon_build_s": round(build_s, 2), "automaton_build_s": round(automaton_s, 2),
            "questions": len(questions), "hits_per_question": round(hits / len(questions), 2),
            "match_questions_per_s_one_process": round(len(questions) / match_s, 1),
            "match_questions_per_s_ray_data": ray_qps}


class _MatchBatch:
    def __init__(self, lexicon_ref):
        import ray

        from medreason_dist.kg.matcher import LexiconMatcher

        self.matcher = LexiconMatcher(ray.get(lexicon_ref[0]))

    def __call__(self, batch):
        import pyarrow as pa

        counts = [len(self.matcher.find(q)[0]) for q in batch.column("question").to_pylist()]
        return pa.table({"hits": counts})


def _ray_match(lexicon, questions) -> float:
    import pyarrow as pa
    import ray

    cpus = os.cpu_count() or 1
    ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
    try:
        ref = ray.put(lexicon)
        ds = ray.data.from_items([{"question": q} for q in questions], override_num_blocks=cpus * 4)
        # One matcher actor per CPU, each asking for a bit less than a CPU so Ray Data's own
        # scheduling never waits on them (whole-CPU actors on all CPUs starved the input tasks).
        started = time.perf_counter()
        total = sum(int(b["hits"].sum()) for b in ds.map_batches(
            _MatchBatch, fn_constructor_args=([ref],), batch_format="pyarrow", batch_size=512, num_cpus=0.75,
            compute=ray.data.ActorPoolStrategy(size=cpus)).iter_batches(batch_format="pandas"))
        seconds = time.perf_counter() - started
        assert total >= 0
        return round(len(questions) / seconds, 1)  # includes building the automaton in each actor
    finally:
        ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", default="dictionary,llm,hybrid")
    ap.add_argument("--pipeline", action=argparse.BooleanOptionalAction, default=True,
                    help="also run reformat..verify on the hybrid run (citations)")
    ap.add_argument("--match-questions", type=int, default=20_000)
    ap.add_argument("--max-hops", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", help="keep outputs here (default: a temporary folder)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="grounding_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    logs = work / "logs"
    qa = gold_questions(work)
    result: dict = {"benchmark": "grounding", "gold_questions": sum(1 for _ in qa.open()), "methods": {}}
    for method in args.methods.split(","):
        result["methods"][method] = run_ground(qa, method, work / method, logs)
    best = "hybrid" if "hybrid" in result["methods"] else args.methods.split(",")[0]
    result["questions_with_path"] = questions_with_path(work / best, args.max_hops)
    result["questions_with_path"]["method"] = best
    if args.pipeline and "hybrid" in result["methods"]:
        result["citations"] = rest_of_pipeline(qa, work / "hybrid", logs)
    result["scale"] = scale(args.match_questions, args.seed)
    hybrid = result["methods"].get("hybrid", {})
    result["targets"] = {
        "hybrid_recall>=0.8": None if not hybrid else (hybrid["recall"] or 0) >= TARGETS["hybrid_recall"],
        "hybrid_precision>=0.8": None if not hybrid else (hybrid["precision"] or 0) >= TARGETS["hybrid_precision"],
        "questions_with_path>=0.7": (result["questions_with_path"]["share"] or 0) >= TARGETS["questions_with_path"],
        "kept_citing_path>=0.5": None if "citations" not in result else
        (result["citations"]["share"] or 0) >= TARGETS["kept_citing_path"]}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
