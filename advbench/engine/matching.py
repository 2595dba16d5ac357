"""Which models take which dataset's images: a model declares its input shape and classes
(`Model.accepts`), or, declaring nothing, is built on the dataset's image rows and checked where
TensorFlow's shape inference first sees both. A mismatch is one line naming model and dataset.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench.contract.dataset import Dataset, ImageSpec
from advbench.contract.lazy_tf import tf
from advbench.contract.model import Model, Network
from advbench.errors import ModelError


def check_accepts(model: Model, dataset: Dataset) -> None:
    """One line naming both when `model` declares images or classes `dataset` does not have."""
    wrong = model.accepts(dataset.spec)
    if wrong:
        raise ModelError(
            f"model {model.name!r} {wrong}; dataset {dataset.name!r} has {dataset.spec.text()}"
        )


def network_logits(model: Model, net: Network, x, spec: ImageSpec, dataset: str):
    """`net.logits(x)` on the dataset's image rows, after checking the network takes them and
    scores `spec.classes` classes: a model that declares nothing is checked here, where
    TensorFlow's shape inference first sees both (one line naming model and dataset)."""
    try:
        logits = net.logits(x)
    except (ValueError, TypeError) as exc:  # shape inference: "Dimensions must be equal", ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(
            f"model {model.name!r} cannot take the {spec.text()} of dataset {dataset!r} ({first})"
        ) from None
    width = logits.shape[-1] if logits.shape.rank else None
    if logits.shape.rank != 2 or (width is not None and width != spec.classes):
        raise ModelError(
            f"model {model.name!r} scores {width if width is not None else '?'} classes "
            f"(logits {logits.shape}); dataset {dataset!r} has {spec.classes}"
        )
    return logits


def probe(model: Model, config: Mapping[str, Any], dataset: Dataset) -> None:
    """Build `model` on the dataset's image rows in a scratch graph: a model that declares no
    `input_shape` or `classes` fails here, in one line, rather than inside its training."""
    t = tf()
    spec = dataset.spec
    with t.Graph().as_default():
        x = t.compat.v1.placeholder(t.float32, [None, spec.pixels])
        network_logits(model, model.build(config), x, spec, dataset.name)


def takes(model: Model, dataset: Dataset) -> bool:
    """Does `model` take the dataset's images: declared so, or, declaring nothing, does it
    build on them (`probe`)? Picks the models a command runs when none are named."""
    if model.accepts(dataset.spec) is not None:
        return False
    if model.input_shape is not None and model.classes is not None:
        return True
    try:
        probe(model, model.config(), dataset)
    except ModelError:
        return False
    return True
