"""Datasets as plugins, end to end, on real files: a synthetic colour dataset (16×16×3, five
classes) written as an `.npz` archive and as a folder of PNGs, a small CNN for it dropped in as
a plugin file, and every built-in attack run on it through `advbench run`; each loader's bad
data ending in one line (exit 2); Fashion-MNIST's published facts.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from advbench.engine import data
from advbench.host import plugins

H, W, C, CLASSES = 16, 16, 3, 5
COLOURS = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0], [0, 1, 1]], np.float32)

TINY_CNN = '''
"""A small CNN for 16×16×3 images in five classes (the synthetic test dataset)."""

from advbench import EngineHints, Model, Network, Param, hookimpl, tf


class TinyNet(Network):
    def __init__(self):
        t = tf()
        self.w1 = t.Variable(t.random.truncated_normal([3, 3, 3, 8], stddev=0.2), name="w1")
        self.b1 = t.Variable(t.zeros([8]), name="b1")
        self.w2 = t.Variable(t.random.truncated_normal([8 * 8 * 8, 5], stddev=0.05), name="w2")
        self.b2 = t.Variable(t.zeros([5]), name="b2")
        self.variables = [self.w1, self.b1, self.w2, self.b2]

    def logits(self, x):
        return self.memo("logits", x, self._logits)

    def _logits(self, x):
        t = tf()
        a = t.nn.relu(t.nn.conv2d(t.reshape(x, [-1, 16, 16, 3]), self.w1, 1, "SAME") + self.b1)
        a = t.nn.max_pool2d(a, 2, 2, "SAME")
        return t.matmul(t.reshape(a, [-1, 8 * 8 * 8]), self.w2) + self.b2

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))


class TinyCNN(Model):
    name = "tiny-cnn"
    description = "conv 3x3x8, pool, fc 5: for 16x16x3 images in 5 classes"
    input_shape = (16, 16, 3)
    classes = 5
    params = (
        Param("steps", 300, "training steps", int, minimum=1),
        Param("batch_size", 32, "training batch", int, minimum=1),
        Param("learning_rate", 0.01, "Adam step", float, minimum=0.0, min_exclusive=True),
    )
    hints = EngineHints(attack_batch_size=1000)

    def build(self, config):
        return TinyNet()

    def train_step(self, net, x, y_onehot, config):
        t = tf()
        loss = t.reduce_mean(net.loss(x, y_onehot))
        return t.compat.v1.train.AdamOptimizer(config["learning_rate"]).minimize(
            loss, var_list=net.variables
        )


@hookimpl
def register_models(register):
    register(TinyCNN())
'''


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """uint8 [n, 16, 16, 3] images and their labels: class k is a square of colour k at a
    corner of its own (jittered by a pixel) on dim noise."""
    rng = np.random.RandomState(seed)
    labels = np.arange(n) % CLASSES
    rng.shuffle(labels)
    images = rng.uniform(0.0, 0.3, (n, H, W, C)).astype(np.float32)
    corners = [(1, 1), (1, 9), (9, 1), (9, 9), (5, 5)]
    for i, k in enumerate(labels):
        r, c = (v + rng.randint(-1, 2) for v in corners[k])
        images[i, r : r + 6, c : c + 6] = 0.3 + 0.7 * COLOURS[k]
    return np.round(images * 255).astype(np.uint8), labels.astype(np.int64)


@pytest.fixture(scope="module")
def colours(tmp_path_factory):
    """(npz file, PNG folder, plugin folder) of the same synthetic dataset."""
    from PIL import Image

    root = tmp_path_factory.mktemp("colours")
    x_train, y_train = synthetic(400, 0)
    x_test, y_test = synthetic(100, 1)
    names = np.array(["red", "green", "blue", "yellow", "cyan"])
    npz = root / "colours.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test, class_names=names)
    folder = root / "pngs"
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        for i, (image, label) in enumerate(zip(x, y, strict=True)):
            # folder names sort in the class order: 0-red, 1-green, ...
            target = folder / split / f"{label}-{names[label]}"
            target.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(target / f"{i:04d}.png")
    plugin_dir = root / "plugins"
    plugin_dir.mkdir()
    (plugin_dir / "tiny_cnn.py").write_text(TINY_CNN)
    return npz, folder, plugin_dir


def advbench(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "advbench", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=timeout,
    )


def test_npz_and_folder_load_the_same_images(colours):
    npz, folder, _ = colours
    table = plugins.load().datasets
    a, b = table.get(f"npz:{npz}"), table.get(f"folder:{folder}")
    assert a.shape == b.shape == (H, W, C) and a.classes == b.classes == CLASSES
    assert a.class_names == ("red", "green", "blue", "yellow", "cyan")
    assert b.class_names == ("0-red", "1-green", "2-blue", "3-yellow", "4-cyan")
    assert a.name == "npz:colours" and b.name == "folder:pngs" and a.checksum != b.checksum
    assert len(a.train) + len(a.validation) == 400 and len(a.validation) == 400 // 12
    for x in (a.test.images, b.test.images, a.train.images):
        assert x.dtype == np.float32 and x.shape[1] == H * W * C and 0 <= x.min() <= x.max() <= 1
    # the PNGs hold the same pixels (flattened NHWC), in a fixed shuffled order
    rows = lambda split: sorted(map(tuple, np.c_[split.images, split.labels]))  # noqa: E731
    assert rows(a.test) == rows(b.test)
    assert not np.array_equal(b.test.labels, np.sort(b.test.labels))  # --limit sees every class
    np.testing.assert_array_equal(data.read_test_set(a).images, a.test.images)


def _records(db: Path) -> dict[str, tuple[dict, list[tuple]]]:
    con = sqlite3.connect(db)
    cells = {}
    for cell_id, key, status, summary, dataset in con.execute(
        "SELECT id, key, status, summary, dataset FROM cells"
    ):
        assert status == "done" and dataset == "npz:colours", (key, status)
        rows = con.execute(
            "SELECT idx, label, target, clean_pred, adv_pred, attacked, iterations, linf FROM "
            "records WHERE cell_id = ?",
            (cell_id,),
        ).fetchall()
        cells[key] = (json.loads(summary), rows)
    return cells


def _every_attack(colours, tmp_path, limit: int, sets: list[str], broken: tuple) -> dict:
    npz, _, plugin_dir = colours
    attacks = plugins.load().builtin_names("attacks")
    db, out = tmp_path / "r.sqlite", tmp_path / "out"
    args = ["run", "--dataset", f"npz:{npz}", "--plugins", str(plugin_dir), "--models"]
    args += ["tiny-cnn", "--attacks", ",".join(attacks), "--limit", str(limit)]
    args += [x for s in sets for x in ((s,) if s.startswith("--") else ("--set", s))]
    proc = advbench(*args, "--db", str(db), "--out", str(out), "--no-figures")
    assert proc.returncode == 0, proc.stderr[-3000:]
    cells = _records(db)
    assert {key.split("(")[0].split("/")[0] for key in cells} == set(attacks)
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["dataset"] == "npz:colours"
    (model,) = results["models"]
    assert model["clean_accuracy"] >= 0.8, model  # the CNN learned the colours
    assert "tiny-cnn-npz-colours-s0-" in model["checkpoint"]
    record = json.loads((Path(model["checkpoint"]) / "record.json").read_text())
    assert record["dataset"] == "npz:colours" and record["image_shape"] == [H, W, C]
    assert record["classes"] == CLASSES
    for key, (summary, rows) in cells.items():
        index = np.array([r[0] for r in rows])
        labels, targets = np.array([r[1] for r in rows]), np.array([r[2] for r in rows])
        assert index.max() < limit and set(labels) <= set(range(CLASSES)), key
        assert set(targets) <= set(range(-1, CLASSES)), key
        assert all(r[3] in range(CLASSES) and r[4] in range(CLASSES) for r in rows), key
        assert 0.0 <= summary["flip_rate"] <= 1.0, key
        if not key.startswith(("fooling", "targeted")):
            assert summary["adversarial_accuracy"] <= summary["clean_accuracy"], key
        budget = summary.get("budget")
        if budget and budget["norm"] == "linf":
            assert max(r[7] for r in rows) <= budget["eps"] + 1e-6, key
        if key.startswith("targeted"):  # every other class of each correct image
            correct = sum(1 for r in rows if r[5])
            assert correct == len({r[0] for r in rows if r[5]}) * (CLASSES - 1), key
    single = {key.split("(")[0]: summary for key, (summary, _) in cells.items() if "/" not in key}
    for name in broken:  # eps 0.3 on these colours: most images break
        assert single[name]["flip_rate"] > 0.5, (name, single[name])
    return cells


FAST = [
    "noise.iterations=20",
    "ifgsm.iterations=30",
    "pgd.iterations=10",
    "pgd.step=0.05",
    "mim.iterations=5",
    "deepfool.iterations=10",
    "cw-l2.binary_steps=2",
    "cw-l2.iterations=20",
    "square.iterations=100",
    "fooling.samples=3",
    "fooling.iterations=5",
    "apgd.iterations=10",
    "fab.iterations=10",
    "autoattack.version=fast",
    "autoattack.n_target_classes=2",
]


@pytest.mark.slow
def test_every_attack_runs_on_a_colour_dataset_fast(colours, tmp_path):
    """Every built-in attack, small budgets, through `advbench run` on the npz dataset (the
    checks of attack failure: in the test with defaults)."""
    cells = _every_attack(colours, tmp_path, 12, [*FAST, "--no-checks"], ("pgd", "apgd", "fgsm"))
    assert any(key.endswith("/apgd-t(target_rank=2)") for key in cells)


@pytest.mark.slow
def test_every_attack_runs_on_a_colour_dataset_with_defaults(colours, tmp_path):
    """Every built-in attack with its default parameters (AutoAttack standard: APGD-CE, APGD-T
    and FAB-T on the 4 other classes, Square), and the checks of attack failure measured."""
    cells = _every_attack(colours, tmp_path, 20, [], ("pgd", "apgd", "fgsm", "square"))
    checks = {c["name"]: c for c in cells["pgd"][0]["checks"]}
    assert checks["incomplete optimisation"]["value"] is not None
    assert {"autoattack/fab-t(target_rank=4)", "autoattack/square"} <= set(cells)


def test_the_folder_dataset_trains_and_evaluates(colours, tmp_path):
    _, folder, plugin_dir = colours
    out = tmp_path / "eval.json"
    proc = advbench(
        "eval", "--dataset", f"folder:{folder}", "--plugins", str(plugin_dir), "--json", str(out)
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    (model,) = json.loads(out.read_text())["models"]  # only the models that take 16×16×3
    assert model["name"] == "tiny-cnn" and model["clean_accuracy"] >= 0.8 and model["n"] == 100


def test_a_model_and_dataset_that_do_not_fit_are_one_line(colours, cli_error):
    npz, _, _ = colours
    cli_error(
        "run", "--dataset", f"npz:{npz}", "--models", "mlp", "--attacks", "fgsm",
        message="model 'mlp' takes 28×28×1 images in 10 classes; dataset 'npz:colours' has "
        "16×16×3 images in 5 classes",
    )  # fmt: skip


@pytest.mark.slow  # about 21 s: trains a Keras model, then two advbench runs
def test_a_keras_model_of_the_colour_dataset_is_benchmarked_on_it(colours, tmp_path, cli_error):
    """A Keras model trained on the npz dataset's images, saved as `.keras` and named on the
    command line: the run feeds it the dataset's 16×16×3 images (its clean predictions are
    Keras's own); an MNIST-shaped Keras model on that dataset is one line naming both shapes."""
    import csv

    import keras

    npz, _, _ = colours
    with np.load(npz) as arrays:
        x_train, y_train = arrays["x_train"] / np.float32(255), arrays["y_train"]
        x_test = arrays["x_test"] / np.float32(255)
    keras.utils.set_random_seed(0)
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input((H, W, C)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dense(CLASSES),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x_train, y_train, epochs=3, batch_size=50, verbose=0)
    model.save(tmp_path / "colour.keras")
    n, name, out = 20, f"keras:{tmp_path / 'colour.keras'}", tmp_path / "out"
    db = ["--db", str(tmp_path / "db.sqlite")]
    run = ["run", "--dataset", f"npz:{npz}", "--attacks", "fgsm,pgd", "--limit", str(n), *db]
    proc = advbench(*run, "--models", name, "--out", str(out), "--no-figures")
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert results["run"]["dataset"] == "npz:colours"
    assert all(c["status"] == "done" for c in results["cells"]), results["cells"]
    (described,) = results["models"]
    assert described["imported"]["layout"] == "hwc"
    expected = model.predict(x_test[:n], verbose=0).argmax(1)
    rows = list(csv.DictReader((out / "records.csv").open()))
    for attack in ("fgsm", "pgd"):
        clean = [int(r["clean_pred"]) for r in rows if r["attack"] == attack]
        assert np.array_equal(clean, expected), attack
    mnist = keras.Sequential([keras.Input((28, 28, 1)), layers.Flatten(), layers.Dense(10)])
    mnist.save(tmp_path / "mnist.keras")
    cli_error(
        *run,
        "--models",
        f"keras:{tmp_path / 'mnist.keras'}",
        message="takes inputs of shape (28, 28, 1) and outputs shape (10) per image; "
        "dataset 'npz:colours' has 16×16×3 images in 5 classes",
    )


