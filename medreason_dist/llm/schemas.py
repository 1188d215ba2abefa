"""Pydantic models of every structured LLM answer.

The same model gives the JSON schema for constrained decoding and validates the output. Keep
them flat (no Optional sub-models): the schema travels through Arrow inside Ray Data.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from medreason_dist.kg.schema import NODE_TYPES as KG_NODE_TYPES

# PrimeKG's ten node types; subscripting Literal with the tuple makes one literal per type.
NodeType = Literal[KG_NODE_TYPES]  # type: ignore[valid-type]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Entity(_Out):
    # Bounds are part of the decoding grammar: a small model that starts copying sentences
    # or repeating itself is forced to close the string/list instead of running to max_tokens.
    name: str = Field(min_length=1, max_length=60)
    type: NodeType


class ExtractedEntities(_Out):
    question_entities: list[Entity] = Field(max_length=6)
    answer_entities: list[Entity] = Field(max_length=3)


class LinkChoice(_Out):
    # 0 means "none of the candidates"; 1..k picks candidate k.
    choice: int = Field(ge=0, le=20)


class Reformatted(_Out):
    description: str = Field(min_length=1)
    conclusion: str = Field(min_length=1)


class PathSelection(_Out):
    # 1-based numbers of the paths to keep, most relevant first.
    keep: list[int] = Field(max_length=10)


class ChosenOption(_Out):
    answer: str = Field(pattern=r"^[A-Z]$")


class JudgeVerdict(_Out):
    correct: bool


class GeneratedReasoning(_Out):
    """The grounded chain of thought, one field per section (the grammar guarantees all three)."""

    # Numbers of the background facts (KG paths) the reasoning uses: the SFT text then cites the
    # paths exactly as the KG has them, which a small model copying "A -> relation -> B" did not.
    reasoning_paths: list[int] = Field(max_length=6)
    reasoning_process: str = Field(min_length=1, max_length=1500)
    conclusion: str = Field(min_length=1, max_length=300)
