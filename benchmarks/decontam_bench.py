"""Decontamination throughput: synthetic training rows against the vendored evaluation sets.

Prints one JSON line. The training rows are synthetic clinical-vignette-like text (random words
from the evaluation vocabulary, so token statistics are realistic); 1% of them are edited copies
of evaluation questions, which must all be caught.
"""

from __future__ import annotations

import argparse
import json
import random
import time

import pyarrow as pa

from medreason_dist.config import SourceSpec
from medreason_dist.sources.schema import QA_SCHEMA
from medreason_dist.stages.decontaminate import DecontamConfig, EvalIndex, decontaminate
from medreason_dist.stages.sources import normalize_sources

VENDORED = [("medbullets_op4", "medbullets"), ("medbullets_op5", "medbullets"), ("medqa_test", "medqa")]


def vendored_evals() -> pa.Table:
    specs = [SourceSpec(name=n, adapter=a, path=f"packaged:eval/{n}.jsonl", split="test") for n, a in VENDORED]
    return normalize_sources(specs, progress=False, dedupe=False).qa


def synthetic_train(evals: pa.Table, rows: int, leak_share: float, seed: int) -> tuple[pa.Table, int]:
    rng = random.Random(seed)
    vocab = sorted({w for q in evals["question"].to_pylist() for w in q.split()})
    questions = evals["question"].to_pylist()
    out, leaked = [], 0
    for i in range(rows):
        if rng.random() < leak_share:
            words = rng.choice(questions).split()
            words[rng.randrange(len(words))] = "edited"  # a small edit: exact match fails, n-grams do not
            question, leaked = " ".join(words), leaked + 1
        else:
            question = " ".join(rng.choice(vocab) for _ in range(rng.randint(60, 220)))
        options = [(chr(65 + k), " ".join(rng.choice(vocab) for _ in range(rng.randint(1, 4)))) for k in range(5)]
        out.append({"id": f"syn{i}", "source": "synthetic", "split": "train", "question": question,
                    "options": options, "answer_text": options[0][1], "answer_idx": "A",
                    "reference_reasoning": None, "meta": "{}"})
    return pa.Table.from_pylist(out, schema=QA_SCHEMA), leaked


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--leak-share", type=float, default=0.01)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    evals = vendored_evals()
    train, leaked = synthetic_train(evals, args.rows, args.leak_share, args.seed)
    cfg = DecontamConfig()
    t0 = time.perf_counter()
    index = EvalIndex.build(evals, n=cfg.n, fields=cfg.eval_fields, boilerplate_df=cfg.boilerplate_df)
    t_index = time.perf_counter() - t0
    t1 = time.perf_counter()
    clean, rejects, report = decontaminate(train, evals, config=cfg, index=index)
    total = time.perf_counter() - t1
    caught = sum(1 for i in rejects["id"].to_pylist())
    print(json.dumps({
        "benchmark": "decontaminate", "train_rows": train.num_rows, "eval_rows": evals.num_rows,
        "n": cfg.n, "index_seconds": round(t_index, 3),
        "match_seconds": report["seconds"]["match"], "with_verification_seconds": round(total, 3),
        "train_rows_per_s_match": report["train_rows_per_s"],
        "train_rows_per_s_with_verification": round(train.num_rows / total, 1),
        "leaked_rows": leaked, "rejected_rows": caught, "overlap_after": report["overlap_after_total"],
    }))


if __name__ == "__main__":
    main()
