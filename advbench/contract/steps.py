"""The tensors an attack step sees and a batched attack graph takes and returns.

The engine's early-stopping driver (`advbench.engine.driver`) hands `StepInputs` to an attack's
`step`; an attack that builds its own graph (`Attack.build`) takes `BatchInputs` and returns
`BatchOutputs`. They live here, apart from both, so neither imports the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from advbench.contract.dataset import ImageSpec
from advbench.contract.lazy_tf import tf
from advbench.errors import PluginError


class _Geometry:
    """`shape`, `classes` and `pixels` from the inputs' `spec` (set by the engine)."""

    spec: ImageSpec | None
    x: Any

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of the images; rows hold them flattened in that order."""
        return self._spec().shape

    @property
    def classes(self) -> int:
        """How many classes the model tells apart (the logits' width)."""
        return self._spec().classes

    @property
    def pixels(self) -> int:
        """Values per image row (height · width · channels)."""
        if self.spec is None:
            return int(self.x.shape[-1])
        return self.spec.pixels

    def _spec(self) -> ImageSpec:
        if self.spec is None:
            raise PluginError(f"{type(self).__name__}.spec is not set: the engine sets it")
        return self.spec


@dataclass
class StepInputs(_Geometry):
    """The tensors one attack step sees; batch tensors hold only the still-active images.

    Images are rows of `pixels` = h·w·c values (flattened NHWC, `shape` = (h, w, c)); `spec`
    also gives the class count and the valid pixel range."""

    x: Any  # current adversarial images, float32 [k, pixels]
    _x0: Any  # the original images [k, pixels], or a function building them on first use
    labels: Any  # true labels, int64 [k]
    targets: Any  # target classes, int64 [k] (equal to labels for untargeted attacks)
    index: Any  # each image's index in the test set, int64 [k] (keys per-image randomness)
    iteration: Any  # 0-based step number, int32 scalar (-1 while building the start point)
    seed: int  # the seed of this attack run
    state: tuple[Any, ...] = field(default_factory=tuple)  # the attack's own per-image state
    spec: ImageSpec | None = None  # image shape, classes and value range (set by the engine)

    @property
    def x0(self):
        """The original images, float32 [k, pixels] (gathered only if an attack asks for them)."""
        if callable(self._x0):
            self._x0 = self._x0()
        return self._x0

    @property
    def onehot(self):
        """The true labels as float32 one-hot rows."""
        return tf().one_hot(self.labels, self.classes, dtype=tf().float32)

    @property
    def target_onehot(self):
        """The target classes as float32 one-hot rows."""
        return tf().one_hot(self.targets, self.classes, dtype=tf().float32)


@dataclass
class BatchInputs(_Geometry):
    """Placeholders of one attack graph: a batch of rows to attack."""

    x: Any  # float32 [n, pixels]
    labels: Any  # int64 [n]
    targets: Any  # int64 [n]
    index: Any  # int64 [n]
    seed: int
    spec: ImageSpec | None = None  # image shape, classes and value range (set by the engine)


@dataclass
class BatchOutputs:
    """What an attack graph returns per row."""

    final_x: Any  # float32 [n, pixels] the adversarial images
    done_at: Any  # int32 [n] steps applied at success; 0 = never succeeded
    pred: Any  # int64 [n] prediction on final_x
    #: int [n] model evaluations spent on each row (forward passes, a batch row counting one
    #: per image): a query-only attack's cost, recorded and reported. None: not counted.
    queries: Any = None
