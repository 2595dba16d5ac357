"""What every attack offers: validated parameters and one batched, in-graph step.

The engine's driver (`advbench.runner`) owns the loop: it keeps only the images that have not
flipped yet, stops each image at its first flip, and records iterations-to-flip. An attack
writes only its step, as a pure function of tensors, so it runs batched inside a
`tf.while_loop` and equally in the per-image reference loop used by the tests.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from advbench.errors import ParamError
from advbench.graph import tf
from advbench.model import Network
from advbench.params import Param, resolve

CLIP_PARAMS: tuple[Param, ...] = (
    Param("clip_min", 0.0, "lowest valid pixel value"),
    Param("clip_max", 1.0, "highest valid pixel value"),
)


@dataclass
class StepInputs:
    """The tensors one attack step sees; all batch tensors hold only the still-active images."""

    x: Any  # current adversarial images, float32 [k, 784]
    x0: Any  # the original images, float32 [k, 784]
    labels: Any  # true labels, int64 [k]
    index: Any  # each image's index in the test set, int64 [k] (keys per-image randomness)
    iteration: Any  # 0-based step number, int32 scalar
    seed: int  # the seed of this attack run

    @property
    def onehot(self):
        """The true labels as float32 one-hot rows."""
        return tf().one_hot(self.labels, 10, dtype=tf().float32)


class Attack(ABC):
    """An iterative evasion attack: at most `iterations` steps, each image stops at its flip."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """This attack's parameters: defaults updated by `overrides`, validated together."""
        values = resolve(self.name, self.params, overrides)
        if (
            "clip_min" in values
            and "clip_max" in values
            and values["clip_min"] >= values["clip_max"]
        ):
            raise ParamError(
                f"invalid clip range for {self.name}: clip_min {values['clip_min']} "
                f">= clip_max {values['clip_max']}"
            )
        return values

    def iterations(self, params: Mapping[str, Any]) -> int:
        """The most steps any image gets."""
        return int(params["iterations"])

    def linf_budget(self, params: Mapping[str, Any]) -> float | None:
        """The largest L∞ distance from the original the attack may reach, if it is bounded."""
        return None

    def seed(self, params: Mapping[str, Any], run_seed: int) -> int:
        """The attack's own `seed` parameter when set (>= 0), else the run's seed."""
        own = params.get("seed", -1)
        return run_seed if own is None or own < 0 else int(own)

    @abstractmethod
    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """The next adversarial images [k, 784] from the current ones."""


def clip(x, params: Mapping[str, Any]):
    """Keep pixels inside the attack's valid range."""
    return tf().clip_by_value(x, params["clip_min"], params["clip_max"])


def random_signs(seed: int, index, iteration, width: int = 784):
    """±1.0 [k, width]: a fair coin per (seed, image index, iteration, pixel).

    A counter-based hash (murmur3's 32-bit finaliser) instead of a stateful random op, so an
    image's noise depends only on its own index: the same with any batch size, `--limit` or
    order, and identical in the batched driver and the per-image reference loop.
    """
    t = tf()
    u32 = t.uint32

    def fmix(h):
        h = t.bitwise.bitwise_xor(h, t.bitwise.right_shift(h, t.constant(16, u32)))
        h = h * t.constant(0x85EBCA6B, u32)
        h = t.bitwise.bitwise_xor(h, t.bitwise.right_shift(h, t.constant(13, u32)))
        h = h * t.constant(0xC2B2AE35, u32)
        return t.bitwise.bitwise_xor(h, t.bitwise.right_shift(h, t.constant(16, u32)))

    key = fmix(t.constant(seed & 0xFFFFFFFF, u32) + t.constant(0x9E3779B9, u32))
    key = fmix(t.bitwise.bitwise_xor(key, t.cast(iteration, u32) * t.constant(0x27D4EB2F, u32)))
    low = t.cast(t.bitwise.bitwise_and(index, 0xFFFFFFFF), u32)
    rows = fmix(t.bitwise.bitwise_xor(key, fmix(low + t.constant(0x165667B1, u32))))
    pixels = t.constant((np.arange(width, dtype=np.uint64) * 0x9E3779B9) % 2**32, u32)
    h = fmix(rows[:, None] + pixels[None, :])
    bits = t.cast(t.bitwise.right_shift(h, t.constant(31, u32)), t.float32)
    return 1.0 - 2.0 * bits
