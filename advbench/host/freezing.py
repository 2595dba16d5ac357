"""A saved model file, whatever its format, frozen into one `GraphDef` with its weights inlined.

Every imported model ends as the same thing: a `GraphDef` whose weights are `Const` nodes, the
name of its input placeholder and the name of its output tensor. The engine then imports that
graph into each attack's TF1 graph (`advbench.host.imported`), so attacks, `tf.gradients` and
the conformance kit see ordinary ops and never the file format.

- Keras 3 `.keras` and legacy `.h5` files: loaded with Keras, wrapped in a `tf.function` called
  with `training=False` (dropout off, batch normalisation on its moving statistics), traced to
  a concrete function and frozen with `convert_variables_to_constants_v2`;
- a TF SavedModel directory: one of its signatures (default `serving_default`), frozen the same
  way;
- a TF1 graph: a frozen `GraphDef` file (`.pb`) as it is, or a meta-graph checkpoint (`PREFIX`
  with `PREFIX.meta`, or a directory holding one `*.meta`) restored in a scratch session and
  frozen with `convert_variables_to_constants`, cut to the output's ancestors.

Keras and SavedModel loading are eager: `freeze` runs them on a thread of its own when called
inside a graph (a thread starts in eager mode), so a model can be frozen while a TF1 graph is
being built.
"""

from __future__ import annotations

import concurrent.futures
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from advbench.contract.lazy_tf import tf
from advbench.errors import AdvbenchError, ModelError

FLOATS = ("float16", "bfloat16", "float32", "float64")


@dataclass(frozen=True)
class Frozen:
    """A model as one self-contained graph, and what its signature says about it."""

    graph_def: Any  # tf.compat.v1.GraphDef, weights as Const nodes
    input: str  # the input placeholder's tensor name in `graph_def` ("x:0")
    output: str  # the output tensor's name ("Identity:0")
    input_shape: tuple[int | None, ...]  # without the batch dimension
    input_dtype: str
    output_shape: tuple[int | None, ...]  # without the batch dimension
    #: The softmax's input when the output is a softmax (through Identity ops): the logits.
    pre_softmax: str | None
    #: "0..255" when the graph rescales its own input by 1/255 or 1/127.5 (Keras `Rescaling`).
    range_hint: str | None


def freeze(
    fmt: str, where: str, path: Path, input_name: str, output_name: str, signature: str
) -> Frozen:
    """Load and freeze the model at `path` (format `fmt`: keras, savedmodel or graph); `where`
    names it in errors. Names left empty are found from the model's signature."""
    makers: dict[str, Callable[[], Frozen]] = {
        "keras": lambda: _keras(where, path),
        "savedmodel": lambda: _saved_model(where, path, signature, input_name, output_name),
        "graph": lambda: _graph(where, path, input_name, output_name),
    }
    make = makers[fmt]
    if tf().executing_eagerly():
        return make()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:  # a fresh thread is eager
        return pool.submit(make).result()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0] if text else type(exc).__name__)[:200]


