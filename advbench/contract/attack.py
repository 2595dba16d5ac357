"""What every attack offers: validated parameters and a batched, in-graph construction.

Most attacks write only `step` (and optionally `initial`, extra per-image `state`, and a
`success` criterion); the engine's early-stopping driver (`advbench.engine.driver`) owns the
loop: it keeps only the images that have not succeeded yet, stops each at its first success and
records iterations-to-flip. An attack whose structure does not fit a step loop (C&W's binary
search) overrides `build` and returns the same outputs. Either way everything runs batched in
one graph.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, NamedTuple

from advbench.contract.dataset import ImageSpec
from advbench.contract.lazy_tf import tf
from advbench.contract.losses import beyond_tolerance, least_adversarial
from advbench.contract.model import Network
from advbench.contract.params import Param
from advbench.contract.steps import BatchInputs, BatchOutputs, StepInputs
from advbench.contract.threat import ThreatModel
from advbench.errors import ParamError, PluginError

CLIP_PARAMS: tuple[Param, ...] = (
    Param("clip_min", 0.0, "lowest valid pixel value"),
    Param("clip_max", 1.0, "highest valid pixel value"),
)
SEED_PARAM = Param(
    "seed", -1, "random seed; -1 uses the run's --seed", int, minimum=-1, maximum=2**31 - 1
)
#: The most steps an attack may take: the driver's loop counter and iterations-to-flip are
#: int32, so a larger budget would wrap around and silently run 0 or 1 steps.
MAX_STEPS = 2**31 - 1


def target_param(default: str = "none", allow_none: bool = True) -> Param:
    """The `target` parameter: "none" (untargeted), "all" (every other class) or a class
    number (checked against the dataset's classes by `Attack.for_dataset`)."""
    words = ("none", "all") if allow_none else ("all",)

    def accept(value: str) -> str | None:
        if value in words or value.isdigit():
            return None
        return f"choose {' or '.join(words)} or a class number"

    doc = "all (every other class) or a class number"
    return Param(
        "target",
        default,
        f"none (untargeted), {doc}" if allow_none else doc,
        str,
        accept=accept,
        accept_text=" or ".join(words) + " or a class number",
    )


class QueryCost(NamedTuple):
    """The model evaluations a step-loop attack spends on each image (`Attack.query_cost`).

    `start`: before the first step (scoring the starting point); `per_step`: every step, its
    proposals and the new point's scores (what the success check reads) included. The driver
    charges a row `start + per_step × steps it took`: a row is not charged for the step the
    batched loop computes alongside its success and throws away, which a one-image attacker
    would never have queried."""

    start: int
    per_step: int


class Component(NamedTuple):
    """One attack of an ensemble: its label in the ensemble's cell keys (`apgd-ce`), the
    registered attack that runs it and that attack's parameter overrides (text, as `--set`)."""

    label: str
    attack: str
    overrides: dict[str, str]


class Attack:
    """An evasion attack on a batch of images: a step loop, unless `build` is overridden."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    #: Attacks that ignore the test image's content (fooling images from noise) attack every row.
    attacks_misclassified: ClassVar[bool] = False
    #: Whether a run that names no attacks runs this one. An example, or a plugin too slow or
    #: specialised for every run, says False: installing it must not change a user's runs.
    in_every: ClassVar[bool] = True

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Refuse advbench 0.1's budget methods: the engine would silently ignore them."""
        super().__init_subclass__(**kwargs)
        old = sorted(set(vars(cls)) & {"linf_budget", "l2_budget", "budget"})
        if old:
            raise PluginError(
                f"attack class {cls.__name__} defines {', '.join(old)} (advbench 0.1): "
                "define threat_model(params) returning a ThreatModel instead"
            )

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """This attack's parameters: defaults updated by `overrides`, validated together."""
        from advbench.contract.params import resolve

        values = resolve(self.name, self.params, overrides)
        if "clip_min" in values and values["clip_min"] >= values["clip_max"]:
            raise ParamError(
                f"invalid clip range for {self.name}: clip_min {values['clip_min']} "
                f">= clip_max {values['clip_max']}"
            )
        self.check(values)
        steps = self.step_budget(values)
        if steps is not None and not 0 <= steps <= MAX_STEPS:
            which = f"{self.name}.iterations" if "iterations" in values else self.name
            raise ParamError(
                f"{which}: {steps} steps is outside 0..{MAX_STEPS} (the engine counts "
                "steps in int32)"
            )
        return values

    def step_budget(self, params: Mapping[str, Any]) -> int | None:
        """`iterations(params)`, or None for an attack that builds its own graph without one
        (or, like `jsma`, has none before `for_dataset`)."""
        try:
            return int(self.iterations(params))
        except KeyError:
            return None

    def is_targeted(self, params: Mapping[str, Any]) -> bool:
        """Does this run aim at target classes (the `target` parameter is not "none")?"""
        return params.get("target", "none") != "none"

    def check(self, params: Mapping[str, Any]) -> None:
        """Cross-parameter validation beyond each parameter's own range (raise ParamError)."""

    def for_dataset(self, params: Mapping[str, Any], spec: ImageSpec) -> dict[str, Any]:
        """`params` for images of `spec` (shape, classes, value range): fills in what depends
        on the dataset and refuses what it cannot take, with a ParamError. The default refuses
        a `target` class the dataset does not have and, for a dataset whose pixels are not in
        [0, 1], moves the default clip range (`CLIP_PARAMS`) to its value range; an attack with
        class-count parameters (AutoAttack's runner-up classes) extends it."""
        params = dict(params)
        lo, hi = spec.value_range
        if (params.get("clip_min"), params.get("clip_max")) == (0.0, 1.0) and (lo, hi) != (0, 1):
            params["clip_min"], params["clip_max"] = float(lo), float(hi)
        target = params.get("target")
        if isinstance(target, str) and target.isdigit() and int(target) >= spec.classes:
            raise ParamError(
                f"invalid value {target!r} for {self.name}.target: the dataset has classes "
                f"0..{spec.classes - 1}"
            )
        return params

    def iterations(self, params: Mapping[str, Any]) -> int:
        """The most steps any image gets."""
        return int(params["iterations"])

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        """How far this attack may move an image and what its results are reported at
        (`ThreatModel`: bounded, minimal or unbounded — the default)."""
        return ThreatModel.unbounded()

    def seed(self, params: Mapping[str, Any], run_seed: int) -> int:
        """The attack's own `seed` parameter when set (>= 0), else the run's seed."""
        own = params.get("seed", -1)
        return run_seed if own is None or own < 0 else int(own)

    def initial(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """The starting images (default: the originals)."""
        return s.x0

    def initial_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]) -> tuple:
        """Extra per-image tensors carried from step to step (leading dimension k)."""
        return ()

    def step(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """The next adversarial images [k, pixels] from the current ones (`s.x`)."""
        raise NotImplementedError(f"attack {self.name} must implement step or build")

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """(next images, next state); stateless attacks only write `step`."""
        return self.step(net, s, params), s.state

    def logits_of(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """The logits of `s.x` that the success check scores (default: a forward pass).

        A score-based attack already computed them when it made `s.x` (it accepted a proposal
        it had scored) and can carry them in its state: returning them here saves the driver
        one forward pass per step, half of such an attack's work.

        With an `eot` parameter above 1 they are, per image, the least adversarial of that
        many passes (`least_adversarial`: the very passes the step's expected gradient uses),
        so that success means every draw is fooled: against a random model one lucky draw
        would stop the image, and the engine's confirmation — a fresh draw — would likely
        withdraw the claim."""
        draws = int(params.get("eot", 1))
        if draws == 1:
            return net.logits(s.x)
        targeted = self.is_targeted(params)
        return least_adversarial(net, s.x, s.targets if targeted else s.labels, targeted, draws)

    def query_cost(self, params: Mapping[str, Any]) -> QueryCost | None:
        """The forward passes each step spends on an image, for a step-loop attack that counts
        its queries (a score- or decision-based attack, whose cost is its queries).

        None (the default): not counted. The count must be every model evaluation the attack
        needs, the success check's included: with the default `logits_of` that is one more
        per step (and one at the start); an attack that carries its logits in its state
        (`square`) already paid for them."""
        return None

    def query_budget(self, params: Mapping[str, Any]) -> int | None:
        """The most model evaluations one image may cost, for a score- or decision-based
        attack whose queries, not its steps, are its work: the engine's default cell time
        limit grows with it (a step is otherwise counted as one forward and one backward
        pass). Default: `query_cost`'s start plus every step's, None where not counted; an
        attack that counts its queries in its own graph (`hopskipjump`) says its cap."""
        cost, steps = self.query_cost(params), self.step_budget(params)
        return None if cost is None or steps is None else cost.start + cost.per_step * steps

    def components(self, params: Mapping[str, Any]) -> list[Component] | None:
        """An ensemble's attacks, in the order they run (None: this is a single attack).

        The engine runs each component as a cell of its own, only on the images the earlier
        components left robust, then combines them into this attack's cell: per image, the
        first component that broke it (`advbench.engine.ensemble`). An ensemble has no step
        loop of its own."""
        return None

    def max_images(self, params: Mapping[str, Any]) -> int | None:
        """Attack only the first N images of the run (None: all of them)."""
        return None

    def success(self, net: Network, logits, s: StepInputs, params: Mapping[str, Any]):
        """bool [k]: has each image reached the attack's goal? `logits` are of `s.x`.

        The goal must hold by the engine's confirmation margin (`beyond_tolerance`): a point
        within float32 rounding of the boundary is not yet a success, and the loop goes on,
        rather than stop there and have the engine withdraw the claim."""
        targeted = self.is_targeted(params)
        return beyond_tolerance(logits, s.targets if targeted else s.labels, targeted)

    def build(self, net: Network, b: BatchInputs, params: Mapping[str, Any]) -> BatchOutputs | None:
        """The whole attack on a batch as graph ops, for attacks that are not a step loop.

        None (the default): the engine's early-stopping driver runs `initial`, `step` and
        `success` in one `tf.while_loop`.
        """
        return None


def loop_problem(attack: Attack) -> str | None:
    """Why the engine could not bound `attack`'s step loop, or None.

    A step-loop attack needs a most-steps count: an `iterations` parameter (the default
    `iterations()` reads it) or its own `iterations()`. An attack that overrides `build` or
    `components` (an ensemble) runs no step loop. Checked when the attack is registered, not
    when its graph is first built.
    """
    cls = type(attack)
    if cls.build is not Attack.build or cls.iterations is not Attack.iterations:
        return None
    if cls.components is not Attack.components:
        return None  # an ensemble: its components run the loops
    if any(p.name == "iterations" for p in attack.params):
        return None
    return (
        "has no `iterations` parameter and overrides neither iterations() nor build(): "
        "the engine cannot bound its step loop"
    )


def clip(x, params: Mapping[str, Any]):
    """Keep pixels inside the attack's valid range.

    `tf.clip_by_value` (a `Minimum` then a `Maximum`), not the single `ClipByValue` kernel: the
    same values, and the pair is faster in the ifgsm loop (README, Performance).
    """
    return tf().clip_by_value(x, params["clip_min"], params["clip_max"])
