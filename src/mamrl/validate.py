"""Value rules of the typed configs, in one place: type (an integer is not a bool, a number is not
a string), finiteness, ranges, allowed names, lists.

A config dataclass declares each field's rule beside it, `learning_rate: float = setting(0.7,
Number(above=0, at_most=1))`, and checks them all in `__post_init__` with `check_fields(self)`.
`config_from_dict` builds one from a mapping (a TOML/JSON table, `--set` values), refusing unknown
keys. A rule is also a plain validator, `rule(value, label) -> normalised value`, so configs that
are checked field by field from layered dicts (the sweep's, the failure experiment's) use the
same rules. Every refusal is one `MamrlError` line: where the value came from, the field, the bad
value and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mamrl.errors import MamrlError

INT64_MAX = 2**63 - 1
"""Default upper bound of an integer: counts end up in int64 arrays and compiled code."""
SEED_MAX = 2**32 - 1
"""Largest seed every command accepts (seeds are in [0, 2**32 - 1], numpy's classic seed range)."""


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _bound(value: float) -> str:
    return f"{value:,}" if isinstance(value, int) and abs(value) >= 10_000 else f"{value:g}"


@dataclass(frozen=True)
class Number:
    """A real number (or with `integer`, an integer) within optional bounds; always finite."""

    above: float | None = None
    at_least: float | None = None
    below: float | None = None
    at_most: float | None = None
    integer: bool = False
    optional: bool = False
    """None is allowed (and kept)."""

    def describe(self) -> str:
        """e.g. `a number in (0, 1]`, `an integer >= 1`."""
        what = "an integer" if self.integer else "a finite number"
        low = ("(", self.above) if self.above is not None else ("[", self.at_least) if self.at_least is not None else None
        high = (")", self.below) if self.below is not None else ("]", self.at_most) if self.at_most is not None else None
        if high and high[1] == INT64_MAX:
            high = None  # the default bound of an integer; not worth saying
        if low and high:
            return f"{what} in {low[0]}{_bound(low[1])}, {_bound(high[1])}{high[0]}"
        if low:
            return f"{what} {'>' if low[0] == '(' else '>='} {_bound(low[1])}"
        if high:
            return f"{what} {'<' if high[0] == ')' else '<='} {_bound(high[1])}"
        return what

    def __call__(self, value: Any, label: str) -> Any:
        if value is None and self.optional:
            return None
        given = value
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise MamrlError(f"{label}: expected {self.describe()}, got {_shown(given)}")
        if self.integer:
            if isinstance(value, numbers.Integral):
                value = int(value)
            elif math.isfinite(value) and float(value).is_integer():
                value = int(value)  # TOML/JSON may write 16 as 16.0
            else:
                raise MamrlError(f"{label}: expected {self.describe()}, got {_shown(given)}")
        else:
            try:
                value = float(value)
            except OverflowError:  # an int beyond float range
                raise MamrlError(f"{label}: expected {self.describe()}, got {_shown(given)}") from None
            if not math.isfinite(value):
                raise MamrlError(f"{label}: expected {self.describe()}, got {_shown(given)}")
        if ((self.above is not None and not value > self.above) or (self.at_least is not None and not value >= self.at_least)
                or (self.below is not None and not value < self.below) or (self.at_most is not None and not value <= self.at_most)):
            raise MamrlError(f"{label}: expected {self.describe()}, got {_shown(given)}")
        return value


def integer(at_least: int | None = None, at_most: int = INT64_MAX, *, optional: bool = False) -> Number:
    """An integer within bounds (not a bool; an integral float such as 16.0 becomes 16)."""
    return Number(at_least=at_least, at_most=at_most, integer=True, optional=optional)


SEED = integer(0, SEED_MAX)
"""The rule of every seed."""


@dataclass(frozen=True)
class Flag:
    """true or false (not 0/1, not a string)."""

    def __call__(self, value: Any, label: str) -> bool:
        if not isinstance(value, bool):
            raise MamrlError(f"{label}: expected true or false, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Choice:
    """One of a fixed set of names."""

    names: tuple[str, ...]

    def __call__(self, value: Any, label: str) -> str:
        if not isinstance(value, str) or value not in self.names:
            raise MamrlError(f"{label}: expected one of {', '.join(self.names)}, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Text:
    """A non-empty string."""

    optional: bool = False

    def __call__(self, value: Any, label: str) -> str | None:
        if value is None and self.optional:
            return None
        if not isinstance(value, str) or not value.strip():
            raise MamrlError(f"{label}: expected a non-empty string, got {_shown(value)}")
        return value


@dataclass(frozen=True)
class Items:
    """A list (given as a list or tuple; kept as a tuple) of values of one rule."""

    item: Any
    non_empty: bool = False
    distinct: bool = False

    def __call__(self, value: Any, label: str) -> tuple[Any, ...]:
        if not isinstance(value, (list, tuple)):
            raise MamrlError(f"{label}: expected a list, got {_shown(value)}")
        if self.non_empty and not value:
            raise MamrlError(f"{label}: must not be empty")
        out = tuple(self.item(v, f"{label}[{k}]") for k, v in enumerate(value))
        if self.distinct and len(set(out)) != len(out):
            twice = next(v for k, v in enumerate(out) if v in out[:k])
            raise MamrlError(f"{label}: {twice!r} is listed twice")
        return out


RULE = "mamrl.rule"
"""The metadata key of a field's rule."""


def setting(default: Any, rule: Any) -> Any:
    """A dataclass field with a default and a rule (`check_fields` applies it)."""
    return dataclasses.field(default=default, metadata={RULE: rule})


def field_rules(cls: Any) -> dict[str, Any]:
    """{field name: rule} of the fields of dataclass `cls` that declare one."""
    return {f.name: f.metadata[RULE] for f in dataclasses.fields(cls) if RULE in f.metadata}


def check_fields(config: Any, prefix: str | None = None) -> None:
    """Apply every field rule of dataclass instance `config`, storing the normalised values
    (frozen dataclasses too); errors name the field as `<prefix>.<field>` (default prefix: the
    class's `config_name`; "" = the bare field name), or by the class's `field_labels[field]`
    (e.g. the command-line option that sets it)."""
    prefix = getattr(config, "config_name", type(config).__name__) if prefix is None else prefix
    labels = getattr(type(config), "field_labels", {})
    for name, rule in field_rules(type(config)).items():
        label = labels.get(name) or (f"{prefix}.{name}" if prefix else name)
        object.__setattr__(config, name, rule(getattr(config, name), label))


def config_from_dict(cls: Any, values: Any, where: str) -> Any:
    """An instance of dataclass `cls` from a mapping of its fields (the others keep their
    defaults), each value checked by its rule; errors name `<where>.<field>`."""
    if not isinstance(values, Mapping):
        raise MamrlError(f"{where}: expected a table of settings, got {_shown(values)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    checked: dict[str, Any] = {}
    for key, value in values.items():
        if key not in fields:
            raise MamrlError(f"{where}: unknown setting {key!r} (known: {', '.join(fields)})")
        rule = fields[key].metadata.get(RULE)
        checked[key] = rule(value, f"{where}.{key}") if rule is not None else value
    try:
        return cls(**checked)
    except MamrlError as exc:
        message = str(exc)
        own = getattr(cls, "config_name", None)
        if own and message.startswith(own + ".") and where != own:
            message = where + message[len(own):]  # name the field as the caller knows it
        raise MamrlError(message if message.startswith(where) else f"{where}: {message}") from None


__all__ = [
    "Choice",
    "Flag",
    "INT64_MAX",
    "Items",
    "Number",
    "RULE",
    "SEED",
    "SEED_MAX",
    "Text",
    "check_fields",
    "config_from_dict",
    "field_rules",
    "integer",
    "setting",
]
