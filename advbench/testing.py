"""The conformance kit for plugin authors: a pytest plugin (entry point `pytest11`).

Installing advbench makes these fixtures available in any pytest run:

- `advbench_registry`: every loaded plugin's models and attacks;
- `advbench_model(name)`: a model restored from its checkpoint (trained and cached on a miss);
- `advbench_sample`: (images, labels, indices) of the first 200 test images;
- `advbench_checks`: the ready-made checks below, bound to the fixtures;
- `advbench_attack_bench`: one attack timed with pytest-benchmark.

Attacks are checked and timed on a model the test names (`model="..."`): the kit depends on
no particular plugin, so blocking any built-in (`ADVBENCH_PLUGINS_BLOCK`) leaves it working.

The checks (`check_model`, `check_attack`) are what every built-in model and attack passes in
advbench's own test suite. Importing this module does not import TensorFlow.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest


def check_model(loaded: Any, images: np.ndarray, labels: np.ndarray) -> None:
    """Shapes, probabilities, argmax agreement, and the input gradient vs autodiff and vs
    finite differences (not for a model random at inference: two runs differ by its noise).

    `loaded` is a restored model (`advbench.engine.zoo.Loaded`); `images` (at least 100 rows
    of the dataset's image rows) and `labels` (their classes) come from the test set.
    """
    from advbench.contract.lazy_tf import tf

    t = tf()
    net = loaded.network
    classes, pixels = loaded.spec.classes, loaded.spec.pixels
    with loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, pixels])
        y = t.compat.v1.placeholder(t.float32, [None, classes])
        logits, probs = net.logits(x), net.probabilities(x)
        loss, grad = net.loss_gradient(x, y)
        # None when the loss is not differentiable by TensorFlow (a hand-written gradient
        # only): then the finite differences below are the only check
        (auto,) = t.gradients(t.reduce_sum(net.loss(x, y)), [x])
    lg, pr = loaded.session.run([logits, probs], {x: images[:20]})
    # a model random at inference draws anew in every run: finite differences of two draws
    # measure its noise, not its gradient (loss_gradient vs tf.gradients share one draw)
    random = not np.array_equal(lg, loaded.session.run(logits, {x: images[:20]}))
    assert lg.shape == pr.shape == (20, classes), "logits and probabilities: [batch, classes]"
    assert np.all(np.isfinite(lg)) and np.all(pr >= 0) and np.all(pr <= 1), "bad probabilities"
    assert np.array_equal(lg.argmax(1), pr.argmax(1)), "argmax of logits and probabilities differ"
    if auto is not None:
        # a hand-written gradient (the tutorial's backprop) is the gradient of the loss
        onehot = np.eye(classes, dtype=np.float32)[labels[:100]]
        mine, theirs = loaded.session.run([grad, auto], {x: images[:100], y: onehot})
        assert np.linalg.norm(theirs) > 0, "the loss's input gradient is zero"
        rel = np.linalg.norm(mine - theirs) / np.linalg.norm(theirs)
        assert rel < 1e-4, f"loss_gradient differs from tf.gradients of loss (relative {rel:.2g})"
    # the steepest image of a wrong label: float32 differences can resolve its gradient, where
    # a saturated sigmoid's 1e-8 gradients would drown in rounding
    wrong = np.eye(classes, dtype=np.float32)[(labels[:100] + 3) % classes]
    grads, losses = loaded.session.run([grad, loss], {x: images[:100], y: wrong})
    assert grads.shape == (len(wrong), pixels) and losses.shape == (len(wrong),)
    k = int(np.argmax(np.abs(grads).max(axis=1)))
    g = grads[k]
    assert np.abs(g).max() > 0, "the input gradient is zero everywhere"
    if random:
        return
    h = 1e-3
    for p in np.argsort(-np.abs(g))[:4]:
        up, down = images[k : k + 1].copy(), images[k : k + 1].copy()
        up[0, p] += h
        down[0, p] -= h
        lu, ld = loaded.session.run(
            loss, {x: np.concatenate([up, down]), y: np.repeat(wrong[k : k + 1], 2, 0)}
        )
        fd = float(lu - ld) / (2 * h)
        tol = max(0.05 * abs(float(g[p])), 1e-3 * float(np.abs(g).max()))
        assert abs(fd - float(g[p])) <= tol, f"gradient {g[p]:.4g} vs finite difference {fd:.4g}"


def norm_budgets(attack: Any, params: Mapping[str, Any]) -> tuple[float | None, float | None]:
    """(L∞, L2) distances the attack promises never to exceed with `params`; None: unbounded.

    The one place the kit reads an attack's threat model.
    """
    threat = attack.threat_model(params)
    return threat.bound("linf"), threat.bound("l2")


def check_attack(
    loaded: Any,
    attack: Any,
    overrides: Mapping[str, str] | None,
    images: np.ndarray,
    labels: np.ndarray,
    seed: int = 0,
    resolve: Callable[[str], Any] | None = None,
) -> Any:
    """The attack contract, on `loaded` (a restored model) and test-set `images`/`labels`:

    - finite pixels inside [clip_min, clip_max], distances inside the attack's budget;
    - rows never attacked count no success and keep their original image; untargeted attacks
      (unless `attacks_misclassified`) never attack an image the model already gets wrong;
    - every success is real: re-fed to the model, the adversarial image gets the recorded
      prediction, which is the target (targeted) or not the true label (untargeted);
    - the same seed gives the same images and iteration counts.

    An ensemble (`Attack.components`) runs whole, its components found by `resolve` (default:
    the loaded plugins' attacks). Returns the records of the run for further, attack-specific
    assertions.
    """
    from advbench.engine import runner

    params = attack.for_dataset(attack.config(overrides), loaded.spec)
    spec = runner.AttackSpec(attack, params, seed)
    sample = runner.Sample.of(loaded, images, labels)
    if attack.components(params) is not None:
        from advbench.engine import ensemble
        from advbench.host import plugins

        find = resolve or plugins.load().attacks.get

        def run() -> Any:
            return ensemble.run_in_memory(loaded, attack, params, sample, find, seed)
    else:
        graph = runner.build_attack_graph(loaded, spec)

        def run() -> Any:
            return runner.run_attack(loaded, spec, sample, graph=graph)[0]

    rec = run()
    adv = rec.adversarial
    low, high = loaded.spec.value_range
    lo, hi = params.get("clip_min", low), params.get("clip_max", high)
    assert np.all(np.isfinite(adv)), "NaN or infinite pixels"
    assert adv.min() >= lo - 1e-7 and adv.max() <= hi + 1e-7, "pixels outside the valid range"
    linf, l2 = norm_budgets(attack, params)
    if linf is not None:
        assert rec.linf.max() <= linf + 1e-6, f"L∞ {rec.linf.max():.4g} over the budget {linf}"
    if l2 is not None:
        assert rec.l2.max() <= l2 + 1e-4, f"L2 {rec.l2.max():.4g} over the budget {l2}"
    untouched = ~rec.attacked
    assert not rec.flipped[untouched].any(), "success counted on a row never attacked"
    assert np.array_equal(adv[untouched], images[rec.index[untouched]]), (
        "a row never attacked does not keep its original image"
    )
    if not attack.attacks_misclassified:
        wrong = rec.clean_pred != rec.label
        assert not rec.attacked[wrong].any(), "attacked an image the model already gets wrong"
    if rec.flipped.any():
        again = runner.predict(loaded, adv[rec.flipped])
        assert np.array_equal(again, rec.adv_pred[rec.flipped]), "recorded prediction is stale"
        if attack.is_targeted(params):
            assert np.all(again == rec.target[rec.flipped]), "a success missed its target"
        else:
            assert np.all(again != rec.label[rec.flipped]), "a success kept the true label"
    rec2 = run()
    assert np.array_equal(rec.adversarial, rec2.adversarial), "same seed, different images"
    assert np.array_equal(rec.iterations, rec2.iterations), "same seed, different iterations"
    return rec


@dataclass
class Checks:
    """The checks bound to the kit's fixtures.

    An attack is checked on a model the caller names (`model=`): the kit assumes no
    particular model is installed, not even a built-in one.
    """

    model: Callable[[str], Any]
    registry: Any
    sample: tuple[np.ndarray, np.ndarray, np.ndarray]

    def check_model(self, name: str) -> None:
        images, labels, _ = self.sample
        check_model(self.model(name), images, labels)

    def check_attack(
        self, name: str, overrides: Mapping[str, str] | None = None, *, model: str
    ) -> Any:
        images, labels, _ = self.sample
        return check_attack(
            self.model(model), self.registry.attacks.get(name), overrides, images, labels
        )


@pytest.fixture(scope="session")
def advbench_registry():
    """Every loaded plugin's models and attacks (built-ins, entry points, $ADVBENCH_PLUGINS_DIR)."""
    from advbench.host import plugins

    return plugins.load()


@pytest.fixture(scope="session")
def advbench_model(advbench_registry):
    """`advbench_model(name)`: that model restored from its checkpoint (trained on a miss)."""
    from advbench.engine import zoo

    opened: dict[str, Any] = {}

    def get(name: str) -> Any:
        if name not in opened:
            model = advbench_registry.models.get(name)
            opened[name] = zoo.load(model, model.config(), model.default_seed)
        return opened[name]

    yield get
    for loaded in opened.values():
        loaded.close()


@pytest.fixture(scope="session")
def advbench_sample():
    """(images, labels, indices) of the first 200 MNIST test images."""
    from advbench.engine import data

    test = data.read_test_set()
    n = 200
    return test.images[:n], test.labels_int[:n], np.arange(n, dtype=np.int64)


@pytest.fixture(scope="session")
def advbench_checks(advbench_model, advbench_registry, advbench_sample) -> Checks:
    """`advbench_checks.check_model(name)`, `advbench_checks.check_attack(name, overrides,
    model=...)`."""
    return Checks(advbench_model, advbench_registry, advbench_sample)


@pytest.fixture
def advbench_attack_bench(advbench_model, advbench_registry, advbench_sample):
    """`advbench_attack_bench(benchmark, attack, overrides, model=...)`: time one attack run.

    For pytest-benchmark: runs the attack on the 200-image sample once per round and records
    images per second in `benchmark.extra_info`.
    """
    from advbench.engine import runner

    def run(
        benchmark: Any, attack: str, overrides: Mapping[str, str] | None = None, *, model: str
    ) -> Any:
        loaded = advbench_model(model)
        atk = advbench_registry.attacks.get(attack)
        spec = runner.AttackSpec(atk, atk.for_dataset(atk.config(overrides), loaded.spec), 0)
        images, labels, idx = advbench_sample
        sample = runner.Sample.of(loaded, images, labels, idx)
        graph = runner.build_attack_graph(loaded, spec)

        def once():
            return runner.run_attack(loaded, spec, sample, graph=graph)

        once()  # first run pays graph optimisation; time the steady state
        records, _ = benchmark(once)
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            benchmark.extra_info["images_per_second"] = len(images) / stats.stats.mean
        return records

    return run
