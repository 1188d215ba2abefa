"""The ClinicalTrials.gov fixture service lives in the package (``leads search --execute`` uses it too)."""

from medreason_dist.literature.fixture_services import FakeCtGov, study  # noqa: F401
