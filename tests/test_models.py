"""Model-specific checks beyond the contract (test_contract.py runs every built-in model
through the conformance kit, its accuracy floors and short training)."""

from __future__ import annotations

import numpy as np

from advbench.contract.lazy_tf import tf
from advbench.engine import runner


def test_cnn_checkpoint_restores_by_name_like_the_tutorial(shipped, test_set):
    """The tutorial's own restore cell: import_meta_graph, then tensors by name."""
    t = tf()
    folder = shipped("cnn").folder
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
    expected = runner.predict(shipped("cnn"), test_set.images[:500])
    np.testing.assert_array_equal(out.argmax(1), expected)
