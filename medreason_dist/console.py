"""What a run shows on the terminal: stage lines, one progress line, a table; the rest goes to a log file.

A :class:`RunConsole` owns the terminal for the length of a run. Unless ``verbose``, it points the
process's file descriptors 1 and 2 at the run's log file (``os.dup2``), so everything written by
this process *or by a child started later* — Spark's JVM, Ray's local processes, the worker logs
Ray forwards to the driver, tqdm bars, vLLM's prints, tracebacks printed by libraries at
shutdown — lands in the file, while the console keeps a duplicate of the original terminal
descriptors for its own lines. Python ``logging`` goes to the file (secrets masked); only
warnings and errors from ``medreason_dist.*`` also reach the terminal, as one line each. On exit
the descriptors and the logging setup are restored, also after an exception.

Typical use::

    with RunConsole(default_log_path(log_dir), verbose=args.verbose) as console:
        console.stage_started("extract", "2,000 questions")
        ...                                  # anywhere in the driver: report_progress("extract", n, 2000)
        console.stage_finished("extract", "ok", rows=2000, seconds=57.1)
        console.table()

Note: ``print()`` inside the block goes to the log file too (it writes to fd 1); use
:meth:`RunConsole.echo` for lines meant for the terminal.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TextIO

from medreason_dist.logs import RedactingFormatter, redact

log = logging.getLogger(__name__)

# Loggers that are chatty at INFO/DEBUG and add nothing to a run log.
NOISY_LOGGERS = ("py4j", "py4j.clientserver", "urllib3", "botocore", "s3transfer", "filelock", "fsspec",
                 "asyncio", "matplotlib", "PIL")

FILE_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# Set while fds point at the log file (unless already set): no ANSI colour codes in the file.
# RAY_COLOR_PREFIX=0: Ray's driver prints forwarded worker lines without the coloured "(pid=...)".
FILE_ENV = {"RAY_COLOR_PREFIX": "0"}
_NAME_WIDTH = 10
# Redraw a TTY progress line at most this often.
_TTY_REDRAW_S = 0.1

_stack: list["RunConsole"] = []
_stack_lock = threading.Lock()


# --------------------------------------------------------------------------------------------
# Module-level access for code that does not hold the console object


def current() -> "RunConsole | None":
    """The innermost active console, or None outside any ``with RunConsole(...)`` block."""
    with _stack_lock:
        return _stack[-1] if _stack else None


def report_progress(stage: str, done: int, total: int | None = None) -> None:
    """Progress of ``stage`` on the active console; a no-op when there is none."""
    console = current()
    if console is not None:
        console.progress(stage, done, total)


def echo(text: str, *, err: bool = False) -> None:
    """A line for the terminal: through the active console, else plain ``print``."""
    console = current()
    if console is not None:
        console.echo(text, err=err)
    else:
        print(text, file=sys.stderr if err else sys.stdout, flush=True)


# --------------------------------------------------------------------------------------------
# Pure formatting helpers


def default_log_path(log_dir: str | os.PathLike, now: float | None = None) -> Path:
    """``<log_dir>/run-YYYYmmddTHHMMSS.log`` (local time), with ``-2``, ``-3``... if taken."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.localtime(time.time() if now is None else now))
    base = Path(log_dir)
    path = base / f"run-{stamp}.log"
    n = 2
    while path.exists():
        path = base / f"run-{stamp}-{n}.log"
        n += 1
    return path


def progress_stats(done: int, total: int | None, elapsed_s: float) -> tuple[float | None, float | None]:
    """``(rows per second, seconds left)``; either is None when it cannot be known yet."""
    rate = done / elapsed_s if elapsed_s > 0 and done > 0 else None
    if total is None:
        return rate, None
    if done >= total:
        return rate, 0.0
    if rate is None:
        return None, None
    return rate, (total - done) / rate


def format_duration(seconds: float | None) -> str:
    """``M:SS`` below an hour, ``H:MM:SS`` above; ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "?"
    s = int(round(max(seconds, 0.0)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def format_rate(rate: float | None) -> str:
    if rate is None:
        return "? rows/s"
    return f"{rate:.1f} rows/s" if rate < 10 else f"{rate:,.0f} rows/s"


def format_progress(stage: str, done: int, total: int | None, elapsed_s: float) -> str:
    """``extract    1,200/2,000 rows (60%)  35.2 rows/s  ETA 0:23``."""
    rate, eta = progress_stats(done, total, elapsed_s)
    if total:
        counts = f"{done:,}/{total:,} rows ({min(done / total, 1.0):.0%})"
    elif total == 0:
        counts = f"{done:,}/0 rows"
    else:
        counts = f"{done:,} rows"
    parts = [f"{stage:<{_NAME_WIDTH}}", counts, format_rate(rate)]
    if total is not None:
        parts.append(f"ETA {format_duration(eta)}")
    return "  ".join(parts)


def user_error(exc: BaseException) -> BaseException:
    """The error a worker raised, out of Ray's wrappers (``RayTaskError`` -> ``UserCodeException``
    -> the stage's own exception), whose messages are whole remote tracebacks."""
    seen = set()
    while type(exc).__module__.startswith("ray.") and id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "cause", None) or exc.__cause__
        if not isinstance(inner, BaseException):
            break
        exc = inner
    return exc


