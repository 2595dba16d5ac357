"""`autoattack`: AutoAttack (Croce & Hein, ICML 2020), the ensemble as one attack.

Robust accuracy at a budget is the share of images that survive *every* attack; AutoAttack's
ensemble of parameter-free attacks is the field's standard for it. This plugin only says which
attacks make it up and with what settings (`components`); the engine runs them in order, each
only on the images the earlier ones left robust, stores each as a cell of its own
(`autoattack/apgd-ce`, `autoattack/apgd-t(target_rank=3)`, ...) and combines them into this
cell: per image, which component broke it and at which step (`advbench.engine.ensemble`).

Versions (AutoAttack's defaults for each component):

- `standard`: APGD-CE (100 steps, 1 restart), APGD-T (targeted DLR, 100 steps, on each of the
  `n_target_classes` runner-up classes of the clean logits in turn), FAB-T (on the same
  runner-ups) and Square (5,000 queries, p_init 0.8). Needs the `fab` attack; without it the
  run stops before any work, naming what is missing — a standard evaluation that silently
  skipped a component would not be AutoAttack's number.
- `fast`: APGD-CE and APGD-T only (AutoAttack's own "fast" subset, its white-box part).
- `rand`: for randomised models, APGD-CE and APGD-DLR (untargeted), each gradient the mean of
  `eot` draws (20, AutoAttack's `eot_iter`; advbench's `apgd.eot`), one restart: the
  reference's `rand` version. An image counts as broken only if every draw of the final
  check is fooled (`apgd`'s EOT rule), and the engine's confirmation then re-scores it.
- `custom`: `components`, some of apgd-ce, apgd-dlr (untargeted DLR, the reference's `plus`
  and `rand` versions; IBM ART's AutoAttack runs it), apgd-t, fab-t and square joined by `+`
  (`apgd-ce+square`; a comma separates the values of a sweep), run in that order.

As in the reference, APGD-T's k-th component attacks the k-th largest clean logit other than
the first (for a correctly classified image, the k-th most likely wrong class) and succeeds on
any misclassification. `eps` defaults to 0.3 for L∞ (advbench's MNIST budget); L2 has no such
convention here, so `norm=2` needs `eps` set. Square is L∞ only in advbench.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from advbench import Attack, Component, ImageSpec, Param, ParamError, ThreatModel, hookimpl

KINDS = ("apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "square")
VERSIONS = {
    "standard": ("apgd-ce", "apgd-t", "fab-t", "square"),
    "fast": ("apgd-ce", "apgd-t"),
    "rand": ("apgd-ce", "apgd-dlr"),
}
RAND_EOT = 20  # AutoAttack's eot_iter for version rand
LINF_EPS = 0.3
ITERATIONS = 100  # APGD and FAB steps, AutoAttack's default
SQUARE_QUERIES = 5000
SQUARE_P_INIT = 0.8


class AutoAttack(Attack):
    """APGD-CE, APGD-T, FAB-T and Square, each on the images the earlier ones left robust."""

    name = "autoattack"
    description = "AutoAttack ensemble: APGD-CE, APGD-T, FAB-T, Square (standard), fast or rand"
    params = (
        Param(
            "version",
            "standard",
            "standard (APGD-CE, APGD-T, FAB-T, Square), fast (APGD-CE, APGD-T), rand "
            "(APGD-CE, APGD-DLR with EOT, for randomised models) or custom",
            str,
            choices=("standard", "fast", "rand", "custom"),
        ),
        Param(
            "eot",
            None,
            f"draws averaged per APGD gradient (default {RAND_EOT} for version=rand, else 1)",
            int,
            minimum=1,
            neutral=True,  # unset: what every version computed before the choice existed
        ),
        Param("norm", "inf", "threat model: inf (L∞) or 2 (L2)", str, choices=("inf", "2")),
        Param(
            "eps",
            None,
            f"radius of the threat ball (default {LINF_EPS} for L∞; L2 needs it set)",
            float,
            minimum=0.0,
            min_exclusive=True,
        ),
        Param(
            "n_target_classes",
            None,
            "runner-up classes APGD-T and FAB-T aim at, one component each (default: every "
            "other class, classes - 1)",
            int,
            minimum=1,
        ),
        Param(
            "components",
            "",
            "custom version: some of " + "+".join(KINDS) + " joined by + (they run in that "
            "order; a comma would make a sweep)",
            str,
        ),
        Param("seed", -1, "seed of every component; -1 uses the run's --seed", int, minimum=-1),
    )

    def config(self, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The parameters, with L∞'s default budget filled in (so a cell's key and stored
        parameters always show the eps it ran at)."""
        values = super().config(overrides)
        if values["eps"] is None and values["norm"] == "inf":
            values["eps"] = LINF_EPS
        return values

    def check(self, params: Mapping[str, Any]) -> None:
        if params["eps"] is None and params["norm"] != "inf":
            raise ParamError("autoattack.eps must be set for norm=2 (no default L2 budget)")
        kinds = self.kinds(params)
        if "square" in kinds and params["norm"] != "inf":
            raise ParamError("autoattack: square is L∞ only; use norm=inf or leave square out")

    def for_dataset(self, params: Mapping[str, Any], spec: ImageSpec) -> dict[str, Any]:
        """Runner-up classes: every other class unless set, and never more than there are;
        APGD-T's targeted DLR needs 4 classes."""
        values = super().for_dataset(params, spec)
        most = spec.classes - 1
        if values["n_target_classes"] is None:
            values["n_target_classes"] = most
        if values["n_target_classes"] > most:
            raise ParamError(
                f"invalid value {values['n_target_classes']} for autoattack.n_target_classes: "
                f"must be <= {most} (classes - 1)"
            )
        if "apgd-t" in self.kinds(values) and spec.classes < 4:
            raise ParamError(
                f"autoattack: apgd-t's targeted DLR needs 4 classes or more; the dataset has "
                f"{spec.classes} (use version=custom without apgd-t)"
            )
        return values

    def kinds(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        """The component kinds this version runs, in order."""
        listed = [k.strip() for k in params["components"].split("+") if k.strip()]
        if params["version"] != "custom":
            if listed:
                raise ParamError("autoattack.components is for version=custom only")
            return VERSIONS[params["version"]]
        unknown = [k for k in listed if k not in KINDS]
        if unknown or not listed:
            raise ParamError(
                f"invalid autoattack.components {params['components']!r}: "
                f"choose from {', '.join(KINDS)}"
                + (f" (unknown: {', '.join(unknown)})" if unknown else "")
            )
        return tuple(k for k in KINDS if k in listed)

    def threat_model(self, params: Mapping[str, Any]) -> ThreatModel:
        return ThreatModel.bounded("linf" if params["norm"] == "inf" else "l2", params["eps"])

    def components(self, params: Mapping[str, Any]) -> list[Component]:
        eps, norm = repr(float(params["eps"])), params["norm"]
        common = {"eps": eps}
        if params["seed"] >= 0:
            common["seed"] = str(params["seed"])
        apgd = {**common, "norm": norm, "iterations": str(ITERATIONS), "restarts": "1"}
        draws = params["eot"] or (RAND_EOT if params["version"] == "rand" else 1)
        if draws > 1:
            apgd["eot"] = str(draws)
        if params["n_target_classes"] is None:
            raise ParamError("autoattack: n_target_classes is set from the dataset (for_dataset)")
        ranks = range(1, params["n_target_classes"] + 1)
        out: list[Component] = []
        for kind in self.kinds(params):
            if kind == "apgd-ce":
                out.append(Component("apgd-ce", "apgd", {**apgd, "loss": "ce"}))
            elif kind == "apgd-dlr":
                out.append(Component("apgd-dlr", "apgd", {**apgd, "loss": "dlr"}))
            elif kind == "apgd-t":
                out += [
                    Component(
                        f"apgd-t(target_rank={k})",
                        "apgd",
                        {**apgd, "loss": "dlr", "target_rank": str(k)},
                    )
                    for k in ranks
                ]
            elif kind == "fab-t":
                fab = {**common, "norm": norm}
                out += [
                    Component(f"fab-t(target_rank={k})", "fab", {**fab, "target_rank": str(k)})
                    for k in ranks
                ]
            else:
                square = {"iterations": str(SQUARE_QUERIES), "p_init": str(SQUARE_P_INIT)}
                out.append(Component("square", "square", {**common, **square}))
        return out


@hookimpl
def register_attacks(register) -> None:
    register(AutoAttack())
