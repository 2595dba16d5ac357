"""What every model offers: the plugin-side `Model` and the in-graph `Network`.

A `Model` is registered by a plugin; it knows its hyper-parameters, how to create its variables
in the current graph (`build`) and how to take one training step (`train_step`). `build` returns
a `Network`: the model applied to any input tensor. Attacks only ever see a `Network` and call
`logits`, `probabilities`, `loss` and `loss_gradient`; how the gradient is obtained (manual
backprop for the tutorial's MLP, `tf.gradients` elsewhere) is the network's business.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from advbench.contract.dataset import ImageSpec, Shape, shape_text
from advbench.contract.lazy_tf import tf
from advbench.contract.params import Param, resolve
from advbench.errors import PluginError


class Network(ABC):
    """A model's variables in a graph and the functions that apply it to an input batch."""

    #: The variables a checkpoint saves and restores.
    variables: list[Any]

    def memo(self, name: str, x, build):
        """`build(x)` once per input tensor: a step's forward pass and the success check on
        the same images share their ops instead of computing the network twice."""
        cache = self.__dict__.setdefault("_memo", {})
        key = (name, x.ref())
        if key not in cache:
            cache[key] = build(x)
        return cache[key]

    @abstractmethod
    def logits(self, x):
        """Pre-activation class scores [batch, classes]; predictions are their argmax."""

    def probabilities(self, x):
        """The model's output scores [batch, classes] (softmax of the logits unless overridden)."""
        return tf().nn.softmax(self.logits(x))

    def outputs(self, x):
        """What the model itself returns [batch, 10]: its logits, unless it returns something
        else that `logits` converts (an imported model's probabilities); the checks look here
        for probabilities returned as logits."""
        return self.logits(x)

    def calibrate(self, session: Any, images: Any) -> None:
        """Look once at real images after loading (an imported model finds out whether it
        returns probabilities); nothing for a model that knows what it computes."""
        return None

    @abstractmethod
    def loss(self, x, y_onehot):
        """The per-example loss [batch] the model was trained with."""

    def loss_gradient(self, x, y_onehot):
        """(per-example loss, d loss / d x): each row is that image's own input gradient."""
        t = tf()
        loss = self.loss(x, y_onehot)
        (grad,) = t.gradients(t.reduce_sum(loss), [x])
        return loss, grad

    def input_gradient(self, scalar_fn, x):
        """Gradient w.r.t. `x` of `scalar_fn(self, x)` summed over the batch (any objective)."""
        t = tf()
        (grad,) = t.gradients(t.reduce_sum(scalar_fn(self, x)), [x])
        return grad


@dataclass(frozen=True)
class EngineHints:
    """How the engine may run a model: hints it may ignore, which never change what the model
    computes (its function, and — except `single_threaded_training=False`, whose threads sum
    floats in any order — its trained weights bit for bit). Set on a model class as
    `hints = EngineHints(attack_batch_size=2000)`; each field's default suits a small network.
    """

    #: Train on one thread: float reductions in a fixed order, hence bit-reproducible weights
    #: for a seed. A model too slow for that may use every core (and must say so in its docs).
    single_threaded_training: bool = True
    #: Images per attack batch: one batch of the whole test set is fastest for a small network;
    #: big activations (and their gradients) need smaller batches to fit in memory.
    attack_batch_size: int = 10000
    #: Run the training steps inside a `tf.while_loop`, many per `sess.run` (needs a
    #: `train_step` that can be built twice on the same network: optimizers must reuse their
    #: slot variables).
    in_graph_training: bool = False
    #: Let grappler fuse each MatMul + bias Add of the training graph into one oneDNN matmul
    #: primitive. The weights are the same either way; a model opts out where its small
    #: products run faster as a plain GEMM and an Add (the mlp; README, Performance).
    fuse_matmul_bias_in_training: bool = True

    def __post_init__(self) -> None:
        if not (isinstance(self.attack_batch_size, int) and self.attack_batch_size >= 1):
            raise PluginError(f"attack_batch_size must be an int >= 1: {self.attack_batch_size!r}")


