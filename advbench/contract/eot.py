"""Expectation over transformation (Athalye et al., ICML 2018): attacking a random model.

A model that is random at inference (noise on its input, random resizing, dropout left on)
hands a gradient attack the gradient of *one* draw of its randomness, and scores the attack's
success on one draw. Plain PGD then follows noisy directions and stops at the first lucky
draw; the engine's confirmation classifies the image again, a fresh draw, and withdraws most
such claims: the model looks robust. EOT ascends the expected loss instead, estimating its
gradient as the mean of K per-draw gradients, each from an independent forward pass, and
counts an image as broken only when every one of the K draws misclassifies it.

Gradient attacks share one implementation: an `eot` parameter (`EOT_PARAM`, default 1 = one
pass, exactly the plain graph), `expected_gradient`, which averages any per-image (objective,
gradient) over K passes, and `least_adversarial` (`advbench.contract.losses`), the success
check's logits (`Attack.logits_of` uses it whenever `eot` > 1). Both use the same K passes.

The K passes are one forward/backward pass over the batch tiled K times (row draw⋅k + i is
image i), not a Python loop over images. A `tf.while_loop` over the draws computes the same
gradient in the same time (noisy-cnn, 200 images, K = 10, 2 busy cores: 10.1-10.7 s per
gradient tiled, 9.6-10.1 s looped), but cannot share its passes with the success check, which
would cost K more forward passes per step. Tiling needs K times the activation memory: lower
`--batch-size` for big models.

On a deterministic model eot = K gives the plain gradient (equal up to float rounding of the
mean) and the plain success check, at K times the cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from advbench.contract.lazy_tf import tf
from advbench.contract.model import Network
from advbench.contract.params import Param

#: The most draws per step: beyond that the estimate's noise (1/√K) no longer pays for the
#: K-fold cost, and a typo such as eot=10000 would tile a batch past any memory.
MAX_DRAWS = 1000

EOT_PARAM = Param(
    "eot",
    1,
    "expectation over transformation: average the loss gradient over this many forward "
    "passes (1: one pass; > 1 for models that are random at inference)",
    int,
    minimum=1,
    maximum=MAX_DRAWS,
    neutral=True,  # eot=1 is the plain graph: runs stored before eot existed resume
)

#: (objective [k], gradient [k, pixels]) of one draw at the images it is handed; its second
#: argument lays any per-image tensor [k, …] (labels, targets) out as those images' rows.
PerDraw = Callable[[Any, Callable[[Any], Any]], tuple[Any, Any]]


def tile_rows(v, draws: int):
    """`v` [k, …] repeated `draws` times along the batch: row draw⋅k + i is row i."""
    t = tf()
    return t.tile(v, t.concat([[draws], t.ones([t.rank(v) - 1], t.int32)], 0))


def draw_mean(v, draws: int):
    """The mean over draws of a tiled tensor [draws⋅k, …] → [k, …]."""
    t = tf()
    return t.reduce_mean(t.reshape(v, t.concat([[draws, -1], t.shape(v)[1:]], 0)), axis=0)


def tiled(net: Network, x, draws: int):
    """`x` tiled `draws` times, once per input tensor: the success check's expected logits and
    the step's expected gradient then share the same `draws` passes (networks memoise their
    forward pass per input tensor), as a plain step shares its one pass."""
    return net.memo(f"eot-tiled-{draws}", x, lambda v: tile_rows(v, draws))


def expected_gradient(net: Network, x, per_draw: PerDraw, draws: int) -> tuple[Any, Any]:
    """(mean objective [k], mean gradient [k, pixels]) of `per_draw` over `draws` passes.

    `per_draw(images, rows)` builds one pass of `net` on `images` and returns that draw's
    objective and its gradient with respect to `images`; `rows(v)` gives a per-image tensor of
    `x`'s batch (labels, one-hot targets) in the layout of `images`. It must treat rows
    independently (every advbench network does), so that row draw⋅k + i of the tiled batch is
    an independent draw at image i. With `draws` = 1 it gets `x` itself and the identity: the
    plain graph, op for op.
    """
    if draws == 1:
        return per_draw(x, lambda v: v)
    objective, grad = per_draw(tiled(net, x, draws), lambda v: tile_rows(v, draws))
    return draw_mean(objective, draws), draw_mean(grad, draws)
