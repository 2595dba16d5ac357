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
from typing import Any, ClassVar

from advbench.contract.lazy_tf import tf
from advbench.contract.model import Network
from advbench.contract.params import Param
from advbench.contract.steps import BatchInputs, BatchOutputs, StepInputs
from advbench.errors import ParamError

CLIP_PARAMS: tuple[Param, ...] = (
    Param("clip_min", 0.0, "lowest valid pixel value"),
    Param("clip_max", 1.0, "highest valid pixel value"),
)
SEED_PARAM = Param("seed", -1, "random seed; -1 uses the run's --seed", int, minimum=-1)
TARGET_CHOICES = ("none", "all", *map(str, range(10)))


def target_param(default: str = "none", allow_none: bool = True) -> Param:
    """The `target` parameter: "none" (untargeted), "all" (every other class) or a digit."""
    choices = TARGET_CHOICES if allow_none else TARGET_CHOICES[1:]
    return Param(
        "target",
        default,
        "none (untargeted), all (every other class) or a class 0-9",
        str,
        choices=choices,
    )


class Attack:
    """An evasion attack on a batch of images: a step loop, unless `build` is overridden."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    params: ClassVar[tuple[Param, ...]] = ()
    #: Attacks that ignore the test image's content (fooling images from noise) attack every row.
    attacks_misclassified: ClassVar[bool] = False

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
        return values

    def is_targeted(self, params: Mapping[str, Any]) -> bool:
        """Does this run aim at target classes (the `target` parameter is not "none")?"""
        return params.get("target", "none") != "none"

    def check(self, params: Mapping[str, Any]) -> None:
        """Cross-parameter validation beyond each parameter's own range (raise ParamError)."""

    def iterations(self, params: Mapping[str, Any]) -> int:
        """The most steps any image gets."""
        return int(params["iterations"])

    def linf_budget(self, params: Mapping[str, Any]) -> float | None:
        """The largest L∞ distance from the original the attack may reach, if bounded."""
        return None

    def l2_budget(self, params: Mapping[str, Any]) -> float | None:
        """The largest L2 distance from the original the attack may reach, if bounded."""
        return None

    def budget(self, params: Mapping[str, Any]) -> tuple[str, float] | None:
        """The ("linf" | "l2", eps) this attack's results are reported at, if budgeted."""
        return None

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
        """The next adversarial images [k, 784] from the current ones (`s.x`)."""
        raise NotImplementedError(f"attack {self.name} must implement step or build")

    def step_with_state(self, net: Network, s: StepInputs, params: Mapping[str, Any]):
        """(next images, next state); stateless attacks only write `step`."""
        return self.step(net, s, params), s.state

    def max_images(self, params: Mapping[str, Any]) -> int | None:
        """Attack only the first N images of the run (None: all of them)."""
        return None

    def success(self, net: Network, logits, s: StepInputs, params: Mapping[str, Any]):
        """bool [k]: has each image reached the attack's goal? `logits` are of `s.x`."""
        pred = tf().argmax(logits, 1)
        if self.is_targeted(params):
            return tf().equal(pred, s.targets)
        return tf().not_equal(pred, s.labels)

    def build(self, net: Network, b: BatchInputs, params: Mapping[str, Any]) -> BatchOutputs | None:
        """The whole attack on a batch as graph ops, for attacks that are not a step loop.

        None (the default): the engine's early-stopping driver runs `initial`, `step` and
        `success` in one `tf.while_loop`.
        """
        return None


def clip(x, params: Mapping[str, Any]):
    """Keep pixels inside the attack's valid range.

    `tf.clip_by_value` (a `Minimum` then a `Maximum`): measured side by side in the ifgsm loop
    on 10,000 images, the single `ClipByValue` kernel gives the same values but is 2–3 % slower.
    """
    return tf().clip_by_value(x, params["clip_min"], params["clip_max"])
