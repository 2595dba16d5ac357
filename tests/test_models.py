"""One contract table for every built-in model: shipped checkpoints, gradients, learning."""

from __future__ import annotations

import json

import numpy as np
import pytest

from advbench.contract.lazy_tf import tf
from advbench.engine import runner, zoo
from advbench.host import plugins

_LOADED = plugins.load()
MODELS = [e.name for e in _LOADED.models.entries.values() if e.plugin in plugins.BUILTIN_NAMES]
# Short training runs that must beat chance (10 %) by a wide margin.
SHORT = {
    "mlp": ({"steps": "1500"}, 0.4),
    "softmax": ({"steps": "100"}, 0.8),
    "cnn": ({"steps": "150"}, 0.6),
    "keras-mlp": ({}, 0.25),  # one epoch is the model's whole definition
    "cnn-pgd": ({"steps": "40", "pgd_steps": "2", "warmup": "20"}, 0.5),
}


def test_every_builtin_model_is_in_the_table():
    assert set(MODELS) == set(SHORT)


@pytest.fixture(scope="module")
def shipped(registry):
    """Each model restored from its shipped checkpoint."""
    out = {}
    for name in MODELS:
        model = registry.models.get(name)
        folder = zoo.find(model, model.config(), model.default_seed)
        assert folder is not None and zoo.SHIPPED in folder.parents, f"{name}: not shipped"
        out[name] = zoo.restore(model, model.config(), folder)
    yield out
    for loaded in out.values():
        loaded.close()


@pytest.mark.cpu_path
@pytest.mark.parametrize("name", MODELS)
def test_shipped_checkpoint_restores_to_its_recorded_accuracy(shipped, test_set, name):
    loaded = shipped[name]
    pred = runner.predict(loaded, test_set.images)
    assert float(np.mean(pred == test_set.labels_int)) == loaded.record["test_accuracy"]
    assert loaded.record["model"] == name


@pytest.mark.parametrize(
    ("name", "floor"),
    [("mlp", 0.85), ("softmax", 0.91), ("cnn", 0.988), ("keras-mlp", 0.3), ("cnn-pgd", 0.95)],
)
def test_shipped_accuracy_meets_the_tutorials(shipped, name, floor):
    record = shipped[name].record
    key = "test_accuracy_first_1000" if name == "mlp" else "test_accuracy"
    assert record[key] >= floor


@pytest.mark.parametrize("name", MODELS)
def test_outputs_are_probabilities_of_the_right_shape(shipped, sample, name):
    t = tf()
    loaded = shipped[name]
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        logits, probs = loaded.network.logits(x), loaded.network.probabilities(x)
    lg, pr = loaded.session.run([logits, probs], {x: sample[0][:20]})
    assert lg.shape == pr.shape == (20, 10)
    assert np.all(pr >= 0) and np.all(pr <= 1)
    np.testing.assert_array_equal(lg.argmax(1), pr.argmax(1))


@pytest.mark.parametrize("name", MODELS)
def test_input_gradient_matches_finite_differences(shipped, sample, name):
    t = tf()
    loaded = shipped[name]
    images, labels, _ = sample
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        y = t.compat.v1.placeholder(t.float32, [None, 10])
        loss, grad = loaded.network.loss_gradient(x, y)
    # the image with the steepest loss (a wrong label): float32 differences can resolve it,
    # where a saturated sigmoid's 1e-8 gradients would drown in rounding
    wrong = np.eye(10, dtype=np.float32)[(labels[:100] + 3) % 10]
    all_g = loaded.session.run(grad, {x: images[:100], y: wrong})
    k = int(np.argmax(np.abs(all_g).max(axis=1)))
    image, onehot = images[k : k + 1], wrong[k : k + 1]
    g = all_g[k]
    assert np.abs(g).max() > 0
    h = 1e-3
    for p in np.argsort(-np.abs(g))[:4]:
        up, down = image.copy(), image.copy()
        up[0, p] += h
        down[0, p] -= h
        lu, ld = loaded.session.run(
            loss, {x: np.concatenate([up, down]), y: np.repeat(onehot, 2, 0)}
        )
        fd = (lu - ld) / (2 * h)
        assert fd == pytest.approx(g[p], rel=0.05, abs=float(1e-3 * np.abs(g).max()))


@pytest.mark.parametrize("name", [m for m in MODELS if m != "mlp"])  # mlp: test_mlp.py
def test_short_training_learns_and_is_deterministic(registry, tmp_path, name):
    model = registry.models.get(name)
    overrides, floor = SHORT[name]
    config = model.config(overrides)
    a = zoo.train(model, config, seed=3, root=tmp_path / "a")
    b = zoo.train(model, config, seed=3, root=tmp_path / "b")
    wa, wb = zoo.read_weights(a), zoo.read_weights(b)
    assert wa.keys() == wb.keys() and wa
    for key in wa:
        np.testing.assert_array_equal(wa[key], wb[key], err_msg=key)
    record = json.loads((a / "record.json").read_text())
    assert record["test_accuracy"] >= floor
    assert record["seed"] == 3 and record["config"] == config


def test_cnn_checkpoint_restores_by_name_like_the_tutorial(shipped, test_set):
    """The tutorial's own restore cell: import_meta_graph, then tensors by name."""
    t = tf()
    folder = shipped["cnn"].folder
    graph = t.Graph()
    with graph.as_default(), t.compat.v1.Session(graph=graph) as sess:
        saver = t.compat.v1.train.import_meta_graph(str(folder / "model.ckpt.meta"))
        saver.restore(sess, str(folder / "model.ckpt"))
        x = graph.get_tensor_by_name("input:0")
        y_conv = graph.get_tensor_by_name("output:0")
        keep_prob = graph.get_tensor_by_name("keep_prob:0")
        for name in ("W_conv1:0", "h_conv1:0", "h_pool1:0", "h_conv2:0", "h_fc1:0"):
            graph.get_tensor_by_name(name)
        out = sess.run(y_conv, {x: test_set.images[:500], keep_prob: 1.0})
    expected = runner.predict(shipped["cnn"], test_set.images[:500])
    np.testing.assert_array_equal(out.argmax(1), expected)
