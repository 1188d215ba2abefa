"""Candidate records from RIS, ASReview CSV, PubMed XML and ClinicalTrials.gov JSON: parsed,
quarantined with a reason, duplicates merged by PMID / DOI / NCT id / normalised title."""

from __future__ import annotations

import json
import textwrap

import pytest

from medreason_dist.literature import records as R

PUBMED_XML = textwrap.dedent("""\
    <?xml version="1.0" ?>
    <!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2024//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_240101.dtd">
    <PubmedArticleSet>
    <PubmedArticle>
      <MedlineCitation Status="MEDLINE" Owner="NLM">
        <PMID Version="1">31562796</PMID>
        <Article PubModel="Print-Electronic">
          <Journal><JournalIssue><PubDate><Year>2019</Year><Month>Nov</Month></PubDate></JournalIssue>
            <Title>The New England journal of medicine</Title></Journal>
          <ArticleTitle>Nivolumab plus Ipilimumab in <i>Advanced</i> Non-Small-Cell Lung Cancer.</ArticleTitle>
          <ELocationID EIdType="doi" ValidYN="Y">10.1056/NEJMoa1910231</ELocationID>
          <Abstract>
            <AbstractText Label="BACKGROUND" NlmCategory="BACKGROUND">Dual blockade was tested.</AbstractText>
            <AbstractText Label="RESULTS" NlmCategory="RESULTS">Overall survival was longer.</AbstractText>
          </Abstract>
          <AuthorList><Author><LastName>Hellmann</LastName><Initials>MD</Initials></Author>
            <Author><CollectiveName>CheckMate 227 Investigators</CollectiveName></Author></AuthorList>
          <DataBankList><DataBank><DataBankName>ClinicalTrials.gov</DataBankName>
            <AccessionNumberList><AccessionNumber>NCT02477826</AccessionNumber></AccessionNumberList></DataBank></DataBankList>
          <PublicationTypeList><PublicationType UI="D016449">Randomized Controlled Trial</PublicationType></PublicationTypeList>
        </Article>
        <MeshHeadingList><MeshHeading><DescriptorName UI="D002289" MajorTopicYN="N">Carcinoma, Non-Small-Cell Lung</DescriptorName></MeshHeading></MeshHeadingList>
      </MedlineCitation>
      <PubmedData><ArticleIdList><ArticleId IdType="pubmed">31562796</ArticleId>
        <ArticleId IdType="doi">10.1056/NEJMoa1910231</ArticleId><ArticleId IdType="pmc">PMC0000001</ArticleId></ArticleIdList></PubmedData>
    </PubmedArticle>
    <PubmedArticle>
      <MedlineCitation><PMID>11111111</PMID><Article><Journal><Title>J</Title></Journal><ArticleTitle>  </ArticleTitle></Article></MedlineCitation>
    </PubmedArticle>
    </PubmedArticleSet>
    """)

CTGOV = {"studies": [
    {"protocolSection": {
        "identificationModule": {"nctId": "NCT02477826", "briefTitle": "CheckMate 227",
                                 "officialTitle": "A Study of Nivolumab and Ipilimumab in Lung Cancer"},
        "statusModule": {"startDateStruct": {"date": "2015-08"}},
        "descriptionModule": {"briefSummary": "Open-label phase 3 trial."},
        "conditionsModule": {"conditions": ["Non-Small Cell Lung Cancer"]},
        "designModule": {"studyType": "INTERVENTIONAL"},
        "armsInterventionsModule": {"interventions": [{"type": "DRUG", "name": "Nivolumab"}]},
        "sponsorCollaboratorsModule": {"leadSponsor": {"name": "Bristol-Myers Squibb"}}}},
    {"protocolSection": {"identificationModule": {"briefTitle": "no id"}}},
    "not a study",
], "nextPageToken": None}

