"""Pictures (matplotlib, headless Agg), all drawn from the results database.

- `MODEL-NN-ATTACK.png`: original, adversarial and perturbation of the first successful images
  with true and predicted labels, as the tutorials plot them, eight at a time;
- `iterations-cdf.png`: the distribution (CDF) of iterations-to-flip of each iterative attack;
- `accuracy-vs-iterations.png`: accuracy left after k attack steps (from iterations-to-flip);
- `robust-accuracy-vs-eps.png`: robust accuracy against the budget, for sweeps;
- `security-curves.png`: robust accuracy against ε from minimum-norm attacks' per-image norms.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from advbench.contract.threat import NORM_LABELS
from advbench.output import curves
from advbench.output.records import Cell, Records

CURVES = "security-curves.png"


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend (imported on first use: it is slow)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def picture(image: np.ndarray) -> np.ndarray:
    """An example image for `imshow`: [h, w] (greyscale) or [h, w, 3]. Examples are stored as
    [h, w, c]; databases written before datasets had shapes hold flattened square greyscale
    (MNIST) rows."""
    if image.ndim == 1:
        side = round(len(image) ** 0.5)
        return image.reshape(side, side)
    if image.shape[-1] == 1:
        return image[:, :, 0]
    return np.clip(image[:, :, :3], 0.0, 1.0)


def adversarial_grid(
    originals: np.ndarray | None,
    adversarial: np.ndarray,
    meta: list[dict[str, Any]],
    path: Path,
    title: str,
) -> None:
    """Three rows (original, adversarial, perturbation) of up to eight images; only the
    adversarial row, with a note, when the originals are unknown (databases written before
    advbench stored them with the examples)."""
    plt = pyplot()
    k = len(adversarial)
    names = (
        ("original", "adversarial", "perturbation") if originals is not None else ("adversarial",)
    )
    height = 5.4 if originals is not None else 2.2
    fig, axes = plt.subplots(len(names), k, figsize=(1.6 * k + 1.4, height), squeeze=False)
    deltas = [] if originals is None else [_signed(adversarial[c], originals[c]) for c in range(k)]
    # one colour scale for the whole row, so the perturbations compare at a glance
    bound = max([float(np.abs(d).max()) for d in deltas] + [1e-6])
    shown = None
    for col in range(k):
        adv = picture(adversarial[col])
        m = meta[col]
        target = f"→{m['target']} " if m["target"] >= 0 else ""
        adv_panel = (adv, "gray", 0, 1, f"{target}pred {m['pred']} @{m['iterations']}")
        if originals is None:
            who = f"#{m['index']} true {m['label']} "
            panels: tuple[tuple[Any, ...], ...] = ((*adv_panel[:4], who + adv_panel[4]),)
        else:
            panels = (
                (picture(originals[col]), "gray", 0, 1, f"#{m['index']} true {m['label']}"),
                adv_panel,
                # explain's convention: blue where the attack added, red where it took away
                (deltas[col], "bwr_r", -bound, bound, f"L∞ {m['linf']:.3f}"),
            )
        for row, (img, cmap, lo, hi, label) in enumerate(panels):
            ax = axes[row][col]
            handle = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
            shown = handle if row == 2 else shown
            ax.set_title(label, fontsize=8)
            ax.set_xticks([])
            ax.set_yticks([])
    for row, name in enumerate(names):
        axes[row][0].set_ylabel(name, fontsize=9)
    if originals is None:
        title += " (originals not stored in this database)"
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    if shown is not None:  # the row's one scale, beside it (the panels keep their size)
        fig.subplots_adjust(right=0.93)
        row = axes[2][-1].get_position()
        bar = fig.colorbar(shown, cax=fig.add_axes((0.945, row.y0, 0.012, row.height)))
        bar.set_label("blue +, red −", fontsize=7)
        bar.ax.tick_params(labelsize=7)
    _save(fig, path)
    plt.close(fig)


def _signed(adversarial: np.ndarray, original: np.ndarray) -> np.ndarray:
    """The perturbation as one signed value per pixel (colour: its largest channel)."""
    delta = picture(adversarial) - picture(original)
    if delta.ndim == 3:
        pick = np.abs(delta).argmax(axis=2)[:, :, None]
        delta = np.take_along_axis(delta, pick, axis=2)[:, :, 0]
    return delta


def _iterative(cell: Cell) -> bool:
    """A done, untargeted cell whose images took more than one step (curves say something)."""
    if not cell.done or cell.summary is None or cell.targeted:
        return False
    return (cell.summary.iterations_to_flip.max or 0) > 1


def step_budget(cell: Cell) -> int:
    """The x-range of the iteration curves: the attack's step budget as stored with the cell.
    Databases written before it was stored: the `iterations` parameter, widened to the
    largest iterations-to-flip seen (C&W's steps run to binary_steps × iterations)."""
    if cell.max_iterations is not None:
        return max(cell.max_iterations, 1)
    seen = cell.summary.iterations_to_flip.max if cell.summary is not None else None
    return max(int(cell.params.get("iterations", 1)), seen or 0, 1)


def file_name(text: str) -> str:
    """`text` as one plain file name: a model or attack name read from a database (which may
    have been crafted) never becomes a path (`../`), only letters, digits, '.', '_' and '-'."""
    name = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    return "_" + name if name.startswith(".") else name


def _save(fig: Any, path: Path) -> None:
    """The picture written whole or not at all: to a file of this process, then renamed (two
    processes rendering the same run into one folder never interleave their bytes)."""
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=90)
    os.replace(tmp, path)


