"""Sessions for the engine: thread pools, grappler options, and which CPU path runs them.

TensorFlow itself is reached through `advbench.contract.lazy_tf.tf` (imported on first use).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

from advbench.contract.lazy_tf import tf


@dataclass(frozen=True)
class Threads:
    """Thread-pool sizes for a session; 0 lets TensorFlow choose (all cores)."""

    intra: int = 0
    inter: int = 0


# Training runs on one thread each way (see `tf()` for why that needs an environment variable):
# a batch-10 step is too small to share, and one thread is the cheapest way to make every float
# reduction's order fixed, so the same seed gives bit-identical weights.
TRAINING_THREADS = Threads(1, 1)
# Attacks use every core; results are reproducible for the same seed, batch size and machine.
ATTACK_THREADS = Threads(0, 0)


def session(graph, threads: Threads = ATTACK_THREADS, *, fuse_matmul_bias: bool = True):
    """A `tf.compat.v1.Session` on `graph` with the given thread pools.

    `fuse_matmul_bias=False` switches off grappler's remapper, which otherwise turns every
    MatMul followed by a bias Add into one oneDNN matmul primitive: a model whose small
    products pay more for that primitive than for a plain GEMM and an Add opts out.
    """
    t = tf()
    cores = os.environ.get("ADVBENCH_THREADS", "")  # a Dask worker's share (`engine.units`)
    if threads == ATTACK_THREADS and cores.isdigit() and int(cores) > 0:
        threads = Threads(int(cores), int(cores))
    config = t.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads.intra,
        inter_op_parallelism_threads=threads.inter,
    )
    if not fuse_matmul_bias:
        from tensorflow.core.protobuf import rewriter_config_pb2

        config.graph_options.rewrite_options.remapping = rewriter_config_pb2.RewriterConfig.OFF
    # A pool of the session's own: the default is one process-wide inter-op pool, sized by the
    # first session ever created (an attack's all-core session makes a later training session
    # hand its ops between threads, measurably slower: README, Performance). The intra-op
    # side: see `tf()`.
    config.session_inter_op_thread_pool.add(num_threads=threads.inter)
    return t.compat.v1.Session(graph=graph, config=config)


_onednn: bool | None = None


def onednn_enabled() -> bool:
    """Does this process run oneDNN's CPU kernels and graph rewrites?

    TensorFlow turns them on by default only on CPUs with AVX-512 VNNI, AVX-VNNI, BF16 or AMX
    (`TF_ENABLE_ONEDNN_OPTS` overrides; `ONEDNN_MAX_CPU_ISA` caps the instructions they use).
    Kernels differ in float rounding from the Eigen ones, so results are bit-identical only
    between machines on the same path (README, "Reproducibility"). Asked of the runtime itself:
    a MatMul is rewritten to a `_Mkl` kernel exactly when oneDNN is on.
    """
    global _onednn
    if _onednn is None:
        t = tf()
        graph = t.Graph()
        with graph.as_default():
            x = t.compat.v1.placeholder(t.float32, [2, 2])
            out = t.matmul(x, x)
        meta = t.compat.v1.RunMetadata()
        options = t.compat.v1.RunOptions(output_partition_graphs=True)
        with session(graph, Threads(1, 1)) as sess:
            sess.run(out, {x: [[1.0, 0.0], [0.0, 1.0]]}, options, meta)
        _onednn = any(n.op.startswith("_Mkl") for g in meta.partition_graphs for n in g.node)
    return _onednn


def cpu_kind() -> str:
    """The CPU path that decides float rounding: the widest vector ISA and whether oneDNN runs.

    E.g. "x86_64 avx512, oneDNN" or "x86_64 avx2, Eigen". Stored with every checkpoint and
    result so that a difference in the last bits can be traced to the machine that made it.
    """
    import platform

    flags: set[str] = set()
    with contextlib.suppress(OSError), open("/proc/cpuinfo", errors="replace") as info:
        for line in info:
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    isa = next((f for f in ("avx512f", "avx2", "avx", "sse4_2") if f in flags), "")
    isa = {"avx512f": "avx512"}.get(isa, isa)
    cap = os.environ.get("ONEDNN_MAX_CPU_ISA", "")
    engine = "oneDNN" + (f" (max ISA {cap})" if cap else "") if onednn_enabled() else "Eigen"
    return " ".join(filter(None, (platform.machine(), isa))) + f", {engine}"


def versions() -> dict[str, str]:
    """Library versions recorded next to every checkpoint and result."""
    import platform

    import numpy

    from advbench import __version__

    return {
        "advbench": __version__,
        "tensorflow": tf().__version__,
        "numpy": numpy.__version__,
        "python": platform.python_version(),
        "cpu": cpu_kind(),
    }
