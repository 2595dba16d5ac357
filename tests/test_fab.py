"""`fab` (Fast Adaptive Boundary): its box projections against brute force, its bounds, its
minimal norms against DeepFool and C&W, FAB-T's runner-up targets, and its parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
from advbench_plugins.fab import project_on_hyperplane
from scipy.optimize import linprog, minimize

from advbench.contract.lazy_tf import tf
from advbench.engine import runner
from advbench.testing import check_attack

N = 100


def _project(points, w, b, norm, lo, hi):
    t = tf()
    with t.Graph().as_default(), t.compat.v1.Session() as sess:
        args = (t.constant(points), t.constant(w), t.constant(b))
        return sess.run(project_on_hyperplane(*args, norm, lo, hi))


def _problems(seed, k=60, n=6, lo=0.0, hi=1.0):
    """Random points in the box and hyperplanes at random offsets: some out of the box's reach,
    some weights exactly zero (pixels that do not move the boundary)."""
    rng = np.random.default_rng(seed)
    points = rng.uniform(lo, hi, (k, n)).astype(np.float32)
    w = rng.normal(size=(k, n)).astype(np.float32)
    w[::4, 0] = 0.0
    b = (np.sum(w * points, 1) + rng.normal(scale=2.0 * (hi - lo), size=k)).astype(np.float32)
    return points, w, b


def _box_reach(p, w, c, lo, hi):
    """The corner of the box that moves w·x furthest towards the hyperplane (offset c)."""
    towards = w * np.sign(c)
    return np.sign(towards) * np.where(towards > 0, hi - p, p - lo)


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-0.5, 2.0)])
def test_linf_projection_is_the_linear_programs_optimum(lo, hi):
    """min ‖d‖∞ s.t. w·(p + d) = b, p + d in the box: the same optimum as scipy's LP, on the
    hyperplane; the box's closest corner where the LP is infeasible."""
    points, w, b = _problems(1, lo=lo, hi=hi)
    d = _project(points, w, b, "inf", lo, hi)
    n = points.shape[1]
    feasible = 0
    for p, wr, br, dr in zip(points, w, b, d, strict=True):
        c = float(br - wr @ p)
        # variables (d, δ): minimise δ with −δ ≤ d_i ≤ δ
        res = linprog(
            np.r_[np.zeros(n), 1.0],
            A_ub=np.r_[np.c_[np.eye(n), -np.ones(n)], np.c_[-np.eye(n), -np.ones(n)]],
            b_ub=np.zeros(2 * n),
            A_eq=np.r_[wr, 0.0][None],
            b_eq=[c],
            bounds=[(lo - v, hi - v) for v in p] + [(0, None)],
        )
        assert np.all(p + dr >= lo - 1e-6) and np.all(p + dr <= hi + 1e-6)
        if res.status == 0:
            feasible += 1
            assert np.abs(dr).max() == pytest.approx(res.fun, abs=2e-5)
            assert wr @ dr == pytest.approx(c, abs=2e-4)
        else:
            np.testing.assert_allclose(dr, _box_reach(p, wr, c, lo, hi), atol=1e-6)
    assert 10 < feasible < len(points)  # both cases were exercised


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-0.5, 2.0)])
def test_l2_projection_is_the_quadratic_programs_optimum(lo, hi):
    """min ‖d‖₂ s.t. w·(p + d) = b, p + d in the box: scipy's SLSQP finds the same point (the
    L2 optimum is unique); the box's closest corner where the hyperplane is out of reach."""
    points, w, b = _problems(2, lo=lo, hi=hi)
    d = _project(points, w, b, "2", lo, hi)
    feasible = 0
    for p, wr, br, dr in zip(points, w, b, d, strict=True):
        c = float(br - wr @ p)
        bounds = [(lo - v, hi - v) for v in p]
        if c * (wr @ _box_reach(p, wr, c, lo, hi)) < c * c - 1e-6:  # the box falls short
            np.testing.assert_allclose(dr, _box_reach(p, wr, c, lo, hi), atol=1e-6)
            continue
        feasible += 1
        res = minimize(
            lambda v: v @ v,
            np.zeros_like(p, np.float64),
            jac=lambda v: 2 * v,
            constraints=[{"type": "eq", "fun": lambda v, wr=wr, c=c: wr @ v - c}],
            bounds=bounds,
            method="SLSQP",
            options={"ftol": 1e-12, "maxiter": 500},
        )
        assert res.success
        np.testing.assert_allclose(dr, res.x, atol=2e-4)
    assert 10 < feasible < len(points)


