"""`ray job submit` entrypoint: decontaminate the SFT data, then fine-tune on Ray Train.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/sft.py --config conf/aws.yaml --set ray.address=auto \\
            --set sft.method=lora --set sft.num_workers=8 --set sft.use_gpu=true

Reads <run.out>/reason/sft, drops rows overlapping the evaluation sets (train/sft_clean), and
fine-tunes `sft.model`; the HF model (vLLM-loadable) lands in <run.out>/train/model, the loss
curve in <run.out>/train/loss, checkpoints under `sft.storage_path`. Re-submitting the same job
resumes from the last checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

STAGES = ["decontaminate", "sft"]

if __name__ == "__main__":
    from medreason_dist.jobs import run_stages_main

    sys.exit(run_stages_main(STAGES, __doc__))
