"""The 100 microgrids of the scale case, placed and sized on its network, written as TOML.

Used by :mod:`gridcosim.scenarios.tools.build_scale_case`; deterministic (random draws
from ``numpy.random.default_rng(SEED)`` in a fixed order). Placement, on distinct buses:

* :data:`MV_MICROGRIDS` at MV/LV substations whose LV grid the case replaced by an
  equivalent load, drawn among those buses: a district microgrid sized to that load;
* :data:`LV_PER_GRID` in each LV grid kept in full, drawn among its buses (not the LV
  busbar) whose downstream nominal load is :data:`LV_SHARE` of the grid's total: a
  neighbourhood microgrid sized to that downstream load.

Every microgrid is sized to its basis ``L`` (the equivalent load, or the downstream load,
in kW): PCC rating, local load, a dispatchable generator, a PV or wind unit, a battery and,
for half of them, a curtailable load; the ranges are the ``*_SHARE`` constants (uniform
draws, rounded to 0.1 kW). Bus loads follow their customer class, given per bus in
``[timeseries] customer_classes`` from their SimBench profile (:func:`profile_class`).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
from pandapower.auxiliary import pandapowerNet

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.network_sources.pandapower_balanced import read_pandapower_balanced

SEED = 20260101
MV_MICROGRIDS = 40
LV_PER_GRID = 3
#: Band of a candidate LV PCC's downstream load, as a share of its LV grid's load.
LV_SHARE = (0.1, 0.5)
#: Shares of the basis L (uniform ranges) and fixed ratios of the unit mix.
PCC_P_SHARE, PCC_Q_SHARE = 0.6, 0.2
LOCAL_LOAD_SHARE = (0.2, 0.4)
LOCAL_LOAD_Q_PER_P = 0.33  # power factor 0.95
GENERATOR_SHARE = (0.25, 0.45)
RENEWABLE_SHARE = (0.3, 0.6)
STORAGE_SHARE = (0.1, 0.2)
STORAGE_HOURS = (2.0, 4.0)
CURTAILABLE_SHARE = (0.05, 0.15)
PV_PROBABILITY, CURTAILABLE_PROBABILITY = 0.65, 0.5
GENERATOR_COST_USD_PER_KWH = (0.04, 0.09)
STARTUP_COST_USD_PER_KW = (0.05, 0.15)
CURTAIL_COST_USD_PER_KWH = (0.15, 0.35)
POWER_FACTORS = (0.85, 0.9, 0.95)
EFFICIENCIES = (0.85, 0.9, 0.95)
#: Scenario-level settings.
V_REF_PU, V_MIN_PU, V_MAX_PU = 1.04, 0.95, 1.05
PRICE_USD_PER_KWH = 0.11
DAYS, SLOTS, SLOT_HOURS = 7, 24, 1.0
#: SimBench load profile (its letters before the dash) -> customer class. G3 ("continuous
#: commercial operation") is the MV customers' industrial-like profile.
PROFILE_CLASSES = {"H0": "residential", "G3": "industrial", "G": "commercial",
                   "L": "agricultural"}


def profile_class(profile: str) -> str:
    """Customer class of a SimBench load profile name (``H0-A`` -> residential)."""
    stem = profile.split("-")[0]
    for prefix in (stem, stem[:1]):
        if prefix in PROFILE_CLASSES:
            return PROFILE_CLASSES[prefix]
    raise ValueError(f"no customer class for SimBench profile {profile!r}")


def bus_classes(net: pandapowerNet) -> dict[int, str]:
    """Class of every load bus: the class of the largest summed ``p_mw`` at the bus."""
    loads = net.load[net.load["p_mw"] > 0]
    frame = pd.DataFrame({"bus": loads["bus"].astype(int), "p": loads["p_mw"],
                          "cls": [profile_class(str(p)) for p in loads["profile"]]})
    totals = frame.groupby(["bus", "cls"])["p"].sum().reset_index()
    totals = totals.sort_values(["bus", "p", "cls"], ascending=[True, False, True])
    return {int(b): str(c) for b, c in totals.drop_duplicates("bus")[["bus", "cls"]].values}


def downstream_kw(network: NetworkData) -> pd.Series:
    """Nominal load (kW) of each bus's subtree, the bus itself included."""
    total = network.load_p_kw.copy()
    for bus in reversed(network.bus_ids):
        if bus != network.root_bus:
            total[network.parent[bus]] += total[bus]
    return total


