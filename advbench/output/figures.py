"""Pictures (matplotlib, headless Agg), all drawn from the results database.

- `MODEL-NN-ATTACK.png`: original, adversarial and perturbation of the first successful images
  with true and predicted labels, as the tutorials plot them, eight at a time;
- `iterations-cdf.png`: the distribution (CDF) of iterations-to-flip of each iterative attack;
- `accuracy-vs-iterations.png`: accuracy left after k attack steps (from iterations-to-flip);
- `robust-accuracy-vs-eps.png`: robust accuracy against the budget, for sweeps.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def adversarial_grid(
    originals: np.ndarray,
    adversarial: np.ndarray,
    meta: list[dict[str, Any]],
    path: Path,
    title: str,
) -> None:
    """Three rows (original, adversarial, perturbation) of up to eight images."""
    plt = pyplot()
    k = len(adversarial)
    fig, axes = plt.subplots(3, k, figsize=(1.6 * k + 0.6, 5.4), squeeze=False)
    for col in range(k):
        orig, adv = originals[col].reshape(28, 28), adversarial[col].reshape(28, 28)
        delta = adv - orig
        bound = max(float(np.abs(delta).max()), 1e-6)
        m = meta[col]
        target = f"→{m['target']} " if m["target"] >= 0 else ""
        panels = (
            (orig, "gray", 0, 1, f"#{m['index']} true {m['label']}"),
            (adv, "gray", 0, 1, f"{target}pred {m['pred']} @{m['iterations']}"),
            (delta, "bwr", -bound, bound, f"L∞ {m['linf']:.3f}"),
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


def _iterative(cell: dict[str, Any]) -> bool:
    its = cell.get("iterations_to_flip", {})
    return cell.get("status") == "done" and (its.get("max") or 0) > 1 and "success_rate" not in cell


def render_all(store: Any, cells: list[dict[str, Any]], out: Path) -> list[str]:
    """Every picture of a run; returns the file names written."""
    from advbench.engine import data

    test = data.read_test_set()
    names: list[str] = []
    records = {c["cell_id"]: store.records(c["cell_id"]) for c in cells if c["status"] == "done"}
    for pos, c in enumerate(cells, start=1):
        if c["status"] != "done":
            continue
        examples = store.examples(c["cell_id"])
        if examples is None or len(examples) == 0:
            continue
        r = records[c["cell_id"]]
        rows = np.flatnonzero(r["flipped"])[: len(examples)]
        meta = [
            {
                "index": int(r["idx"][i]),
                "label": int(r["label"][i]),
                "target": int(r["target"][i]),
                "pred": int(r["adv_pred"][i]),
                "iterations": int(r["iterations"][i]),
                "linf": float(r["linf"][i]),
            }
            for i in rows
        ]
        originals = test.images[r["idx"][rows]]
        name = f"{c['model']}-{pos:02d}-{c['attack']}.png"
        adversarial_grid(originals, examples, meta, out / name, f"{c['model']} × {c['label']}")
        names.append(name)
    names += _cdf_and_curves(cells, records, out)
    names += _robust_vs_eps(cells, out)
    return names


def _cdf_and_curves(cells: list[dict[str, Any]], records: dict[int, Any], out: Path) -> list[str]:
    plt = pyplot()
    by_model: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for c in cells:
        if _iterative(c):
            by_model[c["model"]].append(c)
    if not by_model:
        return []
    models = sorted(by_model)
    written = []
    for kind in ("cdf", "accuracy"):
        fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            for c in by_model[model]:
                r = records[c["cell_id"]]
                budget = max(int(c["params"].get("iterations", 1)), 1)
                steps = np.arange(0, budget + 1)
                its = r["iterations"][r["flipped"].astype(bool)]
                if kind == "cdf":
                    if len(its) == 0:
                        continue
                    ax.plot(steps, [(its <= k).mean() for k in steps], label=c["label"])
                else:
                    correct = r["clean_pred"] == r["label"]
                    flipped = r["flipped"].astype(bool)
                    acc = [(correct & ~(flipped & (r["iterations"] <= k))).mean() for k in steps]
                    ax.plot(steps, acc, label=c["label"])
            ax.set_xscale("symlog", linthresh=10)
            ax.set_title(model)
            ax.set_xlabel("attack iterations")
            ax.set_ylabel("share of flipped images flipped by now" if kind == "cdf" else "accuracy")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        name = "iterations-cdf.png" if kind == "cdf" else "accuracy-vs-iterations.png"
        fig.suptitle("iterations-to-flip (CDF)" if kind == "cdf" else "accuracy against iterations")
        fig.tight_layout()
        fig.savefig(out / name, dpi=90)
        plt.close(fig)
        written.append(name)
    return written


def _robust_vs_eps(cells: list[dict[str, Any]], out: Path) -> list[str]:
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for c in cells:
        if c.get("status") == "done" and "budget" in c and "success_rate" not in c:
            key = (c["model"], c["attack"], c["budget"]["norm"])
            groups[key].append((c["budget"]["eps"], c["adversarial_accuracy"]))
    sweeps = {k: sorted(v) for k, v in groups.items() if len(v) > 1}
    if not sweeps:
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (model, attack, norm), points in sorted(sweeps.items()):
        eps, acc = zip(*points, strict=True)
        ax.plot(
            eps, acc, marker="o", label=f"{model} × {attack} ({'L∞' if norm == 'linf' else 'L2'})"
        )
    ax.set_xlabel("eps")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "robust-accuracy-vs-eps.png", dpi=90)
    plt.close(fig)
    return ["robust-accuracy-vs-eps.png"]


def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], path: Path, title: str) -> None:
    """A labelled heat map with the value in each square (transfer flip rates)."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(1.2 * len(cols) + 2.5, 1.0 * len(rows) + 1.8))
    im = ax.imshow(matrix, cmap="viridis", vmin=0, vmax=1)
    ax.set_xticks(range(len(cols)), cols, rotation=30, ha="right")
    ax.set_yticks(range(len(rows)), rows)
    for i in range(len(rows)):
        for j in range(len(cols)):
            ax.text(
                j,
                i,
                f"{matrix[i, j]:.2f}",
                ha="center",
                va="center",
                color="white" if matrix[i, j] < 0.6 else "black",
                fontsize=9,
            )
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("crafted on")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
