"""Models from files (`keras:`, `savedmodel:`, `graph:`): real saved models, made here with Keras
and TF1, imported into the attack graph; their clean predictions must be Keras's own."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from advbench.cli import main
from advbench.engine import data, zoo
from advbench.engine import run as benchmark
from advbench.engine.checks import model_checks
from advbench.engine.runner import predict
from advbench.testing import check_attack, check_model

N = 20  # test images of the command-line run


def _keras_cnn(keras, out_softmax: bool = False):
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((28, 28, 1)),
            layers.Conv2D(8, 3, activation="relu"),
            layers.BatchNormalization(),  # frozen on its moving statistics
            layers.MaxPooling2D(),
            layers.Flatten(),
            layers.Dropout(0.3),  # off at inference
            layers.Dense(10, activation="softmax" if out_softmax else None),
        ]
    )


def _freeze_to_pb(tf, model, path: Path) -> None:
    """What a user does to ship a frozen GraphDef of a Keras model."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    spec = tf.TensorSpec([None, 28, 28, 1], tf.float32)
    func = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    graph_def = convert_variables_to_constants_v2(func).graph.as_graph_def()
    path.write_bytes(graph_def.SerializeToString())


@pytest.fixture(scope="module")
def saved(tmp_path_factory, test_set):
    """Models trained briefly with Keras 3 and saved in every format, with Keras's own
    predictions (eager `model.predict`) on the first test images."""
    import keras
    import tensorflow as tf

    folder = tmp_path_factory.mktemp("models")
    train = data.read_data_sets(None, one_hot=False, seed=0).train
    x, y = train.images[:2000], train.labels_int[:2000]
    keras.utils.set_random_seed(0)
    cnn = _keras_cnn(keras)
    cnn.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    cnn.fit(x.reshape(-1, 28, 28, 1), y, epochs=2, batch_size=50, verbose=0)
    cnn.save(folder / "cnn.keras")
    cnn.save(folder / "cnn.h5")
    cnn.export(str(folder / "cnn_saved"), verbose=False)
    _freeze_to_pb(tf, cnn, folder / "cnn.pb")
    # 0..255 inputs (a Rescaling layer), flat, probabilities out
    soft = keras.Sequential(
        [
            keras.Input((784,)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    soft.compile("adam", "sparse_categorical_crossentropy")
    soft.fit(x * 255, y, epochs=2, batch_size=50, verbose=0)
    soft.save(folder / "soft.keras")
    images = test_set.images[:200]
    return {
        "folder": folder,
        "models": {"cnn": cnn, "soft": soft},
        "cnn": cnn.predict(images.reshape(-1, 28, 28, 1), verbose=0),
        "soft": soft.predict(images * 255, verbose=0),
    }


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "advbench", *args],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=600,
    )


def _run(names: list[str], out: Path) -> tuple[list[dict], dict]:
    """`advbench run` of fgsm and pgd on the first `N` images, as a user types it."""
    proc = _cli(
        "run",
        "--models",
        ",".join(names),
        "--attacks",
        "fgsm,pgd",
        "--limit",
        str(N),
        "--db",
        str(out / "db.sqlite"),
        "--out",
        str(out),
        "--no-figures",
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = list(csv.DictReader((out / "records.csv").open()))
    return rows, json.loads((out / "results.json").read_text())


def _same_clean_predictions(names: list[str], rows: list[dict], saved) -> None:
    for name in names:
        expected = saved["soft" if "soft" in name else "cnn"][:N].argmax(1)
        for attack in ("fgsm", "pgd"):
            mine = [r for r in rows if r["model"] == name and r["attack"] == attack]
            clean = np.array([int(r["clean_pred"]) for r in mine])
            assert np.array_equal(clean, expected), f"{name} × {attack}"


@pytest.fixture(scope="module")
def cli_run(saved, tmp_path_factory):
    """One run over a .keras CNN with logits and a .keras softmax model on 0..255 pixels."""
    f = saved["folder"]
    names = [f"keras:{f / 'cnn.keras'}", f"keras:{f / 'soft.keras'}"]
    out = tmp_path_factory.mktemp("run")
    return (names, *_run(names, out), out)


def test_the_command_line_predicts_as_keras_does(cli_run, saved):
    names, rows, _, _ = cli_run
    _same_clean_predictions(names, rows, saved)


@pytest.mark.slow
def test_every_format_through_the_command_line(saved, tmp_path):
    f = saved["folder"]
    names = [f"keras:{f / 'cnn.h5'}", f"savedmodel:{f / 'cnn_saved'}", f"graph:{f / 'cnn.pb'}"]
    rows, results = _run(names, tmp_path)
    _same_clean_predictions(names, rows, saved)
    assert all(c["status"] == "done" for c in results["cells"])


@pytest.mark.parametrize("file", ["cnn.keras", "cnn.h5", "cnn_saved", "cnn.pb"])
def test_every_format_predicts_as_keras_does(file, registry, saved, test_set):
    fmt = {"cnn_saved": "savedmodel", "cnn.pb": "graph"}.get(file, "keras")
    loaded = _open(registry, f"{fmt}:{saved['folder'] / file}")
    try:
        assert np.array_equal(predict(loaded, test_set.images[:200]), saved["cnn"].argmax(1))
    finally:
        loaded.close()


def test_attacks_work_on_imported_models(cli_run):
    _, rows, results, _ = cli_run
    for cell in results["cells"]:
        assert cell["status"] == "done", cell
        # an L∞ 0.3 PGD breaks a small undefended MNIST model on most images
        if cell["attack"] == "pgd":
            assert cell["flip_rate"] > 0.8, cell
    records = [r for r in rows if r["attacked"] == "True"]
    assert records and all(float(r["linf"]) <= 0.3 + 1e-6 for r in records)


def test_imported_models_carry_their_file_and_conversions(cli_run, saved):
    names, _, results, out = cli_run
    models = {m["name"]: m for m in results["models"]}
    for name in names:
        imported = models[name]["imported"]
        assert len(imported["sha256"]) == 64
    cnn, soft = models[names[0]]["imported"], models[names[1]]["imported"]
    assert (cnn["layout"], cnn["range"], cnn["scores"]) == ("hwc", "0..1", "logits")
    assert (soft["layout"], soft["range"], soft["scores"]) == ("flat", "0..255", "probabilities")
    assert "| imported " in (out / "report.md").read_text()


def test_a_softmax_model_is_flagged_and_the_others_are_not(cli_run):
    _, _, results, _ = cli_run
    for m in results["models"]:
        fired = {c["name"] for c in m["checks"] if c["fired"]}
        assert ("probabilities as logits" in fired) == ("soft" in m["name"]), m["name"]


def _open(registry, name: str, **sets: str) -> zoo.Loaded:
    model = registry.models.get(name)
    return zoo.load(model, model.config(sets), model.default_seed)


def test_the_conformance_kit_passes_on_an_imported_model(registry, saved, test_set):
    """The kit's checks on the softmax model (smooth: the CNN's max-pooling ties on blank
    background make finite differences disagree with any gradient, Keras's own included)."""
    loaded = _open(registry, f"keras:{saved['folder'] / 'soft.keras'}")
    try:
        images, labels = test_set.images[:200], test_set.labels_int[:200]
        check_model(loaded, images, labels)
        check_attack(loaded, registry.attacks.get("pgd"), {"iterations": "10"}, images, labels)
        assert np.array_equal(predict(loaded, images), saved["soft"].argmax(1))
    finally:
        loaded.close()


def test_input_gradients_are_keras_own(registry, saved, test_set):
    """d cross-entropy / d pixels of the imported CNN (batch normalisation, dropout, max
    pooling) against `tf.GradientTape` on the Keras model itself."""
    import tensorflow as tf

    images, labels = test_set.images[:100], test_set.labels_int[:100]
    x = tf.constant(images.reshape(-1, 28, 28, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        logits = saved["models"]["cnn"](x, training=False)
        loss = tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits)
    expected = tape.gradient(loss, x).numpy().reshape(100, 784)
    loaded = _open(registry, f"keras:{saved['folder'] / 'cnn.keras'}")
    try:
        with loaded.graph.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, [None, 784])
            yp = tf.compat.v1.placeholder(tf.float32, [None, 10])
            _, grad = loaded.network.loss_gradient(xp, yp)
        mine = loaded.session.run(grad, {xp: images, yp: np.eye(10, dtype=np.float32)[labels]})
    finally:
        loaded.close()
    np.testing.assert_allclose(mine, expected, rtol=1e-4, atol=1e-6)


def test_probabilities_without_a_softmax_op_are_found_on_real_images(tmp_path, registry):
    """A frozen TF1 graph normalising exp(z) by hand: no softmax op to see, so the outputs on
    real images decide; attacks then see log p."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, 784], name="pixels")
        w = tf.constant(rng.normal(0, 0.1, (784, 10)).astype(np.float32))
        e = tf.exp(tf.matmul(x, w))
        tf.identity(e / tf.reduce_sum(e, axis=1, keepdims=True), name="scores")
    (tmp_path / "p.pb").write_bytes(graph.as_graph_def().SerializeToString())
    loaded = _open(registry, f"graph:{tmp_path / 'p.pb'}")
    try:
        assert loaded.record["scores"] == "probabilities"
        images = data.read_test_set().images[:100]
        checks = {c.name: c for c in model_checks(loaded, images, np.zeros(100, np.int64))}
        assert checks["probabilities as logits"].fired
        with loaded.graph.as_default():
            xp = tf.compat.v1.placeholder(tf.float32, [None, 784])
            logits, raw = loaded.network.logits(xp), loaded.network.outputs(xp)
        z, p = loaded.session.run([logits, raw], {xp: images[:5]})
        np.testing.assert_allclose(z, np.log(p), rtol=1e-5)
    finally:
        loaded.close()


def test_a_tf1_checkpoint_imports_as_the_native_model(registry, shipped, test_set):
    """The shipped `cnn` checkpoint's meta graph, imported by tensor names: the same
    predictions as the native model, attacked through the softmax's input (its logits)."""
    cnn = shipped("cnn")
    loaded = _open(registry, f"graph:{cnn.folder}", input="input", logits="output")
    try:
        assert loaded.record["scores"] == "probabilities"
        images = test_set.images[:200]
        assert np.array_equal(predict(loaded, images), predict(cnn, images))
    finally:
        loaded.close()


def test_the_file_content_is_part_of_the_run_identity(registry, saved, tmp_path):
    path = tmp_path / "m.keras"
    path.write_bytes((saved["folder"] / "cnn.keras").read_bytes())

    def key() -> dict:
        models = [registry.models.get(f"keras:{path}")]
        fgsm, mnist = registry.attacks.get("fgsm"), data.default_dataset()
        plan = benchmark.plan(models, [fgsm], {}, 0, None, 5, None, mnist)
        return benchmark.describe(plan)

    before = key()
    assert key() == before  # the same file resumes
    path.write_bytes((saved["folder"] / "soft.keras").read_bytes())
    registry.models.made.pop(f"keras:{path}")  # a new process opens the file afresh
    assert key() != before


def _one_line_error(args: list[str], capsys) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    return err


def test_bad_model_files_are_one_line(saved, tmp_path, capsys):
    import keras

    f = saved["folder"]
    (tmp_path / "text.keras").write_text("not a model\n")
    (tmp_path / "junk.pb").write_bytes(b"\x00\x01junk")
    colour = keras.Sequential([keras.Input((32, 32, 3)), keras.layers.Flatten()])
    colour.add(keras.layers.Dense(10))
    colour.save(tmp_path / "colour.keras")
    run = ["run", "--attacks", "fgsm", "--limit", "5", "--db", str(tmp_path / "db")]
    cases = [
        (f"keras:{tmp_path / 'text.keras'}", [], "is not a Keras model file"),
        (f"keras:{tmp_path / 'missing.keras'}", [], "missing.keras does not exist"),
        (f"graph:{tmp_path / 'junk.pb'}", [], "is not a GraphDef"),
        (f"savedmodel:{f / 'cnn.keras'}", [], "is not a directory"),
        (f"savedmodel:{tmp_path}", [], "is not a TF SavedModel"),
        (
            f"keras:{tmp_path / 'colour.keras'}",
            [],
            "takes inputs of shape (32, 32, 3); dataset 'mnist' has 28×28×1 images",
        ),
        (
            f"graph:{f / 'cnn.pb'}",
            ["--set", "graph.logits=logits:0"],
            "no tensor 'logits:0' in the graph (graph.logits); candidates: Identity:0",
        ),
        (
            f"keras:{f / 'cnn.keras'}",
            ["--set", "keras.layout=flat"],
            "takes inputs of shape (28, 28, 1); layout=flat gives (784)",
        ),
    ]
    for name, extra, message in cases:
        assert message in _one_line_error([*run, "--models", name, *extra], capsys), name


def test_a_model_file_is_never_trained(saved, capsys):
    err = _one_line_error(["train", f"keras:{saved['folder'] / 'cnn.h5'}"], capsys)
    assert "advbench does not train it" in err


def test_eval_and_describe_on_a_model_file(saved, tmp_path, capsys):
    name = f"keras:{saved['folder'] / 'soft.keras'}"
    out = tmp_path / "eval.json"
    assert main(["eval", name, "--limit", "200", "--json", str(out)]) == 0
    (got,) = json.loads(out.read_text())["models"]
    keras_accuracy = float(
        np.mean(saved["soft"].argmax(1) == data.read_test_set().labels_int[:200])
    )
    assert got["clean_accuracy"] == pytest.approx(keras_accuracy)
    capsys.readouterr()
    assert main(["describe", name]) == 0
    text = capsys.readouterr().out
    assert "sha256" in text and "layout flat, pixel range 0..255" in text
    assert "probabilities (a softmax: attacked through its input)" in text


@pytest.mark.parametrize(
    ("shape", "layout", "value_range"),
    [((784,), "flat", "0..1"), ((28, 28), "hw", "-1..1"), ((1, 28, 28), "chw", "0..255")],
)
def test_layouts_and_ranges_feed_the_model_what_keras_is_fed(
    shape, layout, value_range, tmp_path, registry, test_set
):
    """Each input layout detected from the model's shape, each declared pixel range applied:
    the model sees exactly what Keras is given. Built inside a TF1 graph first (the file is
    then read on a thread of its own, in eager mode)."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input(shape), keras.layers.Flatten(), keras.layers.Dense(10)])
    model.save(tmp_path / "m.keras")
    images = test_set.images[:50]
    scale, offset = {"0..1": (1, 0), "-1..1": (2, -1), "0..255": (255, 0)}[value_range]
    fed = images.reshape(-1, 28, 28, 1) * scale + offset
    fed = fed.transpose(0, 3, 1, 2) if layout == "chw" else fed
    expected = model.predict(fed.reshape(-1, *shape), verbose=0)
    imported = registry.models.get(f"keras:{tmp_path / 'm.keras'}")
    config = imported.config({"range": value_range})
    graph = tf.Graph()
    with graph.as_default():
        net = imported.build(config)
        x = tf.compat.v1.placeholder(tf.float32, [None, 784])
        logits = net.logits(x)
    assert net.layout == layout
    with tf.compat.v1.Session(graph=graph) as sess:
        np.testing.assert_allclose(sess.run(logits, {x: images}), expected, rtol=1e-4, atol=1e-4)


def test_set_names_a_model_file_by_its_full_name_or_its_format():
    from advbench.cli.options import parse_sets

    name = "keras:models/v1.2/my.keras"
    known = {name, "pgd"}
    aliases = {"keras": name}
    sets = parse_sets([f"{name}.range=0..255", "keras.layout=hwc", "pgd.eps=0.1"], known, aliases)
    assert sets == {name: {"range": "0..255", "layout": "hwc"}, "pgd": {"eps": "0.1"}}


def test_explain_writes_into_one_plain_folder(saved, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["explain", f"keras:{saved['folder'] / 'cnn.keras'}"]) == 0
    (folder,) = (tmp_path / "reports").iterdir()
    assert folder.name.startswith("explain-keras_") and any(folder.glob("*.png"))
