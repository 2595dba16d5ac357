"""Shared fixtures: an isolated checkpoint cache and the shipped models, each restored once."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

# Tests never touch the user's cache: trained checkpoints go to a throw-away directory.
os.environ["ADVBENCH_HOME"] = tempfile.mkdtemp(prefix="advbench-test-home-")
os.environ.pop("ADVBENCH_MNIST_DIR", None)
os.environ["ADVBENCH_DB"] = os.path.join(os.environ["ADVBENCH_HOME"], "results.sqlite")
for var in ("ADVBENCH_PLUGINS_DIR", "ADVBENCH_PLUGINS_ALLOW", "ADVBENCH_PLUGINS_BLOCK"):
    os.environ.pop(var, None)

from advbench.engine import data, zoo  # noqa: E402
from advbench.host import plugins  # noqa: E402

SHIPPED_MNIST = Path(data.__file__).parent / "mnist"


@pytest.fixture(scope="session")
def registry():
    return plugins.load()


@pytest.fixture(scope="session")
def test_set():
    return data.read_test_set()


@pytest.fixture(scope="session")
def shipped(registry):
    """`shipped(name)`: that model restored from the checkpoint advbench ships (never trains),
    opened once per session."""
    opened: dict[str, zoo.Loaded] = {}

    def get(name: str) -> zoo.Loaded:
        if name not in opened:
            model = registry.models.get(name)
            config = model.config()
            folder = zoo.find(model, config, model.default_seed)
            assert folder is not None and zoo.SHIPPED in folder.parents, f"{name}: not shipped"
            opened[name] = zoo.restore(model, config, folder)
        return opened[name]

    yield get
    for loaded in opened.values():
        loaded.close()


@pytest.fixture(scope="session")
def mlp_loaded(shipped):
    """The default `mlp` from its shipped checkpoint (never trains)."""
    return shipped("mlp")


@pytest.fixture(scope="session")
def sample(test_set):
    """A fixed slice of test images: (images, labels, indices)."""
    n = 300
    return test_set.images[:n], test_set.labels_int[:n], np.arange(n, dtype=np.int64)


@pytest.fixture
def cli_error():
    """`cli_error(*args, message=...)`: run `advbench ARGS` as a user does and require exit 2
    with `message` in one line of stderr and no traceback (bad parameters, files, names)."""

    def check(*args: str, message: str) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "advbench", *args],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            timeout=120,
        )
        assert proc.returncode == 2
        assert message in proc.stderr, proc.stderr
        assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr

    return check
