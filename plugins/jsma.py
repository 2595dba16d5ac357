"""`jsma`: the Jacobian-based Saliency Map Attack (Papernot, McDaniel, Jha, Fredrikson, Celik &
Swami, EuroS&P 2016), targeted, few pixels (L0).

Each step takes the Jacobian of the model's scores at the current image — α_p = ∂z_t/∂x_p for
the target t, β_p = Σ_{j≠t} ∂z_j/∂x_p for the others, two backward passes — and picks the
pair of pixels (p, q) of the search domain that maximises the saliency (α_p + α_q) · |β_p + β_q|
among the pairs with α_p + α_q > 0 and β_p + β_q < 0 (θ < 0: the signs swapped), then adds θ
to both (clipped to the pixel range). The search domain is every pixel that θ can still move
(below clip_max for θ > 0, above clip_min for θ < 0), as in the paper's Algorithm 3: with θ = 1
a chosen pixel saturates and leaves it. Every pair is scored at once — a [rows, pixels, pixels]
tensor, built in chunks of `CHUNK` rows (`tf.map_fn`, one XLA-compiled kernel each) so that
memory stays near CHUNK · pixels² · 12 bytes (MNIST: 60 MB) whatever the batch. A row with
no admissible pair stays where it is. The engine's driver runs the steps and stops each row
when the target wins.

No more than `max_pixels` pixel values ever change (default ⌊γ · pixels⌋, the paper's
γ = 14.5 % for MNIST: 113 of 784): a pair that would change a new pixel past it is not
admissible, so the step budget is ⌊max_pixels / 2⌋ · ⌈range / |θ|⌉. Threat model:
`minimal("l0")`, not a bound to report at: like DeepFool the attack stops at its first success,
so each image's L0 is the number of pixel values the greedy search needed, and the report
shows their median (a bounded threat model with `reported=False` would leave it out of the
"Sparse distances" table); max_pixels is its effort cap, asserted by tests/test_jsma.py.
`scores`: whose Jacobian — `probabilities` (the model's output, JSMA-F in Carlini & Wagner's
naming; the default) or `logits` (JSMA-Z, as CleverHans v3 and ART). Measured on `mlp`, first
20 test images × 9 targets: probabilities reach 171 of 171 targets with a median L0 of 20,
logits 153 (median 30), ART's SaliencyMapMethod 164 (26). On a softmax model the pair search
of JSMA-F is the two largest target gradients (the other classes' sum is its negative). No
untargeted variant: the saliency map is defined by a target class. `target` all (every other
class, as the paper's evaluation; the default) or a class. θ 1 and γ 14.5 % are the paper's
MNIST settings.

`search=top2` replaces the pair search with the two pixels of largest target gradient
(ART's `SaliencyMapMethod`, one backward pass per step): with `scores=logits` it is ART's
attack, the same example value for value on 96-100 % of the rows (README "Sparse attacks
next to IBM ART"), and the default pair search's equal only on softmax probabilities.

`in_every` is False: aiming at every other class makes 9 rows per image, and the step count
grows with the pixels needed (mlp: 810 rows from 100 images in about 2 s, see README "Sparse
attacks next to IBM ART"); a run that names no attacks stays as it was.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    Attack,
    ImageSpec,
    Network,
    Param,
    ParamError,
    StepInputs,
    ThreatModel,
    hookimpl,
    target_param,
    tf,
)

#: Rows whose pixel pairs are scored together (a batch is padded to a multiple of it).
CHUNK = 8
#: Pixels of largest saliency bound whose pairs are scored first (`best_pairs`).
CANDIDATES = 64
#: Larger than any sum of two gradient entries: marks a pixel or pair as not admissible.
BIG = 1e30


def _nonzero(value: float) -> str | None:
    return "must not be 0" if value == 0 else None


def _argmax_pair(u, v):
    """(i, j, score) per row of u, v [rows, n]: the pair i ≠ j maximising
    relu(u_i + u_j) · relu(v_i + v_j), and that score (0: no pair with both sums positive)."""
    t = tf()
    rows, n = t.shape(u)[0], int(u.shape[-1])
    pair_u = t.nn.relu(u[:, :, None] + u[:, None, :] - BIG * t.eye(n)[None])
    pair_v = t.nn.relu(v[:, :, None] + v[:, None, :])
    flat = t.reshape(pair_u * pair_v, t.stack([rows, n * n]))
    idx = t.argmax(flat, 1, output_type=t.int32)
    return idx // n, idx % n, t.gather(flat, idx, batch_dims=1)


def _in_chunks(fn, u, v):
    """`fn(u, v) -> (p, q, score)` over rows of u, v [k, pixels] in chunks of `CHUNK` rows
    (the last padded), each chunk one XLA-compiled kernel: the fixed shape compiles once."""
    t = tf()
    k, pixels = t.shape(u)[0], int(u.shape[-1])
    chunks = (k + CHUNK - 1) // CHUNK
    pad = chunks * CHUNK - k

    def chunked(w):
        w = t.concat([w, t.fill(t.stack([pad, pixels]), -BIG)], 0)
        return t.reshape(w, [chunks, CHUNK, pixels])

    kernel = t.function(fn, jit_compile=True)
    out = t.map_fn(
        lambda parts: kernel(*parts),
        (chunked(u), chunked(v)),
        fn_output_signature=(t.int32, t.int32, t.float32),
        parallel_iterations=1,
        back_prop=False,
    )
    return tuple(t.reshape(o, [-1])[:k] for o in out)


def _few_dominators(u, v):
    """(order, su, sv, few): the pixels sorted by u, descending (`top_k`: ties by index), their
    u and v in that order, and whether at most one other pixel dominates each — has u and v at
    least as large, ties broken by the order: fewer than two earlier pixels have v ≥ its v, so
    the second largest v before it, a prefix top-2 found by doubling (⌈log₂ pixels⌉ steps), is
    below its own."""
    t = tf()
    pixels = int(u.shape[-1])
    su, order = t.math.top_k(u, pixels)
    sv = t.gather(v, order, batch_dims=1)
    lowest = t.fill(t.shape(sv), -float("inf"))
    first, second = sv, lowest
    shift = 1
    while shift < pixels:
        f2 = t.concat([lowest[:, :shift], first[:, :-shift]], 1)
        s2 = t.concat([lowest[:, :shift], second[:, :-shift]], 1)
        first, second = t.maximum(first, f2), t.maximum(t.minimum(first, f2), t.maximum(second, s2))
        shift *= 2
    before = t.concat([lowest[:, :1], second[:, :-1]], 1)  # the second largest v strictly before
    return order, su, sv, sv > before


def best_pairs(alpha, beta, allowed, increase: bool):
    """(p, q, found) per row: the admissible pair of distinct pixels with the largest saliency
    (α_p + α_q) · |β_p + β_q|, over rows of α, β [k, pixels] and `allowed` (bool [k, pixels]);
    `found` False where no pair qualifies.

    With u = ±α and v = ∓β (signs by θ's direction) the saliency of an admissible pair is
    relu(u_p + u_q) · relu(v_p + v_q), zero for every other pair (a pixel outside `allowed`
    gets −BIG in both). It grows with u_q and v_q, so the best partner of any pixel is one that
    no other pixel but that one dominates (larger or equal u and v): both pixels of the best
    pair are among those with at most one dominator (`_few_dominators`). And no pair holding
    pixel p scores more than key_p = relu(u_p + max u) · relu(v_p + max v). So the best pair
    among the `CANDIDATES` such pixels of largest key is the best of all when its score reaches
    the next one's key; rows where it does not are scored over every pair: the result is the
    full search's either way (in chunks of `CHUNK` rows, each one XLA kernel). Measured on
    `mlp`, 20 images × 9 targets: 4-11 % of the row-steps need the full search, and the attack
    takes 0.9 s where scoring every pair on every step took 2.9 s (the same images out).
    """
    t = tf()
    pixels = int(alpha.shape[-1])
    sign = 1.0 if increase else -1.0
    never = t.fill(t.shape(alpha), -BIG)
    u = t.where(allowed, sign * alpha, never)
    v = t.where(allowed, -sign * beta, never)
    if pixels <= CANDIDATES:
        p, q, best = _in_chunks(_argmax_pair, u, v)
        return p, q, best > 0
    order, su, sv, few = _few_dominators(u, v)
    key = t.nn.relu(su + su[:, :1]) * t.nn.relu(sv + t.reduce_max(sv, axis=1, keepdims=True))
    keys, slot = t.math.top_k(t.where(few, key, -t.ones_like(key)), CANDIDATES + 1)
    keys, slot, bound = keys[:, :CANDIDATES], slot[:, :CANDIDATES], keys[:, CANDIDATES]
    real = keys >= 0
    cu = t.where(real, t.gather(su, slot, batch_dims=1), -BIG * t.ones_like(keys))
    cv = t.where(real, t.gather(sv, slot, batch_dims=1), -BIG * t.ones_like(keys))
    i, j, best = _argmax_pair(cu, cv)
    cand = t.gather(order, slot, batch_dims=1)
    p, q = t.gather(cand, i, batch_dims=1), t.gather(cand, j, batch_dims=1)
    unsure = t.where(best < bound)

    def every():
        rows = _in_chunks(_argmax_pair, t.gather_nd(u, unsure), t.gather_nd(v, unsure))
        return tuple(
            t.tensor_scatter_nd_update(a, unsure, b)
            for a, b in zip((p, q, best), rows, strict=True)
        )

    p, q, best = t.cond(t.size(unsure) > 0, every, lambda: (p, q, best))
    return p, q, best > 0


def top_two(alpha, allowed, increase: bool):
    """(p, q, found) per row: the two allowed pixels of largest α (smallest for θ < 0), the
    simplification of ART's `SaliencyMapMethod` (and of Carlini & Wagner's reading of JSMA):
    no other-class gradient, no sign test on the pair; `found` False where fewer than two
    pixels are allowed. Exact for the paper's rule only where the other classes' gradient is
    the target's negated (softmax probabilities)."""
    t = tf()
    u = t.where(allowed, alpha if increase else -alpha, t.fill(t.shape(alpha), -BIG))
    top, pair = t.math.top_k(u, 2)
    return pair[:, 0], pair[:, 1], top[:, 1] > -BIG / 2


