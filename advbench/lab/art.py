"""IBM ART's BasicIterativeMethod as one row of `advbench bench`, when ART is installed.

Quarantined here because importing ART reconfigures the host's logging (see
`_logging_handlers_kept`), and because ART is an optional extra (`advbench[art]`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np

from advbench.lab.timing import Row, time_call


@contextlib.contextmanager
def _logging_handlers_kept() -> Iterator[None]:
    """Importing ART runs `logging.config.dictConfig`, which closes every logging handler the
    host process has (pytest's log capture, an application's own): keep them open."""
    import logging.config

    clear = logging.config._clearExistingHandlers  # type: ignore[attr-defined]
    logging.config._clearExistingHandlers = lambda: None  # type: ignore[attr-defined]
    try:
        yield
    finally:
        logging.config._clearExistingHandlers = clear  # type: ignore[attr-defined]


def bim(
    loaded: Any, params: dict, images: np.ndarray, labels: np.ndarray, batch: int
) -> Row | None:
    """IBM ART's BasicIterativeMethod on the same graph and budget, if ART is installed.

    ART's batch size is ours to choose: 128 was its fastest here (32, its default, is about
    1.7× slower; 1,000 about 1.4× slower), so the comparison is against ART at its best.
    """
    import warnings

    try:
        with warnings.catch_warnings(), _logging_handlers_kept():
            warnings.simplefilter("ignore")  # ART warns about missing PyTorch at import
            from art.attacks.evasion import BasicIterativeMethod  # type: ignore[import-not-found]
            from art.estimators.classification import TensorFlowClassifier  # type: ignore
    except Exception:
        return None
    from advbench.contract.lazy_tf import tf

    t = tf()
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, loaded.spec.pixels])
        y = t.compat.v1.placeholder(t.float32, [None, loaded.spec.classes])
        logits = loaded.network.logits(x)
        loss = t.reduce_sum(loaded.network.loss(x, y))
        # ART builds its gradient ops in the default graph: ours, in graph mode
        classifier = TensorFlowClassifier(
            input_ph=x,
            output=logits,
            labels_ph=y,
            loss=loss,
            sess=loaded.session,
            clip_values=(0.0, 1.0),
        )
        iterations = int(params["iterations"])
        bim = BasicIterativeMethod(
            classifier,
            eps=params["step"] * iterations,
            eps_step=params["step"],
            max_iter=iterations,
            batch_size=batch,
            verbose=False,
        )
        onehot = np.eye(loaded.spec.classes)[labels]
        bim.generate(images[:batch], y=onehot[:batch])  # warm-up, as for every other row
        _, seconds = time_call(lambda: bim.generate(images, y=onehot))
    return Row(
        "IBM ART BasicIterativeMethod (no early stop)",
        float(len(images) * iterations),
        seconds,
        f"{len(images)} images, batch {batch}",
    )