def _keras(where: str, path: Path) -> Frozen:
    import keras

    if path.is_dir():
        raise AdvbenchError(
            f"{where}: {path} is a directory, not a .keras or .h5 file "
            "(a TF SavedModel directory is imported with savedmodel:DIR)"
        )
    with path.open("rb") as f:
        magic = f.read(8)
    if not magic.startswith((b"PK\x03\x04", b"\x89HDF\r\n\x1a\n")):
        raise ModelError(
            f"{where}: {path} is not a Keras model file (neither a .keras zip nor an HDF5 .h5)"
        )
    try:
        model = keras.models.load_model(path, compile=False, safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, OSError, KeyError... for a bad file
        raise ModelError(
            f"{where}: {path} is not a Keras model file ({_first_line(exc)})"
        ) from None
    inputs = getattr(model, "inputs", None) or []
    if len(inputs) != 1:
        raise ModelError(
            f"{where}: the model has {len(inputs)} inputs; advbench feeds images to exactly one"
        )
    spec = tf().TensorSpec([None, *inputs[0].shape[1:]], inputs[0].dtype or "float32")
    func = tf().function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return _from_concrete(where, func, 0, 0)


def _saved_model(where: str, path: Path, signature: str, input_key: str, output_key: str) -> Frozen:
    t = tf()
    if not path.is_dir():
        raise AdvbenchError(f"{where}: {path} is not a directory (a TF SavedModel is one)")
    try:
        loaded = t.saved_model.load(str(path))
    except Exception as exc:
        raise ModelError(f"{where}: {path} is not a TF SavedModel ({_first_line(exc)})") from None
    signatures = dict(getattr(loaded, "signatures", {}) or {})
    if signature not in signatures:
        raise ModelError(
            f"{where}: no signature {signature!r} in the SavedModel "
            f"(it has: {', '.join(sorted(signatures)) or 'none'}); set savedmodel.signature"
        )
    func = signatures[signature]
    args, kwargs = func.structured_input_signature
    in_keys = sorted(kwargs) if kwargs else [str(i) for i in range(len(args))]
    out = func.structured_outputs
    out_keys = (
        sorted(out) if isinstance(out, dict) else [str(i) for i in range(len(t.nest.flatten(out)))]
    )
    i = _pick(where, "input", input_key, in_keys)
    o = _pick(where, "logits", output_key, out_keys)
    return _from_concrete(where, func, i, o)


def _pick(where: str, param: str, wanted: str, keys: list[str]) -> int:
    """The position of `wanted` among a signature's (sorted) keys; the only one when unset."""
    if wanted:
        if wanted not in keys:
            raise ModelError(
                f"{where}: the signature has no {param} {wanted!r} (it has: {', '.join(keys)})"
            )
        return keys.index(wanted)
    if len(keys) != 1:
        raise ModelError(
            f"{where}: the signature has {len(keys)} {param}s ({', '.join(keys)}); "
            f"name one with --set {where.split(':')[0]}.{param}=NAME"
        )
    return 0


def _from_concrete(where: str, func: Any, in_pos: int, out_pos: int) -> Frozen:
    """Freeze a concrete function; its `in_pos`-th input and `out_pos`-th output."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    try:
        frozen = convert_variables_to_constants_v2(func)
    except Exception as exc:
        raise ModelError(f"{where}: the model cannot be frozen ({_first_line(exc)})") from None
    graph_def = frozen.graph.as_graph_def()
    placeholders = [x for x in frozen.inputs if x.dtype != tf().resource]
    return _analyse(where, graph_def, placeholders[in_pos].name, frozen.outputs[out_pos].name)


def _graph(where: str, path: Path, input_name: str, output_name: str) -> Frozen:
    t = tf()
    meta = _meta_graph(path)
    if meta is None:
        if not path.is_file():
            raise AdvbenchError(
                f"{where}: {path} is neither a frozen GraphDef file nor a checkpoint prefix "
                "with a .meta file"
            )
        graph_def = t.compat.v1.GraphDef()
        try:
            graph_def.ParseFromString(path.read_bytes())
        except Exception as exc:
            raise ModelError(f"{where}: {path} is not a GraphDef ({_first_line(exc)})") from None
        if not graph_def.node or any(not n.op for n in graph_def.node):
            raise ModelError(f"{where}: {path} is not a GraphDef (no graph nodes in it)")
        graph = t.Graph()
        with graph.as_default():
            t.compat.v1.import_graph_def(graph_def, name="")
        inp, out = _names(where, graph, input_name, output_name)
        return _analyse(where, graph_def, inp, out)
    graph = t.Graph()
    with graph.as_default():
        try:
            saver = t.compat.v1.train.import_meta_graph(str(meta), clear_devices=True)
        except Exception as exc:
            raise ModelError(
                f"{where}: {meta} is not a TF meta graph ({_first_line(exc)})"
            ) from None
        inp, out = _names(where, graph, input_name, output_name)
        prefix = str(meta)[: -len(".meta")]
        with t.compat.v1.Session(graph=graph) as sess:
            try:
                if saver is not None:
                    saver.restore(sess, prefix)
                graph_def = t.compat.v1.graph_util.convert_variables_to_constants(
                    sess, graph.as_graph_def(), [out.split(":")[0], inp.split(":")[0]]
                )
            except Exception as exc:
                raise ModelError(
                    f"{where}: the checkpoint {prefix} cannot be restored ({_first_line(exc)})"
                ) from None
    return _analyse(where, graph_def, inp, out)


def _meta_graph(path: Path) -> Path | None:
    """The `.meta` file of a checkpoint given as its prefix, its .meta or its directory."""
    if path.name.endswith(".meta") and path.is_file():
        return path
    beside = path.with_name(path.name + ".meta")
    if beside.is_file():
        return beside
    if path.is_dir():
        metas = sorted(path.glob("*.meta"))
        if len(metas) == 1:
            return metas[0]
    return None


def _tensor_name(name: str) -> str:
    return name if ":" in name else f"{name}:0"


def _names(where: str, graph: Any, input_name: str, output_name: str) -> tuple[str, str]:
    """The input and output tensor names, checked against `graph`; found when unambiguous."""
    ops = graph.get_operations()
    placeholders = [op.name for op in ops if op.type == "Placeholder"]
    scores = _output_candidates(ops)
    found = []
    for param, wanted, candidates, unique in (
        ("input", input_name, placeholders, placeholders),
        ("logits", output_name, [name for _, name in scores], [n for end, n in scores if end]),
    ):
        if not wanted:
            if len(unique) != 1:
                shown = ", ".join(f"{c}:0" for c in candidates[:6]) or "none found"
                raise ModelError(
                    f"{where}: name the {param} tensor with --set graph.{param}=NAME "
                    f"(candidates: {shown})"
                )
            wanted = unique[0]
        name = _tensor_name(wanted)
        try:
            graph.get_tensor_by_name(name)
        except (KeyError, ValueError):
            shown = ", ".join(f"{c}:0" for c in candidates[:6]) or "none found"
            raise ModelError(
                f"{where}: no tensor {name!r} in the graph (graph.{param}); candidates: {shown}"
            ) from None
        found.append(name)
    return found[0], found[1]


_SCORE_OPS = {"Softmax", "BiasAdd", "MatMul", "Add", "AddV2", "Identity", "Sigmoid", "LogSoftmax"}


def _output_candidates(ops: list[Any]) -> list[tuple[bool, str]]:
    """(is a sink, name) of the ops that look like class scores: a float [batch, k] output of
    a final layer op, outside the training machinery; sinks (a frozen graph's output) first."""
    fed = _downstream([op for op in ops if op.type == "Placeholder"])
    found = []
    for op in ops:
        if op.type not in _SCORE_OPS or op not in fed or "gradients" in op.name.split("/"):
            continue
        out = op.outputs[0]
        if out.dtype.name in FLOATS and out.shape.rank == 2:
            hinted = any(w in op.name.lower() for w in ("logit", "output", "softmax", "prob"))
            found.append((not out.consumers(), hinted, op.name))
    found.sort(key=lambda f: (not f[0], not f[1]))
    return [(sink, name) for sink, _, name in found]


def _downstream(start: list[Any]) -> set[Any]:
    """The ops that depend on any op of `start`."""
    seen, frontier = set(start), list(start)
    while frontier:
        for out in frontier.pop().outputs:
            for consumer in out.consumers():
                if consumer not in seen:
                    seen.add(consumer)
                    frontier.append(consumer)
    return seen


def _analyse(where: str, graph_def: Any, input_name: str, output_name: str) -> Frozen:
    """Shapes, dtype, softmax and in-graph rescaling, read off the frozen graph."""
    t = tf()
    graph = t.Graph()
    with graph.as_default():
        t.compat.v1.import_graph_def(graph_def, name="")
    x, y = graph.get_tensor_by_name(input_name), graph.get_tensor_by_name(output_name)
    if x.dtype.name not in FLOATS:
        raise ModelError(
            f"{where}: the input {input_name} is {x.dtype.name}; advbench differentiates with "
            "respect to the input, so it must be a float tensor"
        )
    if x.shape.rank is None or y.shape.rank is None:
        raise ModelError(f"{where}: the input or output has no known rank")
    op = y.op
    while op.type == "Identity" and op.inputs:
        op = op.inputs[0].op
    pre = op.inputs[0].name if op.type == "Softmax" else None
    return Frozen(
        graph_def,
        input_name,
        output_name,
        tuple(x.shape.as_list()[1:]),
        x.dtype.name,
        tuple(y.shape.as_list()[1:]),
        pre,
        _rescaling(x.op),
    )


def _rescaling(op: Any) -> str | None:
    """ "0..255" when the input is first multiplied by 1/255 or 1/127.5 (or divided by 255 or
    127.5) inside the graph: the model expects raw pixel values and scales them itself."""
    seen, frontier = 0, list(op.outputs[0].consumers())
    while frontier and seen < 8:
        consumer = frontier.pop(0)
        seen += 1
        if consumer.type in ("Identity", "Cast"):
            frontier.extend(consumer.outputs[0].consumers())
            continue
        if consumer.type in ("Mul", "RealDiv", "Truediv"):
            for other in consumer.inputs:
                value = _scalar(other)
                if value is None:
                    continue
                factor = value if consumer.type == "Mul" else (1 / value if value else 0)
                if any(math.isclose(factor, f, rel_tol=1e-4) for f in (1 / 255, 1 / 127.5)):
                    return "0..255"
    return None


def _scalar(tensor: Any) -> float | None:
    """The value of a scalar (or single-element) Const, else None."""
    if tensor.op.type != "Const":
        return None
    from tensorflow.python.framework import tensor_util

    value = tensor_util.MakeNdarray(tensor.op.get_attr("value"))
    return float(value.reshape(-1)[0]) if value.size == 1 else None