def grid_of(net: pandapowerNet) -> pd.Series:
    """SimBench grid name of every bus (``LV2.101``, ``MV1.101``)."""
    return net.bus["subnet"].astype(str).str.split("_").str[0]


def placements(net: pandapowerNet, network: NetworkData,
               rng: np.random.Generator) -> list[tuple[int, float]]:
    """``(bus, basis_kw)`` of every microgrid, sorted by bus (see the module doc)."""
    equivalent = net.load[net.load["name"].astype(str).str.endswith(" equivalent")]
    mv_candidates = sorted(int(b) for b in equivalent["bus"])
    chosen = rng.choice(mv_candidates, size=MV_MICROGRIDS, replace=False)
    basis = network.load_p_kw
    out = [(int(b), float(basis[int(b)])) for b in chosen]
    below, grids = downstream_kw(network), grid_of(net)
    for trafo in net.trafo.sort_values("lv_bus").itertuples():
        busbar = int(trafo.lv_bus)
        members = grids.index[grids == grids[busbar]]
        share = below[members] / below[busbar]
        ok = sorted(int(b) for b in members[(share >= LV_SHARE[0]) & (share <= LV_SHARE[1])]
                    if b != busbar)
        out += [(int(b), float(below[int(b)]))
                for b in rng.choice(ok, size=LV_PER_GRID, replace=False)]
    return sorted(out)


def _kw(value: float) -> float:
    return round(float(value), 1)


