"""Logging setup: one line per event, text or JSON, with secrets masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Values that look like credentials never reach a log line, whatever code logged them.
# Patterns with two groups keep group 1 (the key) and mask group 2 (the value).
_SECRET_PATTERNS = [
    re.compile(r"(AKIA|ASIA)[A-Z0-9]{12,}"),
    # key=value / key: value, also quoted JSON/repr keys ('api_key': 'x'); an auth scheme
    # after the key ("Authorization: Bearer x") stays visible, the credential does not.
    re.compile(
        r"(?i)((?:secret\w*|token|password|passwd|api[_-]?key|authorization)[\"']?\s*[=:]\s*[\"']?"
        r"(?:(?:bearer|basic|token)\s+)?)([^\s\"']+)"
    ),
    # A bearer credential anywhere, e.g. inside a header dict: "Bearer abc" -> "Bearer ***".
    re.compile(r"(?i)(\bbearer\s+)([^\s\"',;}\]]+)"),
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text


class RedactingFormatter(logging.Formatter):
    """A text formatter that masks secrets in the whole output, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class _RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(json_lines: bool = False, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_RedactFilter())
    handler.setFormatter(_JsonFormatter() if json_lines else RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("py4j", "urllib3", "botocore", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