class Model(ABC):
    """A trainable image classifier, registered by a plugin.

    Its network takes images as rows of h·w·c values (flattened NHWC, `advbench.Dataset`) and
    returns `classes` logits. `input_shape` and `classes` say which datasets it accepts (None:
    not declared; the engine then finds out when it first builds the network on the dataset's
    images), checked before any work by `accepts`.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    #: (height, width, channels) of the images the network takes; None: not declared.
    input_shape: ClassVar[Shape | None] = None
    #: How many classes its logits score; None: not declared.
    classes: ClassVar[int | None] = None
    #: Hyper-parameters; `steps` and `batch_size` drive the engine's training loop.
    params: ClassVar[tuple[Param, ...]] = ()
    #: The training seed used when none is given (checkpoints are keyed by it).
    default_seed: ClassVar[int] = 0
    #: Names of the training graph's input and label placeholders (tutorials restore by name).
    input_name: ClassVar[str] = "x"
    label_name: ClassVar[str] = "y"
    #: How the engine may run this model (see `EngineHints`).
    hints: ClassVar[EngineHints] = EngineHints()
    #: Whether a run that names no models runs this one. An example model says False:
    #: installing a plugin must not change a user's runs; it runs when named.
    in_every: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse advbench 0.1's tuning flags: the engine reads only `hints` now."""
        super().__init_subclass__(**kwargs)
        old = sorted(set(vars(cls)) & {f.name for f in fields(EngineHints)})
        if old:
            raise PluginError(
                f"model class {cls.__name__} sets {', '.join(old)} (advbench 0.1): "
                f"set hints = EngineHints({old[0]}=...) instead"
            )

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """This model's hyper-parameters: defaults updated by `overrides`, validated."""
        return resolve(self.name, self.params, overrides)

    def accepts(self, spec: ImageSpec) -> str | None:
        """Why this model cannot classify images of `spec` (a dataset's shape and classes), or
        None. The default compares the declared `input_shape` and `classes`; a model that
        takes several shapes overrides it."""
        wrong = []
        if self.input_shape is not None and tuple(self.input_shape) != tuple(spec.shape):
            wrong.append(f"{shape_text(self.input_shape)} images")
        if self.classes is not None and self.classes != spec.classes:
            wrong.append(f"{self.classes} classes")
        return f"takes {' in '.join(wrong)}" if wrong else None

    @abstractmethod
    def build(self, config: Mapping[str, Any]) -> Network:
        """Create the variables (with their initialisers) in the current default graph."""

    def train_step(self, net: Network, x, y_onehot, config: Mapping[str, Any]):
        """An op that applies one optimisation step on the batch (`x`, `y_onehot`)."""
        raise NotImplementedError(f"model {self.name} does not train in the graph")

    def weights_of(self, config: Mapping[str, Any]) -> tuple[Model, dict[str, Any]] | None:
        """The model and configuration whose checkpoint this one restores, or None (its own).

        A model that only changes how a trained network is applied — noise on its input, a
        randomised wrapper — shares that network's weights rather than training a copy: the
        engine finds (or trains, on a miss) the other model's checkpoint and restores it into
        this model's `build`, which must create the same variables under the same names."""
        return None

    def train_feed(self, net: Network, config: Mapping[str, Any]) -> dict[Any, Any]:
        """Extra feeds for training steps (e.g. a dropout keep probability)."""
        return {}

    #: A model that comes trained (imported from a file): `build` creates it with its weights
    #: (constants), advbench never trains, saves or restores it, and `origin` describes it.
    pretrained: ClassVar[bool] = False

    def origin(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """Where a pretrained model comes from (file, content digest, how it is converted):
        the record a checkpoint would have."""
        raise NotImplementedError(f"model {self.name} is trained by advbench")

    #: A model trained outside the TF1 graph (e.g. with Keras) sets this and implements `fit`.
    trains_outside_graph: ClassVar[bool] = False

    def fit(self, config: Mapping[str, Any], seed: int, data: Any, on_progress: Any) -> Fitted:
        """Train outside the graph; return the values of `build`'s variables by name."""
        raise NotImplementedError


@dataclass
class Fitted:
    """What a model trained outside the graph hands back to the engine."""

    weights: dict[str, Any]  # variable op name -> numpy value
    steps: int
    info: dict[str, Any] = field(default_factory=dict)  # extra facts for the record