def _draw(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    return float(rng.uniform(*bounds))


def microgrid_tables(bus: int, basis_kw: float, cls: str,
                     rng: np.random.Generator) -> list[str]:
    """TOML lines of one microgrid (its table and its units' tables)."""
    local = _kw(_draw(rng, LOCAL_LOAD_SHARE) * basis_kw)
    lines = ["[[microgrids]]", f'name = "mg{bus}"', f"bus = {bus}",
             f"pcc_p_max_kw = {_kw(PCC_P_SHARE * basis_kw)}",
             f"pcc_q_max_kvar = {_kw(PCC_Q_SHARE * basis_kw)}",
             f"local_load_kw = {local}", f"local_load_kvar = {_kw(LOCAL_LOAD_Q_PER_P * local)}",
             f'local_load_class = "{cls}"', ""]
    lines += _generator(bus, _draw(rng, GENERATOR_SHARE) * basis_kw, rng)
    lines += _renewable(bus, _draw(rng, RENEWABLE_SHARE) * basis_kw, rng)
    lines += _storage(bus, _draw(rng, STORAGE_SHARE) * basis_kw, rng)
    if rng.uniform() < CURTAILABLE_PROBABILITY:
        lines += _curtailable(bus, _draw(rng, CURTAILABLE_SHARE) * basis_kw, cls, rng)
    return lines


def _generator(bus: int, p_max_kw: float, rng: np.random.Generator) -> list[str]:
    p_max = _kw(p_max_kw)
    return ["[[microgrids.generators]]", f'name = "dg{bus}"',
            f"cost_usd_per_kwh = {round(_draw(rng, GENERATOR_COST_USD_PER_KWH), 3)}",
            f"startup_cost_usd = {round(_draw(rng, STARTUP_COST_USD_PER_KW) * p_max, 1)}",
            f"p_min_kw = {_kw(0.25 * p_max)}", f"p_max_kw = {p_max}",
            f"q_min_kvar = {_kw(-0.4 * p_max)}", f"q_max_kvar = {_kw(0.6 * p_max)}",
            f"ramp_kw_per_slot = {_kw(rng.uniform(0.4, 0.7) * p_max)}", ""]


def _renewable(bus: int, forecast_kw: float, rng: np.random.Generator) -> list[str]:
    kind = "pv" if rng.uniform() < PV_PROBABILITY else "wind"
    return ["[[microgrids.renewables]]", f'name = "{kind}{bus}"', f'kind = "{kind}"',
            f"forecast_kw = {_kw(forecast_kw)}",
            f"min_power_factor = {rng.choice(POWER_FACTORS)}", ""]


def _storage(bus: int, p_kw: float, rng: np.random.Generator) -> list[str]:
    p = _kw(p_kw)
    e_max = _kw(p * _draw(rng, STORAGE_HOURS))
    e_min = _kw(0.2 * e_max)
    e_initial = _kw(e_min + rng.uniform(0.2, 0.8) * (e_max - e_min))
    eta = rng.choice(EFFICIENCIES)
    return ["[[microgrids.storage]]", f'name = "ess{bus}"', f"p_charge_max_kw = {p}",
            f"p_discharge_max_kw = {p}", f"e_min_kwh = {e_min}", f"e_max_kwh = {e_max}",
            f"e_initial_kwh = {e_initial}", f"eta_charge = {eta}", f"eta_discharge = {eta}",
            ""]


def _curtailable(bus: int, demand_kw: float, cls: str, rng: np.random.Generator) -> list[str]:
    return ["[[microgrids.curtailable_loads]]", f'name = "cl{bus}"',
            f"demand_kw = {_kw(demand_kw)}", f'load_class = "{cls}"', "power_factor = 0.95",
            f"max_curtail_fraction = {round(rng.uniform(0.3, 0.6), 2)}",
            f"curtail_cost_usd_per_kwh = {round(_draw(rng, CURTAIL_COST_USD_PER_KWH), 3)}", ""]


def _wrapped(key: str, values: list[int], width: int = 92) -> Iterator[str]:
    """``key = [v, ...]`` over several lines of at most ``width`` characters."""
    yield f"{key} = ["
    line = "   "
    for value in values:
        piece = f" {value},"
        if len(line) + len(piece) > width:
            yield line
            line = "   "
        line += piece
    yield line
    yield "]"


def header_lines(name: str, network: NetworkData, classes: dict[int, str]) -> list[str]:
    """The scenario's top-level keys, ``[network]``, ``[horizon]`` and ``[timeseries]``."""
    lines = [
        "# Generated by python -m gridcosim.scenarios.tools.build_scale_case; do not edit.",
        f"# {len(network.buses)}-bus SimBench MV/LV rural feeder (scenarios/data/{name}),",
        f"# 100 microgrids, {DAYS} days hourly; see scenarios/data/{name}/README.md.",
        f'name = "{name}-100mg"',
        f'description = "{len(network.buses)}-bus SimBench MV/LV rural feeder, 100 '
        f'microgrids, {DAYS} days"',
        "curtailment_cost_usd_per_mwh = 500.0", "", "[network]", f'source = "{name}"',
        "base_kva = 1000.0", f"v_ref_pu = {V_REF_PU}", f"v_min_pu = {V_MIN_PU}",
        f"v_max_pu = {V_MAX_PU}", "", "[horizon]", f"slots = {SLOTS}",
        f"slot_hours = {SLOT_HOURS}", "", "[timeseries]", 'profile_set = "simbench_2weeks"',
        "start_day = 0", f"days = {DAYS}", f"price_usd_per_kwh = {PRICE_USD_PER_KWH}", "",
        "[timeseries.customer_classes]"]
    for cls in sorted(set(classes.values())):
        lines += _wrapped(cls, sorted(b for b, c in classes.items() if c == cls))
    return lines + [""]


def scenario_toml(net: pandapowerNet, name: str) -> str:
    """The scale case's scenario file for the stored net of data set ``name``."""
    rng = np.random.default_rng(SEED)
    network = read_pandapower_balanced(net, name=name, base_kva=1000.0)
    classes = bus_classes(net)
    lines = header_lines(name, network, classes)
    for bus, basis_kw in placements(net, network, rng):
        cls = classes.get(bus) or classes[_nearest_load_bus(network, bus, classes)]
        lines += microgrid_tables(bus, basis_kw, cls, rng)
    return "\n".join(lines).rstrip("\n") + "\n"


def _nearest_load_bus(network: NetworkData, bus: int, classes: dict[int, str]) -> int:
    """The first bus towards the root, or else below ``bus``, that has a class."""
    for up in network.path_to_root(bus):
        if up in classes:
            return up
    return next(b for b in network.bus_ids if b in classes)
