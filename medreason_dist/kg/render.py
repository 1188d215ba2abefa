"""Render a KG path as the text the reasoning stages show to the LLM."""

from __future__ import annotations


def render_path(node_names: list[str], relations: list[str]) -> str:
    """``metformin -[indication]-> type 2 diabetes`` for a path of names and relation labels."""
    if len(node_names) != len(relations) + 1:
        raise ValueError(f"a path with {len(node_names)} nodes needs {len(node_names) - 1} relations, "
                         f"got {len(relations)}")
    parts = [node_names[0]]
    for relation, name in zip(relations, node_names[1:]):
        parts.append(f"-[{relation}]-> {name}")
    return " ".join(parts)
