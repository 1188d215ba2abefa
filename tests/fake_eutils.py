"""The E-utilities fixture service lives in the package (``leads search --execute`` uses it too)."""

from medreason_dist.literature.fixture_services import FakeEutils, article_xml  # noqa: F401
