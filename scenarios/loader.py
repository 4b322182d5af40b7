"""Load a :class:`~scenarios.schema.Scenario` from a built-in name, a TOML file or a dict.

Every problem found is reported at once in one :class:`~simulator.errors.ScenarioError`:
first the field errors pydantic collects, then (if there are none) the cross-field checks
of :mod:`scenarios.checks`. Each message reads ``<field.path>: <what is wrong> (got
<value>)``, with list indices written ``microgrids[2].bus``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gridcosim.scenarios.checks import check_scenario
from gridcosim.scenarios.schema import Scenario
from gridcosim.scenarios.errors import ScenarioError

MAX_REPR = 60


def _builtin_dir() -> Traversable:
    return files("gridcosim.scenarios") / "builtin"


def builtin_names() -> list[str]:
    """List the built-in scenario names (the ``*.toml`` stems in ``scenarios/builtin``).

    Returns:
        Sorted scenario names, e.g. ``["ieee123-nmg"]``.

    """
    return sorted(
        entry.name.removesuffix(".toml")
        for entry in _builtin_dir().iterdir()
        if entry.name.endswith(".toml") and entry.is_file()
    )


def load_scenario(source: str | Path) -> Scenario:
    """Load and validate a scenario from a built-in name or a TOML file path.

    Args:
        source: A name listed by :func:`builtin_names`, or the path of a TOML file.
            A :class:`~pathlib.Path` is always taken as a path.

    Returns:
        The validated, frozen scenario.

    Raises:
        ScenarioError: If the file is missing or unreadable, is not valid TOML, or
            describes an invalid scenario; ``problems`` lists every problem found.

    """
    if isinstance(source, str) and source in builtin_names():
        label = f"builtin:{source}"
        text = (_builtin_dir() / f"{source}.toml").read_text(encoding="utf-8")
    else:
        label = str(source)
        text = _read_file(Path(source))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{label}: TOML syntax error: {exc}"]) from None
    return scenario_from_dict(data)


def _read_file(path: Path) -> str:
    """Read a scenario file as UTF-8 text, turning every failure into a ScenarioError."""
    if not path.is_file():
        what = "is a directory, not a scenario file" if path.is_dir() else "no such file"
        names = ", ".join(builtin_names()) or "none"
        raise ScenarioError(
            [f"{path}: {what}, nor a built-in scenario name ({names}) (got {str(path)!r})"]
        )
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read scenario file: {exc}"]) from None


def scenario_from_dict(data: Mapping[str, Any]) -> Scenario:
    """Validate a scenario given as nested dicts and lists (e.g. parsed TOML).

    Args:
        data: The scenario's fields, as in a scenario TOML file.

    Returns:
        The validated, frozen scenario.

    Raises:
        ScenarioError: If any field is invalid (every field error is listed) or, when all
            fields are valid, if any cross-field check of :mod:`scenarios.checks` fails.

    """
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc)) from None
    problems = check_scenario(scenario)
    if problems:
        raise ScenarioError(problems)
    return scenario


def validation_problems(exc: ValidationError) -> list[str]:
    """Turn every error of a pydantic ValidationError into one message.

    Args:
        exc: The error raised by ``Scenario.model_validate``.

    Returns:
        ``<dotted path>: <message> (got <shortened input repr>)`` per error.

    """
    problems = []
    for error in exc.errors(include_url=False):
        message = error["msg"].removeprefix("Value error, ")
        got = _short_repr(error.get("input"))
        problems.append(f"{field_path(error['loc'])}: {message} (got {got})")
    return problems


def field_path(loc: tuple[int | str, ...]) -> str:
    """Write a pydantic error location as a dotted path, ``microgrids[2].storage[0].eta``.

    Args:
        loc: The ``loc`` of a pydantic error.

    Returns:
        The path; ``"scenario"`` for the top level.

    """
    path = ""
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "scenario"


def _short_repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
