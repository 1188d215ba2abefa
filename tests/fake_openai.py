"""A fast, deterministic, dependency-free OpenAI-compatible chat endpoint on loopback.

For tests and benchmarks of the ``http`` LLM profile: ``POST /v1/chat/completions`` answers

* with JSON that is valid for ``response_format.json_schema.schema`` when a schema is given
  (a minimal instance: required properties only, enums/anyOf/oneOf -> first choice, arrays with
  one item, ``$ref``/``$defs`` resolved, string/number bounds and simple patterns honoured),
* ``{}`` for ``response_format: {"type": "json_object"}``,
* otherwise a short plain-text answer,

always the same answer for the same request, with ``usage`` token counts (whitespace words).
An optional ``answer`` function (request body -> content string, or None for the default
answer) lets a test or benchmark give content-aware answers (e.g. entities named in the prompt).
With ``api_key`` set, requests need ``Authorization: Bearer <api_key>`` (else 401); the key is
never logged, echoed or stored anywhere but the server object. ``GET /v1/models`` and
``GET /health`` exist for readiness checks.

In-process::

    with FakeOpenAI(api_key="k") as server:
        base_url = server.base_url            # http://127.0.0.1:<port>/v1

As a process (the key comes from an environment variable, not argv)::

    FAKE_OPENAI_KEY=k python tests/fake_openai.py --port 8765 --api-key-env FAKE_OPENAI_KEY
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

CREATED = 1_700_000_000  # a fixed timestamp keeps whole responses deterministic


# --------------------------------------------------------------------------------------------
# Minimal valid instances of a JSON schema


class SchemaError(ValueError):
    pass


_PATTERN_CANDIDATES = ("A", "a", "0", "x", "A1", "abc", "ABC", "2024-01-01", "a@example.com", "https://example.com")
_FORMATS = {
    "date-time": "2024-01-01T00:00:00Z",
    "date": "2024-01-01",
    "time": "00:00:00",
    "email": "a@example.com",
    "uri": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
}


def _resolve_ref(ref: str, root: dict) -> dict:
    if not ref.startswith("#"):
        raise SchemaError(f"only local $ref supported, got {ref!r}")
    node: Any = root
    for part in ref.lstrip("#").split("/"):
        if not part:
            continue
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise SchemaError(f"unresolvable $ref {ref!r}")
        node = node[part]
    return node


def _string(schema: dict, seed: str, hint: str) -> str:
    if "format" in schema and schema["format"] in _FORMATS:
        return _FORMATS[schema["format"]]
    lo = int(schema.get("minLength", 1))
    hi = schema.get("maxLength")
    if "pattern" in schema:
        pattern = re.compile(schema["pattern"])
        for cand in (f"{hint} {seed[:6]}", *_PATTERN_CANDIDATES):
            if pattern.search(cand) and len(cand) >= lo and (hi is None or len(cand) <= hi):
                return cand
        raise SchemaError(f"no candidate string matches pattern {schema['pattern']!r}")
    text = f"{hint} {seed[:6]}".strip() if hint else seed[:8]
    if len(text) < lo:
        text = text + "x" * (lo - len(text))
    if hi is not None:
        text = text[: int(hi)]
    return text


def _number(schema: dict, integer: bool) -> int | float:
    lo = schema.get("minimum")
    if lo is None and "exclusiveMinimum" in schema:
        lo = schema["exclusiveMinimum"] + (1 if integer else 1e-6)
    hi = schema.get("maximum")
    if hi is None and "exclusiveMaximum" in schema:
        hi = schema["exclusiveMaximum"] - (1 if integer else 1e-6)
    value = lo if lo is not None else 0
    if hi is not None and value > hi:
        value = hi
    if integer:
        import math

        value = math.ceil(value)
        step = schema.get("multipleOf")
        if step:
            value = math.ceil(value / step) * step
        return int(value)
    return float(value)


def instance_of(schema: dict, root: dict | None = None, *, seed: str = "0", hint: str = "", depth: int = 0) -> Any:
    """A small instance valid for ``schema`` (deterministic for a given ``seed``)."""
    root = schema if root is None else root
    if depth > 32:
        raise SchemaError("schema recursion too deep")
    if schema is True or schema == {}:
        return hint or "x"
    if not isinstance(schema, dict):
        raise SchemaError(f"unsupported schema node {schema!r}")
    if "$ref" in schema:
        target = _resolve_ref(schema["$ref"], root)
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        merged = {**target, **rest} if rest else target
        return instance_of(merged, root, seed=seed, hint=hint, depth=depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            branches = schema[key]
            # First branch, but prefer a non-null one (Optional[...] is anyOf [T, null]).
            branch = next((b for b in branches if b.get("type") != "null"), branches[0])
            return instance_of(branch, root, seed=seed, hint=hint, depth=depth + 1)
    if schema.get("allOf"):
        merged: dict = {}
        for part in schema["allOf"]:
            if "$ref" in part:
                part = _resolve_ref(part["$ref"], root)
            merged.update(part)
        merged.update({k: v for k, v in schema.items() if k != "allOf"})
        return instance_of(merged, root, seed=seed, hint=hint, depth=depth + 1)
    if "default" in schema and "type" not in schema:
        return schema["default"]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties", {})
        required = schema.get("required", [])
        out = {}
        for name in required:
            sub = props.get(name, {})
            out[name] = instance_of(sub, root, seed=_mix(seed, name), hint=name, depth=depth + 1)
        return out
    if kind == "array":
        hi = schema.get("maxItems")
        prefix = schema.get("prefixItems") or []
        count = max(1, int(schema.get("minItems", 0)), len(prefix))  # one item unless told otherwise
        if hi is not None:
            count = min(count, int(hi))
        items = schema.get("items", {})
        out = []
        for i in range(count):
            sub = prefix[i] if i < len(prefix) else items
            out.append(instance_of(sub, root, seed=_mix(seed, str(i)), hint=hint, depth=depth + 1))
        return out
    if kind == "string":
        return _string(schema, seed, hint)
    if kind == "integer":
        return _number(schema, integer=True)
    if kind == "number":
        return _number(schema, integer=False)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    raise SchemaError(f"unsupported schema type {kind!r}")


def _mix(seed: str, extra: str) -> str:
    return hashlib.sha256(f"{seed}/{extra}".encode()).hexdigest()


# --------------------------------------------------------------------------------------------
# Chat completions


def _words(text: str) -> int:
    return len(text.split())


def _message_text(message: dict) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""


def completion(body: dict, answer=None) -> dict:
    """The response object for one ``/chat/completions`` request body (raises ValueError if bad).

    ``answer(body)`` may return the message content; None falls back to the default answer."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise ValueError("messages must be a non-empty list of objects")
    if body.get("stream"):
        raise ValueError("stream=true is not supported by this fake")
    seed = hashlib.sha256(json.dumps(
        {k: body.get(k) for k in ("model", "messages", "response_format", "temperature", "seed")},
        sort_keys=True, ensure_ascii=False, default=str,
    ).encode()).hexdigest()
    finish = "stop"
    fmt = body.get("response_format") or {}
    custom = answer(body) if answer is not None else None
    if custom is not None:
        content = str(custom)
    elif fmt.get("type") == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise ValueError("response_format.json_schema.schema must be an object")
        content = json.dumps(instance_of(schema, seed=seed), ensure_ascii=False)
    elif fmt.get("type") == "json_object":
        content = "{}"
    else:
        last = _message_text(messages[-1])
        content = f"Fake answer {seed[:8]} to: {' '.join(last.split()[:8])}".strip()
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if isinstance(limit, int) and limit > 0 and _words(content) > limit:
            content = " ".join(content.split()[:limit])
            finish = "length"
    prompt_tokens = sum(_words(_message_text(m)) + 1 for m in messages)
    completion_tokens = max(_words(content), 1)
    n = int(body.get("n") or 1)
    return {
        "id": f"chatcmpl-{seed[:24]}",
        "object": "chat.completion",
        "created": CREATED,
        "model": body.get("model", "fake-model"),
        "choices": [
            {"index": i, "message": {"role": "assistant", "content": content}, "finish_reason": finish,
             "logprobs": None}
            for i in range(n)
        ],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens * n,
                  "total_tokens": prompt_tokens + completion_tokens * n},
    }


