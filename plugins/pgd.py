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

from advbench import (
    CLIP_PARAMS,
    EOT_PARAM,
    LOSS_PARAM,
    SEED_PARAM,
    Attack,
    Network,
    Param,
    StepInputs,
    ThreatModel,
    ascent_gradient,
    gradient_step,
    hookimpl,
    project,
    random_start,
    target_param,
)

NORM_PARAM = Param("norm", "inf", "threat model: inf (L∞) or 2 (L2)", str, choices=("inf", "2"))


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
        EOT_PARAM,
        target_param(),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf" if params["norm"] == "inf" else "l2", params["eps"])

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        if not params["random_start"]:
            return s.x0
        return random_start(
            s, params["norm"], params["eps"], params["clip_min"], params["clip_max"]
        )

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        grad = ascent_gradient(net, s, params["loss"], self.is_targeted(params), params["eot"])
        x = gradient_step(s.x, grad, params["step"], params["norm"])
        return project(
            x, s.x0, params["norm"], params["eps"], params["clip_min"], params["clip_max"]
        )


@hookimpl
def register_attacks(register) -> None:
    register(PGD())
