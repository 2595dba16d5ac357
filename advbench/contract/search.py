"""The pieces of Carlini & Wagner's optimisation that their successors reuse: the hinge on the
logit margin with confidence κ, and the per-image binary search over the trade-off constant c.

`ead` (FISTA with a shrinkage step) minimises distance + c · hinge as `cw-l2` does (Adam on a
tanh-space variable) and searches c the same way; plugins must not import each other, so the
search lives here once (`advbench.cw_hinge`, `advbench.binary_search`), used by both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advbench.contract.lazy_tf import tf
from advbench.contract.losses import margin

#: c's upper bound before any round succeeded: "no success yet, multiply c by 10".
NO_UPPER = 1e10


def hinge(logits, classes, onehot, targeted: bool, kappa: float):
    """(f, ok) per image: C&W's f = max(±(z_cls − max_{j≠cls} z_j), −κ), which is minimised
    (untargeted: the label's margin goes below −κ; targeted: the target's above κ), and ok =
    whether the margin already clears κ."""
    t = tf()
    gap = margin(logits, classes, onehot)
    f = t.maximum(-gap if targeted else gap, -kappa)
    ok = (gap > kappa) if targeted else (gap < -kappa)
    return f, ok


def search_start(n, initial_const: float):
    """(const, lower, upper) before the first round: c = `initial_const`, bounds [0, none)."""
    t = tf()
    return t.fill([n], float(initial_const)), t.zeros([n]), t.fill([n], NO_UPPER)


def search_update(const, lower, upper, won):
    """The next round's (const, lower, upper): an image whose round succeeded lowers its upper
    bound to c, one that failed raises its lower bound; c moves to the middle of the bounds, or
    ×10 while no round has succeeded (C&W's, CleverHans' and the EAD authors' rule)."""
    t = tf()
    upper = t.where(won, t.minimum(upper, const), upper)
    lower = t.where(won, lower, t.maximum(lower, const))
    const = t.where(upper < NO_UPPER / 10, (lower + upper) / 2.0, t.where(won, const, const * 10))
    return const, lower, upper


def binary_search(
    n,
    rounds: int,
    initial_const: float,
    run_round: Callable[[int, Any, Any], tuple[Any, Any]],
    best,
):
    """`rounds` rounds of the search over c, as graph ops: `run_round(r, const, best)` builds
    round r's optimisation with the per-image constants `const` [n] and returns (the next
    `best`, whatever the attack keeps across rounds; bool [n]: did the round succeed). Returns
    the last `best`."""
    const, lower, upper = search_start(n, initial_const)
    for r in range(rounds):
        best, won = run_round(r, const, best)
        const, lower, upper = search_update(const, lower, upper, won)
    return best
