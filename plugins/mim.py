"""`mim`: the momentum iterative method (Dong et al., 2018), L∞.

g ← decay · g + ∇/mean|∇| (the gradient normalised by its mean absolute value, per image);
x ← Π_{‖x−x0‖∞≤eps}(x + step · sign(g)). Defaults: eps 0.3, 10 steps of 0.03, decay 1.0.
The momentum is per-image state carried by the engine's loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    EOT_PARAM,
    LOSS_PARAM,
    Attack,
    Network,
    Param,
    StepInputs,
    ThreatModel,
    ascent_gradient,
    hookimpl,
    project,
    target_param,
    tf,
)


class MIM(Attack):
    """Iterative FGSM with an accumulated, normalised gradient."""

    name = "mim"
    description = "momentum iterative method, L∞ (eps 0.3, 10×0.03, decay 1.0)"
    params = (
        Param("eps", 0.3, "L∞ budget", float, minimum=0.0, min_exclusive=True),
        Param("step", 0.03, "step size", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 10, "steps", int, minimum=1),
        Param("decay", 1.0, "momentum decay factor", float, minimum=0.0),
        LOSS_PARAM,
        EOT_PARAM,
        target_param(),
        *CLIP_PARAMS,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf", params["eps"])

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        return (tf().zeros_like(s.x0),)

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        grad = ascent_gradient(net, s, params["loss"], self.is_targeted(params), params["eot"])
        grad = grad / (t.reduce_mean(t.abs(grad), axis=1, keepdims=True) + 1e-12)
        momentum = params["decay"] * s.state[0] + grad
        x = s.x + params["step"] * t.sign(momentum)
        x = project(x, s.x0, "inf", params["eps"], params["clip_min"], params["clip_max"])
        return x, (momentum,)


@hookimpl
def register_attacks(register) -> None:
    register(MIM())
