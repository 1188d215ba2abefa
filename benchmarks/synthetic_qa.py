"""Synthetic MedQA-format questions over the packaged demo KG, a config for them, and a fake model.

Shared by ``benchmarks/scale_bench.py`` and ``tests/test_kill_resume_10k.py``:

* :func:`write_medqa_jsonl` writes N unique MedQA-format rows (``question``, ``options``,
  ``answer``, ``answer_idx``) whose questions name nodes of ``medreason_dist/data/demo_kg`` and
  whose answer is a KG neighbour of those nodes, so extract -> link -> reformat -> paths -> prune
  has real work (exact links, KG paths, groups larger than the pruner keeps). Every 20th row
  names no KG node (pathless), and two broken lines at the end exercise the quarantine.
* :class:`SyntheticModel` answers the pipeline's LLM requests deterministically from the prompt
  text alone (entities named in the question, the answer given in the prompt, ...). A few rows,
  picked by a hash of the question text, get planted failures so every reject path is used:
  invalid JSON at extract (~2%), a schema-invalid reformat (~2%), reasoning that mentions the
  given material (~1%), and reasoning that argues for a distractor so verify rejects it (~8%).
* :func:`start_fake_model` starts ``tests/fake_openai.py``'s server on 127.0.0.1 with that answer
  function; :func:`write_config` writes a YAML config (based on ``conf/local.yaml``) with the
  ``http`` engine profile pointed at it, the synthetic source, ``reason.limit: null`` and no
  evaluation sets.

Only the model is fake: Ray Data, storage and Spark run for real.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
import re
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
KG_CSV = REPO / "medreason_dist" / "data" / "demo_kg" / "kg.csv"
LOCAL_CONF = REPO / "conf" / "local.yaml"

# The stages from QA rows to the SFT dataset (kg is an input of link and paths).
CHAIN = ("sources", "kg", "lexicon", "extract", "link", "reformat", "paths", "prune", "generate", "verify")
BROKEN_ROWS = 2  # lines appended to every synthetic source, quarantined by the sources stage

_MAX_NAME = 60  # Entity.name max_length in medreason_dist/llm/schemas.py


# --------------------------------------------------------------------------------------------
# The demo KG


class DemoKG:
    """Node names/types and adjacency of the packaged demo KG (read straight from kg.csv)."""

    def __init__(self, path: Path = KG_CSV):
        self.type_of: dict[str, str] = {}
        adj: dict[str, set[str]] = {}
        with open(path, newline="", encoding="utf-8") as fh:
            for rec in csv.DictReader(fh):
                x, y = rec["x_name"].strip(), rec["y_name"].strip()
                self.type_of.setdefault(x, rec["x_type"])
                self.type_of.setdefault(y, rec["y_type"])
                if x != y:
                    adj.setdefault(x, set()).add(y)
                    adj.setdefault(y, set()).add(x)
        self.neighbors = {k: sorted(v) for k, v in sorted(adj.items())}
        self.names = sorted(self.type_of)
        self.by_type: dict[str, list[str]] = {}
        for name in self.names:
            self.by_type.setdefault(self.type_of[name], []).append(name)
        # Answers: nodes with at least two neighbours, short enough for the entity schema.
        self.answers = [n for n in self.names if len(self.neighbors.get(n, ())) >= 2 and len(n) <= _MAX_NAME]
        self.by_lower = {n.lower(): n for n in self.names}


_AGES = list(range(18, 86))
_SEXES = ("man", "woman")
_FILLER = ("wellness", "sleep hygiene", "travel plans", "exercise routine", "dietary habits", "work schedule")
_GENERIC_OPTIONS = ("Reassurance only", "Follow-up in a year", "Refer to a dietitian", "Keep a symptom diary",
                    "No further action")


def synthetic_records(n: int, seed: int = 0, kg: DemoKG | None = None) -> list[dict]:
    """``n`` unique MedQA-format records (deterministic for ``(n, seed)``; a prefix of a larger n)."""
    kg = kg or DemoKG()
    rng = random.Random(seed)
    out = []
    for i in range(n):
        age, sex = rng.choice(_AGES), rng.choice(_SEXES)
        if i % 20 == 19:  # names no KG node: the row goes through pathless
            topic = rng.choice(_FILLER)
            opts = list(_GENERIC_OPTIONS[:4])
            rng.shuffle(opts)
            answer = opts[rng.randrange(4)]
            question = (f"Case {i}: a healthy {age}-year-old {sex} asks about {topic} at a routine visit. "
                        "What is the most appropriate next step?")
        else:
            answer = rng.choice(kg.answers)
            near = kg.neighbors[answer]
            named = rng.sample(near, 2)
            if i % 3 == 0:  # a two-hop clue as well: longer paths
                far = [m for m in kg.neighbors.get(named[0], []) if m != answer and m not in named]
                if far:
                    named[1] = rng.choice(far)
            kind = kg.type_of[answer].replace("/", " or ").replace("_", " ")
            question = (f"Case {i}: a {age}-year-old {sex} is evaluated; the record mentions {named[0]} and "
                        f"{named[1]}. Which {kind} is most closely related?")
            pool = [m for m in kg.by_type[kg.type_of[answer]] if m != answer and m not in named]
            if len(pool) < 3:
                pool = [m for m in kg.answers if m != answer and m not in named]
            opts = rng.sample(pool, 3) + [answer]
            rng.shuffle(opts)
        letters = "ABCD"
        out.append({"question": question, "options": dict(zip(letters, opts)), "answer": answer,
                    "answer_idx": letters[opts.index(answer)]})
    return out


def write_medqa_jsonl(path: str | Path, n: int, seed: int = 0, *, broken: bool = True) -> Path:
    """Write ``n`` synthetic rows (+ ``BROKEN_ROWS`` broken lines unless ``broken`` is False)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        for rec in synthetic_records(n, seed):
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
        if broken:
            fh.write('{"question": "truncated line", "options": {"A": \n')  # malformed JSON
            fh.write(json.dumps({"question": "Which letter?", "options": {"A": "x", "B": "y"}, "answer": "z",
                                 "answer_idx": "E"}) + "\n")  # answer letter not among the options
    return path


