"""Models from files, no Python: `keras:PATH`, `savedmodel:DIR` and `graph:PATH` as model names.

A name with one of these prefixes is not looked up among the plugins' models: the registry
makes an `ImportedModel` for the file (`open_model`). Its weights come with the file, so
advbench never trains, saves or restores it (`Model.pretrained`); the file's content digest is
part of every run's identity instead, so a changed file never resumes an old run.

The model is frozen into a `GraphDef` (`advbench.host.freezing`) and imported into the
attack's graph by its `ImportedNetwork`, one copy of the graph's ops per input tensor (with an
input map: the model applied to that tensor) sharing one copy of its weights. Between
advbench's images and the model sit two in-graph conversions, declared with `--set` or detected:

- `range`: the pixel values the model expects (0..1 as advbench's images, 0..255 or -1..1);
  detected as 0..255 when the graph rescales its own input by 1/255 or 1/127.5 (a Keras
  `Rescaling` layer), else 0..1;
- `layout`: flat vectors, H×W, H×W×C (channels last) or C×H×W, detected from the input's
  shape, which must match the dataset's image shape (`Geometry`) in one of those layouts.

The geometry is the selected dataset's: `accepts(spec)`, which the engine calls before it opens
a model for a dataset, sets it from the dataset's image shape and class count and says, in the
model's words, what does not fit (the engine's line then names the dataset's side).

A model whose output is probabilities is attacked through logits: the softmax's input when the
output is a softmax op, else log p (clipped); `scores` declares it or leaves it to detection
(the output op, then the outputs on real images: non-negative rows summing to 1). Its raw
outputs stay what `Network.outputs` gives, so the "probabilities as logits" check flags it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from advbench.contract.dataset import ImageSpec
from advbench.contract.lazy_tf import tf
from advbench.contract.model import EngineHints, Model, Network
from advbench.contract.params import Param
from advbench.errors import AdvbenchError, ModelError
from advbench.host.freezing import Frozen, freeze


@dataclass(frozen=True)
class Geometry:
    """What the dataset feeds a model: images of height × width × channels in [0, 1], and the
    number of classes its scores must cover."""

    height: int
    width: int
    channels: int
    classes: int
    dataset: str = ""  # its name, for messages

    @classmethod
    def of(cls, spec: ImageSpec) -> Geometry:
        """The geometry of a dataset's images (`Dataset.spec`)."""
        h, w, c = (int(d) for d in spec.shape)
        return cls(h, w, c, int(spec.classes), spec.dataset)

    @property
    def size(self) -> int:
        return self.height * self.width * self.channels

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def text(self) -> str:
        return f"{self.height}×{self.width}×{self.channels} images ({self.size} values)"

    def owner(self) -> str:
        """`the dataset mnist` or, unnamed, `the dataset`, as an error message's subject."""
        return f"the dataset {self.dataset}" if self.dataset else "the dataset"


#: The geometry a model file has before a dataset is chosen (`accepts` replaces it).
MNIST = Geometry(28, 28, 1, 10, "mnist")


class ShapeMismatch(ModelError):
    """A model file whose input or output does not fit the dataset's images; `model_side` is
    the model's half of the line (what `accepts` returns)."""

    def __init__(self, name: str, model_side: str, dataset_side: str) -> None:
        super().__init__(f"model {name} {model_side}; {dataset_side}")
        self.model_side = model_side


FORMATS = {
    "keras": "a saved Keras model (.keras or legacy .h5 file)",
    "savedmodel": "a TF SavedModel directory",
    "graph": "a TF1 graph: a frozen GraphDef (.pb) or a meta-graph checkpoint prefix",
}
RANGES = {"0..1": (1.0, 0.0), "0..255": (255.0, 0.0), "-1..1": (2.0, -1.0)}  # x·scale + offset
LAYOUTS = ("flat", "hw", "hwc", "chw")
#: log p of an image whose probability underflowed to 0: finite, and below any real one.
LOG_FLOOR = 1e-30
#: Rows of real images on which `scores=auto` looks for probabilities.
PROBE = 100

