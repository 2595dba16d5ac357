"""TensorFlow access for the engine: quiet lazy import, fresh graphs, configured sessions.

TensorFlow is imported only here and only when a command needs it, so `advbench --help` and
`advbench plugins` stay fast. Graphs are built inside `tf.Graph().as_default()`, which gives
TF1 graph-mode semantics (placeholders, sessions, `Saver`) without calling the process-wide
`disable_eager_execution()`: code that wants eager TF2/Keras in the same process (the Keras
model's training) keeps working.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType

_tf: ModuleType | None = None


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to a temp file while TF's C++ runtime starts up.

    TF 2.21 prints absl/oneDNN/CUDA banners from C++ before any Python logging setting applies;
    they are noise for our users. If the import fails, the captured text is replayed.
    """
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(fd)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), fd)
        try:
            yield
        except BaseException:
            os.dup2(saved, fd)
            sink.seek(0)
            sys.stderr.write(sink.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, fd)
            os.close(saved)


def tf() -> ModuleType:
    """The `tensorflow` module, imported once, with its log noise kept out of the terminal."""
    global _tf
    if _tf is None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # Without this, TensorFlow gives every session one process-wide intra-op pool, sized
        # by whoever starts the runtime first (here: all cores), and silently ignores each
        # session's `intra_op_parallelism_threads`. With it, a session gets the pools its
        # config asks for: training really runs on one thread — about twice as fast per step
        # for the mlp, whose 784×128 update was otherwise split across two threads that had
        # to be woken every step — and attacks still get all cores. Weights and records are
        # bit-identical either way (checked against the shipped checkpoints and the
        # published records).
        os.environ.setdefault("TF_OVERRIDE_GLOBAL_THREADPOOL", "1")
        with _stderr_silenced():
            import tensorflow

            tensorflow.get_logger().setLevel("ERROR")
            # Start the runtime (and its banner) now, while stderr is still silenced.
            tensorflow.config.list_physical_devices("CPU")
        _tf = tensorflow
    return _tf


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
    config = t.compat.v1.ConfigProto(
        intra_op_parallelism_threads=threads.intra,
        inter_op_parallelism_threads=threads.inter,
    )
    if not fuse_matmul_bias:
        from tensorflow.core.protobuf import rewriter_config_pb2

        config.graph_options.rewrite_options.remapping = rewriter_config_pb2.RewriterConfig.OFF
    # A pool of the session's own: the default is one process-wide inter-op pool, sized by the
    # first session ever created (an attack's all-core session makes a later training session
    # hand its ops between threads, ~30 % slower). The intra-op side: see `tf()`.
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
