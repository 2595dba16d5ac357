"""The tutorial's own attack loop, kept as the reference the batched driver is tested against.

One image at a time, two `sess.run` per iteration (one for the step, one for the prediction),
stopping at the first flip — section 6.4's loop, with the attack's step built from the same
`Attack.step` as the batched driver uses, so any difference is the driver's.
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
) -> tuple[np.ndarray, np.ndarray]:
    """(iterations-to-flip, final images) per image; 0 = never flipped or already wrong."""
    t = tf()
    net = loaded.network
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [1, 784])
        x0 = t.compat.v1.placeholder(t.float32, [1, 784])
        y = t.compat.v1.placeholder(t.int64, [1])
        idx = t.compat.v1.placeholder(t.int64, [1])
        it = t.compat.v1.placeholder(t.int32, [])
        x_star = attack.step(net, StepInputs(x, x0, y, idx, it, seed), params)
        pred = t.argmax(net.logits(x), 1)
    sess = loaded.session
    result = np.zeros(len(images), np.int32)
    finals = images.copy()
    for k in range(len(images)):
        image, label = images[k : k + 1], labels[k : k + 1]
        feed = {x0: image, y: label, idx: indices[k : k + 1]}
        if sess.run(pred, {x: image})[0] != label[0]:
            continue
        current = image
        for i in range(attack.iterations(params)):
            current = sess.run(x_star, {**feed, x: current, it: i})
            if sess.run(pred, {x: current})[0] != label[0]:
                result[k] = i + 1
                break
        finals[k] = current[0]
    return result, finals
