"""A review protocol (what a systematic review looks for) and published reviews used as gold.

A protocol is YAML or JSON::

    title: Immune checkpoint inhibitors and irAEs
    pico:
      population: adults with cancer treated with immune checkpoint inhibitors
      intervention: occurrence of immune-related adverse events
      comparison: no immune-related adverse events      # optional
      outcome: overall and progression-free survival
    inclusion: [original clinical study, reports survival by irAE status]
    exclusion: [case report or review]
    fields:                                            # study characteristics to extract
      - {name: cancer_type, description: the tumour type studied}
      - {name: participants, description: patients analysed, type: integer}
    date_range: {start: 2010-01-01, end: 2020-04-30}    # optional

Errors name the file and the key (``protocol.yaml: pico.population: Field required``).

Published reviews in the TrialMind-SLR JSON layout (``search_screen/<pmid>.json`` with ``PICO``
and the included ``trials``; ``study_characteristics/<pmid>.csv``) load as :class:`PublishedReview`
for the evaluation: their PICO becomes a protocol, their included studies the gold labels.
"""

from __future__ import annotations

import ast
import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator


class ProtocolError(ValueError):
    """A protocol or review file that cannot be used; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class PICO(_Strict):
    population: str = Field(min_length=1)
    intervention: str = Field(min_length=1)
    comparison: str | None = None
    outcome: str = Field(min_length=1)


class ExtractionField(_Strict):
    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", description="Column name of the extracted value.")
    description: str = Field(min_length=1)
    type: Literal["text", "number", "integer", "boolean", "category"] = "text"
    categories: list[str] | None = None
    unit: str | None = None

    @model_validator(mode="after")
    def _categories_for_category(self) -> "ExtractionField":
        if (self.type == "category") != bool(self.categories):
            raise ValueError("categories are required for type 'category' and only for it")
        return self


class DateRange(_Strict):
    start: dt.date | None = None
    end: dt.date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "DateRange":
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class Criterion(_Strict):
    id: str  # I1, I2, ... for inclusion; E1, ... for exclusion
    kind: Literal["inclusion", "exclusion"]
    text: str


class Protocol(_Strict):
    title: str = Field(min_length=1)
    pico: PICO
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)
    fields: list[ExtractionField] = Field(default_factory=list)
    date_range: DateRange | None = None

    @field_validator("inclusion", "exclusion")
    @classmethod
    def _no_blank_criteria(cls, items: list[str]) -> list[str]:
        if any(not i.strip() for i in items):
            raise ValueError("a criterion is blank")
        return items

    @field_validator("fields")
    @classmethod
    def _unique_field_names(cls, items: list[ExtractionField]) -> list[ExtractionField]:
        names = [f.name for f in items]
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"field names repeat: {', '.join(repeated)}")
        return items

    def criteria(self) -> list[Criterion]:
        """Inclusion then exclusion criteria, with stable ids (I1.., E1..) for labels per criterion.

        A protocol without criteria (a published review gives only its PICO) is screened on its
        PICO elements, each an inclusion criterion, as LEADS does."""
        inclusion = self.inclusion or self.pico_criteria()
        return [Criterion(id=f"I{i}", kind="inclusion", text=t) for i, t in enumerate(inclusion, 1)] + \
               [Criterion(id=f"E{i}", kind="exclusion", text=t) for i, t in enumerate(self.exclusion, 1)]

    def pico_criteria(self) -> list[str]:
        p = self.pico
        items = [f"the population is: {p.population}", f"the intervention is: {p.intervention}"]
        if p.comparison:
            items.append(f"the comparison is: {p.comparison}")
        return items + [f"an outcome reported is: {p.outcome}"]


def _where(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in err.errors())


def load_protocol(path: str | Path) -> Protocol:
    path = Path(path)
    if not path.is_file():
        raise ProtocolError(f"protocol file {path} does not exist")
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as err:
        raise ProtocolError(f"{path}: not valid {'JSON' if path.suffix.lower() == '.json' else 'YAML'}: {err}") from err
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: a protocol is a mapping with title, pico, inclusion, exclusion, fields")
    try:
        return Protocol.model_validate(data)
    except ValidationError as err:
        raise ProtocolError(f"{path}: {_where(err)}") from err


# --------------------------------------------------------------------------------------------
# Published reviews (TrialMind-SLR layout) as gold


class IncludedStudy(_Strict):
    title: str | None = None  # 150 of the 606 TrialMind-SLR studies have a PMID and no title
    pmid: str | None = None
    doi: str | None = None
    nct_id: str | None = None

    @model_validator(mode="after")
    def _identified(self) -> "IncludedStudy":
        if not (self.title or self.pmid or self.doi or self.nct_id):
            raise ValueError("an included study needs a title, PMID, DOI or NCT id")
        return self


class PublishedReview(_Strict):
    pmid: str
    title: str
    date: str | None = None
    protocol: Protocol
    pico_terms: dict[str, list[str]] = Field(default_factory=dict)
    included: list[IncludedStudy]
    characteristics: list[dict[str, str]] = Field(default_factory=list)  # one row per included study (PMID)


def _maybe_literal(value: Any, what: str, path: Path) -> Any:
    """The layout stores some fields as Python literals in strings ("{'P': ...}")."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, SyntaxError) as err:
        raise ProtocolError(f"{path}: {what} is neither an object nor a Python/JSON literal") from err


