"""Counter-based randomness for attacks: a pure function of (seed, image index, step, element).

Stateful random ops would tie an image's noise to the batch it sits in; hashing the counters
instead (murmur3's 32-bit finaliser) makes every image's draws the same with any batch size,
`--limit` or order, and identical in the batched driver and the per-image reference loop.
"""

from __future__ import annotations

import numpy as np

from advbench.contract.lazy_tf import tf

_GOLDEN = 0x9E3779B9


def _fmix(h):
    t = tf()
    u32 = t.uint32
    h = t.bitwise.bitwise_xor(h, t.bitwise.right_shift(h, t.constant(16, u32)))
    h = h * t.constant(0x85EBCA6B, u32)
    h = t.bitwise.bitwise_xor(h, t.bitwise.right_shift(h, t.constant(13, u32)))
    h = h * t.constant(0xC2B2AE35, u32)
    return t.bitwise.bitwise_xor(h, t.bitwise.right_shift(h, t.constant(16, u32)))


def random_bits(seed: int, index, iteration, width: int, stream: int = 0):
    """uint32 [k, width] of hashed bits for each image `index` [k] at step `iteration`."""
    t = tf()
    u32 = t.uint32
    key = _fmix(t.constant((seed * 0x632BE5AB + stream * 0x85157AF5 + _GOLDEN) & 0xFFFFFFFF, u32))
    key = _fmix(t.bitwise.bitwise_xor(key, t.cast(iteration, u32) * t.constant(0x27D4EB2F, u32)))
    low = t.cast(t.bitwise.bitwise_and(t.cast(index, t.int64), 0xFFFFFFFF), u32)
    rows = _fmix(t.bitwise.bitwise_xor(key, _fmix(low + t.constant(0x165667B1, u32))))
    cols = t.constant((np.arange(width, dtype=np.uint64) * _GOLDEN) % 2**32, u32)
    return _fmix(rows[:, None] + cols[None, :])


def random_uniform(seed: int, index, iteration, width: int, stream: int = 0):
    """float32 [k, width] uniform in [0, 1) with 24-bit resolution."""
    t = tf()
    bits = random_bits(seed, index, iteration, width, stream)
    top = t.bitwise.right_shift(bits, t.constant(8, t.uint32))
    return t.cast(top, t.float32) * (1.0 / 16777216.0)


def random_signs(seed: int, index, iteration, width: int, stream: int = 0):
    """±1.0 [k, width]: a fair coin per (seed, image index, iteration, element)."""
    t = tf()
    bits = random_bits(seed, index, iteration, width, stream)
    top = t.cast(t.bitwise.right_shift(bits, t.constant(31, t.uint32)), t.float32)
    return 1.0 - 2.0 * top


def random_normal(seed: int, index, iteration, width: int, stream: int = 0):
    """float32 [k, width] standard normal (Box-Muller on two hashed uniform streams)."""
    t = tf()
    u1 = random_uniform(seed, index, iteration, width, 2 * stream + 101)
    u2 = random_uniform(seed, index, iteration, width, 2 * stream + 102)
    radius = t.sqrt(-2.0 * t.math.log(1.0 - u1))
    return radius * t.cos(2.0 * np.pi * u2)
