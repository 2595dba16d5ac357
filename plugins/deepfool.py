"""`deepfool`: DeepFool (Moosavi-Dezfooli et al., 2016), minimal L2, untargeted.

At each step the classifier is linearised around the current image; the step to the nearest
linearised decision boundary is r = (|f'_j| / ‖w'_j‖ + 1e-4) · w'_j / ‖w'_j‖ with
f'_j = z_j − z_label, w'_j = ∇z_j − ∇z_label and j the closest other class: the 1e-4 is added
to the distance (L2, in pixels), as in the authors' code, not to the logit gap — added to the
gap it is worth almost nothing in distance on a steep model, and the point stays on the
boundary, adversarial in one batch and not when fed again. The total perturbation r_tot is kept
as per-image state and applied with overshoot: x = clip(x0 + (1 + overshoot) · r_tot).
Success (the engine's default) needs the other class to win by the confirmation margin
(`advbench.beyond_tolerance`), so a step that lands within rounding of the boundary is followed
by another. Defaults: 50 steps, overshoot 0.02.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    Attack,
    Network,
    Param,
    StepInputs,
    ThreatModel,
    clip,
    hookimpl,
    tf,
)


class DeepFool(Attack):
    """Iterated linearisation toward the nearest decision boundary."""

    name = "deepfool"
    description = "DeepFool, minimal L2 perturbation (50 steps, overshoot 0.02)"
    params = (
        Param("iterations", 50, "most steps", int, minimum=1),
        Param("overshoot", 0.02, "factor beyond the boundary", float, minimum=0.0),
        Param(
            "clip_each_step",
            True,
            "clip the accumulated perturbation to the pixel range after every step (as ART "
            "does); false: accumulate unclipped steps and clip once (as Foolbox does)",
            bool,
        ),
        *CLIP_PARAMS,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.minimal("l2")

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        return (tf().zeros_like(s.x0),)

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        logits = net.logits(s.x)
        grads = t.stack(
            [t.gradients(t.reduce_sum(logits[:, j]), [s.x])[0] for j in range(s.classes)], axis=1
        )  # [k, classes, pixels]: one backward pass per class
        own_grad = t.gather(grads, s.labels, batch_dims=1)[:, None, :]
        own_logit = t.gather(logits, s.labels, batch_dims=1)[:, None]
        w = grads - own_grad
        f = t.abs(logits - own_logit)
        w_norm = t.sqrt(t.reduce_sum(t.square(w), axis=2) + 1e-12)
        dist = f / w_norm + 1e9 * s.onehot  # never pick the own class
        j = t.argmin(dist, axis=1)
        w_j = t.gather(w, j, batch_dims=1)
        f_j = t.gather(f, j, batch_dims=1)
        n_j = t.gather(w_norm, j, batch_dims=1)
        r = ((f_j / n_j + 1e-4) / n_j)[:, None] * w_j
        r_tot = s.state[0] + r
        if params["clip_each_step"]:  # the next linearisation is taken where the image is
            r_tot = clip(s.x0 + r_tot, params) - s.x0
        return clip(s.x0 + (1.0 + params["overshoot"]) * r_tot, params), (r_tot,)


@hookimpl
def register_attacks(register) -> None:
    register(DeepFool())