MANIFEST = ".advbench-pictures"  # in an output folder: the pictures last rendered there


def render_all(cells: list[Cell], records: dict[int, Records], out: Path) -> list[str]:
    """Every picture of a run from its stored cells and their records (keyed by cell id);
    returns the file names written. A folder reused for another run then holds only this
    run's pictures: the ones an earlier rendering there wrote (its manifest) and this one did
    not are removed; files advbench did not write are never touched."""
    names = _render(cells, records, out)
    manifest = out / MANIFEST
    earlier = manifest.read_text().split() if manifest.is_file() else []
    for stale in set(earlier) - set(names):
        if stale == Path(stale).name and stale.endswith(".png"):  # a bare picture name only
            (out / stale).unlink(missing_ok=True)
    tmp = manifest.with_name(f"{MANIFEST}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(names) + "\n")
    os.replace(tmp, manifest)
    return names


def _render(cells: list[Cell], records: dict[int, Records], out: Path) -> list[str]:
    names: list[str] = []
    for pos, c in enumerate(cells, start=1):
        if not c.done or c.examples is None or len(c.examples) == 0:
            continue
        r = records[c.id]
        rows = np.flatnonzero(r.flipped)[: len(c.examples)]
        meta = [
            {
                "index": int(r.index[i]),
                "label": int(r.label[i]),
                "target": int(r.target[i]),
                "pred": int(r.adv_pred[i]),
                "iterations": int(r.iterations[i]),
                "linf": float(r.linf[i]),
            }
            for i in rows
        ]
        name = file_name(f"{c.model}-{pos:02d}-{c.key}.png")  # a sweep's value in the name
        adversarial_grid(c.originals, c.examples, meta, out / name, f"{c.model} × {c.key}")
        names.append(name)
    names += _cdf_and_curves(cells, records, out)
    names += _robust_vs_eps(cells, out)
    names += draw_curves(curves.curves(cells, records), cells, out)
    return names


def _cdf_and_curves(cells: list[Cell], records: dict[int, Records], out: Path) -> list[str]:
    plt = pyplot()
    by_model: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        if _iterative(c):
            by_model[c.model].append(c)
    if not by_model:
        return []
    models = sorted(by_model)
    written = []
    for kind in ("cdf", "accuracy"):
        fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False)
        for ax, model in zip(axes[0], models, strict=True):
            for c in by_model[model]:
                r = records[c.id]
                steps = np.arange(0, step_budget(c) + 1)
                flipped = r.flipped
                its = r.iterations[flipped]
                if kind == "cdf":
                    if len(its) == 0:
                        continue
                    ax.plot(steps, [(its <= k).mean() for k in steps], label=c.key)
                else:
                    correct = r.clean_pred == r.label
                    acc = [(correct & ~(flipped & (r.iterations <= k))).mean() for k in steps]
                    ax.plot(steps, acc, label=c.key)
            ax.set_xscale("symlog", linthresh=10)
            ax.set_title(model)
            ax.set_xlabel("attack iterations")
            ax.set_ylabel("share of flipped images flipped by now" if kind == "cdf" else "accuracy")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        name = "iterations-cdf.png" if kind == "cdf" else "accuracy-vs-iterations.png"
        fig.suptitle("iterations-to-flip (CDF)" if kind == "cdf" else "accuracy against iterations")
        fig.tight_layout()
        _save(fig, out / name)
        plt.close(fig)
        written.append(name)
    return written


