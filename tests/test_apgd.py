"""`apgd` (Auto-PGD): its schedule, its losses, its bounds, its strength and ART's agreement."""

from __future__ import annotations

import numpy as np
import pytest
from advbench_plugins.apgd import checkpoints, interval_table

from advbench.contract.lazy_tf import tf
from advbench.contract.steps import StepInputs
from advbench.engine import runner, zoo
from advbench.testing import check_attack


def _records(registry, loaded, name, overrides, sample, n, batch=runner.DEFAULT_BATCH):
    attack = registry.attacks.get(name)
    params = attack.config(overrides)
    data = runner.Sample.of(loaded, *(a[:n] for a in sample))
    spec = runner.AttackSpec(attack, params, 0)
    records, _ = runner.run_attack(loaded, spec, data, batch_size=batch)
    return records


def _robust(records) -> float:
    """Share of the images that are classified correctly and never flipped."""
    return float((records.attacked & ~records.flipped).mean())


@pytest.fixture(scope="module")
def cnn_pgd(registry):
    model = registry.models.get("cnn-pgd")
    loaded = zoo.load(model, model.config(), model.default_seed)
    yield loaded
    loaded.close()


def test_checkpoints_are_the_papers():
    """p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06) of 100 steps."""
    assert checkpoints(100) == [0, 22, 41, 57, 70, 80, 87, 93, 99]
    table = interval_table(100)
    assert table[22] == 22 and table[41] == 19 and table[99] == 6
    assert np.count_nonzero(table) == 8 and table[0] == 0
    assert checkpoints(10) == [0, 2, 3, 4, 5, 6, 7, 8, 9]  # every interval at least one step
    assert checkpoints(1) == [0]


def _losses(logits, labels, targets):
    from advbench import dlr_loss, targeted_dlr_loss

    t = tf()
    with t.Graph().as_default(), t.compat.v1.Session() as sess:
        z = t.constant(np.asarray(logits, np.float32))
        y, k = t.constant(labels, t.int64), t.constant(targets, t.int64)
        return sess.run([dlr_loss(z, y), targeted_dlr_loss(z, y, k)])


def test_dlr_losses_on_hand_made_logits():
    row = [3.0, 1.0, 2.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0, -6.0]  # sorted: 3, 2, 1, 0, …
    dlr, tdlr = _losses([row, row], [0, 2], [3, 0])
    # label 0 wins by 3 − 2 over a spread 3 − 1; label 2 loses by 2 − 3
    np.testing.assert_allclose(dlr, [-0.5, 0.5], rtol=1e-6)
    # targeted: −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2) = −(3 − 0)/(3 − 0.5), −(2 − 3)/2.5
    np.testing.assert_allclose(tdlr, [-1.2, 0.4], rtol=1e-6)
    # invariant to shifting and scaling the logits, unlike cross-entropy
    moved = [7.0 * v + 11.0 for v in row]
    np.testing.assert_allclose(_losses([moved], [0], [3]), [[-0.5], [-1.2]], rtol=1e-5)


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"loss": "dlr", "eps": "0.1"},
        {"norm": "2", "eps": "1.5", "loss": "dlr", "iterations": "30"},
        {"loss": "dlr", "target": "3", "iterations": "30"},
        {"loss": "ce", "target": "all", "iterations": "10", "eps": "0.1"},
        {"restarts": "3", "iterations": "10", "eps": "0.05"},
    ],
)
def test_outputs_in_range_budget_and_reproducible(registry, mlp_loaded, sample, overrides):
    images, labels, _ = sample
    attack = registry.attacks.get("apgd")
    records = check_attack(mlp_loaded, attack, overrides, images[:100], labels[:100])
    assert records.flipped.any()


def test_restarts_only_help_and_are_scored(registry, mlp_loaded, sample):
    one = _records(registry, mlp_loaded, "apgd", {"iterations": "10", "eps": "0.05"}, sample, 200)
    three = _records(
        registry,
        mlp_loaded,
        "apgd",
        {"iterations": "10", "eps": "0.05", "restarts": "3"},
        sample,
        200,
    )
    # the first run is the same; images it leaves standing get two more chances
    np.testing.assert_array_equal(one.flipped & three.flipped, one.flipped)
    assert three.flipped.sum() > one.flipped.sum()
    assert three.iterations.max() > 10  # later restarts find some


