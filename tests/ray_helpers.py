"""A local Ray for tests that run real engines, the four questions they ask, and a stand-in LLM
step (:class:`FakeLlm`) for unit tests of the code around the engine."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, Literal

from pydantic import BaseModel

from medreason_dist.llm.engine import output_columns


class Verdict(BaseModel):
    """The answer schema both engine test modules constrain generation to."""

    answer: Literal["A", "B", "C", "D"]
    confidence: Literal["low", "high"]


QUESTIONS = [
    ("q1", "Which organ produces insulin?", {"A": "Liver", "B": "Pancreas", "C": "Kidney", "D": "Heart"}),
    ("q2", "Deficiency of which vitamin causes scurvy?", {"A": "Vitamin A", "B": "Vitamin B12", "C": "Vitamin C",
                                                          "D": "Vitamin D"}),
    ("q3", "Which blood cells carry oxygen?", {"A": "Platelets", "B": "Erythrocytes", "C": "Neutrophils",
                                               "D": "Lymphocytes"}),
    ("q4", "Which bone is in the thigh?", {"A": "Femur", "B": "Radius", "C": "Sternum", "D": "Scapula"}),
]


@contextlib.contextmanager
def local_ray(test_module: str) -> Iterator[object]:
    """Ray on this machine (2 CPUs), started here unless one is up; shut down if started here.

    Prompt builders and schemas defined in ``test_module`` must reach Ray workers, which cannot
    import a test module by name: they travel by value.
    """
    import ray
    from ray import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[test_module])
    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # Verdict and friends, too
    started = not ray.is_initialized()
    if started:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        yield ray
    finally:
        if started:
            ray.shutdown()


class FakeLlm:
    """Answers each step from a function of the row (None: an engine error); counts engine calls."""

    def __init__(self, answers):
        self.answers = answers
        self.calls = 0

    def __call__(self, ds, *, settings, build_prompt, output_model, sampling, step, model_key=None):
        answers = self.answers
        cols = output_columns(step)
        self.calls += 1

        def fn(row):
            out = dict(row)
            out.update({cols["result"]: None, cols["error"]: None, cols["error_detail"]: None,
                        cols["input_tokens"]: 0, cols["output_tokens"]: 0})
            try:
                build_prompt(row)
            except Exception as e:  # mirrors the engine layer: no engine call for this row
                out[cols["error"]], out[cols["error_detail"]] = "prompt_error", f"{type(e).__name__}: {e}"
                return out
            text = answers[step](row)
            if text is None:  # the stand-in for an engine failure on this row
                out[cols["error"]], out[cols["error_detail"]] = "engine_error", "stand-in engine refused"
                return out
            model = output_model[row[model_key]] if isinstance(output_model, dict) else output_model
            if model is not None:
                model.model_validate_json(text)
            out[cols["result"]], out[cols["input_tokens"]], out[cols["output_tokens"]] = text, 10, 5
            return out

        return ds.map(fn)
