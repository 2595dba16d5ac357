"""advbench: how easily are image classifiers fooled by adversarial examples?

The package is importable without TensorFlow being loaded: only the engine modules
(`graph`, `zoo`, `runner`) import it, lazily, so `advbench --help` answers fast.
"""

from advbench.contract.hookspecs import hookimpl

__version__ = "0.1.0"
__all__ = ["__version__", "hookimpl"]