def test_a_target_class_the_dataset_lacks_is_one_line(colours, cli_error):
    npz, _, plugin_dir = colours
    cli_error(
        "run", "--dataset", f"npz:{npz}", "--plugins", str(plugin_dir), "--models", "tiny-cnn",
        "--attacks", "pgd", "--set", "pgd.target=7",
        message="invalid value '7' for pgd.target: the dataset has classes 0..4",
    )  # fmt: skip
    cli_error(
        "run", "--dataset", f"npz:{npz}", "--plugins", str(plugin_dir), "--models", "tiny-cnn",
        "--attacks", "autoattack", "--set", "autoattack.n_target_classes=9",
        message="n_target_classes: must be <= 4",
    )  # fmt: skip


def _bad_npz(path: Path, **arrays: np.ndarray) -> Path:
    x, y = synthetic(24, 2)
    base = {"x_train": x, "y_train": y, "x_test": x[:6], "y_test": y[:6]}
    base.update(arrays)
    np.savez(path, **{k: v for k, v in base.items() if v is not None})
    return path


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"x_test": None}, "missing array(s) x_test"),
        ({"y_train": np.full(24, 5), "class_names": np.array(list("abcde"))}, "label 5 outside"),
        ({"y_train": np.full(24, -1)}, "label -1 is negative"),
        ({"x_train": np.zeros((24, 768), np.uint8)}, "x_train has shape (24, 768)"),
        ({"x_train": np.full((24, 4, 4), 2.0)}, "outside [0, 1]"),
        ({"y_test": np.zeros(5, np.int64)}, "5 labels for 6 images"),
        ({"x_test": np.zeros((6, 8, 8, 3), np.uint8)}, "x_test images are (8, 8, 3)"),
        ({"y_train": np.array([{"a": 1}] * 24)}, "pickled Python objects"),
    ],
)
def test_bad_npz_files_are_one_line(tmp_path, cli_error, arrays, message):
    path = _bad_npz(tmp_path / "bad.npz", **arrays)
    cli_error("describe", f"npz:{path}", message=message)


