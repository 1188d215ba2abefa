"""Boolean search queries: a grammar for PubMed's syntax and for ClinicalTrials.gov's, and a
local evaluator that runs a PubMed query over candidate records.

A generated query is accepted only if it parses; :class:`QueryError` carries the reason and
the position. The grammar (both syntaxes; operators must be upper case, as both services
require — a lower-case ``and`` is searched as a word there, which is never what a generated
query means)::

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := not_expr ("AND" not_expr)*
    not_expr := primary ("NOT" primary)*          # PubMed: binary, left to right
    primary  := "(" query ")" | term
    term     := ("\\"" words "\\"" | word+) ["[" tag "]"]                      (PubMed)
              | ["AREA[" field "]"] ("\\"" words "\\"" | word+)                (ClinicalTrials.gov)

Adjacent bare words form one phrase-like term (PubMed maps them through its automatic term
mapping; locally they must occur in order). A trailing ``*`` truncates a word (PubMed needs at
least four characters before it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Literal, Union

# PubMed field tags we accept (short form -> the local record fields a term is matched against).
_TEXT = ("title", "abstract")
PUBMED_TAGS: dict[str, tuple[str, ...]] = {
    "tiab": _TEXT, "title/abstract": _TEXT,
    "ti": ("title",), "title": ("title",),
    "ab": ("abstract",), "abstract": ("abstract",),
    "mh": ("mesh_terms",), "mesh": ("mesh_terms",), "mesh terms": ("mesh_terms",), "mh:noexp": ("mesh_terms",),
    "majr": ("mesh_terms",), "mesh major topic": ("mesh_terms",), "sh": ("mesh_terms",),
    "pt": ("publication_types",), "publication type": ("publication_types",),
    "tw": _TEXT + ("mesh_terms", "keywords"), "text word": _TEXT + ("mesh_terms", "keywords"),
    "all": _TEXT + ("mesh_terms", "keywords", "publication_types"),
    "all fields": _TEXT + ("mesh_terms", "keywords", "publication_types"),
    "ot": ("keywords",), "other term": ("keywords",),
    "au": ("authors",), "author": ("authors",),
    "la": (), "language": (), "dp": (), "date - publication": (), "pdat": (),  # not in local records
    "nm": (), "supplementary concept": (),
}
# ClinicalTrials.gov AREA[...] fields accepted in query.term (a subset of its search areas).
CTGOV_AREAS = frozenset({
    "BriefTitle", "OfficialTitle", "Acronym", "BriefSummary", "DetailedDescription", "Condition", "ConditionSearch",
    "Keyword", "InterventionName", "InterventionType", "InterventionSearch", "ArmGroupLabel", "Phase", "StudyType",
    "OverallStatus", "DesignAllocation", "DesignPrimaryPurpose", "PrimaryOutcomeMeasure", "SecondaryOutcomeMeasure",
    "LeadSponsorName", "LocationCountry", "NCTId", "StartDate", "EligibilityCriteria", "Gender", "MinimumAge",
})

Syntax = Literal["pubmed", "ctgov"]


class QueryError(ValueError):
    def __init__(self, reason: str, position: int, query: str):
        super().__init__(f"{reason} at character {position + 1}: {query[max(0, position - 20):position + 20]!r}")
        self.reason, self.position = reason, position


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # lower case; a word ending in * is truncated
    field: str | None  # PubMed tag (normalised) or ClinicalTrials.gov area; None = all fields
    quoted: bool = False


@dataclass(frozen=True)
class BoolOp:
    op: Literal["AND", "OR", "NOT"]
    left: "Node"
    right: "Node"


Node = Union[Term, BoolOp]

_TOKEN = re.compile(r'\s*(?:(?P<lpar>\()|(?P<rpar>\))|(?P<quote>"[^"]*"?)|(?P<tag>\[[^\]]*\]?)'
                    r'|(?P<area>AREA\[[^\]]*\]?)|(?P<word>[^\s()\[\]"]+))')
_OPERATORS = ("AND", "OR", "NOT")


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int


def _tokens(query: str, syntax: Syntax) -> list[_Tok]:
    out, pos = [], 0
    while pos < len(query):
        if query[pos:].strip() == "":
            break
        m = _TOKEN.match(query, pos)
        if m is None or m.end() == pos:
            raise QueryError("unexpected character", pos, query)
        kind = m.lastgroup
        text = m.group(kind)
        start = m.start(kind)
        if kind == "quote" and (len(text) < 2 or not text.endswith('"')):
            raise QueryError("unclosed quotation mark", start, query)
        if kind in ("tag", "area") and not text.endswith("]"):
            raise QueryError("unclosed [", start, query)
        if kind == "tag" and syntax == "ctgov":
            raise QueryError("field tags in [] are PubMed syntax; ClinicalTrials.gov uses AREA[Field]", start, query)
        if kind == "area" and syntax == "pubmed":
            raise QueryError("AREA[...] is ClinicalTrials.gov syntax", start, query)
        if kind == "word" and text.upper() in _OPERATORS:
            kind = "op" if text.isupper() else "lower_op"
        out.append(_Tok(kind, text, start))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, query: str, syntax: Syntax):
        self.query, self.syntax = query, syntax
        self.toks = _tokens(query, syntax)
        self.i = 0

    def peek(self) -> _Tok | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def fail(self, reason: str, tok: _Tok | None = None) -> QueryError:
        return QueryError(reason, tok.pos if tok else len(self.query), self.query)

    def parse(self) -> Node:
        if not self.toks:
            raise self.fail("empty query")
        node = self.binary(0)
        tok = self.peek()
        if tok is not None:
            raise self.unexpected(tok, "unbalanced )")
        return node

    def unexpected(self, tok: _Tok, for_rpar: str) -> QueryError:
        if tok.kind == "lower_op":
            return self.fail(f"lower-case operator {tok.text!r}: write {tok.text.upper()}", tok)
        return self.fail(for_rpar if tok.kind == "rpar" else f"unexpected {tok.text!r}", tok)

    def binary(self, level: int) -> Node:
        if level == len(_OPERATORS):
            return self.primary()
        op = ("OR", "AND", "NOT")[level]
        node = self.binary(level + 1)
        while (tok := self.peek()) is not None and tok.kind == "op" and tok.text == op:
            self.i += 1
            if self.peek() is None:
                raise self.fail(f"{op} at the end of the query", tok)
            node = BoolOp(op, node, self.binary(level + 1))
        return node

    def primary(self) -> Node:
        tok = self.peek()
        if tok is None:
            raise self.fail("the query ends where a term was expected")
        if tok.kind == "lpar":
            self.i += 1
            if (nxt := self.peek()) is not None and nxt.kind == "rpar":
                raise self.fail("empty parentheses", nxt)
            node = self.binary(0)
            close = self.peek()
            if close is None:
                raise self.fail("unbalanced (: no closing parenthesis", tok)
            if close.kind != "rpar":
                raise self.unexpected(close, "")
            self.i += 1
            return self.maybe_tag(node)
        if tok.kind == "op":
            raise self.fail(f"{tok.text} where a term was expected", tok)
        if tok.kind in ("lower_op", "rpar", "tag"):
            raise self.unexpected(tok, f"unexpected {tok.text!r}")
        return self.term()

    def maybe_tag(self, node: Node) -> Node:
        tok = self.peek()
        if tok is not None and tok.kind == "tag":
            raise self.fail("a field tag applies to a term, not to a parenthesised group", tok)
        return node

    def term(self) -> Term:
        field = None
        tok = self.peek()
        if tok.kind == "area":
            field = tok.text[5:-1].strip()
            if field not in CTGOV_AREAS:
                raise self.fail(f"unknown ClinicalTrials.gov search area {field!r}", tok)
            self.i += 1
            tok = self.peek()
            if tok is None or tok.kind not in ("word", "quote", "lpar"):
                raise self.fail("AREA[...] must be followed by a term", tok)
            if tok.kind == "lpar":
                raise self.fail("AREA[...] applies to one term here; repeat it inside the parentheses", tok)
        words: list[str] = []
        quoted = False
        if tok.kind == "quote":
            words = tok.text[1:-1].lower().split()
            quoted = True
            self.i += 1
            if not words:
                raise self.fail("empty quotation", tok)
        else:
            while (t := self.peek()) is not None and t.kind == "word":
                words.append(t.text.lower())
                self.i += 1
        for w in words:
            if "*" in w[:-1] or (w.endswith("*") and self.syntax == "pubmed" and len(w) < 5):
                raise self.fail(f"truncation {w!r}: one trailing * after at least four characters", tok)
        if self.syntax == "pubmed" and (t := self.peek()) is not None and t.kind == "tag":
            tag = t.text[1:-1].strip().lower()
            if tag not in PUBMED_TAGS:
                raise self.fail(f"unknown PubMed field tag [{t.text[1:-1]}]", t)
            field = tag
            self.i += 1
        return Term(tuple(words), field, quoted)


def parse_query(query: str, syntax: Syntax = "pubmed") -> Node:
    """The query's syntax tree; :class:`QueryError` (reason + position) if it is not valid."""
    return _Parser(query, syntax).parse()


