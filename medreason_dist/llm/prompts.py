"""Prompt builders for the reasoning stages: row -> chat messages.

Each builder reads only the columns it names, so a stage can be tested with plain dicts.
``PROMPT_VERSION`` goes into every output row's provenance; bump it when wording changes.
"""

from __future__ import annotations

import json
from typing import Any

from medreason_dist.llm.schemas import KG_NODE_TYPES

PROMPT_VERSION = "2026-11-22.1"

_SYSTEM = "You are a careful medical educator. Follow the output format exactly."


def options_text(options_json: str | None) -> str:
    """``A. text`` lines from the JSON-encoded options mapping (empty for free-text items)."""
    if not options_json:
        return ""
    options = json.loads(options_json)
    items = options.items() if isinstance(options, dict) else options
    return "\n".join(f"{k}. {v}" for k, v in items)


def _question_block(row: dict[str, Any]) -> str:
    opts = options_text(row.get("options_json"))
    return row["question"] + (f"\n\nOptions:\n{opts}" if opts else "")


def extract_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    types = ", ".join(KG_NODE_TYPES)
    user = (
        "List the medical entities that matter for answering this question.\n"
        f"Allowed entity types (use these strings only): {types}.\n"
        "question_entities: findings, conditions, drugs, genes, anatomy and exposures mentioned "
        "in the question text. answer_entities: the entities named by the correct answer.\n"
        "Use short canonical names (e.g. 'type 2 diabetes mellitus', 'metformin'), no duplicates.\n\n"
        f"Question:\n{_question_block(row)}\n\nCorrect answer: {row['answer_text']}\n\n"
        'Reply with JSON: {"question_entities": [{"name": ..., "type": ...}], '
        '"answer_entities": [{"name": ..., "type": ...}]}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def link_choice_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    candidates = json.loads(row["candidates_json"])
    listing = "\n".join(f"{i}. {c['name']} ({c['type']})" for i, c in enumerate(candidates, 1))
    user = (
        f"A medical question mentions the {row['entity_type']} '{row['entity_name']}'.\n"
        f"Which knowledge-graph entry below means the same thing?\n{listing}\n"
        "0. none of them\n\n"
        "Pick the entry with the same meaning, not merely a related one. "
        'Reply with JSON: {"choice": <number>}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def reformat_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    user = (
        "Rewrite the question and its answer as two plain statements.\n"
        "description: the clinical situation and what is being asked, in one or two sentences, "
        f"mentioning these entities where they apply: {row['question_entity_names']}.\n"
        "conclusion: the answer as a full sentence, mentioning these entities where they apply: "
        f"{row['answer_entity_names']}.\n\n"
        f"Question:\n{_question_block(row)}\n\nCorrect answer: {row['answer_text']}\n\n"
        'Reply with JSON: {"description": ..., "conclusion": ...}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def prune_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    paths = json.loads(row["paths_text_json"])
    listing = "\n".join(f"{i}. {p}" for i, p in enumerate(paths, 1))
    user = (
        f"Situation: {row['description']}\nConclusion: {row['conclusion']}\n\n"
        f"Knowledge-graph paths from '{row['start_name']}' to '{row['end_name']}':\n{listing}\n\n"
        f"Choose up to {row['keep_n']} paths that best explain why the conclusion follows from the "
        "situation, most useful first. Ignore paths that are true but beside the point.\n"
        'Reply with JSON: {"keep": [<path numbers>]}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def generate_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    facts = json.loads(row["kept_paths_text_json"]) if row.get("kept_paths_text_json") else []
    fact_lines = "\n".join(f"[{i}] {p}" for i, p in enumerate(facts, 1)) if facts else \
        "(no knowledge-graph facts available)"
    user = (
        "Write the step-by-step reasoning an expert would use to answer the question below.\n"
        "Background facts you may rely on (chains of medical relations):\n"
        f"{fact_lines}\n\n"
        f"Question:\n{_question_block(row)}\n\n"
        f"The answer to reach: {row['answer_text']}\n\n"
        "Answer in three parts:\n"
        "reasoning_paths: the numbers of the background facts your reasoning uses, e.g. [1, 2] "
        "(an empty list when there are none);\n"
        "reasoning_process: numbered steps from the findings to the answer;\n"
        "conclusion: the answer in one sentence.\n"
        "Write as if you worked this out yourself: do not mention that facts, paths or the "
        "answer were given to you.\n"
        'Reply with JSON: {"reasoning_paths": [...], "reasoning_process": "...", "conclusion": "..."}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def verify_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    user = (
        "Read the reasoning and decide which option it supports.\n\n"
        f"Question:\n{_question_block(row)}\n\nReasoning:\n{row['reasoning_without_conclusion']}\n\n"
        'Reply with JSON: {"answer": "<option letter>"}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]


def verify_free_text_prompt(row: dict[str, Any]) -> list[dict[str, str]]:
    user = (
        "Does the reasoning below arrive at the reference answer (same meaning, wording may differ)?\n\n"
        f"Question:\n{row['question']}\n\nReasoning:\n{row['reasoning_without_conclusion']}\n\n"
        f"Reference answer: {row['answer_text']}\n\n"
        'Reply with JSON: {"correct": true or false}'
    )
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": user}]
