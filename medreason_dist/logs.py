"""Logging setup: one line per event, text or JSON, with secrets masked."""

from __future__ import annotations

import json
import logging
import re
import sys
import time

# Values that look like credentials never reach a log line, whatever code logged them.
_SECRET_PATTERNS = [
    re.compile(r"(AKIA|ASIA)[A-Z0-9]{12,}"),
    re.compile(r"(?i)((?:secret|token|password|api[_-]?key|authorization)\s*[=:]\s*)(\S+)"),
    re.compile(r"sk-[A-Za-z0-9_-]{16,}"),
]


def redact(text: str) -> str:
    for pattern in _SECRET_PATTERNS:
        if pattern.groups >= 2:
            text = pattern.sub(lambda m: m.group(1) + "***", text)
        else:
            text = pattern.sub("***", text)
    return text


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
    handler.setFormatter(_JsonFormatter() if json_lines else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for noisy in ("py4j", "urllib3", "botocore", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
