"""`ray job submit` entrypoint for literature mining (LEADS): the `medreason-dist leads` command.

    ray job submit --address http://HEAD:8265 --working-dir . -- \\
        python jobs/leads.py run --config conf/leads_aws.yaml --set ray.address=auto

ACTION is search [--execute] | screen | extract | eval [--reviews DIR] | run; each stage is
skipped when its output is already committed for the same inputs and config. Exit codes as for
every entry point: 0 ok, 1 runtime, 2 usage/config, 3 missing inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the job's working dir

if __name__ == "__main__":
    from medreason_dist.cli import main

    sys.exit(main(["leads"] + (sys.argv[1:] or ["run"])))