_COMMON = (
    Param("range", "auto", "pixel values the model expects", str, choices=("auto", *RANGES)),
    Param(
        "layout",
        "auto",
        "input layout: flat, hw, hwc (channels last) or chw",
        str,
        choices=("auto", *LAYOUTS),
    ),
    Param(
        "scores",
        "auto",
        "what the output is: logits, or probabilities (attacked through logits)",
        str,
        choices=("auto", "logits", "probabilities"),
    ),
)
_NAMES = (
    Param("input", "", "input tensor or signature key (empty: the only one)", str),
    Param("logits", "", "output tensor or signature key: logits or probabilities", str),
)
PARAMS: dict[str, tuple[Param, ...]] = {
    "keras": _COMMON,
    "savedmodel": (
        Param("signature", "serving_default", "the SavedModel signature to import", str),
        *_NAMES,
        *_COMMON,
    ),
    "graph": (*_NAMES, *_COMMON),
}


def split(name: str) -> tuple[str, str] | None:
    """(format, path) of an imported model's name, or None for any other name."""
    fmt, sep, path = name.partition(":")
    return (fmt, path) if sep and fmt in FORMATS else None


def open_model(name: str, geometry: Geometry = MNIST) -> ImportedModel:
    """The model for `keras:PATH`, `savedmodel:DIR` or `graph:PATH`; the path must exist."""
    parts = split(name)
    if parts is None:
        raise AdvbenchError(f"{name!r} is not FORMAT:PATH with FORMAT one of {', '.join(FORMATS)}")
    fmt, path = parts
    if not path:
        raise AdvbenchError(f"model {name!r}: no path after {fmt}:")
    return ImportedModel(fmt, path, geometry)


def digest(path: Path) -> str:
    """sha256 of a file's bytes, or of a directory's relative file names and contents (a
    checkpoint prefix: of the files that start with it)."""
    h = hashlib.sha256()
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        base = path
    elif path.is_file():
        files, base = [path], path.parent
    else:
        files, base = _prefixed(path), path.parent
    for file in files:
        h.update(str(file.relative_to(base)).encode() + b"\0")
        with file.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


