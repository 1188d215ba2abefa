"""The stage contract: what a stage declares and the context it runs in.

A stage names the datasets it reads and writes (objects from :mod:`medreason_dist.datasets`),
the config models its output depends on, and a code version. It gets locations only through
its :class:`StageContext`, which refuses undeclared names; while it runs, the storage layer
refuses to open or commit any dataset outside its declarations (see
:func:`medreason_dist.storage.declared_only`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from medreason_dist import storage
from medreason_dist.config import Config
from medreason_dist.datasets import DatasetRef
from medreason_dist.storage import UndeclaredDatasetError


class StageEmpty(Exception):
    """A stage had nothing to work on (e.g. no training rows survived); nothing is written."""


@dataclass(frozen=True)
class Stage:
    name: str
    summary: str
    reads: tuple[DatasetRef, ...]
    writes: tuple[DatasetRef, ...]  # writes[0] is the main output; its manifest holds the fingerprint
    config: tuple[str, ...]  # dotted config paths whose whole value the output depends on
    run: Callable[["StageContext"], "StageResult"]
    version: int = 1  # bump when the stage's code changes what it writes
    engines: tuple[str, ...] = ()  # model references, by config path: 'llm.model', 'models.embedder', ...
    # Inputs that are not datasets of the run (source files, URLs, trained models): a cheap
    # identity of them joins the fingerprint, so editing a source file reruns the stage.
    external: Callable[[Config], dict] | None = None
    optional_reads: tuple[DatasetRef, ...] = ()  # read when present (e.g. the fine-tuned model)
    # The stage needs the CPUs/GPUs a run's shared LLM engine holds between LLM stages
    # (training): the runner stops that engine first, and the next LLM stage starts it again.
    needs_engine_resources: bool = False

    @property
    def output(self) -> DatasetRef:
        return self.writes[0]

    def declared(self) -> tuple[DatasetRef, ...]:
        return self.reads + self.optional_reads + self.writes


@dataclass
class StageResult:
    manifest: storage.Manifest
    side_outputs: dict[str, storage.Manifest] = field(default_factory=dict)


@dataclass
class StageContext:
    """What a running stage sees: its config, fingerprint and declared locations."""

    stage: Stage
    config: Config
    fingerprint: str
    force: bool = False

    @property
    def options(self) -> storage.StorageOptions:
        return self.config.storage

    def uri(self, ref: DatasetRef) -> str:
        if ref not in self.stage.declared():
            raise UndeclaredDatasetError(
                f"stage {self.stage.name} uses dataset {ref.name!r} without declaring it; add it to its "
                "reads or writes in pipeline.py")
        return self.config.dataset_uri(ref.name)

    def read(self, ref: DatasetRef, columns: list[str] | None = None):
        return storage.read_table(self.uri(ref), columns=columns, options=self.options)

    def allowed_uris(self) -> list[str]:
        return [self.config.dataset_uri(ref.name) for ref in self.stage.declared()]
