"""`noise`: the tutorial's random-noise baseline (section 6.2).

x* = clip(x + step · sign(noise), clip_min, clip_max), repeated up to 300 times, each image
stopping at its first flip. The tutorial draws `tf.truncated_normal` noise and keeps only its
sign, i.e. a fair ±1 coin per pixel; we draw that coin from a counter-based hash of
(seed, image index, iteration, pixel), which has the same distribution and makes every image's
noise independent of batch size and `--limit`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    Network,
    Param,
    StepInputs,
    ThreatModel,
    clip,
    hookimpl,
    random_signs,
)


class Noise(Attack):
    """Random sign noise: the baseline every real attack must beat."""

    name = "noise"
    description = "random ±step sign noise per iteration (tutorial 6.2)"
    params = (
        Param("step", 0.01, "size of each step (L∞)", float, minimum=0.0, min_exclusive=True),
        Param("iterations", 300, "most steps per image", int, minimum=1),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        # A bound the kit asserts, not a budget: results are steps-to-flip, not accuracy at eps.
        return ThreatModel.bounded("linf", params["step"] * params["iterations"], reported=False)

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        signs = random_signs(s.seed, s.index, s.iteration, s.pixels)
        return clip(s.x + params["step"] * signs, params)


@hookimpl
def register_attacks(register) -> None:
    register(Noise())
