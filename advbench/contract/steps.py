"""The tensors an attack step sees and a batched attack graph takes and returns.

The engine's early-stopping driver (`advbench.engine.driver`) hands `StepInputs` to an attack's
`step`; an attack that builds its own graph (`Attack.build`) takes `BatchInputs` and returns
`BatchOutputs`. They live here, apart from both, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from advbench.contract.lazy_tf import tf


@dataclass
class StepInputs:
    """The tensors one attack step sees; batch tensors hold only the still-active images."""

    x: Any  # current adversarial images, float32 [k, 784]
    _x0: Any  # the original images [k, 784], or a function building them on first use
    labels: Any  # true labels, int64 [k]
    targets: Any  # target classes, int64 [k] (equal to labels for untargeted attacks)
    index: Any  # each image's index in the test set, int64 [k] (keys per-image randomness)
    iteration: Any  # 0-based step number, int32 scalar (-1 while building the start point)
    seed: int  # the seed of this attack run
    state: tuple[Any, ...] = field(default_factory=tuple)  # the attack's own per-image state

    @property
    def x0(self):
        """The original images, float32 [k, 784] (gathered only if an attack asks for them)."""
        if callable(self._x0):
            self._x0 = self._x0()
        return self._x0

    @property
    def onehot(self):
        """The true labels as float32 one-hot rows."""
        return tf().one_hot(self.labels, 10, dtype=tf().float32)

    @property
    def target_onehot(self):
        """The target classes as float32 one-hot rows."""
        return tf().one_hot(self.targets, 10, dtype=tf().float32)


@dataclass
class BatchInputs:
    """Placeholders of one attack graph: a batch of rows to attack."""

    x: Any  # float32 [n, 784]
    labels: Any  # int64 [n]
    targets: Any  # int64 [n]
    index: Any  # int64 [n]
    seed: int


@dataclass
class BatchOutputs:
    """What an attack graph returns per row."""

    final_x: Any  # float32 [n, 784] the adversarial images
    done_at: Any  # int32 [n] steps applied at success; 0 = never succeeded
    pred: Any  # int64 [n] prediction on final_x