def test_a_file_that_is_not_an_npz_is_one_line(tmp_path, cli_error):
    (tmp_path / "text.npz").write_text("not an archive\n")
    cli_error("describe", f"npz:{tmp_path / 'text.npz'}", message="not a NumPy .npz archive")
    cli_error("describe", f"npz:{tmp_path / 'none.npz'}", message="none.npz: npz file not found")


def _idx(path: Path, array: np.ndarray, gz: bool = True) -> None:
    dims = array.shape
    magic = {1: 2049, 3: 2051, 4: 2052}[len(dims)]
    raw = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in dims)
    raw += array.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(raw) if gz else raw)


def _idx_dir(root: Path) -> Path:
    root.mkdir()
    x, y = synthetic(24, 3)
    _idx(root / "train-images-idx3-ubyte.gz", x)  # 4 dimensions: colour IDX
    _idx(root / "train-labels-idx1-ubyte.gz", y)
    _idx(root / "t10k-images-idx3-ubyte", x[:6], gz=False)  # uncompressed works too
    _idx(root / "t10k-labels-idx1-ubyte", y[:6], gz=False)
    return root


def test_idx_loader_reads_any_shape_and_reports_bad_files(tmp_path, cli_error):
    folder = _idx_dir(tmp_path / "idx")
    ds = plugins.load().datasets.get(f"idx:{folder}")
    assert ds.shape == (H, W, C) and ds.classes == CLASSES and len(ds.test) == 6
    (folder / "t10k-labels-idx1-ubyte").unlink()
    cli_error("describe", f"idx:{folder}", message="no test labels file(s)")
    _idx(folder / "t10k-labels-idx1-ubyte", np.zeros(5), gz=False)
    cli_error("describe", f"idx:{folder}", message="5 labels for 6 images")
    (folder / "t10k-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x09" + bytes(8))
    cli_error("describe", f"idx:{folder}", message="bad IDX magic number 2057")
    header = (2049).to_bytes(4, "big") + (9).to_bytes(4, "big")
    (folder / "t10k-labels-idx1-ubyte").write_bytes(header)
    cli_error("describe", f"idx:{folder}", message="header announces 17 bytes, the file has 8")
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(header + bytes(3)))
    (folder / "t10k-labels-idx1-ubyte").unlink()
    cli_error("describe", f"idx:{folder}", message="11 bytes uncompressed, expected 17")