def load_published_review(path: str | Path) -> PublishedReview:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ProtocolError(f"{path}: not valid JSON: {err}") from err
    for key in ("title", "pmid", "PICO", "trials"):
        if key not in data:
            raise ProtocolError(f"{path}: missing key {key!r}")
    pico = _maybe_literal(data["PICO"], "PICO", path)
    trials = _maybe_literal(data["trials"], "trials", path)
    terms = _maybe_literal(data.get("PICO_terms") or {}, "PICO_terms", path)
    try:
        protocol = Protocol(title=data["title"], pico=PICO(population=pico.get("P", ""), intervention=pico.get("I", ""),
                                                          comparison=pico.get("C") or None,
                                                          outcome=pico.get("O", "")))
        included = [IncludedStudy(title=(t.get("title") or "").strip() or None, pmid=str(t.get("pmid") or "") or None,
                                  doi=t.get("doi") or None, nct_id=t.get("nctid") or None)
                    for t in trials if isinstance(t, dict)
                    and any(str(t.get(k) or "").strip() for k in ("title", "pmid", "doi", "nctid"))]
    except (ValidationError, AttributeError, KeyError) as err:
        detail = _where(err) if isinstance(err, ValidationError) else f"{type(err).__name__}: {err}"
        raise ProtocolError(f"{path}: {detail}") from err
    characteristics: list[dict[str, str]] = []
    table = path.parent.parent / "study_characteristics" / f"{path.stem}.csv"
    if table.is_file():
        with table.open(newline="", encoding="utf-8-sig") as f:
            characteristics = [dict(r) for r in csv.DictReader(f)]
    return PublishedReview(pmid=str(data["pmid"]), title=data["title"], date=data.get("date"), protocol=protocol,
                           pico_terms={k: list(v) for k, v in terms.items()}, included=included,
                           characteristics=characteristics)


def load_review_folder(folder: str | Path) -> list[PublishedReview]:
    """Every review of a folder in the TrialMind-SLR layout (``search_screen/*.json``), by PMID."""
    folder = Path(folder)
    files = sorted((folder / "search_screen").glob("*.json")) if (folder / "search_screen").is_dir() \
        else sorted(folder.glob("*.json"))
    if not files:
        raise ProtocolError(f"{folder}: no review JSON files (expected search_screen/<pmid>.json)")
    return [load_published_review(f) for f in files]
