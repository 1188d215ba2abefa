"""A local Ray for tests that run real engines, and the four questions they ask."""

from __future__ import annotations

import contextlib
import sys
from typing import Iterator, Literal

from pydantic import BaseModel

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
