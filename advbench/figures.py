"""Pictures (matplotlib, headless Agg): what the attacks did to the images."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from advbench.runner import Records


def adversarial_grid(
    records: Records, images: np.ndarray, path: Path, title: str, k: int = 8
) -> bool:
    """Original, adversarial and perturbation of the first `k` flipped images, as a PNG.

    Returns False (and writes nothing) when no image flipped.
    """
    chosen = np.flatnonzero(records.flipped)[:k]
    if len(chosen) == 0:
        return False
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, axes = plt.subplots(3, len(chosen), figsize=(1.6 * len(chosen) + 0.6, 5.4), squeeze=False)
    for col, i in enumerate(chosen):
        orig, adv = images[i].reshape(28, 28), records.adversarial[i].reshape(28, 28)
        delta = adv - orig
        bound = max(float(np.abs(delta).max()), 1e-6)
        panels = (
            (orig, "gray", 0, 1, f"#{records.index[i]} true {records.label[i]}"),
            (adv, "gray", 0, 1, f"pred {records.adv_pred[i]} @{records.iterations[i]}"),
            (delta, "bwr", -bound, bound, f"L∞ {records.linf[i]:.3f}"),
        )
        for row, (img, cmap, lo, hi, label) in enumerate(panels):
            ax = axes[row][col]
            ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            ax.set_title(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    for row, name in enumerate(("original", "adversarial", "perturbation")):
        axes[row][0].set_ylabel(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return True
