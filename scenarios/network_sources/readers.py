"""Read a parsed network source into network data (the dispatch behind ``network_for``).

pandapower cases, SimBench grids and pandapower JSON files become a pandapower net first
(each with a clear :class:`ScenarioError` when it cannot be had), then network data.
"""

from __future__ import annotations

import inspect
from importlib.resources.abc import Traversable
from pathlib import Path

import pandapower as pp
from pandapower.auxiliary import pandapowerNet

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.network import PANDAPOWER_FILE, NetworkData
from gridcosim.scenarios.network_sources import NetworkSource, PhaseModel, SourceKind
from gridcosim.scenarios.network_sources.opendss_user import read_user_opendss
from gridcosim.scenarios.network_sources.pandapower_balanced import read_pandapower_balanced
from gridcosim.scenarios.phase_network import PhaseNetwork


def read_source(source: NetworkSource, *, base_kva: float, base_kv: float | None,
                phases: PhaseModel, root_bus: str | None) -> NetworkData | PhaseNetwork:
    """The network a source names, on the scenario's base.

    Args:
        source: The parsed ``[network] source``.
        base_kva: Power base in kVA.
        base_kv: The scenario's voltage base, ``None`` for the network's own.
        phases: Reading of a pandapower source (balanced or three-phase).
        root_bus: OpenDSS root bus name (``None``: the source's bus).

    Raises:
        ScenarioError: For a source that cannot be read or is not a radial feeder.

    """
    if source.kind is SourceKind.BUILTIN:
        from gridcosim.scenarios.network import load_network

        return load_network(source.target, base_kva=base_kva, base_kv=base_kv)
    if source.kind is SourceKind.OPENDSS:
        return read_user_opendss(Path(source.target), base_kva=base_kva, base_kv=base_kv,
                                 root=root_bus)
    net = {SourceKind.PANDAPOWER_CASE: pandapower_case, SourceKind.SIMBENCH: simbench_grid,
           SourceKind.PANDAPOWER_JSON: pandapower_file}[source.kind](source.target)
    name = Path(source.target).stem if source.is_file else source.target
    return read_pandapower_net(net, name=name, base_kva=base_kva, base_kv=base_kv,
                               phases=phases)


def read_pandapower_net(net: object, *, name: str, base_kva: float, base_kv: float | None,
                        phases: PhaseModel) -> NetworkData | PhaseNetwork:
    """A pandapower net read balanced or per phase (root: its ext_grid's bus)."""
    if phases is PhaseModel.BALANCED:
        return read_pandapower_balanced(net, name=name, base_kva=base_kva, base_kv=base_kv)
    from gridcosim.scenarios.phase_sources.pandapower_source import read_pandapower_3ph

    grids = net.ext_grid[net.ext_grid["in_service"].astype(bool)]  # type: ignore[attr-defined]
    if len(grids) != 1:
        raise ScenarioError([f"network {name}: expected one in-service ext_grid, found "
                             f"{len(grids)}"])
    return read_pandapower_3ph(net, name=name, root_bus=int(grids["bus"].iloc[0]),  # type: ignore[arg-type]
                               base_kva=base_kva, base_kv=base_kv)



def pandapower_case(function: str) -> pandapowerNet:
    """Call ``pandapower.networks.<function>()``; a clear error for an unknown name."""
    import pandapower.networks as pn  # lazy: the case module is large

    factory = getattr(pn, function, None)
    if not callable(factory) or function.startswith("_"):
        raise ScenarioError([f"network.source: pandapower.networks has no case {function!r} "
                             "(e.g. case33bw, case69, mv_oberrhein)"])
    required = [p for p in inspect.signature(factory).parameters.values()
                if p.default is inspect.Parameter.empty
                and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if required:
        raise ScenarioError([f"network.source: pandapower.networks.{function} needs arguments "
                             f"({', '.join(p.name for p in required)}); save the net with "
                             "pandapower.to_json and give the .json file"])
    return factory()


def simbench_grid(code: str) -> pandapowerNet:
    """SimBench grid ``code``; clear errors without the extra or for an unknown code."""
    try:
        import simbench
    except ImportError:
        raise ScenarioError(["network.source: simbench is not installed (pip install "
                             "'gridcosim[simbench]')"]) from None
    try:
        return simbench.get_simbench_net(code)
    except Exception as exc:  # simbench raises plain errors for unknown codes
        raise ScenarioError([f"network.source: no SimBench grid {code!r} ({exc}); codes look "
                             "like 1-LV-rural1--0-sw or 1-MV-urban--0-sw"]) from None


def pandapower_file(path: str) -> pandapowerNet:
    """A pandapower net from a JSON file; a clear error when it cannot be read."""
    if not Path(path).is_file():
        raise ScenarioError([f"network.source: no such file {path}"])
    try:
        return pp.from_json(path)
    except Exception as exc:  # pandapower raises many kinds for a bad file
        raise ScenarioError([f"network.source: {path} is not a pandapower JSON net ({exc})"]
                            ) from None


def builtin_pandapower(folder: Traversable, name: str, base_kva: float,
                       base_kv: float | None) -> NetworkData:
    """A shipped data set stored as a pandapower net (``scenarios/data/<name>/net.json``)."""
    net = pp.from_json_string((folder / PANDAPOWER_FILE).read_text(encoding="utf-8"))
    return read_pandapower_balanced(net, name=name, base_kva=base_kva, base_kv=base_kv)