def test_a_restart_starts_from_a_fresh_random_point(registry, mlp_loaded, sample):
    """After N steps the (N + 1)-th step is a new random start keyed by the step number."""
    attack = registry.attacks.get("apgd")
    params = attack.config({"iterations": "5", "restarts": "2", "eps": "0.05"})
    assert attack.iterations(params) == 11
    images, labels, indices = (a[:20] for a in sample)
    _, _, restarted = _every_iterate_adversarial(
        mlp_loaded, attack, params, images, labels, indices, steps=6
    )
    t = tf()
    with mlp_loaded.graph.as_default():
        x0 = t.constant(images)
        y, idx = t.constant(labels, t.int64), t.constant(indices, t.int64)
        fresh = [
            attack.initial(
                mlp_loaded.network, StepInputs(x0, x0, y, y, idx, t.constant(i), 0), params
            )
            for i in (-1, 5)
        ]
    first, second = mlp_loaded.session.run(fresh)
    np.testing.assert_array_equal(restarted, second)
    assert np.abs(second - first).max() > 0.05


@pytest.mark.parametrize("eps", ["0.05", "0.1"])
def test_at_least_as_strong_as_pgd_on_mlp(registry, mlp_loaded, sample, eps):
    apgd = _robust(_records(registry, mlp_loaded, "apgd", {"eps": eps}, sample, 200))
    pgd = _robust(_records(registry, mlp_loaded, "pgd", {"eps": eps}, sample, 200))
    assert apgd <= pgd, (apgd, pgd)


@pytest.mark.slow
def test_at_least_as_strong_as_pgd_on_cnn_pgd(registry, cnn_pgd, sample):
    apgd = _robust(_records(registry, cnn_pgd, "apgd", {}, sample, 200))
    pgd = _robust(_records(registry, cnn_pgd, "pgd", {}, sample, 200))
    assert apgd <= pgd, (apgd, pgd)


def test_batch_size_does_not_change_an_image(registry, mlp_loaded, sample):
    overrides = {"eps": "0.05", "iterations": "40", "restarts": "2"}
    a = _records(registry, mlp_loaded, "apgd", overrides, sample, 100, batch=100)
    b = _records(registry, mlp_loaded, "apgd", overrides, sample, 100, batch=7)
    np.testing.assert_array_equal(a.iterations, b.iterations)
    np.testing.assert_array_equal(a.adversarial, b.adversarial)


def _every_iterate_adversarial(
    loaded, attack, params, images, labels, indices, targets=None, steps=None
):
    """bool [iterations, n]: does iterate i (1 = after one step) succeed? No early stop."""
    t = tf()
    net = loaded.network
    with loaded.graph.as_default():
        ph = t.compat.v1.placeholder
        x0, y, tgt = ph(t.float32, [None, 784]), ph(t.int64, [None]), ph(t.int64, [None])
        idx, it = ph(t.int64, [None]), ph(t.int32, [])
        start = StepInputs(x0, x0, y, tgt, idx, t.constant(-1), 0)
        x_init = attack.initial(net, start, params)
        state_init = attack.initial_state(net, StepInputs(x_init, x0, y, tgt, idx, -1, 0), params)
        state_ph = tuple(ph(v.dtype, v.shape) for v in state_init)
        x = ph(t.float32, [None, 784])
        step = attack.step_with_state(net, StepInputs(x, x0, y, tgt, idx, it, 0, state_ph), params)
        won = attack.success(net, net.logits(x), StepInputs(x, x0, y, tgt, idx, it, 0), params)
    sess = loaded.session
    targets = labels if targets is None else targets
    feed = {x0: images, y: labels, tgt: targets, idx: indices}
    current, state = sess.run([x_init, state_init], feed)
    wrong = []
    for i in range(attack.iterations(params) if steps is None else steps):
        current, state = sess.run(
            step, {**feed, x: current, it: i, **dict(zip(state_ph, state, strict=True))}
        )
        wrong.append(sess.run(won, {**feed, x: current, it: i}))
    return np.array(wrong), state, current


