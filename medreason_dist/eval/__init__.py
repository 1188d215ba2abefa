"""Multiple-choice evaluation: prompts, answer extraction, scoring and confidence intervals.

Generation itself goes through :mod:`medreason_dist.llm` (the pipeline wires it); everything
here is pure Python / Arrow and runs without an engine.
"""