class ImportedModel(Model):
    """A model read from a file: frozen once per configuration, never trained here."""

    pretrained = True
    #: Conv activations of an unknown network: batches of 1,000 as the built-in CNNs.
    hints = EngineHints(attack_batch_size=1000)

    def __init__(self, fmt: str, path: str, geometry: Geometry = MNIST) -> None:
        self.format, self.path = fmt, Path(path)
        self.set_geometry(geometry)
        self.name = f"{fmt}:{path}"
        self.description = f"{FORMATS[fmt]}, imported from {path} (not trained by advbench)"
        self.params = PARAMS[fmt]
        if not (self.path.exists() or _prefixed(self.path)):
            raise AdvbenchError(f"model {self.name}: {path} does not exist")
        self._frozen: dict[tuple[str, str, str], Frozen] = {}
        self._digest: str | None = None

    def set_geometry(self, geometry: Geometry) -> None:
        """Feed this model images of `geometry` from now on (`input_shape`, `classes` too)."""
        self.geometry = geometry
        self.input_shape, self.classes = geometry.shape, geometry.classes

    def accepts(self, spec: ImageSpec) -> str | None:
        """Fit the model to the dataset's images; what of the file does not fit them, or None.
        A `keras` file is read and checked now; a `graph` or `savedmodel` file by `origin`,
        with the tensors the run names (`--set`), in a line naming both sides too."""
        self.set_geometry(Geometry.of(spec))
        if self.format != "keras":
            return None
        frozen, wrong = self._freeze(self.config()), []
        try:
            _layout(self.name, frozen.input_shape, "auto", self.geometry)
        except ShapeMismatch as exc:
            wrong.append(exc.model_side)
        wrong.append(self._output_mismatch(frozen) or "")
        return " and ".join(w for w in wrong if w) or None

    def digest(self) -> str:
        """The file's content digest (computed once)."""
        if self._digest is None:
            self._digest = digest(self.path)
        return self._digest

    def frozen(self, config: Mapping[str, Any]) -> Frozen:
        """The model frozen into a GraphDef, its output checked against the dataset's classes."""
        frozen = self._freeze(config)
        wrong = self._output_mismatch(frozen)
        if wrong:
            g = self.geometry
            raise ShapeMismatch(self.name, wrong, f"{g.owner()} has {g.classes} classes")
        return frozen

    def _freeze(self, config: Mapping[str, Any]) -> Frozen:
        """The model frozen into a GraphDef, once per choice of tensors."""
        key = (config.get("signature", ""), config.get("input", ""), config.get("logits", ""))
        if key not in self._frozen:
            self._frozen[key] = freeze(self.format, self.name, self.path, key[1], key[2], key[0])
        return self._frozen[key]

    def _output_mismatch(self, frozen: Frozen) -> str | None:
        """The model's side when its output is not one score per class of the dataset."""
        classes = frozen.output_shape[-1] if frozen.output_shape else None
        if len(frozen.output_shape) != 1 or classes not in (None, self.geometry.classes):
            return f"outputs shape {_shape(frozen.output_shape)} per image"
        return None

    def conversion(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """How advbench's images become the model's input, and what its output is: the
        declared values, or those detected from the frozen graph (`detected` names them;
        `scores` stays "auto" until `ImportedNetwork.calibrate` sees real outputs)."""
        frozen = self.frozen(config)
        layout = _layout(self.name, frozen.input_shape, config["layout"], self.geometry)
        value_range = config["range"]
        if value_range == "auto":
            value_range = frozen.range_hint or "0..1"
        scores = config["scores"]
        if scores == "auto" and frozen.pre_softmax:
            scores = "probabilities"
        detected = [k for k in ("layout", "range", "scores") if config[k] == "auto"]
        return {"layout": layout, "range": value_range, "scores": scores, "detected": detected}

    def origin(self, config: Mapping[str, Any]) -> dict[str, Any]:
        frozen = self.frozen(config)
        return {
            "format": self.format,
            "file": str(self.path.resolve()),
            "sha256": self.digest(),
            "input": {
                "tensor": frozen.input,
                "shape": list(frozen.input_shape),
                "dtype": frozen.input_dtype,
            },
            "output": {"tensor": frozen.output, "softmax": frozen.pre_softmax is not None},
            **self.conversion(config),
        }

    def build(self, config: Mapping[str, Any]) -> ImportedNetwork:
        return ImportedNetwork(self.frozen(config), self.conversion(config), self.geometry)


def _prefixed(path: Path) -> list[Path]:
    """The files of a checkpoint given by its prefix (`model.ckpt` → `model.ckpt.index`, ...)."""
    if not path.parent.is_dir():
        return []
    return sorted(p for p in path.parent.iterdir() if p.name.startswith(path.name + "."))


def _shape(dims: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


def _fits(dims: tuple[int | None, ...], want: tuple[int, ...]) -> bool:
    if len(dims) != len(want):
        return False
    return all(d is None or d == w for d, w in zip(dims, want, strict=True))


def _layout(name: str, dims: tuple[int | None, ...], declared: str, g: Geometry) -> str:
    """The input layout: `declared`, or the one the model's input shape matches."""
    shapes = {
        "flat": (g.size,),
        "hw": (g.height, g.width) if g.channels == 1 else None,
        "hwc": (g.height, g.width, g.channels),
        "chw": (g.channels, g.height, g.width),
    }
    if declared != "auto":
        want = shapes[declared]
        if want is None or not _fits(dims, want):
            layout = "no" if want is None else _shape(want)
            raise ModelError(
                f"model {name} takes inputs of shape {_shape(dims)}; layout={declared} gives "
                f"{layout} shape for {g.owner()}'s {g.text()}"
            )
        return declared
    for layout, want in shapes.items():
        if want is not None and _fits(dims, want):
            return layout
    raise ShapeMismatch(
        name, f"takes inputs of shape {_shape(dims)}", f"{g.owner()} has {g.text()}"
    )


class ImportedNetwork(Network):
    """An imported graph applied to any input tensor of advbench's images."""

    def __init__(self, frozen: Frozen, conversion: Mapping[str, Any], geometry: Geometry):
        t = tf()
        self.frozen, self.geometry = frozen, geometry
        self.layout, self.scores = conversion["layout"], conversion["scores"]
        self.scale, self.offset = RANGES[conversion["range"]]
        self.variables = []
        consts = t.compat.v1.GraphDef()
        self._body = t.compat.v1.GraphDef()
        self._body.library.CopyFrom(frozen.graph_def.library)
        self._body.versions.CopyFrom(frozen.graph_def.versions)
        for node in frozen.graph_def.node:
            shared = node.op == "Const" and not node.input
            (consts if shared else self._body).node.add().CopyFrom(node)
        names = [f"{n.name}:0" for n in consts.node]
        # The weights once, in the outer graph: every copy of the model reads these tensors.
        tensors = t.compat.v1.import_graph_def(consts, return_elements=names, name="imported")
        self._weights = dict(zip(names, tensors, strict=True))
        self._graph = t.compat.v1.get_default_graph()

    def _inputs(self, x):
        """advbench's images (any shape holding H·W·C values per row) as the model's input."""
        t = tf()
        g = self.geometry
        x = t.reshape(x, [-1, g.height, g.width, g.channels])
        if self.scale != 1.0 or self.offset != 0.0:
            x = x * self.scale + self.offset
        if self.layout == "flat":
            x = t.reshape(x, [-1, g.size])
        elif self.layout == "hw":
            x = t.reshape(x, [-1, g.height, g.width])
        elif self.layout == "chw":
            x = t.transpose(x, [0, 3, 1, 2])
        if self.frozen.input_dtype != "float32":
            x = t.cast(x, self.frozen.input_dtype)
        return x

    def _forward(self, x) -> dict[str, Any]:
        """One copy of the model's ops on `x`: its raw output, and the softmax's input."""
        t = tf()
        wanted = [
            self.frozen.output,
            *([self.frozen.pre_softmax] if self.frozen.pre_softmax else []),
        ]
        # Inside a loop body (a function graph of its own) the weights are imported with the
        # ops: a function graph cannot take the outer graph's tensors through an input map.
        outer = t.compat.v1.get_default_graph() is self._graph
        graph_def = self._body if outer else self.frozen.graph_def
        input_map = {self.frozen.input: self._inputs(x), **(self._weights if outer else {})}
        found = t.compat.v1.import_graph_def(
            graph_def, input_map=input_map, return_elements=wanted, name="imported"
        )
        found = [t.cast(v, t.float32) if v.dtype != t.float32 else v for v in found]
        return {"raw": found[0], "pre_softmax": found[1] if len(found) > 1 else None}

    def outputs(self, x):
        return self.memo("forward", x, self._forward)["raw"]

    def logits(self, x):
        forward = self.memo("forward", x, self._forward)
        if self.scores != "probabilities":
            return forward["raw"]
        if forward["pre_softmax"] is not None:
            return forward["pre_softmax"]
        t = tf()
        return t.math.log(t.maximum(forward["raw"], LOG_FLOOR))

    def loss(self, x, y_onehot):
        t = tf()
        return t.nn.softmax_cross_entropy_with_logits(labels=y_onehot, logits=self.logits(x))

    def calibrate(self, session: Any, images: np.ndarray) -> None:
        """`scores=auto` without a softmax op: probabilities when every output row of the
        first `PROBE` real images is non-negative and sums to 1."""
        if self.scores != "auto":
            return
        t = tf()
        with self._graph.as_default():
            x = t.compat.v1.placeholder(t.float32, [None, *images.shape[1:]])
            raw = session.run(self._forward(x)["raw"], {x: images[:PROBE]})
        rows_sum_to_one = np.all(np.abs(raw.sum(axis=1) - 1.0) < 1e-3)
        self.scores = "probabilities" if rows_sum_to_one and np.all(raw >= 0) else "logits"
