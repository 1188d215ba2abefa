"""Candidate records of a systematic review, from the files reviewers already have.

Formats: RIS (``rispy``), CSV with ASReview's column names, PubMed XML (efetch
``PubmedArticleSet``, parsed with ``lxml``) and ClinicalTrials.gov API v2 JSON (a page
``{"studies": [...]}``, a list of studies or one study). Every record becomes one row of
:data:`RECORD_SCHEMA`; a record that cannot be one (no title, an unreadable label, a file that
does not parse) becomes a row of :data:`QUARANTINE_SCHEMA` naming the file, the record and the
reason. Nothing is dropped silently.

Duplicates. Two records are the same study when they share a PMID, a DOI, an NCT id (a
registry record and the publications that cite its NCT id are one study) or a normalised title
(lower case, letters and digits only) -- except that a shared title does not join records whose
PMIDs or DOIs differ (two papers can carry one title; those are counted as
``title_collisions_kept_apart``). Records linked through any chain of shared keys are merged into
one row: for each single-valued field the first non-empty value in input order
(files in the order given, records in file order) wins; list fields are unioned in that order;
the label is ``True`` if any merged record says included, else ``False`` if any says excluded,
else unknown, and a merge of both is counted as ``label_conflicts``. ``merged_from`` says how
many input records a row stands for.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

import pyarrow as pa

_LIST = pa.list_(pa.string())
RECORD_SCHEMA = pa.schema([
    ("record_id", pa.string()),  # pmid:<n> | nct:<id> | doi:<doi> | title:<hash>, by that preference
    ("title", pa.string()),
    ("abstract", pa.string()),
    ("authors", _LIST),
    ("journal", pa.string()),
    ("year", pa.int32()),
    ("pmid", pa.string()),
    ("pmcid", pa.string()),
    ("doi", pa.string()),
    ("nct_ids", _LIST),
    ("mesh_terms", _LIST),
    ("publication_types", _LIST),
    ("keywords", _LIST),
    ("label_included", pa.bool_()),  # the reviewer's decision when the file carries one
    ("source_format", pa.string()),  # of the first merged record
    ("source_files", _LIST),
    ("merged_from", pa.int32()),
])
QUARANTINE_SCHEMA = pa.schema([
    ("file", pa.string()),
    ("record", pa.string()),  # 1-based position in the file, or the record's id; empty for a whole file
    ("reason", pa.string()),
    ("detail", pa.string()),
])
FORMATS = ("ris", "csv", "pubmed_xml", "ctgov_json")

_LIST_FIELDS = ("authors", "nct_ids", "mesh_terms", "publication_types", "keywords")
_SINGLE_FIELDS = ("title", "abstract", "journal", "year", "pmid", "pmcid", "doi")
NCT_ID = re.compile(r"\bNCT\d{8}\b", re.IGNORECASE)
_DOI = re.compile(r"10\.\d{4,9}/\S+")


class RecordError(ValueError):
    """A record that cannot become a candidate row: ``reason`` is a short machine-readable code."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass
class Quarantined:
    file: str
    record: str
    reason: str
    detail: str = ""


@dataclass
class LoadedRecords:
    records: pa.Table
    quarantine: pa.Table
    stats: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Normalisation


def clean_text(value: Any) -> str | None:
    """Whitespace collapsed; ``None`` for empty values."""
    if value is None:
        return None
    text = " ".join(str(value).split())
    return text or None


def normalize_doi(value: Any) -> str | None:
    text = clean_text(value)
    if not text:
        return None
    match = _DOI.search(text)
    return match.group(0).rstrip(".,;").lower() if match else None


def normalize_pmid(value: Any) -> str | None:
    text = clean_text(value)
    if not text:
        return None
    text = text.removeprefix("PMID:").strip()
    if text.endswith(".0") and text[:-2].isdigit():  # a spreadsheet's float
        text = text[:-2]
    return text if text.isdigit() and int(text) > 0 else None


def normalize_title(value: Any) -> str | None:
    """Lower case, accents removed, letters and digits only: the title part of the duplicate key."""
    text = clean_text(value)
    if not text:
        return None
    text = unicodedata.normalize("NFKD", text)
    text = "".join(c for c in text if not unicodedata.combining(c)).lower()
    words = re.findall(r"[a-z0-9]+", text)
    return " ".join(words) or None


