"""The early-stopping driver: every row of a batch attacked at once inside one `tf.while_loop`.

The loop carries only the rows that have not succeeded yet (it compacts the batch after every
step), stops each row at its first success and scatters its adversarial image, prediction and
step count into the result. Iterations-to-flip is the number of steps applied when the row
first succeeded (1 = the first step did it). The tutorial prints its loop index at the flip,
i.e. this number minus one ("changed after 84 iterations" = 85 here).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench.attack import Attack, BatchInputs, BatchOutputs, StepInputs
from advbench.graph import tf
from advbench.model import Network


def early_stopping_loop(
    attack: Attack, net: Network, b: BatchInputs, params: Mapping[str, Any]
) -> BatchOutputs:
    """Build the loop for `attack` over the batch `b`."""
    t = tf()
    max_iter = attack.iterations(params)
    n = t.shape(b.x)[0]
    start = StepInputs(b.x, b.x, b.labels, b.targets, b.index, t.constant(-1), b.seed)
    x_start = attack.initial(net, start, params)
    state0 = tuple(attack.initial_state(net, StepInputs(**{**vars(start), "x": x_start}), params))

    # Iteration i sees the images after i steps: it first scores them (success check) and then
    # steps the rest. The success forward pass and the step's own forward pass are then on the
    # same tensor, so they are computed once; a final pass at i == max_iter only scores.
    def cond(i, pos, x, x0, y, tgt, idx, cur_pred, final_x, done_at, pred_out, *state):
        return t.logical_and(i <= max_iter, t.size(pos) > 0)

    def body(i, pos, x, x0, y, tgt, idx, cur_pred, final_x, done_at, pred_out, *state):
        s = StepInputs(x, x0, y, tgt, idx, i, b.seed, tuple(state))
        logits = net.logits(x)
        pred = t.argmax(logits, 1)
        won = t.logical_and(i > 0, attack.success(net, logits, s, params))
        at = t.boolean_mask(pos, won)[:, None]
        final_x = t.tensor_scatter_nd_update(final_x, at, t.boolean_mask(x, won))
        done_at = t.tensor_scatter_nd_update(done_at, at, t.fill([t.shape(at)[0]], i))
        pred_out = t.tensor_scatter_nd_update(pred_out, at, t.boolean_mask(pred, won))
        keep = t.logical_not(won)
        kept = [t.boolean_mask(v, keep) for v in (pos, x, x0, y, tgt, idx, pred, *state)]
        pos, x, x0, y, tgt, idx, pred, *state = kept
        s = StepInputs(x, x0, y, tgt, idx, i, b.seed, tuple(state))
        x_next, state_next = attack.step_with_state(net, s, params)
        last = i >= max_iter  # the final pass only scores: nothing moves
        x_next = t.where(last, x, x_next)
        state_next = [t.where(last, old, new) for old, new in zip(state, state_next, strict=True)]
        return (i + 1, pos, x_next, x0, y, tgt, idx, pred, final_x, done_at, pred_out, *state_next)

    vec, mat = t.TensorShape([None]), t.TensorShape([None, 784])
    state_shapes = [t.TensorShape([None]).concatenate(s.shape[1:]) for s in state0]
    loop = t.compat.v1.while_loop(
        cond,
        body,
        [
            t.constant(0),
            t.range(n),
            x_start,
            b.x,
            b.labels,
            b.targets,
            b.index,
            b.labels,
            b.x,
            t.zeros([n], t.int32),
            t.fill([n], t.constant(-1, t.int64)),
            *state0,
        ],
        shape_invariants=[
            t.TensorShape([]),
            vec,
            mat,
            mat,
            vec,
            vec,
            vec,
            vec,
            mat,
            vec,
            vec,
            *state_shapes,
        ],
        back_prop=False,
    )
    pos_left, x_left, pred_left = loop[1], loop[2], loop[7]
    final_x, done_at, pred_out = loop[8], loop[9], loop[10]
    # Rows that never succeeded end where the loop left them, with their last prediction.
    final_x = t.tensor_scatter_nd_update(final_x, pos_left[:, None], x_left)
    pred_out = t.tensor_scatter_nd_update(pred_out, pos_left[:, None], pred_left)
    return BatchOutputs(final_x, done_at, pred_out)