# --------------------------------------------------------------------------------------------
# Server


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse connections
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # silent: no request lines (and never headers) anywhere

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": status}})

    def _authorized(self) -> bool:
        key = self.server.fake.api_key
        if key is None:
            return True
        got = self.headers.get("Authorization", "")
        return hmac.compare_digest(got.encode(), f"Bearer {key}".encode())

    def do_GET(self) -> None:  # noqa: N802
        path = self.path.split("?")[0].rstrip("/")
        if path in ("/health", ""):
            self._send(200, {"status": "ok"})
        elif path in ("/v1/models", "/models"):
            if not self._authorized():
                self._error(401, "invalid or missing API key", "authentication_error")
                return
            self._send(200, {"object": "list", "data": [{"id": self.server.fake.model, "object": "model"}]})
        else:
            self._error(404, f"no route {path}")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0].rstrip("/")
        if path not in ("/v1/chat/completions", "/chat/completions"):
            self._error(404, f"no route {path}")
            return
        if not self._authorized():
            self._error(401, "invalid or missing API key", "authentication_error")
            return
        try:
            body = json.loads(raw or b"null")
            if not isinstance(body, dict):
                raise ValueError("request body must be a JSON object")
            response = completion(body, self.server.fake.answer)
        except (ValueError, SchemaError) as err:  # json.JSONDecodeError is a ValueError
            self.server.fake._count(error=True)
            self._error(400, str(err))
            return
        if self.server.fake.delay_s:
            time.sleep(self.server.fake.delay_s)
        self.server.fake._count(error=False)
        self._send(200, response)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128
    fake: "FakeOpenAI"