RIS = textwrap.dedent("""\
    TY  - JOUR
    TI  - Nivolumab plus ipilimumab in advanced non-small-cell lung cancer
    AU  - Hellmann, M. D.
    PY  - 2019
    DO  - https://doi.org/10.1056/nejmoa1910231
    N1  - ASReview_relevant
    ER  - 

    TY  - JOUR
    TI  - Aspirin for primary prevention of cardiovascular events
    AB  - A trial (NCT01038583) of aspirin.
    PY  - 2018
    N1  - ASReview_irrelevant
    ER  - 

    TY  - JOUR
    AB  - an abstract without a title
    ER  - 
    """)

CSV = textwrap.dedent("""\
    title,abstract,doi,pmid,authors,label_included
    "Nivolumab plus Ipilimumab in Advanced Non-Small-Cell Lung Cancer",,,31562796,Hellmann MD,1
    "Statins in the elderly","Cohort study.",10.1000/xyz,,"Doe J; Roe K",0
    "A bad label row",,,,,maybe
    "Aspirin for Primary Prevention of Cardiovascular Events!",,,,,1
    """)


@pytest.fixture
def files(tmp_path):
    paths = {"xml": tmp_path / "pubmed.xml", "json": tmp_path / "ctgov.json", "ris": tmp_path / "export.ris",
             "csv": tmp_path / "asreview.csv"}
    paths["xml"].write_text(PUBMED_XML)
    paths["json"].write_text(json.dumps(CTGOV))
    paths["ris"].write_text(RIS)
    paths["csv"].write_text(CSV)
    return paths


def test_pubmed_xml_fields(files):
    items = list(R.read_pubmed_xml(files["xml"]))
    article = items[0]
    assert article["pmid"] == "31562796" and article["doi"] == "10.1056/nejmoa1910231"
    assert article["title"] == "Nivolumab plus Ipilimumab in Advanced Non-Small-Cell Lung Cancer."  # markup flattened
    assert article["abstract"] == "BACKGROUND: Dual blockade was tested. RESULTS: Overall survival was longer."
    assert article["authors"] == ["Hellmann MD", "CheckMate 227 Investigators"]
    assert article["nct_ids"] == ["NCT02477826"] and article["pmcid"] == "PMC0000001" and article["year"] == 2019
    assert article["mesh_terms"] == ["Carcinoma, Non-Small-Cell Lung"]
    assert article["publication_types"] == ["Randomized Controlled Trial"]
    assert isinstance(items[1], R.Quarantined) and items[1].reason == "missing_title" and items[1].record == "2"


def test_ctgov_json_fields_and_bad_studies(files):
    items = list(R.read_ctgov_json(files["json"]))
    study = items[0]
    assert study["nct_ids"] == ["NCT02477826"] and study["year"] == 2015
    assert study["title"] == "A Study of Nivolumab and Ipilimumab in Lung Cancer"
    assert "Nivolumab" in study["keywords"] and study["publication_types"] == ["INTERVENTIONAL"]
    assert [(q.record, q.reason) for q in items[1:]] == [("2", "missing_nct_id"), ("3", "malformed_study")]


def test_all_formats_merge_duplicates_and_quarantine_with_reasons(files):
    loaded = R.load_records(files.values())
    rows = {r["record_id"]: r for r in loaded.records.to_pylist()}
    # PubMed article, registry record (its NCT id), RIS (DOI, any case/URL form) and CSV (PMID): one study
    nivo = rows["pmid:31562796"]
    assert nivo["merged_from"] == 4 and nivo["nct_ids"] == ["NCT02477826"]
    assert nivo["label_included"] is True and nivo["mesh_terms"] == ["Carcinoma, Non-Small-Cell Lung"]
    assert len(nivo["source_files"]) == 4
    # RIS (excluded) and CSV (included) copies of one title, punctuation and case aside
    aspirin = [r for r in rows.values() if r["title"].lower().startswith("aspirin")]
    assert len(aspirin) == 1 and aspirin[0]["merged_from"] == 2 and aspirin[0]["label_included"] is True
    assert aspirin[0]["record_id"] == "nct:NCT01038583"  # the id its abstract names
    assert loaded.stats["label_conflicts"] == 1
    assert loaded.stats["duplicates_merged"] == 4 and loaded.stats["records"] == 3
    reasons = sorted((q["file"].rsplit("/", 1)[-1], q["record"], q["reason"]) for q in loaded.quarantine.to_pylist())
    assert reasons == [("asreview.csv", "3", "bad_label"), ("ctgov.json", "2", "missing_nct_id"),
                       ("ctgov.json", "3", "malformed_study"), ("export.ris", "3", "missing_title"),
                       ("pubmed.xml", "2", "missing_title")]
    assert loaded.stats["records_read"] + loaded.stats["quarantined"] == 2 + 3 + 3 + 4  # every input record, once


