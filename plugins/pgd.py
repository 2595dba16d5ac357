"""`pgd`: projected gradient descent (Madry et al., 2018), L∞ or L2, from a random start.

L∞: x ← Π_{‖x−x0‖∞≤eps}(x + step · sign(∇)); L2: x ← Π_{‖x−x0‖₂≤eps}(x + step · ∇/‖∇‖₂);
then clipped to the pixel range. Defaults follow MadryLab's MNIST challenge: eps 0.3, 40 steps
of 0.01, random start uniform in the eps-ball, cross-entropy on logits. Each image stops at its
first success: every iterate lies inside the ball, so an early success is a valid adversarial
example and robust accuracy is the share that survives all steps. For L2 set eps and step
yourself (e.g. `--set pgd.norm=2 --set pgd.eps=2 --set pgd.step=0.1`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import hookimpl
from advbench.attack import CLIP_PARAMS, SEED_PARAM, Attack, StepInputs, clip, target_param
from advbench.graph import tf
from advbench.losses import LOSS_PARAM, ascent_gradient
from advbench.model import Network
from advbench.params import Param
from advbench.randomness import random_normal, random_uniform

NORM_PARAM = Param("norm", "inf", "threat model: inf (L∞) or 2 (L2)", str, choices=("inf", "2"))


def _l2(v):
    t = tf()
    return t.sqrt(t.reduce_sum(t.square(v), axis=1, keepdims=True) + 1e-12)


def project(x, x0, params: Mapping[str, Any]):
    """Back into the eps-ball around x0 (in the attack's norm), then into the pixel range."""
    t = tf()
    eps = params["eps"]
    if params["norm"] == "inf":
        x = t.clip_by_value(x, x0 - eps, x0 + eps)
    else:
        delta = x - x0
        x = x0 + delta * t.minimum(1.0, eps / _l2(delta))
    return clip(x, params)


def random_start(s: StepInputs, params: Mapping[str, Any]):
    """A uniform draw from the eps-ball around each original (keyed by image index)."""
    eps = params["eps"]
    if params["norm"] == "inf":
        u = random_uniform(s.seed, s.index, s.iteration, 784, stream=1)
        return clip(s.x0 + eps * (2.0 * u - 1.0), params)
    direction = random_normal(s.seed, s.index, s.iteration, 784, stream=2)
    radius = random_uniform(s.seed, s.index, s.iteration, 1, stream=3) ** (1.0 / 784)
    return clip(s.x0 + eps * radius * direction / _l2(direction), params)


def gradient_step(x, grad, step: float, norm: str):
    """One ascent step: signed (L∞) or normalised (L2)."""
    if norm == "inf":
        return x + step * tf().sign(grad)
    return x + step * grad / _l2(grad)


class PGD(Attack):
    """Projected gradient descent with random start."""

    name = "pgd"
    description = "projected gradient descent, L∞/L2, random start (Madry: eps 0.3, 40×0.01)"
    params = (
        Param("eps", 0.3, "radius of the threat ball", float, minimum=0.0, min_exclusive=True),
        Param("step", 0.01, "step size", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 40, "steps", int, minimum=1),
        NORM_PARAM,
        Param("random_start", True, "start from a uniform point of the ball", bool),
        LOSS_PARAM,
        target_param(),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def linf_budget(self, params: Mapping[str, Any]) -> float | None:
        return params["eps"] if params["norm"] == "inf" else None

    def l2_budget(self, params: Mapping[str, Any]) -> float | None:
        return params["eps"] if params["norm"] == "2" else None

    def budget(self, params: Mapping[str, Any]) -> tuple[str, float]:
        return ("linf" if params["norm"] == "inf" else "l2", params["eps"])

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        return random_start(s, params) if params["random_start"] else s.x0

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        grad = ascent_gradient(net, s, params["loss"], self.is_targeted(params))
        return project(gradient_step(s.x, grad, params["step"], params["norm"]), s.x0, params)


@hookimpl
def register_attacks(register) -> None:
    register(PGD())