class SaliencyMap(Attack):
    """JSMA: greedy pixel pairs chosen by the Jacobian's saliency map, toward a target."""

    name = "jsma"
    in_every = False  # nine targets per image by default (module docstring)
    description = "Jacobian Saliency Map Attack, targeted, L0 (θ +1, γ 14.5 %)"
    params = (
        Param(
            "theta",
            1.0,
            "change added to each chosen pixel value (1.0: the whole [0, 1] range; < 0 decreases)",
            float,
            minimum=-1.0,
            maximum=1.0,
            accept=_nonzero,
            accept_text="not 0",
        ),
        Param(
            "gamma",
            0.145,
            "most pixel values changed, as a share of an image's",
            float,
            minimum=0.0,
            min_exclusive=True,
            maximum=1.0,
        ),
        Param(
            "max_pixels",
            None,
            "most pixel values changed (default ⌊gamma · pixels⌋, set from the dataset)",
            int,
            minimum=2,
        ),
        Param(
            "search",
            "pairs",
            "pairs (the paper's search over every pixel pair, with the other classes' "
            "gradient) or top2 (the two pixels of largest target gradient: ART's "
            "SaliencyMapMethod, one backward pass)",
            str,
            choices=("pairs", "top2"),
            neutral=True,  # pairs is what jsma computed before the choice existed
        ),
        Param(
            "scores",
            "probabilities",
            "whose Jacobian: logits (JSMA-Z) or probabilities (JSMA-F)",
            str,
            choices=("logits", "probabilities"),
        ),
        target_param("all", allow_none=False),
        *CLIP_PARAMS,
    )

    def for_dataset(self, params: Mapping[str, Any], spec: ImageSpec) -> dict[str, Any]:
        """max_pixels from gamma and the image size, unless set; at least a pair."""
        values = super().for_dataset(params, spec)
        if values["max_pixels"] is None:
            values["max_pixels"] = math.floor(values["gamma"] * spec.pixels)
            if values["max_pixels"] < 2:
                raise ParamError(
                    f"invalid value {values['gamma']} for jsma.gamma: {spec.pixels} pixels × "
                    "gamma is less than the pair a step changes"
                )
        return values

    def is_targeted(self, params: Mapping[str, Any]) -> bool:
        return True

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.minimal("l0")

    def iterations(self, params: Mapping[str, Any]) -> int:
        """⌊max_pixels / 2⌋ pairs, each moved up to ⌈range / |θ|⌉ times. Before `for_dataset`
        has set max_pixels there is no bound yet (KeyError, as for an attack without one)."""
        if params.get("max_pixels") is None:
            raise KeyError("max_pixels")
        reach = (params["clip_max"] - params["clip_min"]) / abs(params["theta"])
        return int(params["max_pixels"]) // 2 * max(1, math.ceil(reach - 1e-9))

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        """Which pixel values this row changed so far (bool [k, pixels])."""
        return (tf().zeros_like(s.x0, dtype=tf().bool),)

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        lo, hi, theta = params["clip_min"], params["clip_max"], float(params["theta"])
        (changed,) = s.state
        out = net.logits(s.x) if params["scores"] == "logits" else net.probabilities(s.x)
        (alpha,) = t.gradients(t.reduce_sum(out * s.target_onehot), [s.x])
        movable = s.x < hi if theta > 0 else s.x > lo
        count = t.reduce_sum(t.cast(changed, t.int32), axis=1)
        room = count + 2 <= int(params["max_pixels"])
        allowed = movable & (changed | room[:, None])
        if params["search"] == "top2":
            p, q, found = top_two(alpha, allowed, theta > 0)
        else:
            (every,) = t.gradients(t.reduce_sum(out), [s.x])
            p, q, found = best_pairs(alpha, every - alpha, allowed, theta > 0)
        pair = t.one_hot(p, s.pixels) + t.one_hot(q, s.pixels)
        pick = (pair > 0) & found[:, None]
        x = t.where(pick, t.clip_by_value(s.x + theta, lo, hi), s.x)
        return x, (changed | pick,)


@hookimpl
def register_attacks(register) -> None:
    register(SaliencyMap())
