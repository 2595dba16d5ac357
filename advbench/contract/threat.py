"""An attack's threat model: how far it may move an image, in which norm, and what its results
are reported at — one value instead of separate L∞, L2 and "reported budget" answers.

Three kinds:

- **bounded** (`ThreatModel.bounded("linf", 0.3)`): no adversarial image is farther than `eps`
  from its original in `norm`. The conformance kit asserts it for every row. When `reported`
  (the default) `eps` is also the attack's budget: a cell's summary records
  `{"norm": ..., "eps": ...}`, and the report gives robust accuracy at it (a sweep over eps
  becomes a robust-accuracy-vs-eps curve). `reported=False` is a bound that follows from other
  parameters (ifgsm's and noise's iterations × step): asserted, but not a budget results are
  quoted at — their question is how many steps an image needs, not accuracy at an eps.
- **minimal** (`ThreatModel.minimal("l2")`): a minimum-norm attack (deepfool, cw-l2) looks for
  the smallest perturbation in `norm` that succeeds; nothing bounds it, its result is the
  distribution of those distances.
- **unbounded** (`ThreatModel.unbounded()`, the default): no promise about distance (fooling
  images grown from noise, a probability ascent that stops at a confidence).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from advbench.errors import PluginError

Norm = Literal["linf", "l2", "l1", "l0"]
#: L0 counts the pixel values an attack changed (each channel of a pixel on its own).
NORMS: tuple[Norm, ...] = ("linf", "l2", "l1", "l0")
#: How reports write each norm.
NORM_LABELS: dict[str, str] = {"linf": "L∞", "l2": "L2", "l1": "L1", "l0": "L0"}


@dataclass(frozen=True)
class ThreatModel:
    """What an attack may do to an image; build it with `bounded`, `minimal` or `unbounded`."""

    kind: Literal["bounded", "minimal", "unbounded"]
    norm: Norm | None = None
    eps: float | None = None
    #: Bounded only: results are reported as robust accuracy at (norm, eps).
    reported: bool = False

    def __post_init__(self) -> None:
        bounded = self.kind == "bounded"
        if self.kind not in ("bounded", "minimal", "unbounded"):
            raise PluginError(f"unknown threat model kind {self.kind!r}")
        if (self.norm is None) != (self.kind == "unbounded"):
            need = "has no norm" if self.kind == "unbounded" else "needs a norm"
            raise PluginError(f"a {self.kind} threat model {need}")
        if self.norm is not None and self.norm not in NORMS:
            raise PluginError(f"threat model norm {self.norm!r} is not one of {NORMS}")
        if (self.eps is None) == bounded:
            raise PluginError("eps is given exactly when the threat model is bounded")
        if bounded and not (math.isfinite(self.eps) and self.eps >= 0):
            raise PluginError(f"threat model eps {self.eps!r} is not a finite number >= 0")
        if self.reported and not bounded:
            raise PluginError("only a bounded threat model can be reported at an eps")

    @classmethod
    def bounded(cls, norm: Norm, eps: float, *, reported: bool = True) -> ThreatModel:
        """Every adversarial image within `eps` of its original in `norm`; `reported`: the
        results are quoted as robust accuracy at that eps (False: a by-product bound)."""
        return cls("bounded", norm, eps, reported)

    @classmethod
    def minimal(cls, norm: Norm) -> ThreatModel:
        """A minimum-norm attack: the smallest successful perturbation in `norm`, no bound."""
        return cls("minimal", norm)

    @classmethod
    def unbounded(cls) -> ThreatModel:
        """No promise about the distance from the original."""
        return cls("unbounded")

    def bound(self, norm: Norm) -> float | None:
        """The largest distance in `norm` any adversarial image may have, if bounded in it."""
        return self.eps if self.kind == "bounded" and self.norm == norm else None

    @property
    def budget(self) -> tuple[Norm, float] | None:
        """(norm, eps) the results are reported at, or None."""
        if not self.reported:
            return None
        assert self.norm is not None and self.eps is not None
        return self.norm, self.eps