def test_l2_projection_without_a_binding_box_is_the_closed_form():
    """Far from the box's walls the projection is c · w / ‖w‖² (784 pixels, as in MNIST)."""
    rng = np.random.default_rng(3)
    points = rng.uniform(0.4, 0.6, (20, 784)).astype(np.float32)
    w = rng.normal(size=(20, 784)).astype(np.float32)
    c = rng.normal(scale=0.5, size=20).astype(np.float32)
    d = _project(points, w, np.sum(w * points, 1) + c, "2", -100.0, 100.0)
    expected = c[:, None] * w / np.sum(w * w, 1, keepdims=True)
    np.testing.assert_allclose(d, expected, rtol=1e-3, atol=1e-6)
    # and the L∞ one moves every pixel that matters by the same |c| / ‖w‖₁
    d = _project(points, w, np.sum(w * points, 1) + c, "inf", -100.0, 100.0)
    step = np.abs(c) / np.abs(w).sum(1)
    np.testing.assert_allclose(d, np.sign(w * c[:, None]) * step[:, None], rtol=1e-3, atol=1e-7)


def _run(registry, loaded, overrides, images, labels):
    attack = registry.attacks.get("fab")
    return check_attack(loaded, attack, overrides, images, labels)


def _run_plain(registry, loaded, name, overrides, images, labels):
    attack = registry.attacks.get(name)
    spec = runner.AttackSpec(attack, attack.config(overrides), 0)
    rec, _ = runner.run_attack(loaded, spec, runner.Sample.of(loaded, images, labels))
    return rec


@pytest.mark.parametrize("norm, eps", [("inf", "0.05"), ("2", "0.5")])
def test_bounded_fab_leaves_what_it_cannot_break_unchanged(registry, mlp_loaded, sample, norm, eps):
    """At a small budget some images survive: they come back as the originals, and every
    success is within eps (the kit checks the bound)."""
    images, labels, _ = sample
    rec = _run(registry, mlp_loaded, {"norm": norm, "eps": eps}, images[:N], labels[:N])
    survived = rec.attacked & ~rec.flipped
    assert survived.sum() > 0 and rec.flipped.sum() > 10
    np.testing.assert_array_equal(rec.adversarial[survived], images[rec.index[survived]])


@pytest.mark.slow
def test_minimal_l2_beats_deepfool_and_is_near_cw(registry, mlp_loaded, sample):
    """Median minimal L2 on the mlp's first 100 images: below DeepFool's, and within 1.1× of
    C&W's with its defaults (measured over each one's successes: FAB 0.613 in 100 steps,
    DeepFool 0.855, C&W 0.626 in 5 × 200 Adam steps, 0.659 in its old 5 × 100; every one of
    the 90 images broken)."""
    images, labels, _ = (a[:N] for a in sample)
    fab = _run(registry, mlp_loaded, {"norm": "2", "minimal": "true"}, images, labels)
    deepfool = _run_plain(registry, mlp_loaded, "deepfool", {}, images, labels)
    cw = _run_plain(registry, mlp_loaded, "cw-l2", {}, images, labels)
    assert fab.flipped.sum() == fab.attacked.sum()
    both = fab.flipped & deepfool.flipped & cw.flipped
    assert both.sum() > 80
    ours = np.median(fab.l2[both])
    assert ours < 0.85 * np.median(deepfool.l2[both])
    assert ours < 1.1 * np.median(cw.l2[both])
    # minimal L∞ is below bounded L∞ at the default budget: the search goes on after a success
    linf = _run(registry, mlp_loaded, {"minimal": "true"}, images, labels)
    first = _run_plain(registry, mlp_loaded, "fab", {}, images, labels)
    assert np.median(linf.linf[linf.flipped]) < 0.8 * np.median(first.linf[first.flipped])


@pytest.mark.slow
def test_target_rank_aims_at_that_runner_up(registry, mlp_loaded, sample):
    """FAB-T with target_rank=3 ends far more often in the clean logits' third runner-up class
    than untargeted FAB does (measured on 90 images: 61 % against 10 %)."""
    images, labels, _ = (a[:N] for a in sample)
    t = tf()
    with mlp_loaded.graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        logits = mlp_loaded.network.logits(x)
    third = np.argsort(-mlp_loaded.session.run(logits, {x: images}), axis=1)[:, 3]
    share = {}
    for rank in ("3", "0"):
        rec = _run(registry, mlp_loaded, {"target_rank": rank}, images, labels)
        hit = rec.flipped
        assert hit.sum() > 50
        share[rank] = np.mean(rec.adv_pred[hit] == third[rec.index[hit]])
    assert share["3"] > 0.5 and share["0"] < 0.2


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("fab.eps=0", "fab.eps: must be > 0.0"),
        ("fab.norm=1", "invalid value '1' for fab.norm"),
        ("fab.target_rank=10", "fab.target_rank: must be <= 9"),
        ("fab.alpha_max=1.5", "fab.alpha_max: must be <= 1.0"),
        ("fab.target_rank=2,fab.target=4", "leave fab.target at none"),
    ],
)
def test_bad_parameters_end_in_one_line(cli_error, setting, message):
    args = [arg for item in setting.split(",") for arg in ("--set", item)]
    cli_error("run", "--attacks", "fab", *args, message=message)
