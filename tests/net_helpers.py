"""Loopback helpers for tests that start servers in other processes (moto, a Ray head, HTTP stubs)."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float, *, proc: subprocess.Popen | None = None,
                  poll_s: float = 0.2) -> bool:
    """True once 127.0.0.1:``port`` accepts connections; False on timeout or when ``proc`` exits."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return True
        except OSError:
            if proc is not None and proc.poll() is not None:
                return False
            time.sleep(poll_s)
    return False