def one_line(reason: Any, limit: int = 300) -> str:
    """A failure reason as one redacted line: ``Type: first line of the message``."""
    if isinstance(reason, BaseException):
        reason = user_error(reason)
        text = str(reason).strip()
        first = text.splitlines()[0] if text else ""
        line = f"{type(reason).__name__}: {first}" if first else type(reason).__name__
    else:
        lines = str(reason).strip().splitlines()
        line = lines[0] if lines else ""
    line = redact(line)
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.1f}"
    return redact(str(value))


def format_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None) -> list[str]:
    """Aligned text lines (header first); numbers right-aligned, None shown as ``-``."""
    if not rows:
        return []
    if columns is None:
        seen: dict[str, None] = {}
        for row in rows:
            for key in row:
                seen.setdefault(key, None)
        columns = list(seen)
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    numeric = [all(isinstance(row.get(c), (int, float)) or row.get(c) is None for row in rows) for c in columns]
    widths = [max(len(str(c)), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]

    def fmt(values: Sequence[str]) -> str:
        out = [v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric)]
        return "  ".join(out).rstrip()

    return [fmt([str(c) for c in columns])] + [fmt(r) for r in cells]


# --------------------------------------------------------------------------------------------
# Logging handlers


class _ConsoleHandler(logging.Handler):
    """Warnings for the terminal: one line, no traceback (that is in the log file)."""

    def __init__(self, console: "RunConsole", verbose: bool):
        super().__init__(logging.DEBUG if verbose else logging.WARNING)
        self._console = console
        self._verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "mr_console", False):
            return False  # the console printed it itself
        if not self._verbose and not (record.name == "medreason_dist" or record.name.startswith("medreason_dist.")):
            return False
        return super().filter(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = redact(record.getMessage())
            lines = text.splitlines() or [""]
            line = lines[0]
            if (record.exc_info or len(lines) > 1) and not self._verbose:
                line += f"  (details in {self._console.log_path})"
            if self._verbose and record.exc_info:
                line = text + "\n" + redact("".join(traceback.format_exception(*record.exc_info))).rstrip()
            self._console._write(f"{record.levelname.lower()}: {line}", err=True)
        except Exception:  # pragma: no cover - logging must never raise
            self.handleError(record)


@dataclass
class _Stage:
    started: float | None = None
    done: int = 0
    total: int | None = None
    last_draw: float = 0.0


# --------------------------------------------------------------------------------------------
# The console


class RunConsole:
    """Terminal output and log file of one run; use as a context manager.

    Args:
        log_path: the run's log file (parents are created; appended to if it exists).
        verbose: leave fds 1/2 alone and show every log record on the terminal as well.
        tty: whether the terminal is interactive (default: ``isatty`` of the original fd 1);
            decides between one redrawn progress line and occasional plain lines.
        progress_interval_s: at most one plain progress line this often (non-TTY or verbose).
        out, err: text streams for the console's own lines instead of duplicates of the
            original fds 1 and 2 (embedding, tests).
        report_uncaught: on an exception leaving the block, print a one-line error with the log
            path (unless :meth:`stage_failed` already reported that exception).
        clock: monotonic time source (tests).
    """

    def __init__(
        self,
        log_path: str | os.PathLike,
        *,
        verbose: bool = False,
        tty: bool | None = None,
        progress_interval_s: float = 5.0,
        out: TextIO | None = None,
        err: TextIO | None = None,
        report_uncaught: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.log_path = Path(log_path).expanduser().resolve()
        self.verbose = verbose
        self.progress_interval_s = progress_interval_s
        self.report_uncaught = report_uncaught
        self._tty_arg = tty
        self._out_arg, self._err_arg = out, err
        self._clock = clock
        self._lock = threading.RLock()
        self._stages: dict[str, _Stage] = {}
        self.results: list[dict[str, Any]] = []
        self._active = False
        self._live_line = False
        self._last_plain = 0.0
        self._reported: set[int] = set()
        # set in __enter__
        self._out: TextIO | None = None
        self._err: TextIO | None = None
        self._owned_streams: list[TextIO] = []
        self._saved_fds: dict[int, int] = {}
        self._log_fd: int | None = None
        self._file_handler: logging.Handler | None = None
        self._console_handler: logging.Handler | None = None
        self._saved_logging: dict[str, Any] = {}
        self._set_env: list[str] = []
        self.tty = False

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> "RunConsole":
        if self._active:
            raise RuntimeError("RunConsole is not reentrant")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        _flush_std()
        try:
            self._out = self._out_arg or self._dup_stream(1)
            self._err = self._err_arg or self._dup_stream(2)
            if self._tty_arg is not None:
                self.tty = self._tty_arg
            else:
                try:
                    self.tty = self._out.isatty()
                except (AttributeError, ValueError, OSError):
                    self.tty = False
            self._log_fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if not self.verbose:
                for fd in (1, 2):
                    self._saved_fds[fd] = os.dup(fd)
                    os.dup2(self._log_fd, fd)
                for key, value in FILE_ENV.items():
                    if key not in os.environ:
                        os.environ[key] = value
                        self._set_env.append(key)
            self._setup_logging()
        except BaseException:
            self._teardown()
            raise
        self._active = True
        with _stack_lock:
            _stack.append(self)
        log.info("run log opened (verbose=%s, tty=%s, pid=%d)", self.verbose, self.tty, os.getpid(),
                 extra={"mr_console": True})
        self._write(f"log: {self.log_path}")
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        try:
            if exc is not None and not isinstance(exc, (SystemExit, GeneratorExit)):
                log.error("run ended with an exception", exc_info=(exc_type, exc, tb), extra={"mr_console": True})
                if self.report_uncaught and id(exc) not in self._reported:
                    if isinstance(exc, KeyboardInterrupt):
                        self._write("interrupted", err=True)
                    else:
                        self._write(f"error: {one_line(exc)}", err=True)
                    self._write(f"  full log: {self.log_path}", err=True)
            self._clear_live()
        finally:
            with _stack_lock:
                if self in _stack:
                    _stack.remove(self)
            self._active = False
            self._teardown()
        return False

    def _dup_stream(self, fd: int) -> TextIO:
        stream = os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")
        self._owned_streams.append(stream)
        return stream

    def _setup_logging(self) -> None:
        root = logging.getLogger()
        self._saved_logging = {
            "handlers": root.handlers[:],
            "level": root.level,
            "noisy": {name: logging.getLogger(name).level for name in NOISY_LOGGERS},
            "warnings": getattr(logging, "_warnings_showwarning", None) is not None,
        }
        file_handler = logging.FileHandler(self.log_path, mode="a", encoding="utf-8")
        file_handler.setFormatter(RedactingFormatter(FILE_FORMAT))
        self._file_handler = file_handler
        self._console_handler = _ConsoleHandler(self, self.verbose)
        root.handlers[:] = [file_handler, self._console_handler]
        root.setLevel(logging.DEBUG if self.verbose else logging.INFO)
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.captureWarnings(True)

    def _teardown(self) -> None:
        """Undo whatever __enter__ did, in reverse; safe to call after a partial setup."""
        if self._saved_logging:
            root = logging.getLogger()
            root.handlers[:] = self._saved_logging["handlers"]
            root.setLevel(self._saved_logging["level"])
            for name, level in self._saved_logging["noisy"].items():
                logging.getLogger(name).setLevel(level)
            if not self._saved_logging["warnings"]:
                logging.captureWarnings(False)
            self._saved_logging = {}
        if self._file_handler is not None:
            self._file_handler.close()
            self._file_handler = None
        self._console_handler = None
        _flush_std()
        for fd, saved in list(self._saved_fds.items()):
            try:
                os.dup2(saved, fd)
            finally:
                os.close(saved)
                del self._saved_fds[fd]
        for key in self._set_env:
            os.environ.pop(key, None)
        self._set_env.clear()
        if self._log_fd is not None:
            os.close(self._log_fd)
            self._log_fd = None
        for stream in self._owned_streams:
            try:
                stream.close()
            except OSError:
                pass
        self._owned_streams.clear()
        self._out = self._err = None

    # -- terminal output ---------------------------------------------------------------------

    def _write(self, line: str, *, err: bool = False) -> None:
        with self._lock:
            stream = self._err if err else self._out
            if stream is None:
                return
            try:
                if self._live_line and self._out is not None:
                    self._out.write("\r\x1b[K")
                    self._out.flush()
                    self._live_line = False
                stream.write(line + "\n")
                stream.flush()
            except (OSError, ValueError):
                pass  # the terminal went away (closed pipe): the log file still has everything

    def _clear_live(self) -> None:
        with self._lock:
            if self._live_line and self._out is not None:
                try:
                    self._out.write("\r\x1b[K")
                    self._out.flush()
                except (OSError, ValueError):
                    pass
                self._live_line = False

    def _columns(self) -> int:
        try:
            return os.get_terminal_size(self._out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 100

    def echo(self, text: str, *, err: bool = False) -> None:
        """Print lines on the terminal (and copy them into the log)."""
        for line in str(text).splitlines() or [""]:
            log.info("%s", line, extra={"mr_console": True})
            self._write(line, err=err)

    # -- stages ------------------------------------------------------------------------------

    def _stage(self, name: str) -> _Stage:
        st = self._stages.get(name)
        if st is None:
            st = self._stages[name] = _Stage()
        return st

    def stage_started(self, name: str, summary: str = "") -> None:
        """A stage begins: one line ``name  summary``; starts its clock for rates and durations."""
        with self._lock:
            st = self._stages[name] = _Stage(started=self._clock())
            st.last_draw = 0.0
        text = f"{name:<{_NAME_WIDTH}}  started" + (f"  {summary}" if summary else "")
        log.info("stage %s started%s", name, f": {summary}" if summary else "", extra={"mr_console": True})
        self._write(text.rstrip())

    def progress(self, name: str, done: int, total: int | None = None) -> None:
        """Rows done so far. TTY: one redrawn line; otherwise a plain line at most every few seconds."""
        now = self._clock()
        with self._lock:
            st = self._stage(name)
            if st.started is None:
                st.started = now
            st.done, st.total = int(done), (None if total is None else int(total))
            elapsed = now - st.started
            line = format_progress(name, st.done, st.total, elapsed)
            if self.tty and not self.verbose:
                if now - st.last_draw < _TTY_REDRAW_S and not (st.total is not None and st.done >= st.total):
                    return
                st.last_draw = now
                width = max(self._columns() - 1, 20)
                try:
                    self._out.write("\r" + line[:width] + "\x1b[K")
                    self._out.flush()
                    self._live_line = True
                except (OSError, ValueError, AttributeError):
                    pass
                if now - max(self._last_plain, st.started) >= self.progress_interval_s:
                    self._last_plain = now
                    log.info("progress %s", line.strip(), extra={"mr_console": True})
                return
            if now - max(self._last_plain, st.started) < self.progress_interval_s:
                return
            self._last_plain = now
        log.info("progress %s", line.strip(), extra={"mr_console": True})
        self._write(line)

    def stage_finished(
        self,
        name: str,
        status: str = "ok",
        rows: int | None = None,
        seconds: float | None = None,
        detail: str | None = None,
    ) -> None:
        """A stage ends (``ok``, ``skipped``, ``up to date``...): one line with rows, time and detail."""
        with self._lock:
            st = self._stages.get(name)
            if seconds is None and st is not None and st.started is not None:
                seconds = self._clock() - st.started
        parts = [f"{name:<{_NAME_WIDTH}}", status]
        if rows is not None:
            parts.append(f"{rows:,} rows")
        if seconds is not None:
            parts.append(f"{seconds:.1f}s")
        if detail:
            parts.append(redact(detail))
        self.results.append({"stage": name, "status": status, "rows": rows,
                             "seconds": None if seconds is None else round(seconds, 1), "detail": detail})
        log.info("stage %s %s rows=%s seconds=%s %s", name, status, rows,
                 None if seconds is None else round(seconds, 2), detail or "", extra={"mr_console": True})
        self._write("  ".join(parts))

    def stage_failed(self, name: str, reason: Any, *, exc: BaseException | None = None) -> None:
        """A stage failed: the terminal gets the stage, a one-line reason and the log path; the log
        gets the full traceback (of ``exc``, of ``reason`` if it is an exception, or of the
        exception being handled)."""
        if exc is None:
            exc = reason if isinstance(reason, BaseException) else sys.exc_info()[1]
        with self._lock:
            st = self._stages.get(name)
            seconds = self._clock() - st.started if st is not None and st.started is not None else None
        reason_line = one_line(reason)
        if exc is not None:
            self._reported.add(id(exc))
            log.error("stage %s failed: %s", name, reason_line,
                      exc_info=(type(exc), exc, exc.__traceback__), extra={"mr_console": True})
        else:
            log.error("stage %s failed: %s", name, reason_line, extra={"mr_console": True})
        self.results.append({"stage": name, "status": "FAILED", "rows": None,
                             "seconds": None if seconds is None else round(seconds, 1), "detail": reason_line})
        self._write(f"{name:<{_NAME_WIDTH}}  FAILED  {reason_line}", err=True)
        self._write(f"{'':<{_NAME_WIDTH}}  full log: {self.log_path}", err=True)

    def table(self, rows: Sequence[Mapping[str, Any]] | None = None, columns: Sequence[str] | None = None) -> None:
        """Print an aligned table (default: the stages finished/failed so far)."""
        if rows is None:
            rows = self.results
            columns = columns or ["stage", "status", "rows", "seconds", "detail"]
        for line in format_table(rows, columns):
            log.info("%s", line, extra={"mr_console": True})
            self._write(line)


def _flush_std() -> None:
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            if stream is not None:
                stream.flush()
        except (OSError, ValueError):
            pass
