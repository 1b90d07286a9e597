"""A small feature frame with the shapes a churn model meets: skewed, count, flag, text, gaps."""

from __future__ import annotations

import numpy as np
import pandas as pd


def churn_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    """``n`` rows: tenure, events, a flag, a plan (one rare level) and spend, some missing."""
    frame = pd.DataFrame(
        {
            "tenure": rng.gamma(2.0, 100.0, n),
            "events": rng.poisson(3.0, n).astype(float),
            "flag": rng.integers(0, 2, n).astype(float),
            "plan": rng.choice(["basic", "pro", "enterprise", "rare"], n, p=[0.5, 0.3, 0.19, 0.01]),
            "spend": rng.normal(50.0, 20.0, n),
        }
    )
    # Missing values in a numeric column, and in a categorical one.
    frame.loc[rng.random(n) < 0.1, "spend"] = np.nan
    frame.loc[rng.random(n) < 0.05, "plan"] = None
    return frame
