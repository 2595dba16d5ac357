"""The early-stopping driver: every row of a batch attacked at once inside one `tf.while_loop`.

The loop carries only the rows that have not succeeded yet (it compacts the batch after every
step), stops each row at its first success and scatters its adversarial image, prediction and
step count into the result. Iterations-to-flip is the number of steps applied when the row
first succeeded (1 = the first step did it). The tutorial prints its loop index at the flip,
i.e. this number minus one ("changed after 84 iterations" = 85 here).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from advbench.contract.attack import Attack
from advbench.contract.lazy_tf import tf
from advbench.contract.model import Network
from advbench.contract.steps import BatchInputs, BatchOutputs, StepInputs


def early_stopping_loop(
    attack: Attack,
    net: Network,
    b: BatchInputs,
    params: Mapping[str, Any],
    tick: Callable[[Any, Any], Any] | None = None,
) -> BatchOutputs:
    """Build the loop for `attack` over the batch `b`. `tick(step, active)`, when given, is
    called from inside the loop after every step (a `py_func`), so a progress bar moves while
    one long batch runs rather than only between batches; it returns an int64 scalar."""
    t = tf()
    max_iter = attack.iterations(params)
    n = t.shape(b.x)[0]
    spec, pixels = b.spec, b.pixels
    start = StepInputs(b.x, b.x, b.labels, b.targets, b.index, t.constant(-1), b.seed, (), spec)
    x_start = attack.initial(net, start, params)
    state0 = tuple(attack.initial_state(net, StepInputs(**{**vars(start), "x": x_start}), params))

    # Iteration i (0 <= i < max_iter) sees the images after i steps: it first scores them
    # (success check) and then steps the rest. The success forward pass and the step's own
    # forward pass are on the same tensor, so they are computed once. The images left after
    # max_iter steps are scored once more after the loop (no step is computed for them).
    # Finished rows are appended to TensorArrays (one scatter after the loop, not one per
    # step), and the originals are gathered only for attacks that use them (projections).
    def cond(i, pos, *rest):
        return t.logical_and(i < max_iter, t.size(pos) > 0)

    def body(i, pos, x, y, tgt, idx, ta_pos, ta_x, ta_it, ta_pred, *state):
        s = StepInputs(x, lambda: t.gather(b.x, pos), y, tgt, idx, i, b.seed, tuple(state), spec)
        logits = attack.logits_of(net, s, params)
        pred = t.argmax(logits, 1)
        won = t.logical_and(i > 0, attack.success(net, logits, s, params))
        # Step every active row, then drop the ones that just succeeded: the step's forward
        # pass is then the very one scored above (networks memoise it per input tensor).
        x_next, state_next = attack.step_with_state(net, s, params)
        ta_pos, ta_x, ta_it, ta_pred = _record(i, won, pos, x, pred, ta_pos, ta_x, ta_it, ta_pred)
        keep = t.where(t.logical_not(won))[:, 0]  # one index list gathers every tensor
        pos, x_next, y, tgt, idx, *state_next = [
            t.gather(v, keep) for v in (pos, x_next, y, tgt, idx, *state_next)
        ]
        i_next = i + 1
        if tick is not None:
            told = t.compat.v1.py_func(tick, [i_next, t.size(pos)], t.int64, stateful=True)
            with t.control_dependencies([told]):
                i_next = t.identity(i_next)
        return (i_next, pos, x_next, y, tgt, idx, ta_pos, ta_x, ta_it, ta_pred, *state_next)

    vec, mat = t.TensorShape([None]), t.TensorShape([None, pixels])
    state_shapes = [t.TensorShape([None]).concatenate(s.shape[1:]) for s in state0]
    arrays = [
        t.TensorArray(dtype, size=0, dynamic_size=True, infer_shape=False, element_shape=shape)
        for dtype, shape in (
            (t.int32, [None]),
            (t.float32, [None, pixels]),
            (t.int32, [None]),
            (t.int64, [None]),
        )
    ]
    loop = t.compat.v1.while_loop(
        cond,
        body,
        [
            t.constant(0),
            t.range(n),
            x_start,
            b.labels,
            b.targets,
            b.index,
            *arrays,
            *state0,
        ],
        shape_invariants=[
            t.TensorShape([]),
            vec,
            mat,
            vec,
            vec,
            vec,
            *[t.TensorShape(None)] * 4,
            *state_shapes,
        ],
        back_prop=False,
    )
    i_end, pos_left, x_left, y_left, tgt_left, idx_left = loop[:6]
    ta_pos, ta_x, ta_it, ta_pred = loop[6:10]

    # The final score of the rows still active: after max_iter steps (or none are left).
    # One zero row is appended and its result dropped: some CPU kernels (oneDNN convolutions)
    # fail on an empty batch, which is what remains when every row has already succeeded.
    def padded(v):
        return t.concat([v, t.zeros(t.concat([[1], t.shape(v)[1:]], 0), v.dtype)], 0)

    s = StepInputs(
        padded(x_left),
        lambda: padded(t.gather(b.x, pos_left)),
        padded(y_left),
        padded(tgt_left),
        padded(idx_left),
        i_end,
        b.seed,
        tuple(padded(v) for v in loop[10:]),
        spec,
    )
    logits = attack.logits_of(net, s, params)
    pred_left = t.argmax(logits[:-1], 1)
    won = t.logical_and(i_end > 0, attack.success(net, logits, s, params)[:-1])
    ta_pos, ta_x, ta_it, ta_pred = _record(
        i_end, won, pos_left, x_left, pred_left, ta_pos, ta_x, ta_it, ta_pred
    )
    # Rows that never succeeded end where the loop left them, with their last prediction.
    never = t.where(t.logical_not(won))[:, 0]
    pos_all = t.concat([ta_pos.concat(), t.gather(pos_left, never)], 0)[:, None]
    final_x = t.scatter_nd(
        pos_all, t.concat([ta_x.concat(), t.gather(x_left, never)], 0), t.stack([n, pixels])
    )
    pred_out = t.scatter_nd(
        pos_all,
        t.concat([ta_pred.concat(), t.gather(pred_left, never)], 0),
        t.cast(t.stack([n]), t.int32),
    )
    done_at = t.scatter_nd(ta_pos.concat()[:, None], ta_it.concat(), t.stack([n]))
    return BatchOutputs(final_x, done_at, pred_out, _queries(attack, params, done_at, i_end))


def _queries(attack: Attack, params: Mapping[str, Any], done_at, i_end):
    """int64 [n] per row: the attack's `query_cost` over the steps each row took (its flip
    step, or every step the loop ran), or None when the attack does not count queries."""
    cost = attack.query_cost(params)
    if cost is None:
        return None
    t = tf()
    steps = t.cast(t.where(done_at > 0, done_at, t.fill(t.shape(done_at), i_end)), t.int64)
    return cost.start + cost.per_step * steps


def _record(i, won, pos, x, pred, ta_pos, ta_x, ta_it, ta_pred):
    """Append the rows that succeeded at iteration `i` to the result arrays (slot `i`)."""
    t = tf()
    hit = t.where(won)[:, 0]
    return (
        ta_pos.write(i, t.gather(pos, hit)),
        ta_x.write(i, t.gather(x, hit)),
        ta_it.write(i, t.fill([t.size(hit)], i)),
        ta_pred.write(i, t.gather(pred, hit)),
    )