class FakeOpenAI:
    """The server object: ``start()``/``stop()`` or ``with FakeOpenAI() as s: ...``.

    Args:
        host: bind address (loopback by default).
        port: 0 picks a free port.
        api_key: when set, the Bearer key every request must carry.
        model: the id listed by ``GET /v1/models``.
        delay_s: added latency per completion (benchmarks).
        answer: optional ``body -> content | None``; None keeps the default answer. It runs in the
            server's request threads, so it must be thread-safe (a pure function is).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None,
                 model: str = "fake-model", delay_s: float = 0.0, answer=None):
        self.host, self.requested_port = host, port
        self.api_key = api_key
        self.model = model
        self.delay_s = delay_s
        self.answer = answer
        self.requests = 0  # completions answered
        self.errors = 0  # 400s for malformed requests
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:  # never shows the key
        return f"FakeOpenAI(url={self.base_url if self._server else None!r}, auth={self.api_key is not None})"

    def _count(self, *, error: bool) -> None:
        with self._lock:
            if error:
                self.errors += 1
            else:
                self.requests += 1

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("server not started")
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> "FakeOpenAI":
        if self._server is not None:
            return self
        server = _Server((self.host, self.requested_port), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                                        name="fake-openai", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join(10)
        self._server = self._thread = None

    def __enter__(self) -> "FakeOpenAI":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    parser.add_argument("--api-key-env", help="environment variable holding the required Bearer key")
    parser.add_argument("--model", default="fake-model")
    parser.add_argument("--delay-s", type=float, default=0.0, help="added latency per completion")
    args = parser.parse_args(argv)
    key = None
    if args.api_key_env:
        key = os.environ.get(args.api_key_env)
        if not key:
            print(f"error: environment variable {args.api_key_env} is not set", file=sys.stderr)
            return 2
    fake = FakeOpenAI(args.host, args.port, api_key=key, model=args.model, delay_s=args.delay_s)

    def _stop(signum, frame):  # SIGTERM -> clean shutdown like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    server = _Server((args.host, args.port), _Handler)
    server.fake = fake
    fake._server = server
    print(f"fake openai listening on {fake.base_url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
