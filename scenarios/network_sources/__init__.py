"""Where a scenario's network comes from: the ``[network] source`` string, parsed and read.

Five kinds of source (:class:`SourceKind`):

* a built-in data set name (``"ieee123"``, ``"eulv"``, ...: :func:`available_networks`);
* ``"pandapower:<function>"``: a case of ``pandapower.networks`` (e.g. ``case33bw``), called
  without arguments;
* ``"simbench:<code>"``: a SimBench grid (``pip install gridcosim[simbench]``);
* a path ending ``.json``: a pandapower net saved with ``pandapower.to_json``;
* a path ending ``.dss``: an OpenDSS master file (always three-phase).

Paths are relative to the scenario file's folder (the loader makes them absolute). A
pandapower or SimBench net is read as a balanced feeder (:mod:`.pandapower_balanced`)
or, with ``phases = "three-phase"``, per phase; an OpenDSS file by :mod:`.opendss_user`
(:mod:`scenarios.phase_sources.pandapower_source` reads pandapower per phase). This
package is part of the network layer (it may import pandapower and OpenDSS); this
module itself imports neither, so the scenario schema can use it. Readings are cached
per source, base and file modification time: checks and runs read a file once.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path

__all__ = ["NetworkSource", "PhaseModel", "SourceKind", "parse_source", "read_cached",
           "resolve_path"]


class SourceKind(StrEnum):
    """The kind of a ``[network] source``."""

    BUILTIN = "builtin"
    PANDAPOWER_CASE = "pandapower"
    SIMBENCH = "simbench"
    PANDAPOWER_JSON = "json"
    OPENDSS = "dss"


class PhaseModel(StrEnum):
    """How a pandapower source is read: balanced (LinDistFlow) or per phase (LinDist3Flow)."""

    BALANCED = "balanced"
    THREE_PHASE = "three-phase"


@dataclass(frozen=True)
class NetworkSource:
    """A parsed ``[network] source``: its kind and what it names (a name, code or path)."""

    kind: SourceKind
    target: str

    @property
    def is_file(self) -> bool:
        """Whether the source is a file path (``.json`` or ``.dss``)."""
        return self.kind in (SourceKind.PANDAPOWER_JSON, SourceKind.OPENDSS)


def parse_source(text: str) -> NetworkSource:
    """Parse a ``[network] source`` string (see the module doc for the five forms).

    Raises:
        ValueError: For an empty name or code, or an unknown prefix.

    """
    text = text.strip()
    prefix, sep, rest = text.partition(":")
    if sep and prefix in (SourceKind.PANDAPOWER_CASE, SourceKind.SIMBENCH):
        if not rest.strip():
            raise ValueError(f"{prefix}: needs a name after the colon, e.g. "
                             + ("pandapower:case33bw" if prefix == "pandapower"
                                else "simbench:1-LV-rural1--0-sw"))
        return NetworkSource(SourceKind(prefix), rest.strip())
    suffix = Path(text).suffix.lower()
    if suffix == ".json":
        return NetworkSource(SourceKind.PANDAPOWER_JSON, text)
    if suffix == ".dss":
        return NetworkSource(SourceKind.OPENDSS, text)
    if sep and len(prefix) > 1:
        raise ValueError(f"unknown source prefix {prefix!r}: use a built-in name, "
                         "pandapower:<case>, simbench:<code>, or a .json / .dss file")
    if not text:
        raise ValueError("must not be empty")
    return NetworkSource(SourceKind.BUILTIN, text)


def resolve_path(source: str, base_dir: Path | None) -> str:
    """The source with a relative ``.json``/``.dss`` path made absolute against ``base_dir``."""
    parsed = parse_source(source)
    if not parsed.is_file or base_dir is None or Path(parsed.target).is_absolute():
        return source
    return str((base_dir / parsed.target).resolve())


def modification_time(source: NetworkSource) -> float:
    """The file's modification time (0 for sources that are not files): part of the cache key."""
    path = Path(source.target)
    return path.stat().st_mtime if source.is_file and path.is_file() else 0.0


@lru_cache(maxsize=16)
def read_cached(source: NetworkSource, mtime: float, base_kva: float, base_kv: float | None,
                phases: PhaseModel, root_bus: str | None):  # noqa: ANN201
    """Read ``source`` (see :func:`scenarios.network.network_for`); cached per arguments."""
    del mtime  # only part of the cache key
    from gridcosim.scenarios.network_sources.readers import read_source

    return read_source(source, base_kva=base_kva, base_kv=base_kv, phases=phases,
                       root_bus=root_bus)
