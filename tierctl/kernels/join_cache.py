"""A key join kept with a result, so a later step with the same keys need not redo it.

Scoring joins this run's customers with the previous run's rows (a million text keys
hashed); the store's morning run needs the same join.  The cache keeps each row's
position in the other frame and that frame's keys, and answers only when asked about
exactly those keys in that order (checked key by key).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from tierctl.kernels.keyjoin import same_keys


@dataclass
class JoinCache:
    positions: np.ndarray | None  # per row: its position in the other frame (−1: not there)
    keys: pd.Series | None  # the other frame's keys

    def positions_for(self, keys: pd.Series, order: np.ndarray | None = None) -> np.ndarray | None:
        """The cached positions (taken in ``order``) when the other frame's keys are
        exactly ``keys``; None otherwise."""
        if self.positions is None or self.keys is None or not same_keys(self.keys, keys):
            return None
        return self.positions if order is None else self.positions[order]
