"""`hopskipjump`: HopSkipJump (Chen, Jordan, Wainwright, IEEE S&P 2020), minimal L2 or L∞,
decisions only.

The attack sees the model only through `_Decisions`: is this image adversarial (its argmax label
differs from the true one, or equals the target)? Nothing else of the network is in reach, so
it cannot read a score by accident (a test checks that every logits tensor it builds feeds
nothing but an `ArgMax`). Per image, as the authors' Algorithm 2:

1. **start**: uniform noise in the pixel range, up to `init_size` draws, until one is
   adversarial; then a binary search between the original and it (a blend for L2, a shrinking
   L∞ box for L∞) to the boundary, to precision θ = γ / d^{3/2} (L2) or γ / d² (L∞);
2. **each iteration t**: estimate the boundary's normal at the boundary point from
   n_t = min(init_eval · √t, max_eval) random unit directions u (Gaussian for L2, uniform for
   L∞), probed at clip(x + δ_t · u) with δ₁ = 0.1 · (pixel range), then √d · θ · dist (L2) or
   d · θ · dist (L∞); the mean of the directions weighted by their baseline-corrected ±1
   decisions, normalised (L2) or its sign (L∞), is the step direction; a geometric step search
   from dist / √t, halved until adversarial (at most 25 tries, else no move); then the binary
   search back to the boundary.

The smallest boundary point seen is the result, pushed out along its ray from the original by
`overshoot` (0.1 % by default): a label-only attack cannot see the engine's confirmation margin,
and a point on the boundary itself would have its success withdrawn. The pushed point's label is
queried; if it is not adversarial the boundary point itself is returned.

Every image runs in one graph: the phases are `tf.while_loop`s over the batch (no Python loop
over images), the estimation probes are evaluated in chunks of at most 2^22 pixel values
whatever the batch. An iteration's n_t directions are drawn once, keyed on (seed, iteration),
and each image flips their pixels by its own signs, keyed on (seed, image index, iteration): a
sign flip keeps a Gaussian (or uniform) vector's law, so every image sees i.i.d. directions as in
the paper, the random numbers cost one draw per iteration instead of one per image, and an
image's result does not depend on its batch. **Queries**: every model evaluation is counted per
image — noise draws, binary-search probes, estimation samples, step tries and the final label
checks (two). `max_queries` bounds them: an image starts an iteration only if the iteration's
worst case (n_t + 25 step tries + the binary search's most probes) still fits.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    BatchInputs,
    BatchOutputs,
    Network,
    Param,
    ThreatModel,
    hookimpl,
    random_normal,
    random_signs,
    random_uniform,
    target_param,
    tf,
)

STEP_TRIES = 25  # most halvings of the step search
CHUNK = 2**22  # pixel values of estimation draws evaluated at once


class _Decisions:
    """The model as a label-only oracle: adversarial or not, per image. Holds the network
    privately and reads nothing of its output but the argmax."""

    def __init__(self, net: Network, goal, targeted: bool) -> None:
        self._net, self._goal, self._targeted = net, goal, targeted

    def labels(self, x):
        """The model's predicted class of each row."""
        return tf().argmax(self._net.logits(x), 1)

    def __call__(self, x, rows=None):
        """bool [m]: is each row of `x` adversarial for image `rows` (default: row i, image i)?"""
        t = tf()
        goal = self._goal if rows is None else t.gather(self._goal, rows)
        same = t.equal(self.labels(x), goal)
        return same if self._targeted else t.logical_not(same)


def _dist(v, norm: str):
    t = tf()
    if norm == "inf":
        return t.reduce_max(t.abs(v), axis=1)
    return t.sqrt(t.reduce_sum(t.square(v), axis=1))


