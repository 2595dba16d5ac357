"""Typed, validated hyper-parameters shared by models and attacks.

Plugins declare their parameters as `Param` objects; the host parses `--set name.param=value`
text against them, so every plugin gets the same validation and the same one-line errors.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from advbench.errors import ParamError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Param:
    """One hyper-parameter: its type, default, allowed range and a one-line description."""

    name: str
    default: Any
    doc: str
    kind: type = float
    minimum: float | None = None
    maximum: float | None = None
    min_exclusive: bool = False
    choices: tuple[Any, ...] | None = None
    #: A check beyond range and choices: what is wrong with a value (None: nothing), and
    #: `accept_text` says what it accepts (`describe`'s range column).
    accept: Callable[[Any], str | None] | None = None
    accept_text: str = ""
    #: A parameter added to an existing attack whose default leaves the attack exactly as it
    #: was before: at that default it stays out of a run's identity, so a run stored before
    #: the parameter existed resumes instead of starting again.
    neutral: bool = False

    def range_text(self) -> str:
        """The allowed values in words ("> 0.0 <= 1.0", "one of inf, 2"; "" when unbounded)."""
        parts = []
        if self.minimum is not None:
            parts.append(f"{'>' if self.min_exclusive else '>='} {self.minimum}")
        if self.maximum is not None:
            parts.append(f"<= {self.maximum}")
        if self.choices:
            parts.append("one of " + ", ".join(map(str, self.choices)))
        if self.accept_text:
            parts.append(self.accept_text)
        return " ".join(parts)

    def parse(self, text: str, owner: str) -> Any:
        """Turn command-line text into a checked value of this parameter's type."""
        where = f"{owner}.{self.name}"
        raw = text.strip()
        try:
            if self.kind is bool:
                low = raw.lower()
                if low not in _TRUE | _FALSE:
                    raise ValueError
                value: Any = low in _TRUE
            elif self.kind is int:
                value = int(raw)
            elif self.kind is float:
                value = float(raw)
            else:
                value = raw
        except ValueError:
            raise ParamError(
                f"invalid value {text!r} for {where}: expected {self.kind.__name__}"
            ) from None
        return self.check(value, owner)

    def check(self, value: Any, owner: str) -> Any:
        """Reject values outside the declared range or choices; return the value typed."""
        where = f"{owner}.{self.name}"
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if self.kind is float and isinstance(value, float) and not math.isfinite(value):
            raise ParamError(f"invalid value {value!r} for {where}: must be finite")
        if not isinstance(value, self.kind) or (self.kind is int and isinstance(value, bool)):
            raise ParamError(f"invalid value {value!r} for {where}: expected {self.kind.__name__}")
        if self.choices is not None and value not in self.choices:
            options = ", ".join(map(str, self.choices))
            raise ParamError(f"invalid value {value!r} for {where}: choose one of {options}")
        if self.minimum is not None:
            too_low = value <= self.minimum if self.min_exclusive else value < self.minimum
            if too_low:
                bound = ">" if self.min_exclusive else ">="
                raise ParamError(
                    f"invalid value {value!r} for {where}: must be {bound} {self.minimum}"
                )
        if self.maximum is not None and value > self.maximum:
            raise ParamError(f"invalid value {value!r} for {where}: must be <= {self.maximum}")
        wrong = self.accept(value) if self.accept is not None else None
        if wrong:
            raise ParamError(f"invalid value {value!r} for {where}: {wrong}")
        return value


def resolve(
    owner: str, declared: Iterable[Param], overrides: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Defaults of `declared` updated by `overrides` (text or typed values), all checked."""
    by_name = {p.name: p for p in declared}
    values = {name: p.default for name, p in by_name.items()}
    for key, raw in (overrides or {}).items():
        if key not in by_name:
            known = ", ".join(sorted(by_name)) or "none"
            raise ParamError(f"unknown parameter {owner}.{key} (known: {known})")
        param = by_name[key]
        values[key] = param.parse(raw, owner) if isinstance(raw, str) else param.check(raw, owner)
    return values


def identity(params: tuple[Param, ...], values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` as a run's identity holds them: a `neutral` parameter at its default is left
    out (the attack computes exactly what it did before the parameter existed)."""
    neutral = {q.name: q.default for q in params if q.neutral}
    return {k: v for k, v in values.items() if k not in neutral or v != neutral[k]}
