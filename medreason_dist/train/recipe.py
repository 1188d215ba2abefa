"""The SFT recipe: setup -> train -> save -> cleanup, with or without Ray.

    recipe = SftRecipe(RecipeConfig.parse(config))
    recipe.setup()     # world, seed, tokenizer, model (+LoRA), data, optimizer, scheduler, resume
    recipe.train()     # steps of grad_accum micro batches: loss, clip, step, log, checkpoint
    summary = recipe.save()   # rank 0: HF model folder + train_history.json
    recipe.cleanup()   # Ray: the final barrier; free the model

``run_recipe(cfg)`` does exactly that. Run it in one process (``world.launcher: local``)
for a debugging run, the tests or the benchmark::

    python -m medreason_dist.train.recipe --config recipe.yaml --set sft.max_steps=3

or inside Ray Train (``world.launcher: ray_train``), where ``train_worker`` is the function
``TorchTrainer`` runs on every worker (see ``trainer.py``). Only four things differ under Ray:
rank/world size/device come from ``ray.train``, the model is wrapped by ``prepare_model``
(DDP with >1 worker), the data is this worker's shard of the driver's Ray Dataset, and
checkpoints go through ``ray.train.report`` / ``ray.train.get_checkpoint`` (Ray Train's
storage) instead of ``output.checkpoint_uri`` / ``output.resume_from``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import random
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from medreason_dist import storage
from medreason_dist.train import components as C
from medreason_dist.train.data import IGNORE_INDEX, collate, padding_fraction
from medreason_dist.train.settings import RecipeConfig, RecipeConfigError

log = logging.getLogger(__name__)


@dataclass
class World:
    """Who this process is: rank, world size, device, and whether Ray Train launched it."""

    rank: int
    size: int
    device: Any
    on_ray: bool

    @classmethod
    def discover(cls, cfg: RecipeConfig) -> "World":
        import torch

        if cfg.world.launcher == "local":
            use_cuda = cfg.sft.use_gpu and torch.cuda.is_available()
            return cls(0, 1, torch.device("cuda" if use_cuda else "cpu"), on_ray=False)
        import ray.train
        import ray.train.torch

        ctx = ray.train.get_context()
        world = cls(ctx.get_world_rank(), ctx.get_world_size(), ray.train.torch.get_device(), on_ray=True)
        if world.size != cfg.world.num_workers:
            raise RuntimeError(f"Ray Train started {world.size} workers, config world.num_workers is "
                               f"{cfg.world.num_workers} (the data plan assumes the latter)")
        return world

    def all_reduce_sum(self, values: list[float]) -> list[float]:
        import torch

        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        if self.size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(t)
        return t.tolist()


class SftRecipe:
    """Supervised fine-tuning of a causal LM, full or LoRA, on packed or unpacked sequences."""

    def __init__(self, cfg: RecipeConfig) -> None:
        self.cfg, self.sft = cfg, cfg.sft
        self.step, self.history, self.resumes = 0, [], []
        self.finished = False
        self.started = time.monotonic()

    # ---------------------------------------------------------------------------------- setup

    def setup(self) -> None:
        self.world = World.discover(self.cfg)
        self._seed(self.sft.seed)
        model_path = self._model_path()
        self.tokenizer, self.pad_id = self._setup_tokenizer(model_path)
        self.model = self._setup_model(model_path)
        self.data = self._setup_data()
        self.plan = C.plan_steps(self.data.n_sequences, self.sft)
        self.total_steps = self.plan["total_steps"]
        self.optimizer = C.make_optimizer(self.model, self.sft, self.world.device)
        self.scheduler = C.make_scheduler(self.optimizer, self.total_steps, self.sft)
        self.bf16 = C.use_bf16_autocast(self.sft, self.world.device)
        self._resume()

    @staticmethod
    def _seed(seed: int) -> None:
        import torch

        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)

    def _model_path(self) -> str | None:
        src = self.cfg.model
        if src.path is not None or src.random_init is not None:
            return src.path
        from medreason_dist.models import resolve_model

        return resolve_model(self.sft.model, self.sft.model_cache_dir, storage_options=self.cfg.storage_options)

    def _setup_tokenizer(self, model_path: str | None) -> tuple[Any, int]:
        tokenizer_path = self.cfg.model.tokenizer_path or model_path
        tokenizer = None
        if tokenizer_path is not None:
            from medreason_dist.train.data import load_tokenizer

            tokenizer = load_tokenizer(tokenizer_path)
        pad_id = self.cfg.model.pad_id
        if pad_id is None:
            pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        return tokenizer, pad_id

    def _setup_model(self, model_path: str | None) -> Any:
        model = C.build_model(self.sft, self.world.device, model_path=model_path,
                              model_config=self.cfg.model.random_init)
        if self.world.on_ray:
            import ray.train.torch

            model = ray.train.torch.prepare_model(model, move_to_device=self.world.device)
        model.train()
        return model

    def _setup_data(self) -> C.InMemorySequences | C.RayShardSequences:
        data = self.cfg.data
        if data.kind == "ray_shard":
            import ray.train

            return C.RayShardSequences(ray.train.get_dataset_shard("train"), data.sequences_per_worker, self.sft)
        if data.kind == "inline":
            return C.InMemorySequences([s.model_dump() for s in data.sequences], self.sft)
        return self._load_dataset(data.uri)

    def _load_dataset(self, uri: str) -> C.InMemorySequences:
        """Read a committed SFT dataset, tokenize (rejects keep a reason) and pack it here."""
        from medreason_dist.train.data import SftDataset

        rows = storage.read_table(uri, options=self.cfg.storage_options).to_pylist()
        built = SftDataset(rows, self.tokenizer, max_seq_len=self.sft.max_seq_len, packing=self.sft.packing,
                           pack_window=self.sft.pack_window)
        if self.cfg.output.uri and self.world.rank == 0:
            C.write_rejects(self.cfg.output.uri, C.rejects_table(rows, built.rejected_rows), built.rejects,
                            self.cfg.storage_options)
        return C.InMemorySequences(built.sequences, self.sft, rejects=built.rejects)

    def _resume(self) -> None:
        with self._checkpoint_to_resume() as folder:
            if folder is None:
                return
            state = C.load_checkpoint(folder, self.model, self.optimizer, self.scheduler)
        self.step, self.history = state["step"], state["history"]
        self.resumes = state.get("resumes", []) + [state["step"]]
        import torch

        torch.manual_seed(self.sft.seed + self.step)  # fresh but reproducible randomness (LoRA dropout)
        log.info("rank %d resumed from step %d", self.world.rank, self.step)

    @contextlib.contextmanager
    def _checkpoint_to_resume(self) -> Iterator[Path | None]:
        if self.world.on_ray:
            import ray.train

            checkpoint = ray.train.get_checkpoint()
            if checkpoint is None:
                yield None
                return
            with checkpoint.as_directory() as folder:
                yield Path(folder)
        elif self.cfg.output.resume_from:
            with C.downloaded_dir(self.cfg.output.resume_from, self.cfg.storage_options) as folder:
                yield folder
        else:
            yield None

    # ---------------------------------------------------------------------------------- train

    def train(self) -> None:
        spe = self.plan["steps_per_epoch"]
        epoch = self.step // spe
        skip = (self.step % spe) * self.sft.grad_accum  # micro batches a resumed epoch already consumed
        while self.step < self.total_steps:
            for group in self._step_groups(epoch, skip):
                self._maybe_inject_failure()
                metrics = self._train_step(group, epoch)
                self._record(metrics)
                if self.step >= self.total_steps:
                    break
            epoch, skip = epoch + 1, 0
        self.finished = True

    def _step_groups(self, epoch: int, skip: int) -> Iterator[list[dict]]:
        """Collated micro batches, grad_accum at a time (the last group of an epoch may be short)."""
        per_epoch = self.plan["micro_batches_per_epoch"]
        group: list[dict] = []
        for consumed, rows in enumerate(self.data.micro_batches(epoch), start=1):
            if consumed > per_epoch:
                break  # equal shards make this unreachable; it guards DDP against a lopsided shard
            if consumed <= skip:
                continue
            group.append(collate(rows, self.pad_id, packed=self.sft.packing))
            if len(group) == self.sft.grad_accum or consumed == per_epoch:
                yield group
                group = []

    def _maybe_inject_failure(self) -> None:
        fail_at = self.sft.fail_at_step
        if fail_at is not None and not self.resumes and self.step + 1 == fail_at:
            raise C.InjectedFailure(f"injected failure before step {self.step + 1} (fail_at_step)")

    def _train_step(self, group: list[dict], epoch: int) -> dict:
        t0 = time.monotonic()
        local_loss_sum, label_tokens = self._forward_backward(group)
        grad_norm, lr = self._optimizer_step()
        if self.world.device.type == "cuda":
            import torch

            torch.cuda.synchronize()
        seconds = time.monotonic() - t0
        self.step += 1
        return self._step_metrics(group, epoch, local_loss_sum, label_tokens, lr, grad_norm, seconds)

    def _forward_backward(self, group: list[dict]) -> tuple[float, float]:
        """This worker's summed token loss, and the step's response tokens on all workers.

        Each micro-batch sum is divided by the response tokens of the whole step on all
        workers, so the gradient is the token mean however tokens fall into micro batches/workers.
        """
        import torch

        label_tokens = max(1.0, self.world.all_reduce_sum([sum(b["label_tokens"] for b in group)])[0])
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.world.device)
        for i, batch in enumerate(group):
            sync = i == len(group) - 1 or not hasattr(self.model, "no_sync")
            with contextlib.nullcontext() if sync else self.model.no_sync():  # DDP: sync the last only
                token_loss = self._token_loss_sum(batch)
                (token_loss * self.world.size / label_tokens).backward()
            loss_sum += token_loss.detach().double()
        return float(loss_sum), label_tokens

    def _token_loss_sum(self, batch: dict) -> Any:
        import torch
        import torch.nn.functional as F

        device = self.world.device
        autocast = torch.autocast(device.type, dtype=torch.bfloat16) if self.bf16 else contextlib.nullcontext()
        with autocast:
            inputs = {k: batch[k].to(device) for k in ("input_ids", "position_ids", "attention_mask") if k in batch}
            logits = self.model(**inputs, use_cache=False).logits
            labels = batch["labels"].to(device)
            return F.cross_entropy(logits[:, :-1].float().reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                                   ignore_index=IGNORE_INDEX, reduction="sum")

    def _optimizer_step(self) -> tuple[float | None, float]:
        import torch

        grad_norm = None
        if self.sft.grad_clip is not None:
            trainable = [p for p in self.model.parameters() if p.requires_grad]
            grad_norm = float(torch.nn.utils.clip_grad_norm_(trainable, self.sft.grad_clip))
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm, lr

    def _step_metrics(self, group: list[dict], epoch: int, local_loss_sum: float, label_tokens: float, lr: float,
                      grad_norm: float | None, seconds: float) -> dict:
        loss_sum, real, pad, examples = self.world.all_reduce_sum([
            local_loss_sum, sum(b["real_tokens"] for b in group), sum(b["pad_tokens"] for b in group),
            sum(b["n_examples"] for b in group)])
        metrics = {
            "step": self.step, "epoch": epoch, "loss": loss_sum / label_tokens, "lr": lr,
            "tokens_per_s": (real + pad) / seconds, "real_tokens_per_s": real / seconds,
            "padding_fraction": padding_fraction(int(pad), int(real)),
            "examples": int(examples), "step_seconds": seconds, "real_tokens": int(real), "pad_tokens": int(pad),
        }
        if grad_norm is not None:
            metrics["grad_norm"] = grad_norm
        return metrics

    def _record(self, metrics: dict) -> None:
        """History, log line, and the report/checkpoint every worker must make together."""
        self.history.append(metrics)
        last = self.step == self.total_steps
        if self.world.rank == 0 and (self.step % self.sft.log_every_steps == 0 or last):
            log.info("step %d/%d loss %.4f lr %.2e tok/s %.0f pad %.3f", self.step, self.total_steps,
                     metrics["loss"], metrics["lr"], metrics["tokens_per_s"], metrics["padding_fraction"])
        if self.step % self.sft.checkpoint_every_steps == 0 or last:
            self._checkpoint(metrics)
        elif self.step % self.sft.log_every_steps == 0 and self.world.on_ray:
            import ray.train

            ray.train.report(metrics)

    def _checkpoint(self, metrics: dict) -> None:
        state = {"step": self.step, "history": self.history, "resumes": self.resumes,
                 "total_steps": self.total_steps}
        name = C.checkpoint_name(self.step)
        if self.world.on_ray:
            import ray.train

            if self.world.rank != 0:
                ray.train.report(metrics)  # rank 0 writes the checkpoint; everyone reports
                return
            with tempfile.TemporaryDirectory(prefix="sft-ckpt-") as tmp:
                C.save_checkpoint(Path(tmp), self.model, self.optimizer, self.scheduler, state)
                ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(tmp),
                                 checkpoint_dir_name=name)
        elif self.cfg.output.checkpoint_uri:
            with tempfile.TemporaryDirectory(prefix="sft-ckpt-") as tmp:
                C.save_checkpoint(Path(tmp), self.model, self.optimizer, self.scheduler, state)
                uri = storage.join(self.cfg.output.checkpoint_uri, name)
                C.upload_dir(Path(tmp), uri, self.cfg.storage_options, last=C.CHECKPOINT_STATE)

    # ----------------------------------------------------------------------------------- save

    def save(self) -> dict:
        """The run summary; rank 0 exports the HF model and the history when output.uri is set."""
        summary = self._summary()
        if self.world.rank == 0 and self.cfg.output.uri:
            summary["model_uri"] = C.export_model(self.model, self.tokenizer, self.sft, self.cfg.output.uri,
                                                  self.cfg.storage_options, summary)
        return summary

    def _summary(self) -> dict:
        pad_total = sum(h.get("pad_tokens", 0) for h in self.history)  # whole run, across resumes
        real_total = sum(h.get("real_tokens", 0) for h in self.history)
        params = list(C.unwrap(self.model).parameters())
        return {
            "final_step": self.step, "total_steps": self.total_steps, "history": self.history,
            "resumes": self.resumes,
            "padding_fraction": padding_fraction(pad_total, real_total) if real_total else None,
            "real_tokens": real_total, "pad_tokens": pad_total,
            "n_params": sum(p.numel() for p in params),
            "n_trainable_params": sum(p.numel() for p in params if p.requires_grad),
            "world_size": self.world.size, "bf16_autocast": self.bf16, "device": self.world.device.type,
            "plan": self.plan, "wall_s": time.monotonic() - self.started, "method": self.sft.method,
            "packing": self.sft.packing, "rejects": self.data.rejects,
        }

    # -------------------------------------------------------------------------------- cleanup

    def cleanup(self) -> None:
        """Ray: a last barrier so no worker exits while rank 0 exports. Then free the model."""
        world = getattr(self, "world", None)
        if world is not None and world.on_ray and self.finished:
            import ray.train

            ray.train.report({"step": self.step, "done": True})
        self.model = self.optimizer = self.scheduler = self.data = None
        if world is not None and world.device.type == "cuda":
            import torch

            torch.cuda.empty_cache()


def run_recipe(cfg: RecipeConfig | dict) -> dict:
    """Set up, train, save and clean up; returns the summary (with the loss history)."""
    recipe = SftRecipe(RecipeConfig.parse(cfg))
    try:
        recipe.setup()
        recipe.train()
        return recipe.save()
    finally:
        recipe.cleanup()


def train_worker(config: dict) -> None:
    """What ``TorchTrainer`` runs on each worker: ``config`` is ``RecipeConfig.model_dump()``."""
    run_recipe(RecipeConfig.parse(config))


# ---------------------------------------------------------------------------------------------
# Command line: one process, no Ray


def load_recipe_config(path: str | None, overrides: list[str]) -> RecipeConfig:
    """A YAML/JSON recipe config with ``key.path=value`` overrides (values parsed as YAML)."""
    import yaml

    data = (yaml.safe_load(Path(path).read_text()) or {}) if path else {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise RecipeConfigError(f"--set {item!r}: expected key=value")
        *parents, last = key.strip().split(".")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise RecipeConfigError(f"--set {item!r}: {part} is not a section")
        node[last] = yaml.safe_load(raw) if raw else ""
    return RecipeConfig.parse(data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Run the SFT recipe in one process (no Ray).")
    p.add_argument("--config", help="YAML/JSON RecipeConfig (sft, model, data, output, storage_options)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    try:
        cfg = load_recipe_config(args.config, args.overrides)
    except RecipeConfigError as err:
        print(err, file=sys.stderr)
        return 2
    summary = run_recipe(cfg)
    summary.pop("history")
    print(json.dumps(summary, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
