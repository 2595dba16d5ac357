"""`targeted` and `fooling`: the second tutorial's attacks on a class probability.

Both ascend the gradient of the model's probability of the target class, normalised per image
by its standard deviation: x ← clip(x + step · g / (std(g) + 1e-8)).

- `targeted` starts from a real image (the tutorial turns validation image 15, a 7, into a 3
  with 96% confidence in 4 steps of 0.02) and succeeds when the prediction is the target with at
  least `confidence` probability.
- `fooling` starts from uniform noise (keyed by the row's index) and, with step 1.0, succeeds
  when the network is "practically certain" (`confidence` 0.99) of the target class. It uses
  only the first `samples` rows as noise seeds, each with every target class.

The tutorial does not clip; an image outside [clip_min, clip_max] is not an image, so we do.
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
    beyond_tolerance,
    clip,
    hookimpl,
    random_uniform,
    target_param,
    tf,
)


def _ascent_params(step: float, iterations: int, confidence: float) -> tuple[Param, ...]:
    """The parameters both tutorial attacks share, with their own defaults."""
    return (
        Param(
            "step",
            step,
            "step size (in std units of the gradient)",
            float,
            minimum=0.0,
            min_exclusive=True,
        ),
        Param("iterations", iterations, "most steps", int, minimum=1),
        Param(
            "confidence",
            confidence,
            "target probability needed to count as success",
            float,
            minimum=0.0,
            maximum=1.0,
        ),
    )


class _ProbabilityAscent(Attack):
    """Shared step and success test of the two tutorial attacks."""

    def is_targeted(self, params: Mapping[str, Any]) -> bool:
        return True

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        grad = net.input_gradient(
            lambda n, x: t.gather(n.probabilities(x), s.targets, batch_dims=1), s.x
        )
        std = t.math.reduce_std(grad, axis=1, keepdims=True)
        return clip(s.x + params["step"] * grad / (std + 1e-8), params)

    def success(self, net: Network, logits, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        hit = beyond_tolerance(logits, s.targets, targeted=True)
        if params["confidence"] <= 0:
            return hit
        prob = t.gather(net.probabilities(s.x), s.targets, batch_dims=1)
        return t.logical_and(hit, prob >= params["confidence"])


class Targeted(_ProbabilityAscent):
    """A real image nudged toward a target class (tutorial)."""

    name = "targeted"
    description = "ascend the target probability's normalised gradient from a real image"
    params = (
        *_ascent_params(step=0.02, iterations=5, confidence=0.0),
        target_param("all", allow_none=False),
        *CLIP_PARAMS,
    )


class Fooling(Targeted):
    """Noise the network is practically certain about (tutorial)."""

    name = "fooling"
    description = "from uniform noise to a near-certain target class (step 1.0, p >= 0.99)"
    attacks_misclassified = True
    params = (
        *_ascent_params(step=1.0, iterations=20, confidence=0.99),
        Param("samples", 100, "noise images (rows × every target class)", int, minimum=1),
        target_param("all", allow_none=False),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def max_images(self, params: Mapping[str, Any]) -> int:
        return params["samples"]

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        u = random_uniform(s.seed, s.index, s.iteration, s.pixels, stream=11)
        return params["clip_min"] + u * (params["clip_max"] - params["clip_min"])


@hookimpl
def register_attacks(register) -> None:
    register(Targeted())
    register(Fooling())
