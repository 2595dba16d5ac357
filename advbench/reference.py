"""The tutorial's own attack loop, kept as the reference the batched driver is tested against.

One image at a time, two `sess.run` per iteration (one for the step, one for the prediction),
stopping at the first success — section 6.4's loop, built from the same `Attack` methods
(`initial`, `step_with_state`, `success`) as the batched driver, so any difference is the
driver's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from advbench.attack import Attack, StepInputs
from advbench.graph import tf
from advbench.zoo import Loaded


def per_image_iterations(
    loaded: Loaded,
    attack: Attack,
    params: Mapping[str, Any],
    seed: int,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
    targets: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(iterations-to-success, final images) per image; 0 = never succeeded or not attacked."""
    t = tf()
    net = loaded.network
    targets = labels if targets is None else targets
    with loaded.graph.as_default():
        ph = t.compat.v1.placeholder
        x, x0 = ph(t.float32, [1, 784]), ph(t.float32, [1, 784])
        y, tgt, idx = ph(t.int64, [1]), ph(t.int64, [1]), ph(t.int64, [1])
        it = ph(t.int32, [])
        start = StepInputs(x0, x0, y, tgt, idx, t.constant(-1), seed)
        x_init = attack.initial(net, start, params)
        state_init = tuple(
            attack.initial_state(net, StepInputs(x, x0, y, tgt, idx, -1, seed), params)
        )
        state_ph = tuple(ph(s.dtype, s.shape) for s in state_init)
        s = StepInputs(x, x0, y, tgt, idx, it, seed, state_ph)
        x_star, state_next = attack.step_with_state(net, s, params)
        won = attack.success(net, net.logits(x), StepInputs(x, x0, y, tgt, idx, it, seed), params)
        pred = t.argmax(net.logits(x), 1)
    sess = loaded.session
    result = np.zeros(len(images), np.int32)
    finals = images.copy()
    for k in range(len(images)):
        feed = {
            x0: images[k : k + 1],
            y: labels[k : k + 1],
            tgt: targets[k : k + 1],
            idx: indices[k : k + 1],
        }
        if (
            not attack.attacks_misclassified
            and sess.run(pred, {**feed, x: images[k : k + 1]})[0] != labels[k]
        ):
            continue
        current = sess.run(x_init, feed)
        state = sess.run(state_init, {**feed, x: current}) if state_init else ()
        for i in range(attack.iterations(params)):
            current, state = sess.run(
                [x_star, state_next],
                {**feed, x: current, it: i, **dict(zip(state_ph, state, strict=True))},
            )
            if sess.run(won, {**feed, x: current, it: i})[0]:
                result[k] = i + 1
                break
        finals[k] = current[0]
    return result, finals
