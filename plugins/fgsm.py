"""`fgsm`: the fast gradient sign method (Goodfellow et al., 2015), one step of size eps.

x* = clip(x + eps · sign(∇x loss)), the loss on logits (cross-entropy by default). Targeted
with `target`: one step down the target's loss. Default eps 0.3, MadryLab's MNIST budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import hookimpl
from advbench.contract.attack import CLIP_PARAMS, Attack, clip, target_param
from advbench.contract.lazy_tf import tf
from advbench.contract.losses import LOSS_PARAM, ascent_gradient
from advbench.contract.model import Network
from advbench.contract.params import Param
from advbench.contract.steps import StepInputs


class FGSM(Attack):
    """One signed-gradient step of size eps."""

    name = "fgsm"
    description = "fast gradient sign method, one step of eps (L∞ 0.3)"
    params = (
        Param("eps", 0.3, "step and L∞ budget", float, minimum=0.0, min_exclusive=True),
        LOSS_PARAM,
        target_param(),
        *CLIP_PARAMS,
    )

    def iterations(self, params: Mapping[str, Any]) -> int:
        return 1

    def linf_budget(self, params: Mapping[str, Any]) -> float:
        return params["eps"]

    def budget(self, params: Mapping[str, Any]) -> tuple[str, float]:
        return ("linf", params["eps"])

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        grad = ascent_gradient(net, s, params["loss"], self.is_targeted(params))
        return clip(s.x + params["eps"] * tf().sign(grad), params)


@hookimpl
def register_attacks(register) -> None:
    register(FGSM())
