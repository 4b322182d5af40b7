"""Load a :class:`~scenarios.schema.Scenario` from a built-in name, a TOML file or a dict.

Every problem found is reported at once in one :class:`~simulator.errors.ScenarioError`:
first the field errors pydantic collects, then (if there are none) the cross-field checks
of :mod:`scenarios.checks`. Each message reads ``<field.path>: <what is wrong> (got
<value>)``, with list indices written ``microgrids[2].bus``.
"""

from __future__ import annotations

import re
import reprlib
import tomllib
from collections.abc import Mapping
from importlib.resources import files
from importlib.resources.abc import Traversable
from itertools import islice
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gridcosim.scenarios.bus_names import resolve_bus_names
from gridcosim.scenarios.checks import check_scenario
from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.fields import SCENARIO_DIR
from gridcosim.scenarios.schema import Scenario

MAX_REPR = 60
#: Largest scenario file read, in bytes (checked before reading): real scenarios are a few kB.
MAX_FILE_BYTES = 10 * 1024 * 1024
#: Deepest nesting of arrays and inline tables in a file's text (checked before parsing, as
#: tomllib recurses per level) and of tables and arrays in the parsed data. A scenario
#: needs 3 (``[[microgrids.storage]]``: a table in an array in a table).
MAX_NESTING_DEPTH = 32

# What matters for nesting: brackets, and what hides brackets (strings and comments).
_TOKEN = re.compile(r"\"\"\"|'''|[\"'#\[\]{}]")
_SKIP = {
    '"""': re.compile(r'(?:\\[\s\S]|[^\\])*?"""(?!")'),
    "'''": re.compile(r"[\s\S]*?'''(?!')"),
    '"': re.compile(r'(?:\\.|[^"\\\n])*"'),
    "'": re.compile(r"[^'\n]*'"),
    "#": re.compile(r"[^\n]*"),
}
_OPEN = "[{"



class _ShortRepr(reprlib.Repr):
    """A bounded repr (depth, items, string length) that keeps the file's key order."""

    def repr_dict(self, x: dict, level: int) -> str:  # noqa: D102
        if not x:
            return "{}"
        if level <= 0:
            return "{...}"
        pieces = [f"{self.repr1(k, level - 1)}: {self.repr1(v, level - 1)}"
                  for k, v in islice(x.items(), self.maxdict)]
        return "{" + ", ".join(pieces + ["..."] * (len(x) > self.maxdict)) + "}"


_REPR = _ShortRepr()
_REPR.maxlevel = 3
_REPR.maxstring = _REPR.maxother = _REPR.maxlong = MAX_REPR


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
        folder = Path(str(_builtin_dir()))
    else:
        label = str(source)
        text = _read_file(Path(source))
        folder = Path(source).resolve().parent
    return scenario_from_dict(parse_toml(text, label), scenario_dir=folder)


def parse_toml(text: str, label: str) -> dict[str, Any]:
    """Parse scenario TOML text, with the nesting limit checked before and after parsing.

    Args:
        text: The file's text.
        label: The file's name for the messages.

    Returns:
        The parsed tables.

    Raises:
        ScenarioError: On a TOML syntax error or nesting deeper than
            :data:`MAX_NESTING_DEPTH`, naming ``label``.

    """
    _check_text_nesting(text, label)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError([f"{label}: TOML syntax error: {exc}"]) from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise ScenarioError([f"{label}: TOML value cannot be read: {exc}"]) from None
    except RecursionError:  # a backstop: the text check should have caught it
        raise ScenarioError([f"{label}: {_too_deep()} (got a RecursionError)"]) from None
    if _nesting_exceeds(data, MAX_NESTING_DEPTH):
        raise ScenarioError([f"{label}: {_too_deep()} (got deeper tables or arrays)"])
    return data


def _too_deep() -> str:
    return f"arrays, inline tables or tables nested deeper than {MAX_NESTING_DEPTH} levels"


def _check_text_nesting(text: str, label: str) -> None:
    """Raise a ScenarioError if brackets outside strings and comments nest too deeply."""
    depth, pos = 0, 0
    while match := _TOKEN.search(text, pos):
        token, pos = match.group(), match.end()
        if token in _SKIP:
            skipped = _SKIP[token].match(text, pos)
            if skipped is None:  # an unterminated string: tomllib reports it
                return
            pos = skipped.end()
        elif token in _OPEN:
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                line = text.count("\n", 0, pos) + 1
                raise ScenarioError([f"{label}: {_too_deep()} (got deeper at line {line})"])
        else:
            depth = max(0, depth - 1)


def _nesting_exceeds(data: object, limit: int) -> bool:
    """Whether dicts and lists in ``data`` nest deeper than ``limit`` (iteratively)."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children
                     if isinstance(child, (dict, list)))
    return False


def _read_file(path: Path) -> str:
    """Read a scenario file as UTF-8 text, turning every failure into a ScenarioError."""
    if not path.is_file():
        what = "is a directory, not a scenario file" if path.is_dir() else "no such file"
        names = ", ".join(builtin_names()) or "none"
        raise ScenarioError(
            [f"{path}: {what}, nor a built-in scenario name ({names}) (got {str(path)!r})"]
        )
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:  # never more than the limit, even if the file grows
            raw = b"" if size > MAX_FILE_BYTES else handle.read(MAX_FILE_BYTES + 1)
        if size > MAX_FILE_BYTES or len(raw) > MAX_FILE_BYTES:
            raise ScenarioError([f"{path}: scenario file larger than the limit of"
                                 f" {MAX_FILE_BYTES} bytes (got {max(size, len(raw))} bytes)"])
        return raw.decode("utf-8-sig")  # a byte-order mark is tolerated
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError([f"{path}: cannot read scenario file: {exc}"]) from None


def scenario_from_dict(data: Mapping[str, Any], *, scenario_dir: Path | None = None
                       ) -> Scenario:
    """Validate a scenario given as nested dicts and lists (e.g. parsed TOML).

    Args:
        data: The scenario's fields, as in a scenario TOML file.
        scenario_dir: Folder that relative file paths in the scenario (network and
            time-series files) are relative to; ``None``: the working directory.

    Returns:
        The validated, frozen scenario.

    Raises:
        ScenarioError: If any field is invalid (every field error is listed) or, when all
            fields are valid, if any cross-field check of :mod:`scenarios.checks` fails.

    """
    try:
        scenario = Scenario.model_validate(
            data, context={SCENARIO_DIR: Path.cwd() if scenario_dir is None else scenario_dir})
    except ValidationError as exc:
        raise ScenarioError(validation_problems(exc)) from None
    scenario = resolve_bus_names(scenario)
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
        The path; ``"scenario"`` for the top level. A bad dict key is named by the key
        itself (pydantic's ``[key]`` marker is dropped).

    """
    path = ""
    for part in loc:
        if part == "[key]":
            continue
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path.lstrip(".") or "scenario"


def _short_repr(value: object) -> str:
    text = _REPR.repr(value)  # bounded: never walks all of a huge or deeply nested input
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."