class HopSkipJump(Attack):
    """Decision-based minimal-norm attack: boundary search, gradient-direction estimates."""

    name = "hopskipjump"
    description = "HopSkipJump, decision-based minimal L2 or L∞ (labels only, ≤ 25,000 queries)"
    #: about 24,000 label queries per image by default: too slow for every run.
    in_every = False
    params = (
        Param("norm", "2", "norm of the perturbation: 2 or inf", str, choices=("2", "inf")),
        Param("iterations", 50, "most gradient-estimation iterations", int, minimum=0),
        Param("max_queries", 25000, "most model queries per image", int, minimum=1),
        Param("init_eval", 100, "estimation draws at the first iteration", int, minimum=1),
        Param("max_eval", 10000, "most estimation draws per iteration", int, minimum=1),
        Param("init_size", 100, "most noise draws to find a start", int, minimum=1),
        Param("gamma", 1.0, "binary-search precision γ", float, minimum=0.0, min_exclusive=True),
        Param(
            "overshoot",
            0.001,
            "push of the result past the boundary (relative)",
            float,
            minimum=0.0,
            maximum=1.0,
        ),
        target_param(),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def iterations(self, params: Mapping[str, Any]) -> int:
        return int(params["iterations"])

    def query_budget(self, params: Mapping[str, Any]) -> int:
        """`max_queries`: the queries are the work (the engine's default time limit)."""
        return int(params["max_queries"])

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.minimal("linf" if params["norm"] == "inf" else "l2")

    def build(self, net: Network, b: BatchInputs, params: Mapping[str, Any]) -> BatchOutputs:
        return _Run(self, net, b, params).outputs()


class _Run:
    """One batch's attack graph: the parameters as numbers and the phases as methods."""

    def __init__(self, attack: Attack, net: Network, b: BatchInputs, p: Mapping[str, Any]):
        t = tf()
        self.b, self.p, self.norm = b, p, p["norm"]
        self.lo, self.hi = float(p["clip_min"]), float(p["clip_max"])
        self.d = b.pixels
        targeted = attack.is_targeted(p)
        self.decide = _Decisions(net, b.targets if targeted else b.labels, targeted)
        self.seed = b.seed
        gamma = float(p["gamma"])
        self.theta = gamma / self.d**1.5 if self.norm == "2" else gamma / self.d**2
        span = max(self.hi - self.lo, 1.0)
        self.search_cap = math.ceil(math.log2(span / self.theta)) + 1
        self.n = t.shape(b.x)[0]

    def interpolate(self, x_adv, alpha):
        """The point a share `alpha` [k] of the way to `x_adv` (L2: a blend) or inside the L∞
        box of radius `alpha` around the original (L∞)."""
        t = tf()
        x0 = self.b.x
        if self.norm == "2":
            return x0 + alpha[:, None] * (x_adv - x0)
        return t.clip_by_value(x_adv, x0 - alpha[:, None], x0 + alpha[:, None])

    def binary_search(self, x_adv, active, queries):
        """(boundary points, queries): for `active` rows, the adversarial end of the binary
        search between the original and `x_adv`; the others unchanged."""
        t = tf()
        if self.norm == "2":
            high = t.ones([self.n])
            threshold = t.fill([self.n], self.theta)
        else:
            high = _dist(x_adv - self.b.x, "inf")
            threshold = t.minimum(high * self.theta, self.theta)
        low = t.zeros([self.n])

        def searching(high, low):
            return t.logical_and(active, high - low > threshold)

        def body(high, low, queries):
            on = searching(high, low)
            mid = (high + low) / 2.0
            adv = self.decide(self.interpolate(x_adv, mid))
            queries += t.cast(on, t.int32)
            high = t.where(t.logical_and(on, adv), mid, high)
            low = t.where(t.logical_and(on, t.logical_not(adv)), mid, low)
            return high, low, queries

        high, _, queries = t.compat.v1.while_loop(
            lambda h, lo, q: t.reduce_any(searching(h, lo)),
            body,
            [high, low, queries],
            back_prop=False,
        )
        return t.where(active[:, None], self.interpolate(x_adv, high), x_adv), queries

    def start(self):
        """(adversarial start points, found, queries): noise draws, then the binary search."""
        t = tf()
        b = self.b

        def body(j, x, found, queries):
            u = random_uniform(self.seed, b.index, j, self.d, stream=21)
            noise = self.lo + (self.hi - self.lo) * u
            looking = t.logical_not(found)
            hit = t.logical_and(looking, self.decide(noise))
            queries += t.cast(looking, t.int32)
            return j + 1, t.where(hit[:, None], noise, x), t.logical_or(found, hit), queries

        _, x, found, queries = t.compat.v1.while_loop(
            lambda j, x, f, q: t.logical_and(
                j < self.p["init_size"], t.logical_not(t.reduce_all(f))
            ),
            body,
            [t.constant(0), b.x, t.zeros([self.n], t.bool), t.zeros([self.n], t.int32)],
            back_prop=False,
        )
        x, queries = self.binary_search(x, found, queries)
        return x, found, queries

    def estimate(self, x, delta, alive, it, n_eval):
        """(step directions [k, d], draws per row [k]): the boundary normal at `x` from
        `n_eval` probes per `alive` row, evaluated in chunks of pairs (row, draw)."""
        t = tf()
        rows = t.cast(t.where(alive)[:, 0], t.int32)
        pairs = t.size(rows) * n_eval
        per_chunk = max(1, CHUNK // self.d)

        # the draws of this iteration, shared by every image and each image's own signs: for
        # one image s ⊙ g_j is exactly Gaussian (uniform for L∞) and i.i.d. over j
        draws = t.range(t.cast(n_eval, t.int64))  # the draw number keys its row
        if self.norm == "2":
            shared = random_normal(self.seed, draws, it, self.d, stream=22)
        else:
            shared = 2.0 * random_uniform(self.seed, draws, it, self.d, stream=23) - 1.0
        shared = shared / t.sqrt(t.reduce_sum(t.square(shared), axis=1, keepdims=True) + 1e-20)
        signs = random_signs(self.seed, t.gather(self.b.index, rows), it, self.d, stream=24)

        def body(c, phi_rv, rv_sum, phi_sum):
            p = t.range(c, t.minimum(c + per_chunk, pairs))
            local, draw = p // n_eval, p % n_eval
            row = t.gather(rows, local)
            u = t.gather(signs, local) * t.gather(shared, draw)
            here = t.gather(x, row)
            step = t.gather(delta, row)[:, None]
            probe = t.clip_by_value(here + step * u, self.lo, self.hi)
            u = (probe - here) / step
            phi = 2.0 * t.cast(self.decide(probe, row), t.float32) - 1.0
            k = t.size(rows)
            return (
                c + per_chunk,
                phi_rv + t.math.unsorted_segment_sum(phi[:, None] * u, local, k),
                rv_sum + t.math.unsorted_segment_sum(u, local, k),
                phi_sum + t.math.unsorted_segment_sum(phi, local, k),
            )

        k = t.size(rows)
        zeros = t.zeros([k, self.d])
        _, phi_rv, rv_sum, phi_sum = t.compat.v1.while_loop(
            lambda c, *_: c < pairs,
            body,
            [t.constant(0), zeros, zeros, t.zeros([k])],
            back_prop=False,
        )
        mean = phi_sum / t.cast(n_eval, t.float32)
        grad = t.where(
            (mean >= 1.0)[:, None],
            rv_sum,
            t.where((mean <= -1.0)[:, None], -rv_sum, phi_rv - mean[:, None] * rv_sum),
        )
        if self.norm == "2":
            grad = grad / t.sqrt(t.reduce_sum(t.square(grad), axis=1, keepdims=True) + 1e-20)
        else:
            grad = t.sign(grad)
        return t.scatter_nd(rows[:, None], grad, [self.n, self.d])

    def step_search(self, x, update, dist, alive, it, queries):
        """(next points, queries): x + ε · update from ε = dist / √t, halved until
        adversarial (at most STEP_TRIES tries; a row that never gets there stays at `x`)."""
        t = tf()
        eps0 = dist / t.sqrt(t.cast(it, t.float32))

        def body(j, eps, done, out, queries):
            on = t.logical_and(alive, t.logical_not(done))
            candidate = t.clip_by_value(x + eps[:, None] * update, self.lo, self.hi)
            hit = t.logical_and(on, self.decide(candidate))
            queries += t.cast(on, t.int32)
            out = t.where(hit[:, None], candidate, out)
            return j + 1, eps / 2.0, t.logical_or(done, hit), out, queries

        _, _, _, out, queries = t.compat.v1.while_loop(
            lambda j, e, done, o, q: t.logical_and(
                j < STEP_TRIES, t.reduce_any(t.logical_and(alive, t.logical_not(done)))
            ),
            body,
            [t.constant(0), eps0, t.zeros([self.n], t.bool), x, queries],
            back_prop=False,
        )
        return out, queries

    def outputs(self) -> BatchOutputs:
        t = tf()
        p, x0 = self.p, self.b.x
        x, found, queries = self.start()
        dist = _dist(x - x0, self.norm)
        budget, iterations = int(p["max_queries"]), int(p["iterations"])
        init_eval, max_eval = int(p["init_eval"]), int(p["max_eval"])
        root_d = math.sqrt(self.d) if self.norm == "2" else float(self.d)

        def body(it, x, dist, best, best_dist, best_at, queries):
            n_eval = t.minimum(
                t.cast(float(init_eval) * t.sqrt(t.cast(it, t.float32)), t.int32), max_eval
            )
            worst = n_eval + STEP_TRIES + self.search_cap
            alive = t.logical_and(found, queries + worst <= budget)
            first = t.fill([self.n], 0.1 * (self.hi - self.lo))
            delta = t.where(it > 1, root_d * self.theta * dist, first)
            update = self.estimate(x, delta, alive, it, n_eval)
            queries += n_eval * t.cast(alive, t.int32)
            stepped, queries = self.step_search(x, update, dist, alive, it, queries)
            x_new, queries = self.binary_search(stepped, alive, queries)
            x = t.where(alive[:, None], x_new, x)
            dist = _dist(x - x0, self.norm)
            better = t.logical_and(alive, dist < best_dist)
            best = t.where(better[:, None], x, best)
            best_at = t.where(better, it + 1, best_at)
            return it + 1, x, dist, best, t.minimum(dist, best_dist), best_at, queries

        loop = t.compat.v1.while_loop(
            lambda it, *_: it <= iterations,
            body,
            [t.constant(1), x, dist, x, dist, t.cast(found, t.int32), queries],
            back_prop=False,
        )
        best, best_at, queries = loop[3], loop[5], loop[6]
        pushed = t.clip_by_value(x0 + (1.0 + p["overshoot"]) * (best - x0), self.lo, self.hi)
        keep = t.logical_and(found, self.decide(pushed))
        final_x = t.where(keep[:, None], pushed, t.where(found[:, None], best, x0))
        queries += t.cast(found, t.int32) + 1  # the pushed point's check, the returned label
        return BatchOutputs(final_x, best_at, self.decide.labels(final_x), queries)


@hookimpl
def register_attacks(register) -> None:
    register(HopSkipJump())
