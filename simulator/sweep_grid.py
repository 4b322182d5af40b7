"""The grid of a parameter sweep: parameters by dotted path, their values, the variants.

A parameter names a scenario field by its dotted path, as in the scenario file:
``network.load_scale``, ``curtailment_cost_usd_per_mwh``, ``microgrids.0.storage.0.e_max_kwh``
(a list element by its index or by its ``name``: ``microgrids.mg7.storage.ess7.e_max_kwh``),
or a run option under ``run.``: the fields of
:class:`~gridcosim.simulator.cosim.RunSettings` (``run.seed``, ``run.noise``, ``run.horizon``,
``run.commit``, ``run.slots``, ``run.ac_cuts``) and of
:class:`~gridcosim.simulator.decomposition.settings.DecompositionSettings`
(``run.price_signals``, ``run.max_iterations``, ``run.time_limit_s``, ...). Text values
are parsed by the field's type (TOML syntax for lists and tables). Every variant is
validated before anything runs; a problem is an :class:`InputError` naming the parameter.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import json
import tomllib
import types
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Annotated, Any, Literal, Union, get_args, get_origin, get_type_hints

from pydantic import BaseModel

from gridcosim.scenarios.errors import InputError, ScenarioError
from gridcosim.scenarios.loader import scenario_from_dict
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import RunSettings
from gridcosim.simulator.decomposition.settings import DecompositionSettings

#: The namespace of run options: ``run.<option>``.
RUN_PREFIX = "run."
#: Prefix of the summary table's parameter columns.
PARAM_COLUMN = "param."
#: Run options a sweep does not vary: the settings tree itself, the elastic weights, and the
#: microgrid processes of one run (a sweep runs its runs in parallel instead).
NOT_SWEPT = frozenset({"decomposition", "weights", "workers"})
_TRUE, _FALSE = frozenset({"true", "1", "yes", "on"}), frozenset({"false", "0", "no", "off"})


class ValueKind(StrEnum):
    """How a parameter's text values are parsed."""

    BOOL = "bool"
    INT = "int"
    FLOAT = "float"
    TEXT = "text"  # strings, enums, literals
    TOML = "toml"  # lists, tables: a TOML value, e.g. [0.8, 1.0]


@dataclass(frozen=True)
class SweepParam:
    """One swept parameter and its values (parsed).

    Attributes:
        path: The dotted path as given (``network.load_scale``, ``run.noise``).
        values: Its values, in the order given.

    """

    path: str
    values: tuple[Any, ...]

    @property
    def column(self) -> str:
        """Its column in the summary table, ``param.<path>``."""
        return PARAM_COLUMN + self.path

    @property
    def is_run_option(self) -> bool:
        """Whether it is a run option (``run.<option>``) rather than a scenario field."""
        return self.path.startswith(RUN_PREFIX)


@dataclass(frozen=True)
class Variant:
    """One point of the grid: its parameter values, its scenario and its run settings."""

    values: tuple[tuple[str, Any], ...]
    scenario: Scenario
    settings: RunSettings


def split_param(text: str) -> tuple[str, list[str]]:
    """Split ``PATH=v1,v2,...`` (commas inside brackets or quotes do not split).

    Raises:
        InputError: If there is no ``=``, no path or an empty value.

    """
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise InputError(f"--param {text!r}: expected PATH=VALUE[,VALUE...]")
    parts = _split_values(values)
    if any(not part for part in parts):
        raise InputError(f"--param {text!r}: empty value")
    return path, parts


def _split_values(text: str) -> list[str]:
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    return [*parts, text[start:].strip()]


def resolve_params(scenario: Scenario, params: Mapping[str, Sequence[Any] | str]
                   ) -> tuple[SweepParam, ...]:
    """Check every path against the schema and parse its values by the field's type.

    Args:
        scenario: The base scenario.
        params: Path -> values (a list, or the command line's ``"v1,v2"`` text).

    Raises:
        InputError: For an unknown path, a value of the wrong type or a repeated path.

    """
    doc = scenario.model_dump(mode="json")
    resolved = []
    for path, values in params.items():
        texts = _split_values(values) if isinstance(values, str) else list(values)
        if not texts:
            raise InputError(f"--param {path}: no values")
        kind = run_option_kind(path) if path.startswith(RUN_PREFIX) else field_kind(doc, path)
        resolved.append(SweepParam(path, tuple(_parse(kind, path, v) for v in texts)))
    return tuple(resolved)


