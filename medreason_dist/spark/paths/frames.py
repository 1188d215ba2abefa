"""DataFrame plumbing shared by every phase of the path search."""

from __future__ import annotations

from pyspark.sql import DataFrame


def keep(df: DataFrame) -> DataFrame:
    """Materialise an intermediate and cut its lineage.

    Iterative plans would otherwise nest every earlier level's plan (planning time and plan
    strings grow without bound); a local checkpoint turns the result into a plain scan.
    """
    return df.localCheckpoint(eager=True)


def union_all(pieces: list[DataFrame]) -> DataFrame:
    """``unionByName`` of a non-empty list, in list order."""
    out = pieces[0]
    for p in pieces[1:]:
        out = out.unionByName(p)
    return out
