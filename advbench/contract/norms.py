"""Threat-model building blocks for attacks: norms, projections, random starts, ascent steps.

Public so that attacks share one implementation of each (as Foolbox keeps `clip_lp_norms` and
friends public): `pgd` and `mim` project with the same `project`, and a third-party attack gets
the same L∞/L2 geometry without importing another plugin. `norm` is "inf" or "2".
"""

from __future__ import annotations

from advbench.contract.lazy_tf import tf
from advbench.contract.randomness import random_normal, random_uniform
from advbench.contract.steps import StepInputs


def l2_norm(v):
    """Per-row L2 norm [k, 1], kept away from zero so that it can divide."""
    t = tf()
    return t.sqrt(t.reduce_sum(t.square(v), axis=1, keepdims=True) + 1e-12)


def project(x, x0, norm: str, eps: float, clip_min: float, clip_max: float):
    """Back into the eps-ball around x0 in `norm`, then into the pixel range."""
    t = tf()
    if norm == "inf":
        x = t.clip_by_value(x, x0 - eps, x0 + eps)
    else:
        delta = x - x0
        x = x0 + delta * t.minimum(1.0, eps / l2_norm(delta))
    return t.clip_by_value(x, clip_min, clip_max)


def random_start(s: StepInputs, norm: str, eps: float, clip_min: float, clip_max: float):
    """A uniform draw from the eps-ball around each original, keyed by image index."""
    t = tf()
    pixels = int(s.x0.shape[-1])
    if norm == "inf":
        u = random_uniform(s.seed, s.index, s.iteration, pixels, stream=1)
        return t.clip_by_value(s.x0 + eps * (2.0 * u - 1.0), clip_min, clip_max)
    direction = random_normal(s.seed, s.index, s.iteration, pixels, stream=2)
    radius = random_uniform(s.seed, s.index, s.iteration, 1, stream=3) ** (1.0 / pixels)
    return t.clip_by_value(s.x0 + eps * radius * direction / l2_norm(direction), clip_min, clip_max)


def gradient_step(x, grad, step: float, norm: str):
    """One ascent step: signed (L∞) or normalised (L2)."""
    if norm == "inf":
        return x + step * tf().sign(grad)
    return x + step * grad / l2_norm(grad)
