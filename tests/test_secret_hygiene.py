"""An API key given to the HTTP engine profile appears nowhere a run leaves things behind: the run
log, Ray's session logs, manifests, datasets, the report, the terminal, error messages."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from fake_openai import FakeOpenAI

REPO = Path(__file__).resolve().parent.parent


def _ray_sessions() -> set[Path]:
    root = Path("/tmp/ray")
    return {p.resolve() for p in root.glob("session_2*")} if root.exists() else set()


def _files_containing(needle: bytes, roots: list[Path]) -> list[str]:
    hits = []
    for root in roots:
        for path in [root] if root.is_file() else root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    if needle in path.read_bytes():
                        hits.append(str(path))
                except OSError:
                    continue
    return hits


@pytest.mark.slow
def test_api_key_is_in_no_log_manifest_dataset_report_or_error(tmp_path):
    key = "mrkey" + uuid.uuid4().hex  # no pattern a redactor knows: it must simply never be written
    wrong = "mrkey" + uuid.uuid4().hex
    before = _ray_sessions()
    runs = []
    with FakeOpenAI(api_key=key) as server:
        for name, secret in (("ok", key), ("unauthorized", wrong)):
            out = tmp_path / name
            args = [sys.executable, "-m", "medreason_dist.cli", "run", "--stages", "sources,extract,report",
                    "--set", f"run.out={out}", "--set", f"run.log_dir={tmp_path / 'logs'}",
                    "--set", "llm.profile=http", "--set", f"llm.http.base_url={server.base_url}",
                    "--set", "llm.http.api_key_env=MR_TEST_API_KEY", "--set", "llm.http.tokenizer=null",
                    "--set", "llm.http.max_retries=0", "--set", "reason.limit=4", "--set", "ray.num_cpus=2"]
            env = dict(os.environ, MR_TEST_API_KEY=secret)
            proc = subprocess.run(args, cwd=REPO, env=env, capture_output=True, timeout=900)
            runs.append((name, proc))
    ok, unauthorized = runs[0][1], runs[1][1]
    assert ok.returncode == 0, ok.stderr.decode()[-3000:]
    from medreason_dist import storage

    extracted = storage.read_manifest(str(tmp_path / "ok" / "reason" / "extract"))
    assert extracted.rows == 4  # the key worked: every row answered
    # with the wrong key every row is rejected with the endpoint's error, and the run still ends
    rejects = storage.read_table(str(tmp_path / "unauthorized" / "reason" / "extract_rejects"))
    assert rejects.num_rows == 4 and set(rejects.column("reason").to_pylist()) == {"engine_error"}
    assert (tmp_path / "ok" / "report" / "index.html").is_file()

    sessions = sorted(_ray_sessions() - before)
    assert sessions, "the runs' Ray session folders were not found"
    roots = [tmp_path, *sessions]
    for secret in (key, wrong):
        assert _files_containing(secret.encode(), roots) == []
        for _, proc in runs:
            assert secret.encode() not in proc.stdout + proc.stderr
    assert list((tmp_path / "logs").glob("run-*.log"))
