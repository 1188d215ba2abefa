"""The fake OpenAI-compatible endpoint: schema-valid, deterministic answers, auth, script form."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI, instance_of
from net_helpers import free_port, wait_for_port
from pydantic import BaseModel

from medreason_dist.llm import schemas

HERE = Path(__file__).resolve().parent
OUTPUT_MODELS = [
    obj for _, obj in inspect.getmembers(schemas, inspect.isclass)
    if issubclass(obj, BaseModel) and obj.__module__ == schemas.__name__ and not obj.__name__.startswith("_")
]


def _post(url: str, body: dict, key: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    req = urllib.request.Request(url + "/chat/completions", data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _request(model: type[BaseModel] | None, question: str = "Which organ produces insulin?") -> dict:
    body = {"model": "hosted-model", "temperature": 0.0, "max_tokens": 64,
            "messages": [{"role": "system", "content": "Answer in JSON."}, {"role": "user", "content": question}]}
    if model is not None:
        body["response_format"] = {"type": "json_schema",
                                   "json_schema": {"name": "step", "schema": model.model_json_schema(), "strict": True}}
    return body


@pytest.fixture(scope="module")
def server():
    with FakeOpenAI() as fake:
        yield fake


def test_extract_schema_answer_validates(server):
    status, resp = _post(server.base_url, _request(schemas.ExtractedEntities))
    assert status == 200
    content = resp["choices"][0]["message"]["content"]
    parsed = schemas.ExtractedEntities.model_validate_json(content)
    assert len(parsed.question_entities) == 1 and len(parsed.answer_entities) == 1
    assert resp["choices"][0]["finish_reason"] == "stop"
    usage = resp["usage"]
    assert usage["prompt_tokens"] > 0 and usage["completion_tokens"] > 0
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


@pytest.mark.parametrize("model", OUTPUT_MODELS, ids=lambda m: m.__name__)
def test_every_output_model_gets_a_valid_answer(server, model):
    assert OUTPUT_MODELS, "no pydantic models found in medreason_dist.llm.schemas"
    status, resp = _post(server.base_url, _request(model))
    assert status == 200, resp
    model.model_validate_json(resp["choices"][0]["message"]["content"])


def test_same_request_same_answer(server):
    body = _request(schemas.GeneratedReasoning)
    first, second = _post(server.base_url, body)[1], _post(server.base_url, body)[1]
    assert first == second
    other = _post(server.base_url, _request(schemas.GeneratedReasoning, "Which vitamin prevents scurvy?"))[1]
    assert other["choices"][0]["message"]["content"] != first["choices"][0]["message"]["content"]


def test_plain_text_without_schema(server):
    status, resp = _post(server.base_url, _request(None, "Explain step by step."))
    assert status == 200
    text = resp["choices"][0]["message"]["content"]
    assert text and not text.startswith("{")
    assert resp["model"] == "hosted-model"


def test_malformed_requests_get_400(server):
    assert _post(server.base_url, {"model": "m"})[0] == 400
    assert _post(server.base_url, {"model": "m", "messages": [], "stream": True})[0] == 400


def test_bearer_key_is_checked_and_never_echoed():
    key = "fk-test-key-123456"
    with FakeOpenAI(api_key=key) as fake:
        body = _request(schemas.ChosenOption)
        for sent in (None, "wrong-key"):
            status, resp = _post(fake.base_url, body, sent)
            assert status == 401 and key not in json.dumps(resp)
        status, resp = _post(fake.base_url, body, key)
        assert status == 200 and key not in json.dumps(resp)
        assert schemas.ChosenOption.model_validate_json(resp["choices"][0]["message"]["content"]).answer == "A"
        assert key not in repr(fake)
        assert fake.requests == 1


def test_instance_of_handles_refs_anyof_enums_arrays_and_patterns():
    schema = {
        "$defs": {"Kind": {"enum": ["drug", "disease"]},
                  "Item": {"type": "object", "properties": {"kind": {"$ref": "#/$defs/Kind"}}, "required": ["kind"]}},
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 2},
            "maybe": {"anyOf": [{"type": "integer", "minimum": 3}, {"type": "null"}]},
            "code": {"type": "string", "pattern": "^[A-Z]$"},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
            "fixed": {"const": "v1"},
            "none": {"type": "array", "maxItems": 0},
            "optional": {"type": "string"},
        },
        "required": ["items", "maybe", "code", "ratio", "fixed", "none"],
    }
    got = instance_of(schema, seed="s")
    assert got["items"] == [{"kind": "drug"}, {"kind": "drug"}]
    assert got["maybe"] == 3 and got["code"] == "A" and 0 < got["ratio"] <= 1
    assert got["fixed"] == "v1" and got["none"] == [] and "optional" not in got
    assert instance_of(schema, seed="s") == got


def test_script_form_serves_on_the_given_port():
    port = free_port()
    env = {**os.environ, "FAKE_KEY": "script-key-1"}
    cmd = [sys.executable, str(HERE / "fake_openai.py"), "--port", str(port), "--api-key-env", "FAKE_KEY"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for_port(port, 20, proc=proc), proc.stderr.read() if proc.poll() is not None else "no port"
        status, resp = _post(f"http://127.0.0.1:{port}/v1", _request(schemas.JudgeVerdict), "script-key-1")
        assert status == 200 and schemas.JudgeVerdict.model_validate_json(resp["choices"][0]["message"]["content"])
        assert _post(f"http://127.0.0.1:{port}/v1", _request(schemas.JudgeVerdict))[0] == 401
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0
    assert f"127.0.0.1:{port}/v1" in out
    assert "script-key-1" not in out + err
