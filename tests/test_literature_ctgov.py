"""The ClinicalTrials.gov API v2 client against a loopback server (tests/fake_ctgov.py)."""

from __future__ import annotations

import pytest
from fake_ctgov import FakeCtGov, study

from medreason_dist.literature.ctgov import ARM_TYPES, CtGovClient, study_rows
from medreason_dist.literature.http import RetryPolicy, ServiceError

FAST = RetryPolicy(max_retries=3, base_wait_s=0.01)


@pytest.fixture
def server():
    studies = [study(i, "Knee Osteoarthritis" if i % 2 else "Hip Fracture", with_results=i == 3) for i in range(25)]
    studies.append({"protocolSection": {"identificationModule": {"briefTitle": "no id"},
                                        "conditionsModule": {"conditions": ["Knee Osteoarthritis"]}}})
    fake = FakeCtGov(studies).start()
    yield fake
    fake.stop()


def test_pages_to_the_end_and_quarantines_malformed_studies(server):
    client = CtGovClient(server.base_url, requests_per_s=100, retry=FAST)
    rows, bad = client.search(cond='"knee osteoarthritis"', page_size=5)
    assert len(rows.studies) == 12 and bad == [(13, "study without identificationModule.nctId")]
    pages = [p for path, p in server.requests if path == "/api/v2/studies"]
    assert len(pages) == 3 and pages[0]["query.cond"] == '"knee osteoarthritis"' and "pageToken" in pages[1]
    assert {a["type"] for a in rows.arms} <= set(ARM_TYPES) and len(rows.arms) == 24


def test_page_size_is_capped_and_queries_checked(server):
    client = CtGovClient(server.base_url, requests_per_s=100, retry=FAST)
    next(client.search_pages(cond="hip", page_size=5000))
    assert server.requests[-1][1]["pageSize"] == "1000"
    with pytest.raises(ServiceError, match="query.intr is not a valid ClinicalTrials.gov query"):
        next(client.search_pages(intr="(exercise"))
    with pytest.raises(ServiceError, match="unknown search parameter"):
        next(client.search_pages(cond="hip", filters={"sort": "x"}))


def test_retries_and_single_study(server):
    server.faults = ["429", "truncate", "500"]
    client = CtGovClient(server.base_url, requests_per_s=100, retry=FAST)
    data = client.study("nct10000003")
    assert data["protocolSection"]["identificationModule"]["nctId"] == "NCT10000003" and client.http.retries == 3
    with pytest.raises(ServiceError, match="HTTP 404"):
        client.study("NCT99999999")


def test_results_map_to_typed_measurement_rows():
    rows = study_rows(study(3, "Knee Osteoarthritis", with_results=True)).tables()
    m = rows["measurements"].to_pylist()
    age = [r for r in m if r["measure"] == "Age, Continuous"]
    assert [(r["group_title"], r["value_number"], r["spread"]) for r in age] == [("Exercise", 61.2, "7.1"),
                                                                                 ("Usual care", 60.4, "6.8")]
    female = [r for r in m if r["category_title"] == "Female"]
    assert [r["value_number"] for r in female] == [25.0, None] and female[1]["value"] == "NA"
    pain = [r for r in m if r["section"] == "outcome"]
    assert pain[0]["outcome_type"] == "PRIMARY" and pain[0]["time_frame"] == "12 weeks"
    assert pain[0]["lower_limit"] == "5.2" and pain[0]["param_type"] == "MEAN"
    s = rows["studies"].to_pylist()[0]
    assert s["enrollment"] == 83 and s["has_results"] and s["interventions"] == ["Exercise"]
