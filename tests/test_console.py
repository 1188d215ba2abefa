"""RunConsole: fd redirection into the run log, one-line failures, progress math, redaction."""

from __future__ import annotations

import io
import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from medreason_dist import console as console_mod
from medreason_dist.console import (
    RunConsole,
    current,
    default_log_path,
    format_duration,
    format_progress,
    format_table,
    progress_stats,
    report_progress,
)
from medreason_dist.logs import redact

REPO = Path(__file__).resolve().parent.parent


def _fd_identity(fd: int) -> tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else -1


class FakeClock:
    def __init__(self, t: float = 100.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


# --------------------------------------------------------------------------------------------
# Redirection


def test_child_process_output_lands_in_the_log_not_on_the_terminal(tmp_path, capfd):
    log_path = tmp_path / "logs" / "run.log"
    with RunConsole(log_path) as console:
        assert current() is console
        subprocess.run(["echo", "engine chatter"], check=True)
        subprocess.run(["sh", "-c", "echo jvm warning >&2"], check=True)
        os.write(1, b"raw fd1 noise\n")
        os.write(2, b"raw fd2 noise\n")
        console.stage_started("extract", "3 questions")
        console.stage_finished("extract", "ok", rows=3, seconds=1.25)
    assert current() is None
    out, err = capfd.readouterr()
    terminal = out + err
    for noise in ("engine chatter", "jvm warning", "raw fd1 noise", "raw fd2 noise"):
        assert noise not in terminal
    text = log_path.read_text()
    for noise in ("engine chatter", "jvm warning", "raw fd1 noise", "raw fd2 noise"):
        assert noise in text
    assert f"log: {log_path.resolve()}" in out.splitlines()[0]
    assert "extract" in out and "started" in out and "3 questions" in out
    assert "ok  3 rows  1.2s" in out or "ok  3 rows  1.3s" in out


def test_fds_and_logging_restored_after_exit(tmp_path, capfd):
    before = (_fd_identity(1), _fd_identity(2))
    fds_before = _open_fds()
    root = logging.getLogger()
    handlers_before, level_before = root.handlers[:], root.level
    with RunConsole(tmp_path / "run.log"):
        assert _fd_identity(1) == _fd_identity(2) == _fd_identity_of(tmp_path / "run.log")
        assert root.handlers != handlers_before
    assert (_fd_identity(1), _fd_identity(2)) == before
    assert root.handlers == handlers_before and root.level == level_before
    assert _open_fds() == fds_before
    os.write(1, b"visible again\n")
    assert "visible again" in capfd.readouterr().out


def _fd_identity_of(path: Path) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_fds_restored_after_an_exception(tmp_path, capfd):
    before = (_fd_identity(1), _fd_identity(2))
    fds_before = _open_fds()
    log_path = tmp_path / "run.log"
    with pytest.raises(RuntimeError, match="disk full"):
        with RunConsole(log_path):
            subprocess.run(["echo", "chatter before the crash"], check=True)
            raise RuntimeError("disk full\nwith a second line")
    assert (_fd_identity(1), _fd_identity(2)) == before
    assert _open_fds() == fds_before
    assert current() is None
    out, err = capfd.readouterr()
    assert "error: RuntimeError: disk full" in err
    assert str(log_path.resolve()) in err
    assert "second line" not in out + err and "Traceback" not in out + err
    text = log_path.read_text()
    assert "chatter before the crash" in text and "Traceback" in text and "second line" in text
    os.write(2, b"stderr is back\n")
    assert "stderr is back" in capfd.readouterr().err


def test_traceback_logged_in_a_successful_block_reaches_only_the_log(tmp_path, capfd):
    log_path = tmp_path / "run.log"
    with RunConsole(log_path):
        try:
            raise ValueError("EngineDeadError-like shutdown noise")
        except ValueError:
            # Neutral names: vllm/ray configure their own (non-propagating) loggers once imported.
            logging.getLogger("engine.core").exception("engine core died")
            logging.getLogger("some.library").error("operator failed", exc_info=True)
            # Our own warning reaches the terminal as one line, without its traceback.
            logging.getLogger("medreason_dist.stages.link").warning("fell back to exact match", exc_info=True)
        logging.getLogger("medreason_dist.pipeline").info("an info line stays in the log")
    out, err = capfd.readouterr()
    terminal = out + err
    assert "Traceback" not in terminal and "engine core died" not in terminal and "operator failed" not in terminal
    assert "an info line" not in terminal
    assert "warning: fell back to exact match" in err and str(log_path.resolve()) in err
    text = log_path.read_text()
    assert text.count("Traceback") == 3
    assert "engine core died" in text and "an info line stays in the log" in text


def test_stage_failed_prints_reason_and_log_path_traceback_only_in_log(tmp_path, capfd):
    log_path = tmp_path / "run.log"
    with pytest.raises(RuntimeError):
        with RunConsole(log_path) as console:
            console.stage_started("link", "120 entities")
            try:
                raise RuntimeError("embedder model not found\nsearched: /models/a, /models/b")
            except RuntimeError as err:
                console.stage_failed("link", err)
                raise
    out, err = capfd.readouterr()
    assert "link" in err and "FAILED" in err and "RuntimeError: embedder model not found" in err
    assert f"full log: {log_path.resolve()}" in err
    assert "searched:" not in out + err and "Traceback" not in out + err
    # Reported once: leaving the block with the same exception adds no second error line.
    assert not [ln for ln in err.splitlines() if ln.startswith("error:")]
    text = log_path.read_text()
    assert "Traceback" in text and "searched: /models/a" in text


def test_stage_failed_with_a_plain_reason_and_no_exception(tmp_path, capfd):
    with RunConsole(tmp_path / "run.log") as console:
        console.stage_failed("verify", "42% of rows rejected (limit 20%)")
        console.table()
    out, err = capfd.readouterr()
    assert "verify" in err and "FAILED" in err and "42% of rows rejected" in err
    assert "FAILED" in out  # the table lists it too


def test_verbose_leaves_fds_alone_and_shows_everything(tmp_path, capfd):
    log_path = tmp_path / "run.log"
    before = (_fd_identity(1), _fd_identity(2))
    with RunConsole(log_path, verbose=True):
        assert (_fd_identity(1), _fd_identity(2)) == before
        subprocess.run(["echo", "engine chatter"], check=True)
        logging.getLogger("engine.config").info("config dump")
    out, err = capfd.readouterr()
    assert "engine chatter" in out
    assert "info: config dump" in err
    assert "config dump" in log_path.read_text()


def test_whole_process_end_to_end(tmp_path):
    """A real interpreter: print(), tracebacks, warnings and children all end up in the log file."""
    log_path = tmp_path / "run.log"
    script = textwrap.dedent(f"""
        import logging, subprocess, sys, traceback, warnings
        from medreason_dist.console import RunConsole, report_progress
        with RunConsole({str(log_path)!r}, progress_interval_s=3600) as c:
            c.stage_started("generate", "2 rows")
            print("vLLM config dump: model=x max_model_len=2048")
            try:
                raise KeyError("resource_tracker")
            except KeyError:
                traceback.print_exc()
            warnings.warn("a deprecation nobody asked for")
            child = "import sys; print('child says hi'); sys.stderr.write('child err\\\\n')"
            subprocess.run([sys.executable, "-c", child])
            report_progress("generate", 1, 2)
            c.stage_finished("generate", "ok", rows=2, seconds=0.5)
        print("after the console")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    terminal = proc.stdout + proc.stderr
    for noise in ("vLLM config dump", "Traceback", "resource_tracker", "deprecation", "child says hi", "child err"):
        assert noise not in terminal
    assert proc.stdout.splitlines()[0] == f"log: {log_path.resolve()}"
    assert "generate" in proc.stdout and "ok  2 rows  0.5s" in proc.stdout
    assert proc.stdout.rstrip().endswith("after the console")
    text = log_path.read_text()
    for noise in ("vLLM config dump", "Traceback", "resource_tracker", "deprecation", "child says hi", "child err"):
        assert noise in text


# --------------------------------------------------------------------------------------------
# Progress


def test_progress_math():
    assert progress_stats(50, 200, 10.0) == (5.0, 30.0)
    assert progress_stats(0, 100, 5.0) == (None, None)
    assert progress_stats(10, 100, 0.0) == (None, None)
    assert progress_stats(100, 100, 4.0) == (25.0, 0.0)
    assert progress_stats(120, 100, 4.0)[1] == 0.0
    assert progress_stats(30, None, 3.0) == (10.0, None)
    assert format_duration(0) == "0:00"
    assert format_duration(30.4) == "0:30"
    assert format_duration(61) == "1:01"
    assert format_duration(3725) == "1:02:05"
    assert format_duration(None) == "?"
    assert format_duration(float("inf")) == "?"


def test_progress_formatting():
    line = format_progress("extract", 50, 200, 10.0)
    assert "50/200 rows (25%)" in line and "5.0 rows/s" in line and "ETA 0:30" in line
    assert line.startswith("extract")
    fast = format_progress("generate", 12_340, 100_000, 10.0)
    assert "12,340/100,000 rows (12%)" in fast and "1,234 rows/s" in fast and "ETA 1:11" in fast
    unknown = format_progress("paths", 7, None, 2.0)
    assert "7 rows" in unknown and "3.5 rows/s" in unknown and "ETA" not in unknown
    assert "? rows/s" in format_progress("x", 0, 10, 1.0) and "ETA ?" in format_progress("x", 0, 10, 1.0)


def test_plain_progress_lines_are_throttled_when_not_a_tty(tmp_path, capfd):
    clock = FakeClock()
    with RunConsole(tmp_path / "run.log", tty=False, progress_interval_s=5.0, clock=clock) as console:
        console.stage_started("generate", "")
        for second in range(13):
            clock.t = 100.0 + second
            for _ in range(3):
                console.progress("generate", second * 10, 120)
    out = capfd.readouterr().out
    lines = [ln for ln in out.splitlines() if "rows/s" in ln]
    assert len(lines) == 2  # at t=5 and t=10, nothing in between
    assert "50/120 rows" in lines[0] and "10 rows/s" in lines[0] and "ETA 0:07" in lines[0]
    assert "\r" not in out


def test_tty_progress_is_one_redrawn_line(tmp_path):
    clock = FakeClock()
    out, err = io.StringIO(), io.StringIO()
    with RunConsole(tmp_path / "run.log", tty=True, out=out, err=err, clock=clock) as console:
        console.stage_started("extract", "100 rows")
        for i in range(1, 6):
            clock.t += 1.0
            console.progress("extract", i * 20, 100)
        console.stage_finished("extract", "ok", rows=100)
    text = out.getvalue()
    progress_part = text.split("started  100 rows\n", 1)[1].split("\r\x1b[K", )
    assert text.count("\r") >= 5
    assert "\n" not in "".join(progress_part[:-1])  # redraws, no new lines
    assert "100/100 rows (100%)" in text
    assert text.rstrip().endswith("ok  100 rows  5.0s")


def test_report_progress_without_console_is_a_noop():
    assert current() is None
    report_progress("extract", 1, 10)  # nothing happens, nothing raises


def test_report_progress_reaches_the_active_console(tmp_path):
    out = io.StringIO()
    with RunConsole(tmp_path / "run.log", out=out, err=io.StringIO(), tty=False, progress_interval_s=0.0):
        report_progress("eval", 3, 4)
    assert "3/4 rows (75%)" in out.getvalue()


# --------------------------------------------------------------------------------------------
# Redaction, table, paths


def test_secrets_are_redacted_in_the_log_file(tmp_path, capfd):
    log_path = tmp_path / "run.log"
    with RunConsole(log_path) as console:
        logging.getLogger("medreason_dist.llm").warning("sending headers {'Authorization': 'Bearer hk-live-123456'}")
        logging.getLogger("botocore").error("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG key AKIAABCDEFGHIJKLMNOP")
        try:
            raise RuntimeError("call failed with api_key=sk-abcdefghijklmnopqrstu")
        except RuntimeError as err:
            console.stage_failed("generate", err)
    out, err = capfd.readouterr()
    text = log_path.read_text()
    for secret in ("hk-live-123456", "wJalrXUtnFEMI", "AKIAABCDEFGHIJKLMNOP", "sk-abcdefghijklmnopqrstu"):
        assert secret not in text and secret not in out + err
    assert "Bearer ***" in text and "Bearer ***" in err


def test_redact_masks_bearer_tokens():
    assert redact("Authorization: Bearer abc.def-ghi") == "Authorization: Bearer ***"
    assert redact('{"Authorization": "Bearer xyz", "n": 1}') == '{"Authorization": "Bearer ***", "n": 1}'
    assert redact("curl -H 'authorization: bearer tok123'") == "curl -H 'authorization: bearer ***'"
    assert redact("token: abc and password=hunter2") == "token: *** and password=***"
    # Token counts are not secrets.
    assert redact("max_tokens: 32 input_tokens=5") == "max_tokens: 32 input_tokens=5"


def test_table_alignment():
    lines = format_table([
        {"stage": "extract", "status": "ok", "rows": 2000, "seconds": 57.14},
        {"stage": "link", "status": "FAILED", "rows": None, "seconds": 3.0},
    ])
    assert lines[0].split() == ["stage", "status", "rows", "seconds"]
    assert lines[1].split() == ["extract", "ok", "2,000", "57.1"]
    assert lines[2].split() == ["link", "FAILED", "-", "3.0"]
    assert len({len(ln) for ln in lines}) == 1  # right-aligned numbers end in the same column
    assert format_table([]) == []


def test_default_log_path_is_timestamped_and_unique(tmp_path):
    first = default_log_path(tmp_path, now=0)
    assert first.parent == tmp_path and first.name.startswith("run-19") and first.suffix == ".log"
    first.write_text("")
    second = default_log_path(tmp_path, now=0)
    assert second != first and second.name.endswith("-2.log")


def test_console_is_not_reentrant(tmp_path):
    console = RunConsole(tmp_path / "run.log", out=io.StringIO(), err=io.StringIO())
    with console:
        with pytest.raises(RuntimeError):
            console.__enter__()
    assert console_mod.current() is None


# --------------------------------------------------------------------------------------------
# Engine settings


def test_ray_worker_env_quiets_vllm_unless_verbose_or_set(monkeypatch):
    from medreason_dist.ray_runtime import worker_env

    monkeypatch.delenv("VLLM_LOGGING_LEVEL", raising=False)
    monkeypatch.delenv("VLLM_DISABLE_LOG_LOGO", raising=False)
    assert worker_env()["VLLM_LOGGING_LEVEL"] == "WARNING"
    assert worker_env(verbose=True) == {}
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    assert "VLLM_LOGGING_LEVEL" not in worker_env()  # the driver's own setting wins (inherited)


def test_failure_line_names_the_workers_error_not_rays_wrapper():
    from medreason_dist.console import one_line

    # Shaped like Ray's wrappers: a RayTaskError whose message is the remote traceback, its
    # ``cause`` a UserCodeException raised from the stage's own error.
    wrapper_types = {name: type(name, (Exception,), {"__module__": "ray.exceptions"})
                     for name in ("RayTaskError", "UserCodeException")}
    own = ValueError("stage prune: shard 1 has duplicate 'key' values")
    user = wrapper_types["UserCodeException"]("UDF failed to process a data block.")
    user.__cause__ = own
    task = wrapper_types["RayTaskError"]("ray::MapWorker(...).submit() (pid=1)\n  File ...\n" * 20)
    task.cause = user
    assert one_line(task) == "ValueError: stage prune: shard 1 has duplicate 'key' values"
    mine = RuntimeError("config key llm.model is wrong")
    mine.__cause__ = own  # the project's own wrapping keeps its own message
    assert one_line(mine) == "RuntimeError: config key llm.model is wrong"