def check_query(query: str, syntax: Syntax = "pubmed") -> str | None:
    """``None`` when the query parses, else the reason it does not (for reject rows)."""
    try:
        parse_query(query, syntax)
    except QueryError as err:
        return str(err)
    return None


def terms(node: Node) -> Iterable[Term]:
    if isinstance(node, Term):
        yield node
    else:
        yield from terms(node.left)
        yield from terms(node.right)


# --------------------------------------------------------------------------------------------
# Local evaluation over candidate records (RECORD_SCHEMA rows)


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _phrase_in(words: tuple[str, ...], haystack: list[str]) -> bool:
    needle = [re.sub(r"[^a-z0-9*]", "", w) for w in words]
    needle = [w for w in needle if w.strip("*")]
    if not needle:
        return False
    n = len(needle)
    for start in range(len(haystack) - n + 1):
        if all(h.startswith(w[:-1]) if w.endswith("*") else h == w for w, h in zip(needle, haystack[start:start + n])):
            return True
    return False


def _field_words(record: dict, fields: tuple[str, ...]) -> list[list[str]]:
    out = []
    for name in fields:
        value = record.get(name)
        values = value if isinstance(value, list) else [value]
        out.extend(_words(v) for v in values if v)
    return out


def matches(node: Node, record: dict) -> bool:
    """Boolean semantics of a PubMed query over one record's title, abstract, MeSH, types and
    keywords (fields a local record lacks, e.g. [la], match nothing)."""
    if isinstance(node, BoolOp):
        left = matches(node.left, record)
        if node.op == "AND":
            return left and matches(node.right, record)
        if node.op == "OR":
            return left or matches(node.right, record)
        return left and not matches(node.right, record)
    fields = PUBMED_TAGS[node.field or "all"]  # the parser accepted only known tags
    return any(_phrase_in(node.words, words) for words in _field_words(record, fields))


def search(query: str, records: list[dict]) -> list[dict]:
    """The records a PubMed query finds (raises :class:`QueryError` for an invalid query)."""
    tree = parse_query(query, "pubmed")
    return [r for r in records if matches(tree, r)]
