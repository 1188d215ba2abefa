"""Plan and run stages: skip what is up to date, run the rest in order, record outcomes.

The driver only coordinates here: fingerprints from manifests and config, one call per stage,
manifest annotations. Exit codes shared by every entry point live here too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from medreason_dist import storage
from medreason_dist.console import one_line
from medreason_dist.config import Config
from medreason_dist.datasets import DatasetRef
from medreason_dist.runner.contract import Stage, StageContext, StageEmpty
from medreason_dist.runner.fingerprint import fingerprint_of, fingerprint_parts, what_changed

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_RUNTIME = 1
EXIT_USAGE = 2
EXIT_MISSING_INPUTS = 3


class UsageError(ValueError):
    """A command line or stage selection the runner cannot act on (exit 2)."""


def select_stages(stages: list[Stage], names: list[str] | None) -> list[str]:
    """Stage names from ``--stages`` values (comma- or space-separated); all when empty."""
    known = [s.name for s in stages]
    if not names:
        return known
    picked = [n.strip() for item in names for n in item.replace(",", " ").split() if n.strip()]
    unknown = [n for n in picked if n not in known]
    if unknown:
        raise UsageError(f"unknown stage{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                         f"stages: {', '.join(known)}")
    if not picked:
        raise UsageError(f"no stage named; stages: {', '.join(known)}")
    return [n for n in known if n in picked]


def available(cfg: Config, ref: DatasetRef) -> bool:
    uri = cfg.dataset_uri(ref.name)
    if ref.kind == "dataset":
        return storage.is_readable(uri, cfg.storage)
    if ref.kind == "model":
        return storage.exists(storage.join(uri, "config.json"), cfg.storage)
    return storage.exists(uri, cfg.storage)


def _recorded(cfg: Config, stage: Stage) -> storage.Manifest | None:
    uri = cfg.dataset_uri(stage.output.name)
    return storage.read_manifest(uri, cfg.storage) if storage.is_committed(uri, cfg.storage) else None


@dataclass
class PlanEntry:
    stage: str
    action: str  # run | up to date | blocked
    reasons: list[str] = field(default_factory=list)


def plan(cfg: Config, stages: list[Stage], selected: list[str], *, force: bool = False) -> list[PlanEntry]:
    """What a run would do, without running anything."""
    rewritten: set[str] = set()
    entries = []
    for stage in stages:
        if stage.name not in selected:
            continue
        missing = [r.name for r in stage.reads if r.name not in rewritten and not available(cfg, r)]
        if missing:
            entries.append(PlanEntry(stage.name, "blocked", [f"missing input {m}" for m in missing]))
            continue
        upstream = [r.name for r in stage.reads + stage.optional_reads if r.name in rewritten]
        if force:
            reasons = ["--force"]
        elif upstream:
            reasons = [f"input {n} is rewritten by an earlier stage" for n in upstream]
        else:
            reasons = stale_reasons(cfg, stage)
        if reasons:
            entries.append(PlanEntry(stage.name, "run", reasons))
            rewritten.update(w.name for w in stage.writes)
        else:
            entries.append(PlanEntry(stage.name, "up to date"))
    return entries


def stale_reasons(cfg: Config, stage: Stage) -> list[str]:
    """Why the stage's committed output does not match its current fingerprint ([] = up to date)."""
    parts = fingerprint_parts(cfg, stage)
    manifest = _recorded(cfg, stage)
    if manifest is None:
        return [f"no committed output {stage.output.name}"]
    if manifest.config_hash == fingerprint_of(parts):
        return []
    return what_changed(manifest.extra.get("fingerprint"), parts)


@dataclass
class StageOutcome:
    stage: str
    status: str  # ran | skipped | empty | blocked | failed
    rows: int | None = None
    rejects: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    output: str = ""
    detail: str = ""
    exit_code: int = EXIT_OK  # what a failure means for the process (see exit_code below)
    engine_startups: list[dict] = field(default_factory=list)  # shared LLM engines started during it


