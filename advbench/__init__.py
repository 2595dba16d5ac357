"""advbench: how easily are image classifiers fooled by adversarial examples?

This module is also the plugin authors' one import: everything a model, attack or dataset
plugin needs (the hook marker, `Model`/`Network`, `Attack` and its threat model, the tensors
of a step, parameters, losses, norms, per-image randomness, `Dataset` and the readers of IDX,
npz and PNG files, and the lazy TensorFlow accessor `tf`) is
importable from `advbench` itself; where each lives inside `advbench.contract` is not part of
the contract.

The package is importable without TensorFlow being loaded: only the engine modules
(`graph`, `zoo`, `runner`) import it, lazily, so `advbench --help` answers fast.
"""

from advbench.contract.attack import (
    CLIP_PARAMS,
    SEED_PARAM,
    Attack,
    Component,
    QueryCost,
    clip,
    target_param,
)
from advbench.contract.datafiles import (
    read_idx,
    read_npz,
    read_png,
    read_png_split,
    to_float,
    to_labels,
)
from advbench.contract.dataset import (
    DEFAULT_DATASET,
    MNIST_DIR_ENV,
    Content,
    Dataset,
    DatasetLoader,
    ImageSpec,
    Split,
    content_checksum,
    validation_split,
)
from advbench.contract.eot import EOT_PARAM, expected_gradient
from advbench.contract.hookspecs import hookimpl
from advbench.contract.lazy_tf import tf
from advbench.contract.losses import (
    LOSS_PARAM,
    ascent_gradient,
    beyond_tolerance,
    dlr_loss,
    least_adversarial,
    margin,
    targeted_dlr_loss,
)
from advbench.contract.model import EngineHints, Fitted, Model, Network
from advbench.contract.norms import gradient_step, l2_norm, project, random_start
from advbench.contract.params import Param
from advbench.contract.randomness import random_normal, random_signs, random_uniform
from advbench.contract.search import binary_search
from advbench.contract.search import hinge as cw_hinge
from advbench.contract.steps import BatchInputs, BatchOutputs, StepInputs
from advbench.contract.threat import ThreatModel
from advbench.errors import AdvbenchError, DataError, ModelError, ParamError, PluginError

__version__ = "0.3.0"
__all__ = [
    "CLIP_PARAMS",
    "DEFAULT_DATASET",
    "EOT_PARAM",
    "LOSS_PARAM",
    "MNIST_DIR_ENV",
    "SEED_PARAM",
    "AdvbenchError",
    "Attack",
    "BatchInputs",
    "BatchOutputs",
    "Component",
    "Content",
    "DataError",
    "Dataset",
    "DatasetLoader",
    "EngineHints",
    "Fitted",
    "ImageSpec",
    "Model",
    "ModelError",
    "Network",
    "Param",
    "ParamError",
    "PluginError",
    "QueryCost",
    "Split",
    "StepInputs",
    "ThreatModel",
    "__version__",
    "ascent_gradient",
    "beyond_tolerance",
    "binary_search",
    "clip",
    "content_checksum",
    "cw_hinge",
    "dlr_loss",
    "expected_gradient",
    "gradient_step",
    "hookimpl",
    "l2_norm",
    "least_adversarial",
    "margin",
    "project",
    "random_normal",
    "random_signs",
    "random_start",
    "random_uniform",
    "read_idx",
    "read_npz",
    "read_png",
    "read_png_split",
    "target_param",
    "targeted_dlr_loss",
    "tf",
    "to_float",
    "to_labels",
    "validation_split",
]