def run_option_kind(path: str) -> ValueKind:
    """The value kind of a run option ``run.<option>``.

    Raises:
        InputError: If there is no such option.

    """
    options = _run_options()
    name = path.removeprefix(RUN_PREFIX)
    if name not in options:
        raise InputError(f"--param {path}: no run option {name!r} (options: "
                         f"{', '.join(sorted(options))})")
    return _kind(options[name])


def _run_options() -> dict[str, Any]:
    hints = {**get_type_hints(DecompositionSettings), **get_type_hints(RunSettings)}
    return {k: v for k, v in hints.items() if k not in NOT_SWEPT}


def field_kind(doc: Mapping[str, Any], path: str) -> ValueKind:
    """The value kind of a scenario field, checked against the scenario's dict form.

    Raises:
        InputError: If the path names no field of this scenario.

    """
    return _kind(_walk(doc, path)[0])


def _walk(doc: Mapping[str, Any], path: str) -> tuple[Any, list[str | int]]:
    """The field type at ``path`` and the keys that reach it in the dict form."""
    node_type: Any = Scenario
    data: Any = doc
    keys: list[str | int] = []
    for depth, part in enumerate(path.split(".")):
        where = ".".join(str(k) for k in keys[:depth]) or "the scenario"
        if data is None:
            raise InputError(f"--param {path}: {where} is not set in this scenario")
        node_type, key = _step(_unwrap(node_type), data, part, where, path)
        keys.append(key)
        data = data[key]
    return node_type, keys


def _step(node_type: Any, data: Any, part: str, where: str, path: str) -> tuple[Any, Any]:
    """One step of a path: the child's type and its key in ``data``."""
    if isinstance(node_type, type) and issubclass(node_type, BaseModel):
        if part not in node_type.model_fields:
            raise InputError(f"--param {path}: {where} has no field {part!r} (fields: "
                             f"{', '.join(node_type.model_fields)})")
        return node_type.model_fields[part].annotation, part
    origin = get_origin(node_type)
    if origin is tuple:
        return get_args(node_type)[0], _element(data, part, where, path)
    if origin is dict:
        if part not in data:
            raise InputError(f"--param {path}: {where} has no key {part!r}")
        return get_args(node_type)[1], part
    raise InputError(f"--param {path}: {where} is a value, it has no field {part!r}")


def _element(items: list[Any], part: str, where: str, path: str) -> int:
    """The index of a list element given by its index or its ``name``."""
    if part.isdigit():
        if int(part) < len(items):
            return int(part)
        raise InputError(f"--param {path}: {where} has {len(items)} elements (got {part})")
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if part in names:
        return names.index(part)
    raise InputError(f"--param {path}: {where} has no element {part!r} (give an index, or "
                     f"a name: {', '.join(str(n) for n in names if n is not None) or 'none'})")


