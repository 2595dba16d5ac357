"""`fab`: the Fast Adaptive Boundary attack (Croce & Hein, ICML 2020), L∞ or L2.

FAB looks for the adversarial point closest to the original x0. At the iterate x it linearises
the classifier: the decision boundary between the label y and a class j becomes the hyperplane
{z : f_j(x) − f_y(x) + ∇(f_j − f_y)(x) · (z − x) = 0}. Untargeted, j is the class whose
hyperplane is nearest, |f_j − f_y| / ‖∇(f_j − f_y)‖_q (q the dual norm: L1 for L∞, L2 for L2);
targeted, j is the target. Both x and x0 are projected onto that hyperplane inside the pixel
box (`project_on_hyperplane`, d1 and d2), and the step mixes the two, with overshoot η:

    x ← clip((1 − α)(x + η d1) + α (x0 + η d2)),   α = min(‖d1‖ / (‖d1‖ + ‖d2‖), α_max)

so it moves towards the boundary while staying biased towards x0 (α is large when x is far
from the boundary compared with x0). When the new x is adversarial its distance is recorded,
and x is pulled back towards x0, x ← x0 + β (x − x0), to search for a closer boundary point.
Defaults are the reference code's (fra31/auto-attack): α_max 0.1, η 1.05, β 0.9, 100 steps.

Two ways to report it (`minimal`):

- bounded (`minimal=false`, the default): success is an adversarial point within `eps` of x0;
  the threat model is `ThreatModel.bounded(norm, eps)`. The engine's early-stopping driver runs
  the steps: the image the driver sees is x0 until the first FAB iterate that is adversarial
  and within `eps`, which is then the result (the FAB iterate itself is per-image state).
  Stopping there changes no success: the best distance only decreases along the path, so the
  reference's "best point within eps at the end" exists exactly when one was met on the way.
  An image never broken within `eps` comes back unchanged.
- minimal (`minimal=true`): every image runs every step and the closest adversarial point on
  the whole path is returned (`ThreatModel.minimal(norm)`); iterations-to-flip is the step
  that found it. `eps` then only sizes the restarts' random starts, as in the reference.

Targets: `target` (none/all/class) aims at classes the advbench way, success is reaching the
target; the boundary is then the target's against its strongest rival at x (the label at
first), since the target must beat every class, not only the label. `target_rank` k > 0 is
AutoAttack's FAB-T: aim at the k-th runner-up class of the clean logits (1 = the strongest
other class), with the label as the rival, and count any misclassification as success.
Restarts (`restarts` R > 1): after each run of `iterations` steps an image still standing
starts again from a random point at distance min(best, eps)/2 from x0 (uniform direction in
the norm's sphere, keyed by image index), as the reference's restarts do.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    BatchInputs,
    BatchOutputs,
    ImageSpec,
    Network,
    Param,
    ParamError,
    StepInputs,
    ThreatModel,
    beyond_tolerance,
    hookimpl,
    random_normal,
    random_uniform,
    target_param,
    tf,
)


def _fill_level(weight, cap, need):
    """Per row, the smallest s ≥ 0 with Σ_i weight_i · min(s, cap_i) ≥ need; +inf where even
    s = ∞ falls short. Both box projections reduce to this one piecewise-linear equation.

    g(s) = Σ_i w_i min(s, cap_i) is non-decreasing and linear between the sorted caps
    u_(1) ≤ … ≤ u_(n): on [u_(k−1), u_(k)] it is Σ_{j<k} w_j u_j + s Σ_{j≥k} w_j. One sort and
    two cumulative sums give g at every cap; the first cap where g reaches `need` fixes the
    piece, and the piece's linear equation gives s (no bisection loop).
    """
    t = tf()
    order = t.argsort(cap, axis=1)
    w = t.gather(weight, order, batch_dims=1)
    u = t.gather(cap, order, batch_dims=1)
    before = t.cumsum(w * u, axis=1, exclusive=True)  # Σ_{j<k} w_j u_j
    after = t.cumsum(w, axis=1, reverse=True)  # Σ_{j≥k} w_j
    reached = before + u * after  # g(u_(k))
    k = t.reduce_sum(t.cast(reached < need[:, None], t.int32), axis=1)
    n = t.shape(cap)[1]
    piece = t.minimum(k, n - 1)
    s = (need - t.gather(before, piece, batch_dims=1)) / t.maximum(
        t.gather(after, piece, batch_dims=1), 1e-30
    )
    return t.where(k < n, t.maximum(s, 0.0), t.fill(t.shape(need), float("inf")))


def project_on_hyperplane(points, w, b, norm: str, lo: float, hi: float):
    """The smallest step d (in L∞ or L2) with w·(p + d) = b and p + d in [lo, hi], per row.

    `points` [k, n] must lie in the box. Where the box does not reach the hyperplane, d goes
    to the box corner that comes closest to it (the whole room in the direction of ±w).

    Orient w so that the hyperplane lies on its positive side (c = b − w·p ≥ 0); coordinate i
    may then move by at most u_i towards sign(w_i) (u_i: distance to the box's wall).
    L∞: with ‖d‖∞ = δ the most w·d can gain is Σ |w_i| min(δ, u_i): δ is the fill level with
    weights |w_i| and caps u_i, and d_i = sign(w_i) min(δ, u_i).
    L2: the KKT conditions give d_i = clip(λ w_i) to the box, so w·d = Σ w_i² min(λ, u_i/|w_i|):
    λ is the fill level with weights w_i² and caps u_i / |w_i|, and d_i = w_i min(λ, u_i/|w_i|).
    """
    t = tf()
    c = b - t.reduce_sum(w * points, axis=1)
    w = t.where((c < 0)[:, None], -w, w)
    room = t.maximum(t.where(w > 0, hi - points, points - lo), 0.0)
    aw = t.abs(w)
    if norm == "inf":
        level = _fill_level(aw, room, t.abs(c))
        return t.sign(w) * t.minimum(level[:, None], room)
    moving = aw > 0
    cap = t.where(moving, room / t.where(moving, aw, t.ones_like(aw)), t.zeros_like(aw))
    level = _fill_level(t.square(w), cap, t.abs(c))
    return w * t.minimum(level[:, None], cap)


def distance(d, norm: str):
    """Per-row norm [k] of the perturbations d."""
    t = tf()
    if norm == "inf":
        return t.reduce_max(t.abs(d), axis=1)
    return t.sqrt(t.reduce_sum(t.square(d), axis=1))


def target_boundary(net: Network, x, labels, aim, rival: bool, classes: int):
    """(f, w) of the linearised boundary f + w·(z − x) = 0 between class `aim` and its rival:
    the label (`rival` False: AutoAttack's FAB-T, where any misclassification succeeds) or the
    strongest other class at x (`rival` True: to reach the target it must beat every class,
    and once it beats the label the next one in its way is the boundary that matters)."""
    t = tf()
    logits = net.logits(x)
    if rival:
        others = logits - 1e9 * t.one_hot(aim, classes, dtype=t.float32)
        labels = t.argmax(others, 1)
    f = t.gather(logits, aim, batch_dims=1) - t.gather(logits, labels, batch_dims=1)
    (w,) = t.gradients(t.reduce_sum(f), [x])
    return f, w


def nearest_boundary(net: Network, x, labels, norm: str, classes: int):
    """(f, w) of the class whose linearised boundary is nearest to x in `norm` (one backward
    pass per class)."""
    t = tf()
    logits = net.logits(x)
    grads = t.stack(
        [t.gradients(t.reduce_sum(logits[:, j]), [x])[0] for j in range(classes)], axis=1
    )  # [k, classes, n]
    f = logits - t.gather(logits, labels, batch_dims=1)[:, None]
    g = grads - t.gather(grads, labels, batch_dims=1)[:, None, :]
    dual = t.reduce_sum(t.abs(g), 2) if norm == "inf" else t.sqrt(t.reduce_sum(t.square(g), 2))
    far = 1e10 * t.one_hot(labels, classes, dtype=t.float32)  # never the label itself
    j = t.argmin(t.abs(f) / (dual + 1e-12) + far, axis=1)
    return t.gather(f, j, batch_dims=1), t.gather(g, j, batch_dims=1)


def fab_step(
    net: Network, x, x0, labels, aim, params: Mapping[str, Any], classes: int, rival: bool = False
):
    """The next FAB iterate from x (before the backward step): a biased projection step."""
    t = tf()
    norm, lo, hi = params["norm"], params["clip_min"], params["clip_max"]
    if aim is None:  # untargeted: the nearest of the other classes' boundaries
        f, w = nearest_boundary(net, x, labels, norm, classes)
    else:
        f, w = target_boundary(net, x, labels, aim, rival, classes)
    b = t.reduce_sum(w * x, axis=1) - f  # the hyperplane w·z = b
    k = t.shape(x)[0]
    both = project_on_hyperplane(
        t.concat([x, x0], 0), t.concat([w, w], 0), t.concat([b, b], 0), norm, lo, hi
    )
    d1, d2 = both[:k], both[k:]
    n1 = t.maximum(distance(d1, norm), 1e-8)
    n2 = t.maximum(distance(d2, norm), 1e-8)
    alpha = t.minimum(n1 / (n1 + n2), params["alpha_max"])[:, None]
    eta = params["eta"]
    return t.clip_by_value((1.0 - alpha) * (x + eta * d1) + alpha * (x0 + eta * d2), lo, hi)


class FAB(Attack):
    """Fast Adaptive Boundary: projections onto linearised boundaries, biased towards x0."""

    name = "fab"
    description = "Fast Adaptive Boundary, L∞/L2, at a budget or minimal norm (eps 0.3, 100 steps)"
    params = (
        Param("norm", "inf", "threat model: inf (L∞) or 2 (L2)", str, choices=("inf", "2")),
        Param(
            "eps",
            0.3,
            "budget: success is an adversarial point this close (minimal: restart radius)",
            float,
            minimum=0.0,
            min_exclusive=True,
        ),
        Param("minimal", False, "report minimal norms instead of success within eps", bool),
        Param("iterations", 100, "steps per restart", int, minimum=1),
        Param("restarts", 1, "runs, later ones from random starts", int, minimum=1),
        Param("alpha_max", 0.1, "most weight of the step from x0", float, minimum=0.0, maximum=1.0),
        Param("eta", 1.05, "overshoot of the projections", float, minimum=1.0),
        Param(
            "beta", 0.9, "backward step towards x0 after a success", float, minimum=0.0, maximum=1.0
        ),
        target_param(),
        Param(
            "target_rank",
            0,
            "0: off; k: aim at the k-th runner-up class of the clean logits, any "
            "misclassification succeeds (AutoAttack's FAB-T)",
            int,
            minimum=0,
        ),
        *CLIP_PARAMS,
        SEED_PARAM,
    )

    def check(self, params: Mapping[str, Any]) -> None:
        if params["target_rank"] > 0 and params["target"] != "none":
            raise ParamError(
                f"fab.target_rank={params['target_rank']} picks its own target: "
                f"leave fab.target at none (not {params['target']})"
            )

    def for_dataset(self, params: Mapping[str, Any], spec: ImageSpec) -> dict[str, Any]:
        """A target rank needs that many other classes."""
        if params["target_rank"] > spec.classes - 1:
            raise ParamError(
                f"invalid value {params['target_rank']} for fab.target_rank: must be <= "
                f"{spec.classes - 1} (classes - 1)"
            )
        return super().for_dataset(params, spec)

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        norm = "linf" if params["norm"] == "inf" else "l2"
        if params["minimal"]:
            return ThreatModel.minimal(norm)
        return ThreatModel.bounded(norm, params["eps"])

    def iterations(self, params: Mapping[str, Any]) -> int:
        return int(params["restarts"]) * int(params["iterations"])

    # ---- what both modes share

    def aim(self, net: Network, x0, labels, targets, params: Mapping[str, Any]):
        """The class each row's boundary is taken with; None: the nearest (untargeted)."""
        t = tf()
        rank = int(params["target_rank"])
        if rank > 0:
            return t.math.top_k(net.logits(x0), k=rank + 1).indices[:, rank]
        return targets if self.is_targeted(params) else None

    def reached(self, logits, labels, targets, params: Mapping[str, Any]):
        """bool [k]: is the point adversarial (the target reached, when targeted) by the
        engine's confirmation margin? FAB's points end next to the boundary by design."""
        targeted = self.is_targeted(params)
        return beyond_tolerance(logits, targets if targeted else labels, targeted)

    def restart(self, x, x0, index, i, radius, seed: int, params: Mapping[str, Any]):
        """At the start of each run after the first: a random point at radius/2 from x0
        (`radius` [k]: min(best distance so far, eps))."""
        t = tf()
        n_iter, runs = int(params["iterations"]), int(params["restarts"])
        if runs == 1:
            return x
        pixels = int(x0.shape[-1])

        def fresh():
            if params["norm"] == "inf":
                u = 2.0 * random_uniform(seed, index, i, pixels, stream=5) - 1.0
            else:
                u = random_normal(seed, index, i, pixels, stream=6)
            u = u / t.maximum(distance(u, params["norm"]), 1e-12)[:, None]
            start = x0 + 0.5 * radius[:, None] * u
            return t.clip_by_value(start, params["clip_min"], params["clip_max"])

        begins = t.logical_and(i > 0, t.equal(i % n_iter, 0))
        return t.cond(begins, fresh, lambda: x)

    def advance(self, net, x, x0, labels, targets, aim, params, classes: int):
        """(next iterate after the backward step, candidate, adversarial?, its distance)."""
        t = tf()
        rival = self.is_targeted(params)
        cand = fab_step(net, x, x0, labels, aim, params, classes, rival=rival)
        adv = self.reached(net.logits(cand), labels, targets, params)
        dist = distance(cand - x0, params["norm"])
        back = x0 + params["beta"] * (cand - x0)
        return t.where(adv[:, None], back, cand), cand, adv, dist

    # ---- bounded: the engine's early-stopping driver

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        aim = self.aim(net, s.x0, s.labels, s.targets, params)
        return (s.x0, s.labels if aim is None else aim)

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        t = tf()
        it, aim_state = s.state
        aim = aim_state if (params["target_rank"] > 0 or self.is_targeted(params)) else None
        radius = t.fill(t.shape(s.labels), float(params["eps"]))
        it = self.restart(it, s.x0, s.index, s.iteration, radius, s.seed, params)
        nxt, cand, adv, dist = self.advance(
            net, it, s.x0, s.labels, s.targets, aim, params, s.classes
        )
        inside = t.logical_and(adv, dist <= params["eps"])
        return t.where(inside[:, None], cand, s.x), (nxt, aim_state)

    # ---- minimal: every step for every image, the closest adversarial point kept

    def build(self, net: Network, b: BatchInputs, params: Mapping[str, Any]) -> BatchOutputs | None:
        if not params["minimal"]:
            return None
        t = tf()
        x0, labels, targets = b.x, b.labels, b.targets
        aim = self.aim(net, x0, labels, targets, params)
        n = t.shape(x0)[0]
        eps = float(params["eps"])

        def body(i, x, best_x, best, best_at):
            x = self.restart(x, x0, b.index, i, t.minimum(best, eps), b.seed, params)
            nxt, cand, adv, dist = self.advance(net, x, x0, labels, targets, aim, params, b.classes)
            better = t.logical_and(adv, dist < best)
            best_x = t.where(better[:, None], cand, best_x)
            best = t.where(better, dist, best)
            best_at = t.where(better, i + 1, best_at)
            return i + 1, nxt, best_x, best, best_at

        loop = t.compat.v1.while_loop(
            lambda i, *_: i < self.iterations(params),
            body,
            [t.constant(0), x0, x0, t.fill([n], float("inf")), t.zeros([n], t.int32)],
            back_prop=False,
        )
        best_x, best_at = loop[2], loop[4]
        # Count only what the model still calls adversarial when the result is re-fed.
        pred = t.argmax(net.logits(best_x), 1)
        won = t.logical_and(best_at > 0, self.reached(net.logits(best_x), labels, targets, params))
        final_x = t.where(won[:, None], best_x, x0)
        pred = t.where(won, pred, t.argmax(net.logits(x0), 1))
        return BatchOutputs(final_x, t.where(won, best_at, 0), pred)


@hookimpl
def register_attacks(register) -> None:
    register(FAB())
