"""The batched driver: every image of a batch attacked at once inside one `tf.while_loop`.

Per batch, the loop carries only the images that have not flipped yet (it compacts the batch
after every step), stops each image at its first flip and scatters its adversarial image,
prediction and iteration count into the result. Images the model already misclassifies are not
attacked: they count as wrong in adversarial accuracy and are left out of the flip rate.

Iterations-to-flip is the number of attack steps applied when the prediction first left the
true label (1 = the first step flipped it). The tutorial prints its loop index at the flip,
which is this number minus one ("changed after 84 iterations" = 85 here).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from advbench.attack import Attack, StepInputs
from advbench.graph import tf
from advbench.zoo import Loaded

DEFAULT_BATCH = 2000


@dataclass
class Records:
    """Per-image results of one model × attack cell (arrays aligned on `index`)."""

    index: np.ndarray  # test-set index, int64
    label: np.ndarray  # true label
    clean_pred: np.ndarray
    adv_pred: np.ndarray
    iterations: np.ndarray  # steps applied when the label flipped; 0 = never flipped/attacked
    flipped: np.ndarray  # bool: initially correct and flipped within the budget
    l2: np.ndarray  # ‖x_adv − x‖₂
    linf: np.ndarray  # ‖x_adv − x‖∞
    adversarial: np.ndarray = field(repr=False)  # float32 [n, 784] final images

    @property
    def attacked(self) -> np.ndarray:
        """Images the model classified correctly before the attack."""
        return self.clean_pred == self.label

    def rows(self) -> list[dict[str, Any]]:
        """One plain dict per image, for CSV/JSON."""
        return [
            {
                "index": int(self.index[i]),
                "label": int(self.label[i]),
                "clean_pred": int(self.clean_pred[i]),
                "adv_pred": int(self.adv_pred[i]),
                "flipped": bool(self.flipped[i]),
                "iterations": int(self.iterations[i]),
                "l2": float(self.l2[i]),
                "linf": float(self.linf[i]),
            }
            for i in range(len(self.index))
        ]


@dataclass
class AttackGraph:
    """The placeholders and outputs of one attack's while-loop, built once per attack."""

    x: Any
    labels: Any
    index: Any
    final_x: Any
    flip_at: Any
    adv_pred: Any


def predict(loaded: Loaded, images: np.ndarray, batch: int = 10000) -> np.ndarray:
    """Argmax predictions of the loaded model, in batches."""
    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        pred = t.argmax(loaded.network.logits(x), 1)
    out = [
        loaded.session.run(pred, {x: images[i : i + batch]}) for i in range(0, len(images), batch)
    ]
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def build_attack_graph(
    loaded: Loaded, attack: Attack, params: Mapping[str, Any], seed: int
) -> AttackGraph:
    """The whole iterative attack as one graph: feed a batch, fetch its final state."""
    t = tf()
    net = loaded.network
    max_iter = attack.iterations(params)
    with loaded.graph.as_default(), t.name_scope(f"attack_{attack.name}"):
        x_in = t.compat.v1.placeholder(t.float32, [None, 784], name="x")
        y_in = t.compat.v1.placeholder(t.int64, [None], name="labels")
        idx_in = t.compat.v1.placeholder(t.int64, [None], name="index")
        n = t.shape(x_in)[0]

        def cond(i, x, x0, y, idx, pos, final_x, flip_at, adv_pred):
            return t.logical_and(i < max_iter, t.size(pos) > 0)

        def body(i, x, x0, y, idx, pos, final_x, flip_at, adv_pred):
            x_next = attack.step(net, StepInputs(x, x0, y, idx, i, seed), params)
            pred = t.argmax(net.logits(x_next), 1)
            flipped = t.not_equal(pred, y)
            at = t.boolean_mask(pos, flipped)[:, None]
            final_x = t.tensor_scatter_nd_update(final_x, at, t.boolean_mask(x_next, flipped))
            flip_at = t.tensor_scatter_nd_update(flip_at, at, t.fill([t.shape(at)[0]], i + 1))
            adv_pred = t.tensor_scatter_nd_update(adv_pred, at, t.boolean_mask(pred, flipped))
            keep = t.logical_not(flipped)
            kept = [t.boolean_mask(v, keep) for v in (x_next, x0, y, idx, pos)]
            return (i + 1, *kept, final_x, flip_at, adv_pred)

        vec, mat = t.TensorShape([None]), t.TensorShape([None, 784])
        loop = t.compat.v1.while_loop(
            cond,
            body,
            [
                t.constant(0),
                x_in,
                x_in,
                y_in,
                idx_in,
                t.range(n),
                x_in,
                t.zeros([n], t.int32),
                y_in,
            ],
            shape_invariants=[t.TensorShape([]), mat, mat, vec, vec, vec, mat, vec, vec],
            back_prop=False,
        )
        _, x_left, _, _, _, pos_left, final_x, flip_at, adv_pred = loop
        final_x = t.tensor_scatter_nd_update(final_x, pos_left[:, None], x_left)
    return AttackGraph(x_in, y_in, idx_in, final_x, flip_at, adv_pred)


def run_attack(
    loaded: Loaded,
    attack: Attack,
    params: Mapping[str, Any],
    seed: int,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    clean_pred: np.ndarray,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[Records, float]:
    """Attack every correctly classified image; return per-image records and wall seconds."""
    graph = build_attack_graph(loaded, attack, params, seed)
    n = len(images)
    adversarial = images.copy()
    adv_pred = clean_pred.copy()
    iterations = np.zeros(n, np.int32)
    targets = np.flatnonzero(clean_pred == labels)
    started = time.perf_counter()
    for lo in range(0, len(targets), batch_size):
        sel = targets[lo : lo + batch_size]
        final_x, flip_at, pred = loaded.session.run(
            [graph.final_x, graph.flip_at, graph.adv_pred],
            {graph.x: images[sel], graph.labels: labels[sel], graph.index: indices[sel]},
        )
        adversarial[sel], iterations[sel], adv_pred[sel] = final_x, flip_at, pred
        if on_batch:
            on_batch(len(sel))
    seconds = time.perf_counter() - started
    if on_batch and n > len(targets):
        on_batch(n - len(targets))
    delta = adversarial.astype(np.float64) - images.astype(np.float64)
    records = Records(
        index=indices.astype(np.int64),
        label=labels.astype(np.int64),
        clean_pred=clean_pred.astype(np.int64),
        adv_pred=adv_pred.astype(np.int64),
        iterations=iterations,
        flipped=iterations > 0,
        l2=np.sqrt(np.sum(delta * delta, axis=1)),
        linf=np.max(np.abs(delta), axis=1) if n else np.zeros(0),
        adversarial=adversarial,
    )
    return records, seconds
