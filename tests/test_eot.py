"""Expectation over transformation and the randomised `noisy-cnn`.

EOT's average is the mean of the per-draw gradients, row for row; on a deterministic model
eot = K gives the plain gradient. `noisy-cnn` restores the shipped cnn's weights, draws fresh
noise at every pass, yet gives the same numbers for the same seed; the randomness check fires
on it, and EOT-PGD breaks images on it that plain PGD reports robust.
"""

from __future__ import annotations

import numpy as np
import pytest

from advbench import EOT_PARAM, Network, ParamError, ascent_gradient, expected_gradient
from advbench.contract.lazy_tf import tf
from advbench.contract.steps import StepInputs
from advbench.engine import checks, runner, zoo

K = 4


@pytest.fixture(scope="module")
def noisy(registry):
    """`noisy()`: a fresh restore of the default noisy-cnn (own graph, session and draws)."""
    opened = []

    def get():
        model = registry.models.get("noisy-cnn")
        config = model.config()
        loaded = zoo.restore(model, config, zoo.find(model, config, model.default_seed))
        opened.append(loaded)
        return loaded

    yield get
    for loaded in opened:
        loaded.close()


class Rows(Network):
    """No model at all: `expected_gradient` only memoises its tiled batch on the network."""

    def __init__(self) -> None:
        self.variables = []

    def logits(self, x):
        raise NotImplementedError

    def loss(self, x, y_onehot):
        raise NotImplementedError


def test_the_average_is_the_mean_of_the_per_draw_gradients():
    """A per-draw 'gradient' that names its row shows the layout: image i's estimate is the
    mean over draws d of what row d·k + i received."""
    t = tf()
    x0 = np.arange(6, dtype=np.float32).reshape(3, 2)
    with t.Graph().as_default(), t.compat.v1.Session() as sess:
        x = t.constant(x0)
        labels = t.constant([10.0, 20.0, 30.0])

        def per_draw(images, rows):
            row = t.cast(t.range(t.shape(images)[0]), t.float32)[:, None]
            return rows(labels) + row[:, 0], images * (1.0 + row)

        objective, grad = sess.run(expected_gradient(Rows(), x, per_draw, K))
    rows = np.arange(K * 3, dtype=np.float32).reshape(K, 3)
    np.testing.assert_allclose(grad, np.mean(x0[None] * (1.0 + rows[..., None]), axis=0))
    np.testing.assert_allclose(objective, np.array([10.0, 20.0, 30.0]) + rows.mean(axis=0))


@pytest.mark.parametrize("kind", ["xent", "cw", "model"])
def test_on_a_deterministic_model_eot_gives_the_plain_gradient(mlp_loaded, sample, kind):
    """`model` is the mlp's hand-written backward pass: tiled like any other."""
    t = tf()
    images, labels, index = (a[:50] for a in sample)
    net = mlp_loaded.network
    with mlp_loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        y = t.compat.v1.placeholder(t.int64, [None])
        s = StepInputs(x, x, y, y, t.constant(index), t.constant(0), 0, (), mlp_loaded.spec)
        plain = ascent_gradient(net, s, kind, False)
        averaged = ascent_gradient(net, s, kind, False, K)
    one, many = mlp_loaded.session.run([plain, averaged], {x: images, y: labels})
    assert np.abs(one).max() > 0
    np.testing.assert_allclose(many, one, rtol=1e-5, atol=1e-6 * np.abs(one).max())


def test_eot_errors_are_one_line(registry):
    assert EOT_PARAM.default == 1
    for name in ("pgd", "apgd", "fgsm", "mim"):
        attack = registry.attacks.get(name)
        assert attack.config()["eot"] == 1
        for bad in ("0", "1.5", "100000"):
            with pytest.raises(ParamError) as err:
                attack.config({"eot": bad})
            assert f"{name}.eot" in str(err.value) and "\n" not in str(err.value)


def test_noisy_cnn_restores_the_shipped_cnn(registry, noisy):
    loaded = noisy()
    assert loaded.folder.parent == zoo.SHIPPED and loaded.record["model"] == "cnn"
    assert not registry.models.get("noisy-cnn").in_every


def test_noisy_cnn_draws_anew_each_pass_and_the_same_for_a_seed(noisy, test_set):
    """Two predictions of the same images differ; a fresh restore repeats both exactly."""
    images = test_set.images[:200]
    runs = []
    for _ in range(2):
        loaded = noisy()
        runs.append([runner.predict(loaded, images), runner.predict(loaded, images)])
    (a1, a2), (b1, b2) = runs
    assert (a1 != a2).any()
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert 0.85 < np.mean(a1 == test_set.labels_int[:200]) < 0.99


def test_the_randomness_check_fires_on_noisy_cnn(noisy, test_set):
    images, labels = test_set.images[:200], test_set.labels_int[:200]
    found = {c.name: c for c in checks.model_checks(noisy(), images, labels)}
    assert found["randomness"].fired and found["randomness"].value > 1e-2
    assert found["unstable predictions"].fired


@pytest.mark.slow
def test_eot_pgd_breaks_what_plain_pgd_calls_robust(registry, noisy, test_set):
    """50 images, sigma 0.3, L∞ 0.3: ~60 s on 2 cores, EOT-PGD's 10 draws a step the most."""
    loaded = noisy()
    n = 50
    sample = runner.Sample.of(loaded, test_set.images[:n], test_set.labels_int[:n])
    pgd = registry.attacks.get("pgd")
    robust = {}
    for eot in (1, 10):
        spec = runner.AttackSpec(pgd, pgd.config({"eot": str(eot)}), 0)
        records, _ = runner.run_attack(loaded, spec, sample)
        robust[eot] = float(np.mean(records.adv_pred == records.label))
    assert robust[1] - robust[10] > 0.3, robust