def test_a_success_found_mid_path_is_never_lost(registry, mlp_loaded, sample):
    """The driver returns the first successful iterate even when the path later leaves it.

    Targeted DLR ascends z_t − z_y, which does not keep the target on top: on the mlp about
    half the paths reach class 3 and leave it again. A last-iterate attack (ART's) loses them.
    """
    attack = registry.attacks.get("apgd")
    params = attack.config({"eps": "0.1", "iterations": "30", "loss": "dlr", "target": "3"})
    images, labels, indices = (a[:200] for a in sample)
    clean = runner.predict(mlp_loaded, images)
    data = runner.Sample(images, labels, indices, clean)
    records, _ = runner.run_attack(mlp_loaded, runner.AttackSpec(attack, params, 0), data)
    ok = (clean == labels) & (labels != 3)
    np.testing.assert_array_equal(records.attacked, ok)
    won, _, _ = _every_iterate_adversarial(
        mlp_loaded, attack, params, images[ok], labels[ok], indices[ok], np.full(ok.sum(), 3)
    )
    ever, last = won.any(axis=0), won[-1]
    assert (ever & ~last).sum() > 20, "few paths leave their success: the test would prove little"
    np.testing.assert_array_equal(records.flipped[ok], ever)
    first = np.where(ever, won.argmax(axis=0) + 1, 0)
    np.testing.assert_array_equal(records.iterations[ok], first)


def test_step_sizes_halve_only_at_checkpoints(registry, mlp_loaded, sample):
    """Each image's step is 2ε halved once per checkpoint at most, and some do halve."""
    attack = registry.attacks.get("apgd")
    eps = 0.05
    params = attack.config({"eps": str(eps), "iterations": "30", "loss": "dlr"})
    images, labels, indices = (a[:100] for a in sample)
    _, state, _ = _every_iterate_adversarial(mlp_loaded, attack, params, images, labels, indices)
    halvings = np.log2(2 * eps / state[1])
    np.testing.assert_allclose(halvings, np.round(halvings), atol=1e-4)
    # 30 steps, the reference's integer schedule: intervals 6, 5, 4, 3, 2, then 1 (its floor)
    assert checkpoints(30) == [0, 6, 11, 15, 18, 20, *range(21, 30)]
    assert halvings.max() <= len(checkpoints(30)) - 1 and halvings.min() >= 0
    assert (halvings > 0).mean() > 0.5 and len(np.unique(np.round(halvings))) > 2


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("apgd.loss=foo", "invalid value 'foo' for apgd.loss"),
        ("apgd.eps=0", "apgd.eps: must be > 0.0"),
        ("apgd.restarts=0", "apgd.restarts: must be >= 1"),
        ("apgd.norm=1", "invalid value '1' for apgd.norm"),
    ],
)
def test_bad_parameters_end_in_one_line(cli_error, setting, message):
    cli_error("run", "--attacks", "apgd", "--set", setting, message=message)


@pytest.mark.slow
@pytest.mark.parametrize("loss", ["ce", "dlr"])
def test_art_finds_no_more_than_apgd(registry, cnn_pgd, test_set, loss):
    """IBM ART's AutoProjectedGradientDescent on the same graph, images and budget leaves at
    least as many images standing (within sampling noise: 2 of 200)."""
    pytest.importorskip("art")
    from advbench.lab import art_apgd

    n = 200
    images, labels = test_set.images[:n], test_set.labels_int[:n]
    attack = registry.attacks.get("apgd")
    params = attack.config({"loss": loss})
    ours = _robust(
        _records(registry, cnn_pgd, "apgd", {"loss": loss}, (images, labels, np.arange(n)), n)
    )
    adversarial, _ = art_apgd.apgd(cnn_pgd, params, images, labels)
    assert np.abs(adversarial - images).max() <= params["eps"] + 1e-5
    theirs = float((runner.predict(cnn_pgd, adversarial) == labels).mean())
    assert theirs >= ours - 2 / n, (theirs, ours)