def test_folder_loader_reports_bad_folders(colours, tmp_path, cli_error):
    _, good, _ = colours
    folder = tmp_path / "pngs"
    shutil.copytree(good, folder)
    shutil.rmtree(folder / "test")
    cli_error("describe", f"folder:{folder}", message="test: missing split")
    shutil.copytree(good / "test", folder / "test")
    bad = next((folder / "train" / "2-blue").iterdir())
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(40))
    cli_error("describe", f"folder:{folder}", message=f"{bad.name}: not a readable PNG image")
    from PIL import Image

    Image.new("RGB", (16, 16)).save(bad, format="JPEG")
    cli_error("describe", f"folder:{folder}", message="a JPEG image, not a PNG")
    Image.new("RGB", (12, 16)).save(bad, format="PNG")
    cli_error("describe", f"folder:{folder}", message="a 16×12×3 image")


def test_dataset_names_and_flags_are_checked(cli_error):
    cli_error("describe", "fashon-mnist", message="did you mean 'fashion-mnist'?")
    cli_error("eval", "--dataset", "nzp:x.npz", message="did you mean 'npz:x.npz'?")
    cli_error(
        "eval", "--dataset", "fashion-mnist", "--mnist-dir", "/tmp",
        message="--mnist-dir is the mnist dataset's directory",
    )  # fmt: skip


FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
           "Sneaker", "Bag", "Ankle boot")  # fmt: skip


def test_fashion_mnist_is_what_its_readme_says():
    """The facts in Fashion-MNIST's README (the files' MD5s are checked on every load)."""
    ds = plugins.load().datasets.get("fashion-mnist")
    assert ds.spec.shape == (28, 28, 1) and ds.class_names == FASHION
    train_labels = np.concatenate([ds.validation.labels, ds.train.labels])
    assert np.bincount(train_labels).tolist() == [6000] * 10
    assert np.bincount(ds.test.labels).tolist() == [1000] * 10
    assert train_labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert ds.test.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]
    mean = np.concatenate([ds.validation.images, ds.train.images]).mean(dtype=np.float64)
    assert round(float(mean), 4) == 0.2860
    assert ds.checksum != plugins.load().datasets.get("mnist").checksum
    licence = Path(data.__file__).parent / "fashion-mnist" / "LICENSE"
    assert "Copyright © 2017 Zalando SE" in licence.read_text()


def test_a_changed_fashion_mnist_file_fails_its_checksum(tmp_path, cli_error):
    shipped = Path(data.__file__).parent / "fashion-mnist"
    for f in shipped.glob("*.gz"):
        shutil.copy(f, tmp_path / f.name)
    target = tmp_path / "t10k-labels-idx1-ubyte.gz"
    raw = bytearray(gzip.decompress(target.read_bytes()))
    raw[100] = (raw[100] + 1) % 10
    target.write_bytes(gzip.compress(bytes(raw)))
    cli_error(
        "describe", f"fashion-mnist:{tmp_path}",
        message="t10k-labels-idx1-ubyte.gz: MD5",
    )  # fmt: skip


def test_a_dataset_plugin_registers_through_the_hook(tmp_path):
    (tmp_path / "ones.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from advbench import Content, Dataset, Split, content_checksum, hookimpl

            def read():
                x = np.ones((6, 2 * 3 * 1), np.float32) / 2
                y = np.array([0, 1, 0, 1, 0, 1])
                s = Split(x, y)
                checksum = content_checksum((2, 3, 1), ("a", "b"), (s, s, s))
                return Content((2, 3, 1), ("a", "b"), s, s, s, checksum)

            @hookimpl
            def register_datasets(register):
                register(Dataset("ones", read, description="six grey images"))
                register(type("Fake", (), {"name": "fake"})())
            """
        )
    )
    loaded = plugins.load(tmp_path)
    assert loaded.info["ones"].datasets == ["ones"]
    assert "refused dataset 'fake': is a Fake, not an advbench Dataset" in loaded.info["ones"].error
    ds = loaded.datasets.get("ones")
    assert ds.summary() == "ones (2×3×1, 2 classes)"
    assert "mnist" in plugins.load().builtin_names("datasets")
