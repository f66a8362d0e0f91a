"""What each stage of the search task leaves for the next: one object a stage, so that the
task's ``require`` knows every result and nothing rides on loose attributes."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.isotonic import IsotonicRegression

from cvtasks.search.calibration import GalleryText, NoMatch
from cvtasks.search.scorers import Scorer, blend
from cvtasks.search.training import Priors


def equal_weights(parts: tuple[str, ...]) -> dict[str, float]:
    """The blend's weights: each member counts the same."""
    return {p: 1.0 / len(parts) for p in parts}


def add_blend(scores: dict[str, np.ndarray], parts: tuple[str, ...]) -> dict[str, np.ndarray]:
    """``scores`` and, as "blend", the equal-weight blend of its members ``parts``."""
    return {**scores, "blend": blend({p: scores[p] for p in parts}, equal_weights(parts))}


@dataclass
class Fitted:
    """Every scorer, the vote-free priors they were built with, and each gallery's scores (a
    cache: a gallery is scored once per fit)."""

    scorers: dict[str, Scorer]
    priors: Priors
    scores: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)   # split -> scorer -> scores


@dataclass(frozen=True)
class Selection:
    """The validation gallery's choice: its table, the served ranker, the best vote-free one and
    the blend's members."""

    table: pd.DataFrame
    ranker: str
    vote_free: str
    blend_parts: tuple[str, ...]

    def with_blend(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``scores`` and the blend of the chosen members."""
        return add_blend(scores, self.blend_parts)


@dataclass(frozen=True)
class Evaluation:
    """The test gallery, scored once: the table, every model's scores and per-query figures."""

    table: pd.DataFrame
    scores: dict[str, np.ndarray]
    per_query: dict[str, pd.DataFrame]


@dataclass(frozen=True)
class Calibration:
    """The isotonic map from the ranker's score to the votes' target, and its test reliability."""

    table: pd.DataFrame
    calibrator: IsotonicRegression


@dataclass(frozen=True)
class NoMatchResult:
    """The "no good match" statistic and threshold (None where validation had no query without a
    match), the gallery text it reads per split, and the test figures."""

    choice: NoMatch | None
    gallery_text: dict[str, GalleryText]
    test: dict[str, float]
