"""`ray job submit` entrypoint: QA sources -> verified, KG-grounded reasoning (the SFT dataset).

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/generate.py --config conf/aws.yaml --set ray.address=auto --set reason.limit=1000

Runs sources, kg, extract, link, reformat, paths, prune, generate, verify in order (each skipped
when its output is already committed for the same inputs and config) and prints the summary.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the job's working dir

STAGES = ["sources", "kg", "lexicon", "extract", "link", "reformat", "paths", "prune", "generate", "verify"]

if __name__ == "__main__":
    from medreason_dist.jobs import run_stages_main

    sys.exit(run_stages_main(STAGES, __doc__))
