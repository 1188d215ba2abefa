"""The strict multiple-choice prompt used for every benchmark (any number of options, A-Z)."""

from __future__ import annotations

from typing import Any

from medreason_dist.sources.schema import OPTION_LETTERS

MC_PROMPT_VERSION = "mc-strict/1"

SYSTEM_PROMPT = (
    "You are a careful medical expert taking a multiple-choice exam. Exactly one option is correct."
)

_INSTRUCTIONS = (
    "Think through the question briefly, then commit to a single option. "
    "Your reply must end with one line of the exact form \"The answer is X.\" where X is the letter "
    "of your chosen option ({letters}). Do not add anything after that line."
)


def options_dict(options: Any) -> dict[str, str]:
    """Options in any of the shapes rows carry them: dict, list of (key, value) pairs, or
    list of {"key", "value"} mappings (Arrow map columns as seen through pandas / Ray Data)."""
    if options is None:
        return {}
    if isinstance(options, dict):
        items = options.items()
    else:
        items = []
        for item in list(options):
            if isinstance(item, dict):
                items.append((item.get("key"), item.get("value")))
            else:
                key, value = item
                items.append((key, value))
    out = {}
    for key, value in items:
        if key is None or value is None:
            continue
        out[str(key).strip().upper()] = str(value)
    return dict(sorted(out.items()))


def _letter_span(letters: list[str]) -> str:
    if not letters:
        return "A-Z"
    if letters == list(OPTION_LETTERS[: len(letters)]) and len(letters) > 2:
        return f"{letters[0]}-{letters[-1]}"
    return ", ".join(letters)


def format_mc_question(question: str, options: Any) -> str:
    opts = options_dict(options)
    lines = [question.strip(), ""]
    lines += [f"{letter}. {text}" for letter, text in opts.items()]
    lines += ["", _INSTRUCTIONS.format(letters=_letter_span(list(opts)))]
    return "\n".join(lines)


def build_mc_messages(row: dict) -> list[dict[str, str]]:
    """Prompt builder for ``run_llm(build_prompt=...)``: chat messages for one QA row."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("row has no question text")
    opts = options_dict(row.get("options"))
    if not opts:
        raise ValueError("row has no options; the multiple-choice prompt needs them")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": format_mc_question(question, opts)},
    ]
