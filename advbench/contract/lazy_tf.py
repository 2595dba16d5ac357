"""TensorFlow, imported lazily and quietly: the one way advbench and its plugins reach it.

TensorFlow takes seconds to import, so nothing imports it at module level: `advbench --help`,
`advbench plugins` and `advbench describe` answer without it (tested). Code calls `tf()` where
it builds ops. Graphs are built inside `tf.Graph().as_default()`, which gives TF1 graph-mode
semantics (placeholders, sessions, `Saver`) without the process-wide
`disable_eager_execution()`: eager Keras (a Keras model's training) keeps working in the same
process.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator
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