def _unwrap(annotation: Any) -> Any:
    """The type under ``Annotated[...]`` and ``X | None``."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            members = [a for a in get_args(annotation) if a is not type(None)]
            if len(members) != 1:
                return annotation
            annotation = members[0]
        else:
            return annotation


def _kind(annotation: Any) -> ValueKind:
    leaf = _unwrap(annotation)
    if leaf is bool:
        return ValueKind.BOOL
    if leaf is int:
        return ValueKind.INT
    if leaf is float:
        return ValueKind.FLOAT
    if leaf is str or get_origin(leaf) is Literal or (
            isinstance(leaf, type) and issubclass(leaf, Enum)):
        return ValueKind.TEXT
    return ValueKind.TOML


def _parse(kind: ValueKind, path: str, value: Any) -> Any:
    """A value of ``kind``: text is parsed, an int becomes a float for a float field."""
    if not isinstance(value, str):
        is_number = isinstance(value, int) and not isinstance(value, bool)
        return float(value) if kind is ValueKind.FLOAT and is_number else value
    text = value.strip()
    try:
        return _PARSERS[kind](text)
    except (ValueError, tomllib.TOMLDecodeError):
        raise InputError(f"--param {path}={text}: not {_EXPECTED[kind]}") from None


def _bool(text: str) -> bool:
    if text.lower() in _TRUE | _FALSE:
        return text.lower() in _TRUE
    raise ValueError(text)


_PARSERS = {ValueKind.BOOL: _bool, ValueKind.INT: int, ValueKind.FLOAT: float,
            ValueKind.TEXT: str, ValueKind.TOML: lambda t: tomllib.loads(f"v = {t}")["v"]}
_EXPECTED = {ValueKind.BOOL: "a boolean (true or false)", ValueKind.INT: "an integer",
             ValueKind.FLOAT: "a number", ValueKind.TEXT: "text",
             ValueKind.TOML: "a TOML value (e.g. [0.8, 1.0])"}


def build_variants(scenario: Scenario, params: Sequence[SweepParam], settings: RunSettings,
                   seeds: int = 1) -> list[Variant]:
    """Every point of the grid, validated: the product of the values, seeds innermost.

    Each combination is validated as a whole (values that must change together, such as
    a generator's ``initial_on`` and ``initial_p_kw``, are fine). The error of an invalid
    one names the parameter values that are invalid on their own, else the combination.

    Args:
        scenario: The base scenario.
        params: The swept parameters.
        settings: The base run settings.
        seeds: Seeds per point: ``settings.seed``, ``settings.seed + 1``, ...

    Raises:
        InputError: If a value or a combination is invalid.

    """
    paths = [p.path for p in params]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise InputError(f"--param {repeated[0]}: given more than once")
    if seeds < 1 or (seeds > 1 and "run.seed" in paths):
        raise InputError(f"--seeds {seeds}: must be at least 1, and 1 when run.seed is swept")
    doc = scenario.model_dump(mode="json")
    grid = itertools.product(*[[(p.path, v) for v in p.values] for p in params])
    scenarios: dict[str, Scenario] = {}
    points = [_variant(doc, scenario, settings, point, scenarios) for point in grid]
    return [_with_seed(v, settings.seed + i) if "run.seed" not in paths else v
            for v in points for i in range(seeds)]


def _with_seed(variant: Variant, seed: int) -> Variant:
    return dataclasses.replace(variant, settings=dataclasses.replace(variant.settings, seed=seed))


def _variant(doc: dict[str, Any], base: Scenario, settings: RunSettings,
             values: tuple[tuple[str, Any], ...], scenarios: dict[str, Scenario]
             ) -> Variant:
    """The validated variant of these values (an InputError names the culprits)."""
    problems, variant = _try_variant(doc, base, settings, values, scenarios)
    if variant is not None:
        return variant
    alone = [(p, v) for p, v in values
             if _try_variant(doc, base, settings, ((p, v),), scenarios)[1] is None]
    label = ", ".join(f"{p}={_show(v)}" for p, v in (alone or values))
    raise InputError(f"--param {label}: {'; '.join(problems)}")


def _try_variant(doc: dict[str, Any], base: Scenario, settings: RunSettings,
                 values: tuple[tuple[str, Any], ...], scenarios: dict[str, Scenario]
                 ) -> tuple[list[str], Variant | None]:
    """The variant of these values, or the problems that make it invalid."""
    fields = {p: v for p, v in values if not p.startswith(RUN_PREFIX)}
    options = {p.removeprefix(RUN_PREFIX): v for p, v in values if p.startswith(RUN_PREFIX)}
    cache_key = json.dumps(sorted(fields.items()), default=str)
    try:
        if cache_key not in scenarios:
            scenarios[cache_key] = _edited(doc, fields) if fields else base
        run = _settings(settings, options)
    except ScenarioError as err:
        return err.problems, None
    except (ValueError, TypeError) as err:
        return [str(err)], None
    problems = fit_problems(scenarios[cache_key], run)
    return problems, None if problems else Variant(values, scenarios[cache_key], run)


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _edited(doc: dict[str, Any], fields: Mapping[str, Any]) -> Scenario:
    edited = copy.deepcopy(doc)
    for path, value in fields.items():
        *parents, last = _walk(edited, path)[1]
        node = edited
        for key in parents:
            node = node[key]
        node[last] = value
    return scenario_from_dict(edited)


def _settings(base: RunSettings, options: Mapping[str, Any]) -> RunSettings:
    own = {f.name for f in dataclasses.fields(RunSettings)}
    run = {k: v for k, v in options.items() if k in own}
    dec = {k: v for k, v in options.items() if k not in own}
    return dataclasses.replace(base, **run, decomposition=dataclasses.replace(
        base.decomposition, **dec))


def fit_problems(scenario: Scenario, settings: RunSettings) -> list[str]:
    """Run settings that cannot fit this scenario, found without building the model."""
    problems = []
    if settings.slots is not None and settings.slots > scenario.total_slots:
        problems.append(f"run.slots ({settings.slots}) exceeds the scenario's "
                        f"{scenario.total_slots} slots")
    horizon = settings.horizon or scenario.horizon.slots
    if scenario.market is None and settings.commit > horizon:
        problems.append(f"run.commit ({settings.commit}) must be in 1..horizon ({horizon})")
    return problems
