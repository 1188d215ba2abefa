"""Stage `generate`: a step-by-step reasoning grounded in the kept KG paths.

The model answers in a JSON schema with one field per section, so the three sections (reasoning
paths, reasoning process, conclusion) are guaranteed by the decoding grammar; they are then
rendered as Markdown for the SFT data.

Rows without a kept path are rejected as ``no_path`` unless ``reason.allow_pathless`` (then they
are generated and flagged). The model cites the kept paths it uses by number; the rendered
"Reasoning paths" section lists those paths verbatim, and a row with kept paths that cites none of
them is rejected as ``no_path_cited``. Outputs missing a section, or that give away that facts or the
answer were supplied, are rejected with a reason.
"""

from __future__ import annotations

import json
import re

import pyarrow as pa
import pyarrow.compute as pc

from medreason_dist.config import Config
from medreason_dist.llm.prompts import generate_prompt
from medreason_dist.llm.schemas import GeneratedReasoning
from medreason_dist.stages.common import LlmFn, run_llm_sharded, with_column
from medreason_dist.stages.resumable import ResumableResult

STEP = "generate"
SECTIONS = ("reasoning paths", "reasoning process", "conclusion")
_HEADING = re.compile(r"^\s*(?:#{1,4}\s*|\*\*)\s*(reasoning paths|reasoning process|conclusion)\b", re.I | re.M)
# Phrases that reveal the prompt supplied facts or the answer; such text teaches the wrong habit.
_LEAKS = re.compile(
    r"(provided|given|supplied|listed|background)\s+(knowledge[- ]graph\s+)?(paths?|facts?|relations?|answer)"
    r"|(paths?|facts?|answer)\s+(were|was|are|is)\s+(provided|given|supplied)"
    r"|answer to reach",
    re.I,
)


class PathlessRow(Exception):
    """Raised by the prompt builder so the engine layer skips the row without a call."""


def check_reasoning(text: str) -> tuple[str | None, str | None]:
    """(reason, detail) when the reasoning is unusable, else (None, None)."""
    found = [m.group(1).lower() for m in _HEADING.finditer(text or "")]
    missing = [s for s in SECTIONS if s not in found]
    if missing:
        return "malformed_reasoning", "missing sections: " + ", ".join(missing)
    leak = _LEAKS.search(text)
    if leak:
        return "mentions_given_material", leak.group(0)
    return None, None


def cited_paths(numbers: list[int], facts: list[str]) -> list[str]:
    """The kept paths the model cited by number, in its order, each once; unknown numbers dropped."""
    out = []
    for n in numbers:
        if 1 <= n <= len(facts) and facts[n - 1] not in out:
            out.append(facts[n - 1])
    return out


def render_reasoning(result_json: str, facts: list[str]) -> str:
    """The three sections as the Markdown text that goes into the SFT data; the reasoning paths
    are the kept KG paths the model cited by number, written as the KG has them."""
    r = GeneratedReasoning.model_validate_json(result_json)
    paths = "\n".join(f"- {p}" for p in cited_paths(r.reasoning_paths, facts)) or "- (none)"
    return (f"## Reasoning paths\n{paths}\n\n## Reasoning process\n{r.reasoning_process.strip()}\n\n"
            f"## Conclusion\n{r.conclusion.strip()}")


def _prompt(allow_pathless: bool):
    def build(row: dict) -> list[dict]:
        if row["n_kept_paths"] == 0 and not allow_pathless:
            raise PathlessRow("no KG path survived pruning")
        return generate_prompt(row)

    return build


def _finalize(table: pa.Table) -> pa.Table:
    errors = table.column(f"{STEP}_error").to_pylist()
    details = table.column(f"{STEP}_error_detail").to_pylist() if f"{STEP}_error_detail" in table.column_names \
        else [None] * table.num_rows
    n_paths = table.column("n_kept_paths").to_pylist()
    texts = table.column(f"{STEP}_result").to_pylist()
    facts = [json.loads(j) if j else [] for j in table.column("kept_paths_text_json").to_pylist()]
    for i, (err, detail) in enumerate(zip(errors, details)):
        if err == "prompt_error" and n_paths[i] == 0 and (detail or "").startswith("PathlessRow"):
            errors[i], details[i] = "no_path", "no KG path survived pruning"
        elif err is None:
            numbers = GeneratedReasoning.model_validate_json(texts[i]).reasoning_paths
            texts[i] = render_reasoning(texts[i], facts[i])
            if facts[i] and not cited_paths(numbers, facts[i]):
                # the row had KG paths and the reasoning used none of them: not grounded
                errors[i], details[i] = "no_path_cited", f"cited {numbers} of {len(facts[i])} kept paths"
            else:
                errors[i], details[i] = check_reasoning(texts[i])
    table = with_column(table, f"{STEP}_result", texts, pa.string())
    table = with_column(table, f"{STEP}_error", errors, pa.string())
    table = with_column(table, f"{STEP}_error_detail", details, pa.string())
    return with_column(table, "pathless", pc.equal(table.column("n_kept_paths"), 0).to_pylist(), pa.bool_())


def _rows_with_paths(table: pa.Table) -> dict[str, int]:
    return {"rows_with_paths": int(pc.sum(pc.greater(table.column("n_kept_paths"), 0)).as_py() or 0)}


def generate_reasoning(cfg: Config, pruned_uri: str, *, out_uri: str, rejects_uri: str, fingerprint: str,
                       llm_fn: LlmFn, force: bool = False) -> ResumableResult:
    """Reasoning for every row of the pruned dataset at ``pruned_uri``, on workers."""
    return run_llm_sharded(
        cfg, llm_fn, pruned_uri, step=STEP, prompt=_prompt(cfg.reason.allow_pathless), output_model=GeneratedReasoning,
        sampling=cfg.reason.generate, out_uri=out_uri, rejects_uri=rejects_uri, stage=STEP,
        fingerprint=fingerprint, finalize=_finalize, force=force, count_fn=_rows_with_paths,
        extra={"allow_pathless": cfg.reason.allow_pathless},
    )


def strip_conclusion(text: str) -> str:
    """The reasoning up to (not including) its Conclusion section."""
    for m in _HEADING.finditer(text or ""):
        if m.group(1).lower() == "conclusion":
            return text[: m.start()].rstrip()
    return (text or "").rstrip()


def cites_path(text: str, kept_paths_json: str) -> bool:
    """Whether the reasoning names both ends of at least one kept path (for the report)."""
    low = (text or "").lower()
    for p in json.loads(kept_paths_json or "[]"):
        parts = re.split(r"\s+-\[[^\]]*\]->\s+", p["text"])
        if len(parts) >= 2 and parts[0].lower() in low and parts[-1].lower() in low:
            return True
    return False