# --------------------------------------------------------------------------------------------
# The fake model's answers


def _between(text: str, start: str, end: str | None) -> str:
    i = text.find(start)
    if i < 0:
        return ""
    i += len(start)
    j = text.find(end, i) if end else -1
    return text[i:j] if j >= 0 else text[i:]


def _bucket(question: str) -> int:
    return int(hashlib.sha256(question.strip().encode()).hexdigest()[:8], 16) % 100


class SyntheticModel:
    """``answer(body) -> content`` for :class:`fake_openai.FakeOpenAI`; pure and thread-safe."""

    def __init__(self, kg: DemoKG | None = None):
        self.kg = kg or DemoKG()
        names = sorted((n for n in self.kg.names if len(n) <= _MAX_NAME), key=len, reverse=True)
        self._names = re.compile(r"(?<![\w-])(" + "|".join(re.escape(n) for n in names) + r")(?![\w-])", re.I)

    def __call__(self, body: dict) -> str | None:
        fmt = body.get("response_format") or {}
        step = ((fmt.get("json_schema") or {}).get("name")) if fmt.get("type") == "json_schema" else None
        messages = body.get("messages") or []
        user = next((m.get("content") or "" for m in reversed(messages) if m.get("role") == "user"), "")
        handler = getattr(self, "_" + str(step), None)
        return handler(user) if handler else None

    # one method per LLM step (the json_schema name is the step)

    def _entities(self, text: str) -> list[dict]:
        seen, out = set(), []
        for m in self._names.finditer(text):
            name = self.kg.by_lower[m.group(1).lower()]
            if name not in seen:
                seen.add(name)
                out.append({"name": name, "type": self.kg.type_of[name]})
        return out

    def _extract(self, user: str) -> str:
        question = _between(user, "Question:\n", "\n\nOptions:")
        if _bucket(question) < 2:
            return '{"question_entities": [{"name": "unterminated'  # invalid JSON -> extract reject
        answer = _between(user, "Correct answer: ", "\n").strip()
        a_ents = [{"name": self.kg.by_lower[answer.lower()], "type": self.kg.type_of[self.kg.by_lower[answer.lower()]]}] \
            if answer.lower() in self.kg.by_lower and len(answer) <= _MAX_NAME else []
        q_ents = [e for e in self._entities(question) if e["name"].lower() != answer.lower()][:6]
        return json.dumps({"question_entities": q_ents, "answer_entities": a_ents})

    def _link(self, user: str) -> str:
        return json.dumps({"choice": 1})

    def _reformat(self, user: str) -> str:
        question = _between(user, "Question:\n", "\n\nOptions:")
        answer = _between(user, "Correct answer: ", "\n").strip()
        if _bucket(question) in (2, 3):
            return json.dumps({"description": "incomplete"})  # no conclusion -> schema_validation
        return json.dumps({"description": f"A patient is evaluated. {question.strip()}",
                           "conclusion": f"The finding is best explained by {answer}."})

    def _prune(self, user: str) -> str:
        listing = _between(user, "Knowledge-graph paths", "\n\nChoose up to ")
        count = len(re.findall(r"^\d+\. ", listing, re.M))
        keep = int(re.search(r"Choose up to (\d+)", user).group(1)) if "Choose up to" in user else 3
        return json.dumps({"keep": list(range(1, min(keep, count) + 1))})

    def _generate(self, user: str) -> str:
        facts = _between(user, "(chains of medical relations):\n", "\n\nQuestion:\n")
        numbered = [re.match(r"^\[(\d+)\] (.*)$", line) for line in facts.splitlines()]
        numbered = [(int(m.group(1)), m.group(2).strip()) for m in numbered if m][:6]
        paths = [text for _, text in numbered]
        question = _between(user, "Question:\n", "\n\nThe answer to reach: ")
        body = _between(question, "", "\n\nOptions:")
        answer = _between(user, "The answer to reach: ", "\n").strip()
        bucket = _bucket(body)
        pick = answer
        if 5 <= bucket <= 12:  # argue for a distractor: verify rejects it as answer_mismatch
            options = [line[3:] for line in _between(question, "\n\nOptions:\n", None).splitlines()
                       if len(line) > 3 and line[1] == "."]
            pick = next((o for o in options if o.strip() != answer), answer)
        steps = ["1. The findings in the question are noted."]
        if paths:
            steps.append("2. They connect through " + "; ".join(paths[:2]) + ".")
        if bucket == 4:
            steps.append("3. The provided paths settle it.")  # leaks the prompt -> generate reject
        steps.append(f"{len(steps) + 1}. This is most consistent with {pick}.")
        return json.dumps({"reasoning_paths": [n for n, _ in numbered], "reasoning_process": "\n".join(steps),
                           "conclusion": f"The answer is {pick}."[:300]})

    def _verify(self, user: str) -> str:
        options = {}
        for line in _between(user, "\n\nOptions:\n", "\n\nReasoning:\n").splitlines():
            if len(line) > 3 and line[1] == ".":
                options[line[3:].strip().lower()] = line[0]
        said = re.search(r"most consistent with (.+?)\.\s*$", _between(user, "\n\nReasoning:\n", "\n\nReply with"),
                         re.M)
        letter = options.get(said.group(1).strip().lower()) if said else None
        return json.dumps({"answer": letter or "A"})