def test_outputs_open_without_project_code(files, tmp_path):
    import pyarrow.parquet as pq

    loaded = R.load_records(files.values())
    pq.write_table(loaded.records, tmp_path / "records.parquet")
    frame = pq.read_table(tmp_path / "records.parquet").to_pandas()
    assert len(frame) == 3 and frame["record_id"].is_unique


@pytest.mark.parametrize("name,content,reason", [
    ("broken.xml", "<PubmedArticleSet><PubmedArticle>", "unparseable_xml"),
    ("other.xml", "<html><body/></html>", "not_pubmed_xml"),
    ("truncated.json", '{"studies": [{"protocolSection": ', "unparseable_json"),
    ("nocols.csv", "name,summary\nx,y\n", "missing_column"),
])
def test_unreadable_files_are_quarantined_whole(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_text(content)
    loaded = R.load_records([path])
    assert loaded.records.num_rows == 0
    [q] = loaded.quarantine.to_pylist()
    assert (q["file"], q["record"], q["reason"]) == (str(path), "", reason) and q["detail"]


def test_external_entities_are_not_expanded(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    path = tmp_path / "xxe.xml"
    path.write_text(f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY s SYSTEM "file://{secret}">]>'
                    "<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>5</PMID><Article>"
                    "<ArticleTitle>t &s;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>")
    rows = R.load_records([path]).records.to_pylist()
    assert all("TOP-SECRET" not in (r["title"] or "") for r in rows)


def test_missing_file_and_unknown_type_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.ris"):
        R.load_records([tmp_path / "nope.ris"])
    odd = tmp_path / "records.docx"
    odd.write_text("x")
    with pytest.raises(ValueError, match="records.docx"):
        R.load_records([odd])


def test_normalisers():
    assert R.normalize_doi("https://doi.org/10.1000/ABC.1.") == "10.1000/abc.1"
    assert R.normalize_pmid("31562796.0") == "31562796" and R.normalize_pmid("PMID: 12") == "12"
    assert R.normalize_pmid("abc") is None
    assert R.normalize_title("Ça   va: Étude!") == "ca va etude"
    assert R.parse_label("Yes") is True and R.parse_label("") is None
    with pytest.raises(R.RecordError):
        R.parse_label("maybe")


def test_one_title_on_two_papers_stays_two_records():
    def row(**kw):
        return R._record("csv", "f.csv", **{"title": "Exercise for knee pain", **kw})

    rows = [row(pmid="1"), row(pmid="2"), row(), row(doi="10.1/a"), row(doi="10.1/b", pmid="1")]
    merged, stats = R.merge_duplicates(rows)
    # PMID 1 takes its DOI b and the copy with no ids; PMID 2 and DOI a name other papers
    assert sorted((r["pmid"] or "-", r["doi"] or "-", r["merged_from"]) for r in merged) == [
        ("-", "10.1/a", 1), ("1", "10.1/b", 3), ("2", "-", 1)]
    assert stats["title_collisions_kept_apart"] == 2 and stats["duplicates_merged"] == 2