def exit_code(outcomes: list[StageOutcome]) -> int:
    failed = [o.exit_code for o in outcomes if o.status == "failed"]
    if failed:
        return max(failed)
    if any(o.status == "blocked" for o in outcomes):
        return EXIT_MISSING_INPUTS
    return EXIT_OK


def _exit_code_of(err: Exception) -> int:
    """Errors that name a bad config value or input file say so with ``exit_code = 2``."""
    from medreason_dist.config import ConfigError

    if isinstance(err, (ConfigError, UsageError, storage.UnsafeUriError)):
        return EXIT_USAGE
    if isinstance(err, storage.IncompleteDatasetError):
        return EXIT_MISSING_INPUTS
    return int(getattr(err, "exit_code", EXIT_RUNTIME))


def run_stage(cfg: Config, stage: Stage, *, force: bool = False) -> StageOutcome:
    """Run one stage unless its output is current; failures come back as a 'failed' outcome."""
    output = cfg.dataset_uri(stage.output.name)
    missing = [r.name for r in stage.reads if not available(cfg, r)]
    if missing:
        return StageOutcome(stage.name, "blocked", output=output, detail=f"missing inputs: {', '.join(missing)}")
    parts = fingerprint_parts(cfg, stage)
    fp = fingerprint_of(parts)
    manifest = _recorded(cfg, stage)
    if not force and manifest is not None and manifest.config_hash == fp:
        return StageOutcome(stage.name, "skipped", manifest.rows, manifest.rejects, output=output,
                            detail="up to date")
    log.info("stage %s: running (fingerprint %s)", stage.name, fp)
    ctx = StageContext(stage, cfg, fp, force=force)
    start = time.perf_counter()
    try:
        with storage.declared_only(stage.name, ctx.allowed_uris()):
            result = stage.run(ctx)
    except StageEmpty as why:
        return StageOutcome(stage.name, "empty", 0, seconds=time.perf_counter() - start, output=output,
                            detail=str(why))
    except Exception as err:  # the runner reports, the entry point decides the exit code
        # The traceback goes to the run log; the console shows the one-line detail.
        log.info("stage %s failed", stage.name, exc_info=True)
        return StageOutcome(stage.name, "failed", seconds=time.perf_counter() - start, output=output,
                            detail=one_line(err), exit_code=_exit_code_of(err))
    seconds = time.perf_counter() - start
    storage.annotate_manifest(output, {"fingerprint": parts, "wall_s": round(seconds, 3)}, cfg.storage)
    return StageOutcome(stage.name, "ran", result.manifest.rows, result.manifest.rejects, seconds, output=output)


def run_stages(cfg: Config, stages: list[Stage], selected: list[str], *, force: bool = False,
               on_start=None, on_outcome=None) -> list[StageOutcome]:
    """Run the selected stages in pipeline order; stop at the first failure.

    LLM stages share one engine per model for the whole call (``llm.shared_engine``; see
    :mod:`medreason_dist.llm.serve`): the first LLM stage starts it, later ones reuse it, a stage
    that needs its resources (training) stops it first, and it is stopped when the run ends.
    Each engine start-up is recorded in the manifest of the stage that paid for it.
    """
    from medreason_dist.llm import serve as llm_serve  # light import: vLLM loads on first engine

    outcomes: list[StageOutcome] = []
    with llm_serve.shared_engines():
        for stage in stages:
            if stage.name not in selected:
                continue
            if stage.needs_engine_resources:
                llm_serve.release_engines()
            if on_start is not None:
                on_start(stage)
            before = len(llm_serve.engine_startups())
            outcome = run_stage(cfg, stage, force=force)
            outcome.engine_startups = llm_serve.engine_startups()[before:]
            if outcome.engine_startups and outcome.status == "ran":
                storage.annotate_manifest(outcome.output, {"engine_startups": outcome.engine_startups}, cfg.storage)
            outcomes.append(outcome)
            if on_outcome is not None:
                on_outcome(outcome)
            if outcome.status == "failed":
                break
    return outcomes
