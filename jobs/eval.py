"""`ray job submit` entrypoint: evaluate the configured models on the benchmarks.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/eval.py --config conf/aws.yaml --set ray.address=auto

Runs eval_sets and eval: every model in `eval.models` (hub ids, object-store folders, or
`run:train/model` for this run's fine-tuned model) answers every item; accuracy per benchmark
with 95% Wilson intervals goes to <run.out>/eval/results.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAGES = ["eval_sets", "eval"]

if __name__ == "__main__":
    from medreason_dist.jobs import run_stages_main

    sys.exit(run_stages_main(STAGES, __doc__))
