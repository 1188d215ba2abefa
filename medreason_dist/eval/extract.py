"""Pull the chosen option letter out of free model output.

Order of evidence (first that yields an answer wins):

1. a final-answer section (``## Final Answer``, ``**Final Answer:**``, ``Final answer:``) — the
   last one in the text; inside it an explicit statement, a lone letter, or option text;
2. explicit statements anywhere: "the answer is C", "Answer: (C)", "the correct option is (B)
   Rhinovirus", "I would choose D", ``\\boxed{C}``, ``{"answer": "C"}`` — the *last* one counts,
   because the prompt asks the model to end with it and models revise themselves mid-way;
3. the whole output (or its last line) is a lone letter: "C", "(c)", "C.";
4. option text: the output's last line / the text after "answer is" contains the normalised text
   of exactly one option (the longest one when one option's text contains another's).

Lower-case letters are accepted only where they cannot be the article "a" or the pronoun "I"
in running text: in brackets, or followed by punctuation / end of line. A letter that is not
among the row's options is never returned. Two different letters in the final-answer section
("A or C") are ambiguous and give no answer.

Returns ``Extraction(letter | None, method)``; ``letter is None`` means unparsed (scored wrong
and counted separately).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, NamedTuple

from medreason_dist.eval.prompts import options_dict
from medreason_dist.sources.schema import OPTION_LETTERS

# Methods (the second field of an Extraction).
FINAL_SECTION = "final_answer_section"
STATEMENT = "answer_statement"
STATEMENT_REVISED = "answer_statement_last_of_conflicting"
LONE_LETTER = "lone_letter"
OPTION_TEXT = "option_text"
EMPTY = "empty_output"
AMBIGUOUS = "ambiguous"
INVALID_LETTER = "letter_not_in_options"
UNPARSED = "unparsed"


class Extraction(NamedTuple):
    letter: str | None
    method: str


# A letter token and what may follow it. Strong: bracketed or bold, any case.
_AFTER_LETTER = r"(?=\s*(?:$|[\n.,;:!?)\]*\"'`]|\s[-\u2013\u2014:]))"
_LETTER = (
    r"(?:\(\s*(?P<p>[A-Za-z])\s*\)|\[\s*(?P<b>[A-Za-z])\s*\]"  # (C) [C]
    r"|(?-i:(?P<u>[A-Z])(?=\s+(?:[A-Z(]|because\b|since\b|as\b|which\b|with\b|given\b|is\b)))"  # C Rhinovirus
    r"|(?P<l>[A-Za-z])" + _AFTER_LETTER + r")"  # C.  c)  c<end>
)
_LEAD = r"[\s:=\-\u2013\u2014\"'`*]*(?:(?:option|choice|letter)\s*)?[\s:=\"'`*]*"
_STATEMENTS = [
    # "... answer is C", "Answer: (C)", "final answer would be: C", "answer = C", '"answer": "C"'
    re.compile(
        r"\banswer\b[\"'`*]*\s*(?:is|would\s+be|should\s+be|will\s+be|must\s+be|:|=|-|\u2013|\u2014)?"
        r"(?:\s*(?:most\s+likely|probably|clearly|therefore|thus))?" + _LEAD + r"(?P<rest>" + _LETTER + r")",
        re.IGNORECASE,
    ),
    # "the correct option is (B)", "best choice: D"
    re.compile(
        r"\b(?:correct|right|best|most\s+appropriate|most\s+likely)\s+(?:option|choice|letter)\b\s*"
        r"(?:is|would\s+be|:|=|-)?" + _LEAD + r"(?P<rest>" + _LETTER + r")",
        re.IGNORECASE,
    ),
    # "I choose D", "I'd pick (B)", "I will go with C"
    re.compile(
        r"\bI(?:\s+would|\s+will|'d|'ll)?\s+(?:choose|select|pick|go\s+with)\b" + _LEAD + r"(?P<rest>" + _LETTER + r")",
        re.IGNORECASE,
    ),
]
_BOXED = re.compile(r"\\boxed\{\s*(?:\\text(?:bf)?\{)?\s*\(?([A-Za-z])\)?\s*\}?\s*\}")
# Text after "answer is" when it names no letter: "The answer is Rhinovirus."
_TEXT_STATEMENT = re.compile(r"\banswer\b\s*(?:is|would\s+be|:)\s*(?P<rest>[^\n]+)", re.IGNORECASE)
_FINAL_HEADING = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:\*\*|__)?[ \t]*final[ \t]+answer[ \t]*:?[ \t]*(?:\*\*|__)?[ \t]*:?",
    re.IGNORECASE | re.MULTILINE,
)
_LONE = re.compile(r"^\s*(?:\(\s*([A-Za-z])\s*\)|\[\s*([A-Za-z])\s*\]|([A-Za-z]))\s*[.):]?\s*$")
_LEADING_LETTER = re.compile(r"^\s*(?:\(\s*([A-Za-z])\s*\)|([A-Z])(?:[.):]|\s+[-\u2013\u2014])|([A-Za-z])\s*$)")
_TWO_LETTERS = re.compile(r"^\s*\(?([A-Z])\)?\s*(?:or|and|/|,|&)\s*\(?([A-Z])\)?(?:\s|[.)]|$)")
_MARKUP = re.compile(r"(\*\*|__|`+|<\/?(?:b|strong|em|i)>)")
_PUNCT = re.compile(r"[^\w\s]+")
_WS = re.compile(r"\s+")


def _letter_of(match: re.Match) -> str:
    for group in ("p", "b", "u", "l"):
        value = match.group(group)
        if value:
            return value.upper()
    raise AssertionError("letter pattern matched without a letter")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().replace("_", " ")
    return _WS.sub(" ", _PUNCT.sub(" ", text)).strip()


def _option_in(text: str, options: dict[str, str]) -> tuple[str | None, bool]:
    """(letter, ambiguous): the option whose normalised text occurs in ``text`` as whole words.

    When several occur, the longest wins if it contains all the others (``diabetes`` inside
    ``type 2 diabetes``); otherwise the result is ambiguous.
    """
    hay = f" {_norm(text)} "
    found = []
    for letter, opt in options.items():
        needle = _norm(opt)
        if needle and f" {needle} " in hay:
            found.append((len(needle), letter, needle))
    if not found:
        return None, False
    found.sort(reverse=True)
    longest = found[0]
    if all(n == longest[2] or n in longest[2] for _, _, n in found[1:]):
        return longest[1], False
    return None, True


def _statement_letters(text: str) -> list[str]:
    """Letters named by explicit answer statements, in order of appearance."""
    hits: list[tuple[int, str]] = []
    for pattern in _STATEMENTS:
        for m in pattern.finditer(text):
            hits.append((m.start("rest"), _letter_of(m)))
    for m in _BOXED.finditer(text):
        hits.append((m.start(1), m.group(1).upper()))
    return [letter for _, letter in sorted(hits)]


def _from_text(text: str, valid: set[str], options: dict[str, str]) -> Extraction | None:
    """Statements (last wins), then a lone letter line; None when neither is present."""
    letters = [l for l in _statement_letters(text) if l in valid]
    if letters:
        method = STATEMENT if len(set(letters)) == 1 else STATEMENT_REVISED
        return Extraction(letters[-1], method)
    return None


def _section_answer(section: str, valid: set[str], options: dict[str, str]) -> Extraction | None:
    two = _TWO_LETTERS.match(section)
    if two and two.group(1) != two.group(2):
        return Extraction(None, AMBIGUOUS)
    letters = [l for l in _statement_letters(section) if l in valid]
    if letters:
        if len(set(letters)) > 1:
            return Extraction(None, AMBIGUOUS)
        return Extraction(letters[-1], FINAL_SECTION)
    first_line = next((ln for ln in section.splitlines() if ln.strip()), "")
    lead = _LEADING_LETTER.match(first_line)
    if lead:
        letter = next(g for g in lead.groups() if g).upper()
        if letter in valid:
            return Extraction(letter, FINAL_SECTION)
    letter, ambiguous = _option_in(first_line, options)
    if letter:
        return Extraction(letter, FINAL_SECTION)
    if ambiguous:
        return Extraction(None, AMBIGUOUS)
    return None


def extract_answer(output: Any, options: Any = None) -> Extraction:
    """The option letter a model's output commits to, and how it was found."""
    if not isinstance(output, str) or not output.strip():
        return Extraction(None, EMPTY)
    opts = options_dict(options)
    valid = set(opts) if opts else set(OPTION_LETTERS)
    text = _MARKUP.sub("", unicodedata.normalize("NFKC", output)).strip()

    headings = list(_FINAL_HEADING.finditer(text))
    if headings:
        section = text[headings[-1].end():].strip()
        found = _section_answer(section, valid, opts)
        if found is not None:
            return found

    found = _from_text(text, valid, opts)
    if found is not None:
        return found

    lines = [ln for ln in text.splitlines() if ln.strip()]
    for candidate in (text, lines[-1] if lines else ""):
        lone = _LONE.match(candidate)
        if lone:
            letter = next(g for g in lone.groups() if g).upper()
            # A lone lower-case "a"/"i" line is still a letter here: nothing else is on the line.
            return Extraction(letter, LONE_LETTER) if letter in valid else Extraction(None, INVALID_LETTER)

    if opts:
        tails = [m.group("rest") for m in _TEXT_STATEMENT.finditer(text)]
        for candidate in ([tails[-1]] if tails else []) + [text if len(lines) <= 1 else lines[-1]]:
            letter, ambiguous = _option_in(candidate, opts)
            if letter:
                return Extraction(letter, OPTION_TEXT)
            if ambiguous:
                return Extraction(None, AMBIGUOUS)

    # A statement naming a letter outside the options is reported as such.
    named = _statement_letters(text)
    if named:
        return Extraction(None, INVALID_LETTER)
    return Extraction(None, UNPARSED)