def parse_year(value: Any) -> int | None:
    text = clean_text(value)
    if not text:
        return None
    match = re.search(r"\b(1[89]\d\d|20\d\d|2100)\b", text)
    return int(match.group(1)) if match else None


def parse_number(value: Any) -> float | None:
    """A number from a registry value or a model's answer ("1,024", 61.2, "61.2"); None for
    anything else, booleans included (JSON's true is not the number 1 here)."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return float(str(value).replace(",", ""))
    except ValueError:
        return None


def parse_label(value: Any) -> bool | None:
    """ASReview's included / label_included values; ``RecordError`` for anything else."""
    text = (clean_text(value) or "").lower()
    if text in ("", "-1", "nan", "none", "unknown", "na"):
        return None
    if text in ("1", "1.0", "true", "yes", "y", "included", "include", "relevant"):
        return True
    if text in ("0", "0.0", "false", "no", "n", "excluded", "exclude", "irrelevant"):
        return False
    raise RecordError("bad_label", f"label value {value!r} is not 1/0, true/false, yes/no")


def _nct_ids(*texts: Any) -> list[str]:
    found: list[str] = []
    for text in texts:
        for match in NCT_ID.findall(str(text or "")):
            if match.upper() not in found:
                found.append(match.upper())
    return found


def _record(fmt: str, file: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {name: None for name in RECORD_SCHEMA.names}
    row.update({name: [] for name in _LIST_FIELDS})
    row.update(values)
    row["title"] = clean_text(row["title"])
    row["abstract"] = clean_text(row["abstract"])
    row["journal"] = clean_text(row["journal"])
    for name in _LIST_FIELDS:
        row[name] = list(dict.fromkeys(t for t in (clean_text(v) for v in row[name] or []) if t))
    if not row["title"]:
        raise RecordError("missing_title", "a candidate record needs a title")
    row["source_format"], row["source_files"], row["merged_from"] = fmt, [file], 1
    return row


# --------------------------------------------------------------------------------------------
# Readers: each yields record dicts or Quarantined entries


def read_ris(path: str | Path) -> Iterator[dict | Quarantined]:
    import rispy

    file = str(path)
    try:
        entries = rispy.loads(Path(path).read_text(encoding="utf-8-sig", errors="replace"))
    except Exception as err:  # rispy raises on a file without RIS structure
        yield Quarantined(file, "", "unparseable_ris", f"{type(err).__name__}: {err}"[:300])
        return
    for i, entry in enumerate(entries, 1):
        try:
            notes = entry.get("notes") or []
            notes = [notes] if isinstance(notes, str) else notes
            label = None
            for note in notes:
                if "ASReview_relevant" in note:
                    label = True
                elif "ASReview_irrelevant" in note and label is None:
                    label = False
            urls = entry.get("urls") or []
            pmid = None
            accession, database = entry.get("accession_number"), str(entry.get("name_of_database") or "")
            if accession and ("pubmed" in database.lower() or str(accession).strip().isdigit()):
                pmid = normalize_pmid(accession)
            for url in urls:
                m = re.search(r"pubmed\.ncbi\.nlm\.nih\.gov/(\d+)|ncbi\.nlm\.nih\.gov/pubmed/(\d+)", url)
                if m and pmid is None:
                    pmid = m.group(1) or m.group(2)
            title = entry.get("title") or entry.get("primary_title")
            abstract = entry.get("abstract")
            yield _record(
                "ris", file, title=title, abstract=abstract,
                authors=entry.get("authors") or entry.get("first_authors") or [],
                journal=entry.get("journal_name") or entry.get("secondary_title"),
                year=parse_year(entry.get("year") or entry.get("publication_year")),
                pmid=pmid, doi=normalize_doi(entry.get("doi")) or next(
                    (d for d in (normalize_doi(u) for u in urls) if d), None),
                nct_ids=_nct_ids(title, abstract, *(entry.get("keywords") or [])),
                keywords=entry.get("keywords") or [], label_included=label,
            )
        except RecordError as err:
            yield Quarantined(file, str(i), err.reason, err.detail)


_CSV_COLUMNS = {
    "title": ("title", "primary_title", "ti"),
    "abstract": ("abstract", "ab", "abstract_note"),
    "doi": ("doi",),
    "pmid": ("pmid", "pubmed_id"),
    "authors": ("authors", "author", "au"),
    "keywords": ("keywords", "keyword", "kw"),
    "year": ("year", "publication_year", "py", "date"),
    "journal": ("journal", "journal_name", "source"),
    "label": ("label_included", "included", "label", "final_included", "asreview_label"),
}


def read_csv(path: str | Path) -> Iterator[dict | Quarantined]:
    file = str(path)
    text = Path(path).read_text(encoding="utf-8-sig", errors="replace")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    headers = {h.strip().lower(): h for h in reader.fieldnames or [] if h}
    picked = {key: next((headers[c] for c in names if c in headers), None) for key, names in _CSV_COLUMNS.items()}
    if picked["title"] is None:
        yield Quarantined(file, "", "missing_column",
                          f"no title column (looked for {', '.join(_CSV_COLUMNS['title'])}); "
                          f"columns: {', '.join(headers) or '(none)'}")
        return

    def get(row: dict, key: str) -> Any:
        column = picked[key]
        return row.get(column) if column else None

    for i, row in enumerate(reader, 1):
        try:
            if None in row:  # more cells than headers: the row's columns cannot be trusted
                raise RecordError("malformed_row", f"{len(row[None])} cells beyond the header's columns")
            split = lambda v: [p for p in re.split(r"\s*;\s*", v or "") if p]  # noqa: E731
            title, abstract = get(row, "title"), get(row, "abstract")
            yield _record(
                "csv", file, title=title, abstract=abstract, authors=split(get(row, "authors")),
                keywords=split(get(row, "keywords")), journal=get(row, "journal"), year=parse_year(get(row, "year")),
                pmid=normalize_pmid(get(row, "pmid")), doi=normalize_doi(get(row, "doi")),
                nct_ids=_nct_ids(title, abstract), label_included=parse_label(get(row, "label")),
            )
        except RecordError as err:
            yield Quarantined(file, str(i), err.reason, err.detail)


def _xml_text(node) -> str | None:
    return clean_text("".join(node.itertext())) if node is not None else None


def pubmed_article_row(article, file: str) -> dict:
    """One ``<PubmedArticle>`` element as a record row (a file's or an efetch reply's)."""
    citation = article.find("MedlineCitation")
    if citation is None:
        raise RecordError("malformed_article", "PubmedArticle without MedlineCitation")
    pmid = normalize_pmid(_xml_text(citation.find("PMID")))
    art = citation.find("Article")
    if art is None:
        raise RecordError("malformed_article", f"PMID {pmid}: no Article element")
    sections = []
    for part in art.findall("Abstract/AbstractText"):
        text = _xml_text(part)
        if text:
            label = part.get("Label")
            sections.append(f"{label}: {text}" if label else text)
    authors = []
    for author in art.findall("AuthorList/Author"):
        collective = _xml_text(author.find("CollectiveName"))
        last, initials = _xml_text(author.find("LastName")), _xml_text(author.find("Initials"))
        name = collective or (f"{last} {initials}" if last and initials else last)
        if name:
            authors.append(name)
    ids = {i.get("IdType"): _xml_text(i) for i in article.findall("PubmedData/ArticleIdList/ArticleId")}
    doi = normalize_doi(ids.get("doi")) or next(
        (normalize_doi(_xml_text(e)) for e in art.findall("ELocationID") if e.get("EIdType") == "doi"), None)
    registry = [_xml_text(a) for bank in art.findall("DataBankList/DataBank")
                if (_xml_text(bank.find("DataBankName")) or "").lower().startswith("clinicaltrials")
                for a in bank.findall("AccessionNumberList/AccessionNumber")]
    pub_date = art.find("Journal/JournalIssue/PubDate")
    year = parse_year(_xml_text(pub_date.find("Year")) or _xml_text(pub_date.find("MedlineDate"))) \
        if pub_date is not None else None
    title, abstract = _xml_text(art.find("ArticleTitle")), " ".join(sections) or None
    if not title:
        raise RecordError("missing_title", f"PMID {pmid}: empty ArticleTitle")
    return _record(
        "pubmed_xml", file, title=title, abstract=abstract, authors=authors,
        journal=_xml_text(art.find("Journal/Title")), year=year, pmid=pmid, pmcid=ids.get("pmc"), doi=doi,
        nct_ids=_nct_ids(*registry, title, abstract),
        mesh_terms=[_xml_text(d) for d in citation.findall("MeshHeadingList/MeshHeading/DescriptorName")],
        publication_types=[_xml_text(p) for p in art.findall("PublicationTypeList/PublicationType")],
        keywords=[_xml_text(k) for k in citation.findall("KeywordList/Keyword")],
    )


def read_pubmed_xml(path: str | Path) -> Iterator[dict | Quarantined]:
    from lxml import etree

    file = str(path)
    # No entity expansion, no network: efetch files come from outside.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        root = etree.parse(str(path), parser).getroot()
    except etree.XMLSyntaxError as err:
        yield Quarantined(file, "", "unparseable_xml", str(err)[:300])
        return
    if root.tag != "PubmedArticleSet":
        yield Quarantined(file, "", "not_pubmed_xml", f"root element is <{root.tag}>, not <PubmedArticleSet>")
        return
    for i, article in enumerate(root.findall("PubmedArticle"), 1):
        try:
            yield pubmed_article_row(article, file)
        except RecordError as err:
            yield Quarantined(file, str(i), err.reason, err.detail)


def _ctgov_study(study: dict, file: str) -> dict:
    if not isinstance(study, dict) or not isinstance(study.get("protocolSection"), dict):
        raise RecordError("malformed_study", "a study needs a protocolSection object")
    protocol = study["protocolSection"]
    ident = protocol.get("identificationModule") or {}
    nct = clean_text(ident.get("nctId"))
    if not nct or not NCT_ID.fullmatch(nct):
        raise RecordError("missing_nct_id", f"identificationModule.nctId is {ident.get('nctId')!r}")
    desc = protocol.get("descriptionModule") or {}
    conditions = protocol.get("conditionsModule") or {}
    status = protocol.get("statusModule") or {}
    design = protocol.get("designModule") or {}
    sponsor = (protocol.get("sponsorCollaboratorsModule") or {}).get("leadSponsor") or {}
    interventions = (protocol.get("armsInterventionsModule") or {}).get("interventions") or []
    dates = [(status.get(k) or {}).get("date") for k in ("startDateStruct", "studyFirstSubmitDate")]
    return _record(
        "ctgov_json", file, title=ident.get("officialTitle") or ident.get("briefTitle"),
        abstract=desc.get("briefSummary"), authors=[sponsor.get("name")] if sponsor.get("name") else [],
        year=next((y for y in (parse_year(d) for d in dates + [status.get("studyFirstSubmitDate")]) if y), None),
        nct_ids=[nct.upper()], publication_types=[design["studyType"]] if design.get("studyType") else [],
        keywords=list(conditions.get("conditions") or []) + list(conditions.get("keywords") or [])
        + [i.get("name") for i in interventions if isinstance(i, dict) and i.get("name")],
    )


def read_ctgov_json(path: str | Path) -> Iterator[dict | Quarantined]:
    file = str(path)
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        yield Quarantined(file, "", "unparseable_json", str(err)[:300])
        return
    studies = data.get("studies") if isinstance(data, dict) and "studies" in data else \
        [data] if isinstance(data, dict) else data
    if not isinstance(studies, list):
        yield Quarantined(file, "", "not_ctgov_json", "expected {'studies': [...]}, a list of studies or one study")
        return
    for i, study in enumerate(studies, 1):
        try:
            yield _ctgov_study(study, file)
        except RecordError as err:
            yield Quarantined(file, str(i), err.reason, err.detail)


_READERS = {"ris": read_ris, "csv": read_csv, "pubmed_xml": read_pubmed_xml, "ctgov_json": read_ctgov_json}


def detect_format(path: str | Path) -> str:
    """The format of a candidate file, from its extension (and, for .xml/.json, nothing more)."""
    suffix = Path(path).suffix.lower()
    by_suffix = {".ris": "ris", ".txt": "ris", ".csv": "csv", ".tsv": "csv", ".xml": "pubmed_xml",
                 ".json": "ctgov_json"}
    if suffix not in by_suffix:
        raise ValueError(f"{path}: unknown candidate file type {suffix or '(none)'}; "
                         f"expected one of {', '.join(sorted(by_suffix))}")
    return by_suffix[suffix]


# --------------------------------------------------------------------------------------------
# Merging duplicates


def duplicate_keys(row: dict) -> list[str]:
    keys = []
    if row["pmid"]:
        keys.append(f"pmid:{row['pmid']}")
    if row["doi"]:
        keys.append(f"doi:{row['doi']}")
    keys += [f"nct:{n}" for n in row["nct_ids"]]
    title = normalize_title(row["title"])
    if title:
        keys.append(f"title:{title}")
    return keys


def _merge(group: list[dict]) -> dict:
    merged = dict(group[0])
    for name in _SINGLE_FIELDS:
        merged[name] = next((r[name] for r in group if r[name] not in (None, "")), None)
    for name in _LIST_FIELDS + ("source_files",):
        merged[name] = list(dict.fromkeys(v for r in group for v in r[name]))
    labels = {r["label_included"] for r in group} - {None}
    merged["label_included"] = True if True in labels else (False if False in labels else None)
    merged["merged_from"] = sum(r["merged_from"] for r in group)
    return merged


def record_id(row: dict) -> str:
    if row["pmid"]:
        return f"pmid:{row['pmid']}"
    if row["nct_ids"] and row["source_format"] == "ctgov_json":
        return f"nct:{row['nct_ids'][0]}"
    if row["doi"]:
        return f"doi:{row['doi']}"
    if row["nct_ids"]:
        return f"nct:{row['nct_ids'][0]}"
    digest = hashlib.sha256((normalize_title(row["title"]) or "").encode()).hexdigest()[:16]
    return f"title:{digest}"


def merge_duplicates(rows: list[dict]) -> tuple[list[dict], dict[str, int]]:
    """One row per study (see the module doc for the rule); stats of what was merged."""
    parent = list(range(len(rows)))
    # Per group head: the PMIDs and DOIs its records carry, to refuse a title-only join of two
    # groups that name different papers.
    ids: dict[int, dict[str, set]] = {i: {"pmid": {r["pmid"]} - {None}, "doi": {r["doi"]} - {None}}
                                      for i, r in enumerate(rows)}

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(a: int, b: int) -> None:
        a, b = sorted((find(a), find(b)))
        if a != b:
            parent[b] = a  # the earlier record stays the group's head
            joined = ids.pop(b)
            for kind in ("pmid", "doi"):
                ids[a][kind] |= joined[kind]

    def conflicting(a: int, b: int) -> bool:
        a, b = find(a), find(b)
        return any(ids[a][k] and ids[b][k] and not ids[a][k] & ids[b][k] for k in ("pmid", "doi"))

    collisions = 0
    for strong in (True, False):  # identifiers first, so title joins see whole groups
        owner: dict[str, int] = {}
        for i, row in enumerate(rows):
            for key in duplicate_keys(row):
                if key.startswith("title:") == strong:
                    continue
                if key not in owner:
                    owner[key] = i
                elif not strong and find(owner[key]) != find(i) and conflicting(owner[key], i):
                    collisions += 1
                else:
                    join(owner[key], i)
    groups: dict[int, list[dict]] = {}
    for i, row in enumerate(rows):
        groups.setdefault(find(i), []).append(row)
    merged = [_merge(group) for _, group in sorted(groups.items())]
    conflicts = sum(1 for g in groups.values() if {r["label_included"] for r in g} >= {True, False})
    for row in merged:
        row["record_id"] = record_id(row)
    return merged, {"duplicates_merged": len(rows) - len(merged), "label_conflicts": conflicts,
                    "title_collisions_kept_apart": collisions}


def load_records(paths: Iterable[str | Path], formats: dict[str, str] | None = None) -> LoadedRecords:
    """Read candidate files (format from ``formats[path]`` or the extension), quarantine what is
    not a record, merge duplicates. Missing files raise ``FileNotFoundError`` naming the file."""
    rows: list[dict] = []
    quarantined: list[Quarantined] = []
    stats = {"files": 0, "records_read": 0, "quarantined": 0}
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"candidate file {path} does not exist")
        fmt = (formats or {}).get(str(path)) or detect_format(path)
        if fmt not in _READERS:
            raise ValueError(f"{path}: unknown format {fmt!r}; formats: {', '.join(FORMATS)}")
        stats["files"] += 1
        for item in _READERS[fmt](path):
            if isinstance(item, Quarantined):
                quarantined.append(item)
            else:
                rows.append(item)
                stats["records_read"] += 1
    merged, merge_stats = merge_duplicates(rows)
    stats.update(merge_stats, quarantined=len(quarantined), records=len(merged))
    for reason in sorted({q.reason for q in quarantined}):
        stats[f"quarantined.{reason}"] = sum(1 for q in quarantined if q.reason == reason)
    return LoadedRecords(
        records=pa.Table.from_pylist(merged, schema=RECORD_SCHEMA),
        quarantine=pa.Table.from_pylist([vars(q) for q in quarantined], schema=QUARANTINE_SCHEMA),
        stats=stats,
    )
