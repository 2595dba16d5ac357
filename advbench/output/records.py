"""Per-image records: what one model × attack cell found for each attacked image (× target).

The engine fills them (`advbench.engine.runner`); the output side summarises, stores and
renders them without importing the engine.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Records:
    """Per-row results of one model × attack cell; a row is an image (× target)."""

    index: np.ndarray  # test-set index, int64
    label: np.ndarray  # true label
    target: np.ndarray  # target class, -1 for untargeted attacks and unattacked rows
    clean_pred: np.ndarray
    adv_pred: np.ndarray
    attacked: np.ndarray  # bool: this row was attacked
    iterations: np.ndarray  # steps applied at success; 0 = never succeeded / not attacked
    l2: np.ndarray  # ‖x_adv − x‖₂
    linf: np.ndarray  # ‖x_adv − x‖∞
    confidence: np.ndarray  # model's probability of the target (targeted) or of adv_pred
    adversarial: np.ndarray = field(repr=False)  # float32 [rows, 784] final images

    @property
    def flipped(self) -> np.ndarray:
        """Attacked rows that reached the attack's goal within its budget."""
        return self.iterations > 0
