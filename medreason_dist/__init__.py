"""medreason_dist: KG-grounded medical chain-of-thought data, SFT and evaluation on Spark + Ray."""

from medreason_dist.version import __version__

__all__ = ["__version__"]
