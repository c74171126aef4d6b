"""What a score can be: finite and at most MAX_SCORE, wherever it is stored or shown.

A score is how many band half-widths a reading lies from its expected value (1 is the
band's edge). Off a near-zero spread (1e-10 noise, then one reading of 1e300) it would be
1e310: infinity, which JSON cannot carry (a webhook body with `Infinity` is not JSON), the
graph stores as a float it reads back as infinity, and text shows as "inf". Every score
past MAX_SCORE means the same thing, "a million bands out", so it is capped there: by the
detection library on what it returns, and again on every anomaly read back (older ones
were stored uncapped).
"""

from __future__ import annotations

import math
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

MAX_SCORE = 1e6


def capped_score(score: float) -> float:
    """The score as stored and shown: at most MAX_SCORE; NaN (not judged) is 0."""
    if math.isnan(score):
        return 0.0
    return min(score, MAX_SCORE)


def capped_scores(scores: np.ndarray) -> np.ndarray:
    """capped_score of every element, as a new array."""
    capped: np.ndarray = np.minimum(np.nan_to_num(scores, nan=0.0, posinf=MAX_SCORE), MAX_SCORE)
    return capped


# A score field of a model read from the graph or Redis.
Score = Annotated[float, AfterValidator(capped_score)]
