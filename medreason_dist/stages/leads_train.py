"""Stage `leads_train`: fine-tune the literature student on the curated train split.

The rows trained on are a task mixture of the ``train`` split (``leads.train.mixture`` weights,
``leads.train.max_rows`` in all; :func:`medreason_dist.train.mixture.sample_mixture`), written as
``leads/train_data`` so what the model saw is a dataset anyone can open. Training is the project's
SFT recipe on Ray Train (``sft:`` section: model, LoRA or full, steps, workers), the same code
path as MedReason's ``sft`` stage; instruction rows are learned as instruction -> response with
the prompt masked.
"""

from __future__ import annotations

import pyarrow.compute as pc

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.runner.contract import StageEmpty

TRAIN_COLUMNS = ("row_id", "task", "instruction", "response", "review_id", "rule")


def train_student(cfg: Config, uris: dict[str, str], *, fingerprint: str, options) -> storage.Manifest:
    from medreason_dist.train.mixture import sample_mixture
    from medreason_dist.train.trainer import run_sft, write_loss_dataset

    table = storage.read_table(uris["instructions"], options=options)
    train = table.filter(pc.equal(table.column("split"), "train")).select(list(TRAIN_COLUMNS))
    if train.num_rows == 0:
        raise StageEmpty("the curated train split is empty; nothing to fine-tune")
    settings = cfg.leads.train
    sample, mixture = sample_mixture(train, settings.mixture, settings.max_rows, cfg.run.seed)
    if sample.num_rows == 0:
        raise StageEmpty(f"the task mixture {settings.mixture} selects no rows")
    storage.write_table(uris["data"], sample, stage="leads_train.data", config_hash=fingerprint,
                        extra={"mixture": mixture}, options=options)
    train_dir = uris["model"].rsplit("/", 1)[0]  # the trainer writes model/, rejects/, ... beside each other
    summary = run_sft(uris["data"], train_dir, cfg.sft, options, ray_address=cfg.ray.address,
                      ray_num_cpus=cfg.ray.num_cpus)
    return write_loss_dataset(summary, uris["loss"], stage="leads_train", fingerprint=fingerprint, options=options,
                              extra={"mixture": mixture})