def _robust_vs_eps(cells: list[Cell], out: Path) -> list[str]:
    groups: dict[tuple[str, str, str], list[tuple[float, float]]] = defaultdict(list)
    for c in cells:
        if c.done and c.summary is not None and c.budget is not None and not c.targeted:
            key = (c.model, c.attack, c.budget.norm)
            groups[key].append((c.budget.eps, c.summary.adversarial_accuracy))
    sweeps = {k: sorted(v) for k, v in groups.items() if len(v) > 1}
    if not sweeps:
        return []
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    for (model, attack, norm), points in sorted(sweeps.items()):
        eps, acc = zip(*points, strict=True)
        ax.plot(eps, acc, marker="o", label=f"{model} × {attack} ({NORM_LABELS[norm]})")
    ax.set_xlabel("eps")
    ax.set_ylabel("robust accuracy")
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    _save(fig, out / "robust-accuracy-vs-eps.png")
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
    _save(fig, path)
    plt.close(fig)


def draw_curves(found: list[curves.Curve], cells: list[Cell], out: Path) -> list[str]:
    """`CURVES` (`output.curves`): one panel per norm, a line per curve, the fixed-ε cells
    as points in the model's colour."""
    if not found:
        return []
    plt = pyplot()
    norms = sorted({c.norm for c in found})
    fig, axes = plt.subplots(1, len(norms), figsize=(6 * len(norms), 4.2), squeeze=False)
    colours = {m: f"C{i}" for i, m in enumerate(sorted({c.model for c in found}))}
    for ax, norm in zip(axes[0], norms, strict=True):
        mine = [c for c in found if c.norm == norm]
        finite = [c.sizes[np.isfinite(c.sizes)] for c in mine]
        top = max((float(f.max()) for f in finite if len(f)), default=1.0) * 1.05 or 1.0
        grid = np.linspace(0.0, top, 400)
        styles = {
            k: ("-", "--", ":", "-.")[i % 4]
            for i, k in enumerate(dict.fromkeys(c.cell for c in mine))
        }
        for c in mine:
            ax.plot(
                grid,
                c.robust(grid),
                color=colours[c.model],
                linestyle=styles[c.cell],
                label=f"{c.model} × {c.cell}",
            )
            for eps, acc, key in curves.points(cells, c.model, norm):
                ax.plot([eps], [acc], "o", color=colours[c.model], markersize=5)
                ax.annotate(key, (eps, acc), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(f"ε ({NORM_LABELS[norm]})")
        ax.set_ylabel("robust accuracy")
        ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle("robust accuracy against ε", fontsize=10)
    axes[0][0].set_title("lines: minimum-norm attacks; points: fixed-ε cells", fontsize=8)
    fig.tight_layout()
    _save(fig, out / CURVES)
    plt.close(fig)
    return [CURVES]
