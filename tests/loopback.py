"""The loopback HTTP server lives in the package (the embedded default serves fixtures with it)."""

from medreason_dist.literature.fixture_services import LoopbackServer, Reply  # noqa: F401
