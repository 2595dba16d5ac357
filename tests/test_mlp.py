"""The tutorial's MLP: training determinism, checkpoints, accuracy.

Its hand-written input gradient is checked by the contract (test_contract.py: against
`tf.gradients` and finite differences)."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest

from advbench.contract.lazy_tf import tf
from advbench.engine import zoo
from advbench.engine.graph import onednn_enabled


def test_shipped_checkpoint_reaches_the_tutorial_accuracy(mlp_loaded, test_set):
    from advbench.engine import runner

    record = mlp_loaded.record
    pred = runner.predict(mlp_loaded, test_set.images)
    correct = pred == test_set.labels_int
    # restoring reproduces the tutorial's measure (first 1,000 images) taken after training;
    # the whole set's accuracy and the floor are test_contract.py's
    assert float(correct[:1000].mean()) == record["test_accuracy_first_1000"]
    assert record["config"] == {"hidden": 128, "eta": 0.5, "batch_size": 10, "steps": 20000}


@pytest.mark.cpu_path
def test_training_is_deterministic_and_restores_exactly(registry, tmp_path):
    model = registry.models.get("mlp")
    config = model.config({"steps": "1500"})
    a = zoo.train(model, config, seed=5, root=tmp_path / "a")
    b = zoo.train(model, config, seed=5, root=tmp_path / "b")
    c = zoo.train(model, config, seed=6, root=tmp_path / "c")
    wa, wb, wc = zoo.read_weights(a), zoo.read_weights(b), zoo.read_weights(c)
    for name in wa:
        np.testing.assert_array_equal(wa[name], wb[name])
    assert not np.array_equal(wa["w_1"], wc["w_1"])
    record = json.loads((a / "record.json").read_text())
    # it learns: well above chance (0.1) after 1,500 steps. How far above depends on the CPU
    # path, since this training amplifies rounding: 0.38 with oneDNN at AVX2, over 0.4 with
    # Eigen or oneDNN at AVX-512 (README, "Reproducibility").
    assert record["test_accuracy"] > 0.2
    from advbench.engine import runner

    loaded = zoo.restore(model, config, a)
    try:
        from advbench.engine import data

        test = data.read_test_set()
        acc = float((runner.predict(loaded, test.images) == test.labels_int).mean())
    finally:
        loaded.close()
    assert acc == record["test_accuracy"]
    assert not list((tmp_path / "a").glob(".*tmp*")), "temporary directory left behind"


@pytest.mark.cpu_path
def test_in_graph_trainer_gives_the_per_step_loops_weights_bit_for_bit(registry, tmp_path):
    """The fast trainer is the tutorial's loop, only faster: same batches, same weights.

    5,600 steps cross the first epoch's end (5,500 batches of 10, then `next_batch` reshuffles)
    and end on a partial chunk of the in-graph loop (1,000 steps per `sess.run`). This training
    amplifies rounding: one ulp on one weight at the start moves weights by up to 0.8 after
    20,000 steps (README), so "the same to float tolerance" can only mean bit for bit.
    """
    model = registry.models.get("mlp")
    config = model.config({"steps": "5600"})
    fast = zoo.train(model, config, seed=3, root=tmp_path / "fast", in_graph=True)
    slow = zoo.train(model, config, seed=3, root=tmp_path / "slow", in_graph=False)
    wf, ws = zoo.read_weights(fast), zoo.read_weights(slow)
    for name in wf:
        np.testing.assert_array_equal(wf[name], ws[name], err_msg=name)
    rf, rs = (json.loads((f / "record.json").read_text()) for f in (fast, slow))
    assert rf["history_first_1000"] == rs["history_first_1000"]
    assert rf["test_accuracy"] == rs["test_accuracy"] > 0.5


def _op_types_run(fuse_matmul_bias: bool, bias_add: bool) -> set[str]:
    """Kernel types a session runs for x·W + b (its optimised partition graph).

    `bias_add`: b is added by `BiasAdd` (every CPU build of TF fuses that) instead of the
    mlp's broadcasting `Add` (fused only where oneDNN's graph rewrites are on).
    """
    from advbench.engine.graph import TRAINING_THREADS, session

    t = tf()
    graph = t.Graph()
    with graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [10, 784])
        product = t.matmul(x, t.ones([784, 128]))
        out = (
            t.nn.bias_add(product, t.ones([128])) if bias_add else t.add(product, t.ones([1, 128]))
        )
    meta = t.compat.v1.RunMetadata()
    options = t.compat.v1.RunOptions(output_partition_graphs=True)
    with session(graph, TRAINING_THREADS, fuse_matmul_bias=fuse_matmul_bias) as sess:
        sess.run(out, {x: np.ones([10, 784], np.float32)}, options, meta)
    return {node.op for g in meta.partition_graphs for node in g.node}


@pytest.mark.cpu_path
def test_the_mlp_trains_the_same_weights_with_or_without_the_matmul_bias_fusion(
    registry, tmp_path, monkeypatch
):
    """The mlp trains with grappler's MatMul+bias fusion off (faster at batch 10): same bits.

    The option must really change the kernels run (else this test proves nothing): on every
    CPU a MatMul + BiasAdd becomes one fused kernel with it and stays two without it. The
    mlp's own MatMul + Add is fused only by oneDNN's rewrites (on by default on CPUs with
    AVX-512 or newer; `TF_ENABLE_ONEDNN_OPTS`), so there the option matters; without oneDNN
    both sessions run the same kernels. Either way, 2,000 steps with and without it must end
    with equal weights: this training amplifies any rounding difference (README).
    """

    def fused(ops: set[str]) -> bool:
        return any("FusedMatMul" in op for op in ops)

    assert fused(_op_types_run(True, bias_add=True))
    assert not fused(_op_types_run(False, bias_add=True))
    assert fused(_op_types_run(True, bias_add=False)) == onednn_enabled()
    assert not fused(_op_types_run(False, bias_add=False))

    model = registry.models.get("mlp")
    assert model.hints.fuse_matmul_bias_in_training is False
    config = model.config({"steps": "2000"})
    off = zoo.read_weights(zoo.train(model, config, seed=4, root=tmp_path / "off"))
    fused_hints = dataclasses.replace(model.hints, fuse_matmul_bias_in_training=True)
    monkeypatch.setattr(type(model), "hints", fused_hints)
    on = zoo.read_weights(zoo.train(model, config, seed=4, root=tmp_path / "on"))
    for name in off:
        np.testing.assert_array_equal(off[name], on[name], err_msg=name)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
@pytest.mark.parametrize("threads", [(4, 1), (1, 4)], ids=["intra-op", "inter-op"])
def test_a_session_gets_the_threads_its_config_asks_for(threads):
    """Training's one thread is real: sessions do not share process-wide thread pools.

    By default TensorFlow sizes one intra-op and one inter-op pool for the whole process (by
    the first session or runtime start: here all cores) and ignores every later session's
    settings; `graph.tf()` and `graph.session()` turn that off, which made the mlp's training
    step about twice as fast (README, Performance).
    """
    from advbench.engine.graph import Threads, session

    t = tf()
    graph = t.Graph()
    with graph.as_default():
        out = t.constant(1.0) + 1.0
    # A session first: with shared pools, that one sizes them and the next adds no thread.
    with session(graph, Threads(1, 1)) as sess:
        sess.run(out)
    before = len(os.listdir("/proc/self/task"))
    with session(graph, Threads(*threads)) as sess:
        sess.run(out)
        assert len(os.listdir("/proc/self/task")) - before >= 4


def _numpy_sgd_step(w1, b1, w2, b2, x, y, eta):
    """The tutorial's update, computed in float64 from the pre-step values."""
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
    z1 = x @ w1 + b1
    a1 = sig(z1)
    z2 = a1 @ w2 + b2
    a2 = sig(z2)
    d2 = (a2 - y) * sig(z2) * (1 - sig(z2))
    d1 = (d2 @ w2.T) * sig(z1) * (1 - sig(z1))
    return (
        w1 - eta * x.T @ d1,
        b1 - eta * d1.mean(axis=0),
        w2 - eta * a1.T @ d2,
        b2 - eta * d2.mean(axis=0),
    )