def start_fake_model(delay_s: float = 0.0):
    """The fake OpenAI-compatible server (in a thread of this process) answering with
    :class:`SyntheticModel`; call ``.stop()`` when done. ``.base_url`` is the API root."""
    tests_dir = str(REPO / "tests")
    if tests_dir not in sys.path:
        sys.path.insert(0, tests_dir)
    from fake_openai import FakeOpenAI

    return FakeOpenAI(answer=SyntheticModel(), delay_s=delay_s, model="synthetic-teacher").start()


# --------------------------------------------------------------------------------------------
# Config


def write_config(path: str | Path, *, out_dir: str | Path, source: str | Path, base_url: str,
                 cache_dir: str | Path | None = None, log_dir: str | Path | None = None,
                 extra: dict | None = None) -> Path:
    """A YAML config for the synthetic run: conf/local.yaml with the http profile, the synthetic
    source, ``reason.limit: null`` and no eval/SFT sections; ``extra`` is merged on top."""
    cfg = yaml.safe_load(LOCAL_CONF.read_text())
    for key in ("eval_sets", "eval", "sft"):
        cfg.pop(key, None)
    cfg["run"] = {**cfg.get("run", {}), "name": "synthetic-scale", "out": str(out_dir)}
    if log_dir is not None:
        cfg["run"]["log_dir"] = str(log_dir)
    cfg["models"] = {**cfg.get("models", {}),
                     "cache_dir": str(cache_dir or REPO / ".cache" / "medreason_dist")}
    cfg["llm"] = {
        **{k: v for k, v in cfg.get("llm", {}).items() if k not in ("cpu", "gpu")},
        "profile": "http",
        "model": "synthetic-teacher",
        "http": {"base_url": base_url, "api_key_env": None, "tokenizer": None, "max_retries": 3},
    }
    cfg.setdefault("reason", {})["limit"] = None
    cfg["sources"] = [{"name": "synthetic_medqa", "adapter": "medqa", "path": str(source), "split": "train"}]
    for dotted, value in (extra or {}).items():
        node = cfg
        parts = dotted.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


