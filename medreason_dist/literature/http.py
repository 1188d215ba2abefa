"""HTTP for the literature clients: a request-rate limit, retries with backoff on throttling,
server errors and truncated bodies, and secrets that never reach a message.

The services (NCBI E-utilities, ClinicalTrials.gov) publish rate limits; going over them gets a
429 and, repeated, a block. :class:`RateLimiter` spaces requests of one client (across threads)
by ``1 / requests_per_s``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class ServiceError(RuntimeError):
    """A request that failed for good (after retries, or a status that retrying cannot fix)."""


class RateLimiter:
    def __init__(self, requests_per_s: float, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        if requests_per_s <= 0:
            raise ValueError("requests_per_s must be positive")
        self.interval, self.clock, self.sleep = 1.0 / requests_per_s, clock, sleep
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = self.clock()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            self.sleep(start - now)


@dataclass
class RetryPolicy:
    max_retries: int = 5
    base_wait_s: float = 0.5
    max_wait_s: float = 30.0

    def wait_s(self, attempt: int, retry_after: str | None) -> float:
        if retry_after:
            try:
                return min(float(retry_after), self.max_wait_s)
            except ValueError:
                pass
        return min(self.base_wait_s * (2 ** attempt), self.max_wait_s)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


class HttpClient:
    """GET with the limiter and the retry policy; ``parse`` turns the body into a value and raises
    ``ValueError`` for a body that is cut off or malformed, which is retried like a 5xx."""

    def __init__(self, *, requests_per_s: float, retry: RetryPolicy | None = None, timeout_s: float = 30.0,
                 secrets: list[str] | None = None, user_agent: str = "medreason_dist",
                 sleep: Callable[[float], None] = time.sleep):
        import requests

        self.session = requests.Session()
        self.session.headers["User-Agent"] = user_agent
        self.limiter = RateLimiter(requests_per_s, sleep=sleep)
        self.retry = retry or RetryPolicy()
        self.timeout_s, self.secrets, self.sleep = timeout_s, [s for s in (secrets or []) if s], sleep
        self.requests = 0  # sent, retries included
        self.retries = 0

    def get(self, url: str, params: dict[str, Any], parse: Callable[[bytes], Any]) -> Any:
        import requests

        last = ""
        for attempt in range(self.retry.max_retries + 1):
            self.limiter.wait()
            self.requests += 1
            retry_after = None
            try:
                response = self.session.get(url, params=params, timeout=self.timeout_s)
            except requests.RequestException as err:
                last = f"{type(err).__name__}: {err}"
            else:
                if response.status_code == 200:
                    try:
                        return parse(response.content)
                    except ValueError as err:  # a truncated or malformed body: ask again
                        last = f"unreadable body ({len(response.content)} bytes): {err}"
                elif response.status_code in RETRY_STATUS:
                    retry_after = response.headers.get("Retry-After")
                    last = f"HTTP {response.status_code}: {response.text[:200]}"
                else:
                    raise ServiceError(redact(f"GET {url} -> HTTP {response.status_code}: {response.text[:300]}",
                                              self.secrets))
            if attempt < self.retry.max_retries:
                self.retries += 1
                wait = self.retry.wait_s(attempt, retry_after)
                log.info("retrying %s in %.1fs (%s)", url, wait, redact(last, self.secrets)[:200])
                self.sleep(wait)
        raise ServiceError(redact(f"GET {url} failed after {self.retry.max_retries + 1} attempts: {last}",
                                  self.secrets))