@pytest.mark.cpu_path
def test_training_step_is_sgd_from_the_pre_step_values(registry):
    """All four updates use gradients of the old weights (no read/write race), many times over."""
    from advbench.engine.graph import ATTACK_THREADS, session

    t = tf()
    model = registry.models.get("mlp")
    config = model.config()
    graph = t.Graph()
    with graph.as_default():
        t.compat.v1.set_random_seed(1)
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        y = t.compat.v1.placeholder(t.float32, [None, 10])
        net = model.build(config)
        op = model.train_step(net, x, y, config)
        init = t.compat.v1.global_variables_initializer()
    from advbench.engine import data

    sets = data.read_data_sets(one_hot=True, seed=0)
    with session(graph, ATTACK_THREADS) as sess:  # default (multi-threaded) pools
        sess.run(init)
        for _ in range(30):
            images, labels = sets.train.next_batch(10)
            before = [v.astype(np.float64) for v in sess.run(net.variables)]
            sess.run(op, {x: images, y: labels})
            after = sess.run(net.variables)
            expected = _numpy_sgd_step(*before, images.astype(np.float64), labels, 0.5)
            for got, want in zip(after, expected, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _ancestors(op) -> set:
    seen, stack = set(), [op]
    while stack:
        o = stack.pop()
        for parent in [i.op for i in o.inputs] + list(o.control_inputs):
            if parent not in seen:
                seen.add(parent)
                stack.append(parent)
    return seen


def test_every_read_of_a_variable_happens_before_its_assign(registry):
    """Structural proof that the tutorial's read/write race is gone.

    For each variable V, every `ReadVariableOp` of V in the step (the ones feeding the
    gradients included) must be an ancestor of the op that writes V; in the tutorial's graph
    the read of w_2 feeding delta_1 is not, so thread scheduling decides its value.
    """
    t = tf()
    model = registry.models.get("mlp")
    graph = t.Graph()
    with graph.as_default():
        x = t.compat.v1.placeholder(t.float32, [None, 784])
        y = t.compat.v1.placeholder(t.float32, [None, 10])
        net = model.build(model.config())
        step = model.train_step(net, x, y, model.config())
    in_step = _ancestors(step)
    writes = ("AssignVariableOp", "ResourceApplyGradientDescent")
    assigns = [o for o in in_step if o.type in writes]
    assert len(assigns) == 4
    for assign in assigns:
        handle = assign.inputs[0].op
        reads = [o for o in in_step if o.type == "ReadVariableOp" and o.inputs[0].op is handle]
        assert reads, f"no read of {handle.name}"
        before = _ancestors(assign)
        for read in reads:
            assert read in before, f"{read.name} may run after {assign.name}"
