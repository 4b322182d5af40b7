"""The shipped three-phase feeders, read from their OpenDSS files.

* ``ieee123-3ph``: the unbalanced IEEE 123-bus feeder (``scenarios/data/ieee123/opendss``)
  with the modelling choices of the balanced ``ieee123`` data (bus 1 is the root, the
  substation, its regulator and line L115 above it are cut; regulators at neutral tap;
  the normally open switches Sw7, Sw8 and transformer XFM1 to the unloaded bus 610 left
  out) and the same bus numbering (1..123).
* ``eulv``: the IEEE European LV feeder (``scenarios/data/eulv/opendss``) below its
  transformer: bus 1, the LV busbar, is the root; 906 buses, 55 single-phase customers
  at 1 kW, PF 0.95 nominal (their profiles scale them).
* ``eulv-pandapower``: the same feeder from ``pandapower.networks.ieee_european_lv_asymmetric``
  (its ``on_peak_566`` loads, power factor corrected to 0.95; no load shapes); its
  default engine is pandapower's ``runpp_3ph``.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache
from importlib.resources import as_file, files

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.phase_sources.opendss_source import read_opendss
from gridcosim.scenarios.tools.convert_ieee123 import bus_id as ieee123_bus_id

PHASE_NETWORKS = ("ieee123-3ph", "eulv", "eulv-pandapower")
_SOURCES = {
    "ieee123-3ph": dict(folder="ieee123", master="IEEE123Master.dss", root="1", base_kv=4.16,
                        drop=("Line.L115", "Transformer.XFM1", "Line.Sw7", "Line.Sw8"),
                        bus_id=ieee123_bus_id),
    "eulv": dict(folder="eulv", master="Master.dss", root="1", base_kv=0.416,
                 drop=("Transformer.TR1",), bus_id=int),
}


def is_phase_network(name: str) -> bool:
    """Whether ``name`` is a shipped three-phase feeder."""
    return name in PHASE_NETWORKS


@cache
def load_phase_network(name: str, base_kva: float = 1000.0) -> PhaseNetwork:
    """A shipped three-phase feeder (cached: the same object for the same arguments).

    Args:
        name: ``"ieee123-3ph"`` or ``"eulv"``.
        base_kva: Three-phase power base in kVA.

    Raises:
        KeyError: If ``name`` is not a shipped three-phase feeder.

    """
    if name == "eulv-pandapower":
        from gridcosim.scenarios.phase_sources.pandapower_source import eulv_pandapower

        return replace(eulv_pandapower(), name=name).with_base(base_kva, 0.416)
    if name not in _SOURCES:
        raise KeyError(f"no three-phase feeder {name!r}; shipped: {', '.join(PHASE_NETWORKS)}")
    spec = _SOURCES[name]
    folder = files("gridcosim.scenarios") / "data" / str(spec["folder"]) / "opendss"
    with as_file(folder) as path:
        return read_opendss(path / str(spec["master"]), name=name, root=str(spec["root"]),
                            base_kva=base_kva, base_kv=float(spec["base_kv"]),  # type: ignore[arg-type]
                            drop=spec["drop"], bus_id=spec["bus_id"])  # type: ignore[arg-type]
