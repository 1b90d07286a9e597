"""Survival curves in the read model's shape: one row per step, long curves thinned."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["CURVE_POINTS", "curve_rows"]

#: A curve with more steps than this is read at this many evenly spaced days.
CURVE_POINTS = 1000


def curve_rows(survival: pd.DataFrame, attribute: str) -> pd.DataFrame:
    """One attribute's curves in the read model's columns, thinned when very long."""
    parts = []
    for group, rows in survival.groupby("group", sort=True):
        rows = rows.sort_values("timeline")
        if len(rows) > CURVE_POINTS:
            # A step function read at evenly spaced days: the value of the
            # last step at or before each day, as lifelines' predict does.
            days = np.linspace(0.0, float(rows["timeline"].max()), CURVE_POINTS)
            at = np.searchsorted(rows["timeline"].to_numpy(), days, side="right") - 1
            rows = rows.iloc[np.clip(at, 0, None)].assign(timeline=days)
        parts.append(
            pd.DataFrame(
                {
                    "attribute": attribute,
                    "group": "all" if attribute == "all" else str(group),
                    "days": rows["timeline"].to_numpy(dtype=float),
                    "survival": rows["survival"].to_numpy(dtype=float),
                    "lower": rows["ci_lower"].to_numpy(dtype=float),
                    "upper": rows["ci_upper"].to_numpy(dtype=float),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
