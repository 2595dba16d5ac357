"""Looking inside the models, as the second tutorial does (`advbench explain MODEL`).

- `weights.png`: a linear model's weights as ten 28×28 images (blue positive, red negative);
- `misclassified.png`: the misclassified images among the first 200 validation images;
- `conv1-filters.png`, `conv1-activations.png`: the first conv layer's 32 filters and their
  activations on a chosen validation image (the tutorial's is image 12, a 3);
- `conv1-maximising.png`: for each of the 32 features, the input that maximises its mean
  activation (50 steps of std-normalised gradient ascent from uniform noise).
Each view is drawn when the model has what it needs (a [pixels, classes] weight matrix `W`, a
`layers()` function with `h_conv1`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np


def grid(
    images: list[np.ndarray],
    titles: list[str],
    path: Path,
    title: str,
    cols: int = 8,
    cmap: str = "Greys",
    vmin: float | None = None,
    vmax: float | None = None,
) -> None:
    """Images in a titled grid of `cols` columns, saved to `path` (the tutorials' pictures)."""
    from advbench.output.figures import pyplot

    plt = pyplot()
    rows = -(-len(images) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.5 * cols, 1.7 * rows + 0.5), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, t in zip(axes.flat, images, titles, strict=False):
        ax.imshow(img, cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
        ax.set_title(t, fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def explain(
    loaded: Any, name: str, out: Path, image_index: int = 12, dataset: Any = None
) -> list[str]:
    """Write every view this model supports into `out`; return the file names."""
    from advbench.contract.lazy_tf import tf
    from advbench.engine import data, runner

    t = tf()
    out.mkdir(parents=True, exist_ok=True)
    sets = data.read_data_sets(dataset)
    net, sess = loaded.network, loaded.session
    written = []
    weights = getattr(net, "W", None)
    spec = loaded.spec
    picture = spec.shape[:2] if spec.shape[2] == 1 else spec.shape
    if weights is not None and tuple(weights.shape) == (spec.pixels, spec.classes):
        w = sess.run(weights)
        grid(
            [w[:, d].reshape(picture) for d in range(spec.classes)],
            [str(d) for d in range(spec.classes)],
            out / "weights.png",
            f"{name}: weights per digit (blue +, red −)",
            cols=5,
            cmap="bwr_r",
            vmin=-0.5,
            vmax=0.5,
        )
        written.append("weights.png")
    val = sets.validation
    pred = runner.predict(loaded, val.images[:200])
    wrong = np.flatnonzero(pred != val.labels_int[:200])
    if len(wrong):
        grid(
            [val.images[i].reshape(picture) for i in wrong],
            [f"#{i}: {val.labels_int[i]}→{pred[i]}" for i in wrong],
            out / "misclassified.png",
            f"{name}: {len(wrong)} of the first 200 validation images misclassified",
        )
        written.append("misclassified.png")
    layers = getattr(net, "layers", None)
    if layers is not None:
        with loaded.graph.as_default():
            x = t.compat.v1.placeholder(t.float32, [None, spec.pixels])
            h = layers(x).get("h_conv1")
            w_conv1 = getattr(net, "W_conv1", None)
        if h is not None and w_conv1 is not None:
            image = val.images[image_index : image_index + 1]
            filters, acts = sess.run([w_conv1, h], {x: image})
            k = filters.shape[-1]
            grid(
                [filters[:, :, 0, f] for f in range(k)],
                [f"feature {f}" for f in range(k)],
                out / "conv1-filters.png",
                f"{name}: first conv layer's {k} filters",
            )
            grid(
                [acts[0, :, :, f] for f in range(k)],
                [f"feature {f}" for f in range(k)],
                out / "conv1-activations.png",
                f"{name}: activations on validation image {image_index}",
            )
            with loaded.graph.as_default():
                feature = t.compat.v1.placeholder(t.int32, [])
                objective = t.reduce_mean(t.gather(h, feature, axis=3), axis=[1, 2])
                (grad,) = t.gradients(t.reduce_sum(objective), [x])
            rng = np.random.RandomState(0)
            maxima = []
            for f in range(k):
                img = rng.uniform(0, 1, [1, spec.pixels]).astype(np.float32)
                for _ in range(50):
                    g = sess.run(grad, {x: img, feature: f})
                    img += g / (np.std(g) + 1e-8)
                maxima.append(img.reshape(picture))
            grid(
                maxima,
                [f"feature {f}" for f in range(k)],
                out / "conv1-maximising.png",
                f"{name}: inputs maximising each first-layer feature",
            )
            written += ["conv1-filters.png", "conv1-activations.png", "conv1-maximising.png"]
    return written
