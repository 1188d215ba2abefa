"""Plan or run stages by name through the runner, owning the terminal for the run.

Shared by the MedReason commands (:mod:`medreason_dist.cli`), the LEADS commands
(:mod:`medreason_dist.leads_cli`) and ``jobs/kg_paths.py``; kept apart from both CLIs so that
neither imports the other.
"""

from __future__ import annotations

import sys

from medreason_dist import pipeline
from medreason_dist.config import Config
from medreason_dist.runner import execute
from medreason_dist.runner.execute import EXIT_MISSING_INPUTS, StageOutcome


def outcome_lines(outcomes: list[StageOutcome]) -> list[str]:
    """The end-of-run table."""
    width = max([len(o.stage) for o in outcomes] + [5])
    lines = ["", "stage".ljust(width) + "  status    rows     secs  details"]
    for o in outcomes:
        rows = "" if o.rows is None else str(o.rows)
        detail = o.detail
        if o.rejects:
            detail = (detail + " " if detail else "") + "rejects: " + ", ".join(
                f"{k}={v}" for k, v in sorted(o.rejects.items()))
        if o.status in ("ran", "skipped"):
            detail = (detail + " " if detail else "") + f"-> {o.output}"
        lines.append(f"{o.stage.ljust(width)}  {o.status:<8}  {rows:>6}  {o.seconds:>6.1f}  {detail}")
    return lines


def print_plan(entries: list[execute.PlanEntry]) -> None:
    width = max([len(e.stage) for e in entries] + [5])
    for e in entries:
        print(f"{e.stage.ljust(width)}  {e.action}")
        for reason in e.reasons:
            print(f"{'':{width}}    - {reason}")


def _terminal_stream(stream):
    """The stream for console lines: None (a copy of the real terminal) when ``stream`` writes to
    fd 1/2, which the console points at the log file; else the stream itself (an embedding
    program's or a test's capture buffer)."""
    try:
        return None if stream.fileno() in (1, 2) else stream
    except (AttributeError, OSError, ValueError):
        return stream


def run_selected(cfg: Config, names: list[str] | None, *, force: bool = False, plan_only: bool = False,
                 verbose: bool = False, stages: list | None = None) -> int:
    """Plan or run stages by name through the runner; returns the exit code.

    A run owns the terminal through a :class:`RunConsole`: engine, Ray and Spark output goes to
    ``<run.log_dir>/run-<time>.log``; the terminal shows stage lines, progress and the table."""
    from medreason_dist.console import RunConsole, default_log_path
    from medreason_dist.ray_runtime import shutdown_if_started

    stages = pipeline.PIPELINE if stages is None else stages  # the LEADS commands pass theirs
    selected = execute.select_stages(stages, names)
    if plan_only:
        entries = execute.plan(cfg, stages, selected, force=force)
        print_plan(entries)
        return EXIT_MISSING_INPUTS if any(e.action == "blocked" for e in entries) else 0
    with RunConsole(default_log_path(cfg.run.log_dir), verbose=verbose, out=_terminal_stream(sys.stdout),
                    err=_terminal_stream(sys.stderr), report_uncaught=True) as console:

        def finished(o: StageOutcome) -> None:
            if o.status == "failed":
                console.stage_failed(o.stage, o.detail)
            else:
                detail = o.detail if o.status != "ran" else ""
                if o.engine_startups:  # the run's shared LLM engine started (or failed to) here
                    detail = ", ".join(f"engine {'up in' if s['ok'] else 'failed after'} {s['seconds']:.0f}s"
                                       for s in o.engine_startups) + (f"; {detail}" if detail else "")
                console.stage_finished(o.stage, o.status, o.rows, o.seconds, detail)

        try:
            outcomes = execute.run_stages(cfg, stages, selected, force=force,
                                          on_start=lambda s: console.stage_started(s.name, s.summary),
                                          on_outcome=finished)
        finally:
            shutdown_if_started()  # inside the console: Ray's last forwarded logs land in the file
        for line in outcome_lines(outcomes):
            console.echo(line)
        for o in outcomes:
            if o.status == "blocked":
                console.echo(f"stage {o.stage} cannot run: {o.detail}", err=True)
    return execute.exit_code(outcomes)


# -- commands ---------------------------------------------------------------------------------
