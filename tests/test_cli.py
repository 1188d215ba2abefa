"""The `medreason-dist` command as a user runs it (in-process for speed, one real subprocess)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from medreason_dist import storage
from medreason_dist.cli import COMMANDS, main

REPO = Path(__file__).resolve().parent.parent


def test_run_on_demo_writes_sources_and_reports_blocked(tmp_path, capsys):
    out = tmp_path / "out"
    # sft's input (train/sft_clean) does not exist: the run says so and exits 3 (missing inputs)
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources,eval_sets", "kg", "sft"]) == 3
    captured = capsys.readouterr()
    assert "sources" in captured.out and "blocked" in captured.out
    assert "sft cannot run: missing inputs: train/sft_clean" in captured.err
    qa = storage.read_table(str(out / "sources" / "qa"))
    quarantine = storage.read_table(str(out / "sources" / "quarantine"))
    assert qa.num_rows == 16 and quarantine.num_rows == 2
    assert sorted(quarantine.column("reason").to_pylist()) == ["answer_not_in_options", "malformed_json"]
    m = storage.read_manifest(str(out / "sources" / "qa"))
    assert m.rejects == {"answer_not_in_options": 1, "malformed_json": 1}
    # second run resumes: nothing is recomputed
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources"]) == 0
    assert "skipped" in capsys.readouterr().out
    assert storage.read_manifest(str(out / "sources" / "qa")).created_at == m.created_at
    # --force recomputes
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources", "--force"]) == 0
    assert "ran" in capsys.readouterr().out


def test_changed_source_file_reruns_stage(tmp_path, capsys):
    src = tmp_path / "qa.jsonl"
    src.write_text((REPO / "medreason_dist/data/demo/qa_sample.jsonl").read_text())
    args = ["sources", "--set", f"run.out={tmp_path / 'o'}", "--set", f"sources.0.path={src}"]
    assert main(args) == 0
    with src.open("a") as f:
        f.write('{"question": "Q?", "options": {"A": "a", "B": "b"}, "answer": "a", "answer_idx": "A"}\n')
    assert main(args) == 0
    assert storage.read_manifest(str(tmp_path / "o/sources/qa")).rows == 17


def test_config_error_exit_code_and_message(capsys):
    assert main(["run", "--set", "spark.masterr=local"]) == 2
    assert "spark.masterr" in capsys.readouterr().err


def test_missing_source_file_names_the_file(tmp_path, capsys):
    missing = tmp_path / "nope.jsonl"
    assert main(["sources", "--set", f"run.out={tmp_path}", "--set", f"sources.0.path={missing}"]) == 2
    assert str(missing) in capsys.readouterr().err


def test_blocked_stage_is_reported_never_faked(tmp_path, capsys):
    assert main(["run", "--set", f"run.out={tmp_path}", "--stages", "generate"]) == 3
    out = capsys.readouterr().out
    assert "generate" in out and "blocked" in out and "reason/prune" in out
    assert not (tmp_path / "reason" / "generate").exists()


def test_unknown_stage_is_a_usage_error_listing_the_stages(tmp_path, capsys):
    assert main(["run", "--set", f"run.out={tmp_path}", "--stages", "nosuchstage"]) == 2
    err = capsys.readouterr().err
    assert "nosuchstage" in err and "sources" in err and "report" in err
    assert not tmp_path.joinpath("sources").exists()


def test_plan_runs_nothing_and_says_why(tmp_path, capsys):
    out = tmp_path / "o"
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources", "--plan"]) == 0
    text = capsys.readouterr().out
    assert "sources  run" in text and "no committed output sources/qa" in text
    assert not out.exists()
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources"]) == 0
    capsys.readouterr()
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources", "--plan"]) == 0
    assert "sources  up to date" in capsys.readouterr().out
    assert main(["run", "--set", f"run.out={out}", "--stages", "sources", "--plan", "--set", "sources.0.limit=3"]) == 0
    text = capsys.readouterr().out
    assert "sources  run" in text and "config sources.0.limit: None -> 3" in text


def test_every_subcommand_has_help():
    expected = {"sources", "models", "kg", "paths", "extract", "link", "reason", "sft", "eval", "report", "run", "graph"}
    assert expected <= set(COMMANDS)
    for name in expected:
        proc = subprocess.run([sys.executable, "-m", "medreason_dist.cli", name, "--help"],
                              capture_output=True, text=True, cwd=REPO)
        assert proc.returncode == 0, proc.stderr
        assert "--config" in proc.stdout and "--set" in proc.stdout


def test_sources_list_adapters(capsys):
    assert main(["sources", "--list"]) == 0
    assert "medmcqa" in capsys.readouterr().out


def test_log_redaction():
    from medreason_dist.logs import redact

    text = redact("key AKIAABCDEFGHIJKLMNOP and api_key=supersecret token: abc")
    assert "AKIA" not in text and "supersecret" not in text and "abc" not in text


def test_kg_ingest_command(tmp_path, capsys):
    assert main(["kg", "ingest", "--set", f"run.out={tmp_path}"]) == 0
    text = capsys.readouterr().out
    assert "nodes" in text and "edges" in text
    assert storage.read_manifest(str(tmp_path / "kg" / "nodes")).rows > 300
    assert main(["kg", "ingest", "--set", f"run.out={tmp_path}", "--source", str(tmp_path / "missing.csv")]) in (1, 2)
