"""Follow a submitted job until it ends, on one progress line (state and elapsed time)."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Callable, TextIO

from medreason_dist.console import format_duration
from medreason_dist.logs import redact


@dataclass(frozen=True)
class JobState:
    state: str          # the cloud's own word (SUCCESS, SUCCEEDED, Running/RUNNING, ...)
    done: bool          # a final state
    ok: bool = False    # finished successfully (only meaningful when done)
    message: str = ""   # the cloud's explanation, when it gives one


@dataclass(frozen=True)
class Submitted:
    label: str                      # e.g. "emr job run"
    job_id: str
    poll: Callable[[], JobState]


def wait(job: Submitted, *, interval_s: float, out: TextIO | None = None, tty: bool | None = None,
         plain_every_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
         sleep: Callable[[float], None] = time.sleep) -> tuple[JobState, float]:
    """Poll until a final state; returns it with the seconds waited.

    A terminal gets one redrawn line; a pipe or log file gets a line when the state changes and
    otherwise at most every ``plain_every_s``, so CI logs stay short on hour-long jobs."""
    out = out or sys.stderr
    if tty is None:
        try:
            tty = out.isatty()
        except (AttributeError, ValueError):
            tty = False
    start = clock()
    last_state, last_line = None, -plain_every_s
    while True:
        st = job.poll()
        elapsed = clock() - start
        line = f"{job.label} {job.job_id}  {st.state}  {format_duration(elapsed)}"
        if tty:
            out.write("\r" + line + "\x1b[K")
            if st.done:
                out.write("\n")
        elif st.state != last_state or elapsed - last_line >= plain_every_s or st.done:
            out.write(line + "\n")
            last_line = elapsed
        out.flush()
        last_state = st.state
        if st.done:
            return JobState(st.state, True, st.ok, redact(st.message or "")), elapsed
        sleep(interval_s)