# --------------------------------------------------------------------------------------------
# Running the chain and reading what it committed


def chain_command(config: str | Path, *overrides: str) -> list[str]:
    """``medreason-dist run`` over :data:`CHAIN` with this config (as a fresh driver process)."""
    cmd = [sys.executable, "-m", "medreason_dist.cli", "run", "--config", str(config), "--stages", *CHAIN]
    for item in overrides:
        cmd += ["--set", item]
    return cmd


def committed_datasets(out_dir: str | Path) -> list[str]:
    """Paths (relative to ``out_dir``) of every committed dataset under it (manifest present)."""
    root = Path(out_dir)
    found = []
    for manifest in root.rglob(".manifest.json"):
        rel = manifest.parent.relative_to(root)
        if not any(part.startswith(".") for part in rel.parts):  # not inside .attempts/.progress
            found.append(rel.as_posix())
    return sorted(found)


def row_accounting(out_dir: str | Path) -> dict | None:
    """QA rows vs rows in reason/sft + reason/rejects: each QA row must end there exactly once."""
    from medreason_dist import storage

    root = Path(out_dir)
    uris = {k: str(root / k) for k in ("sources/qa", "reason/sft", "reason/rejects")}
    if not all(storage.is_committed(u) for u in uris.values()):
        return None
    qa = storage.read_table(uris["sources/qa"], columns=["id"]).column("id").to_pylist()
    sft = storage.read_table(uris["reason/sft"], columns=["id"]).column("id").to_pylist()
    rej = storage.read_table(uris["reason/rejects"], columns=["id"]).column("id").to_pylist()
    ended = sft + rej
    return {"qa_rows": len(qa), "sft_rows": len(sft), "reject_rows": len(rej),
            "lost": len(set(qa) - set(ended)), "unknown": len(set(ended) - set(qa)),
            "duplicated": len(ended) - len(set(ended)), "exactly_once": sorted(ended) == sorted(qa),
            "rejects_by_reason": dict(sorted(storage.read_manifest(uris["reason/rejects"]).rejects.items()))}
