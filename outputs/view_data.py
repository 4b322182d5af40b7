"""The data of ``gridcosim view``: a run's feeder, voltages and exchanges as one JSON document.

Everything comes from the trajectory file (committed slots only, as
:func:`gridcosim.outputs.reader.read` gives them) and from the bus coordinates of the
network data set the stored scenario names (root attribute ``scenario_json`` ->
``network.source``, loaded by :func:`gridcosim.scenarios.network.load_network`). The
document (:func:`page_data`) holds:

* ``meta``: file, scenario, status, slots, total cost (as ``gridcosim inspect`` adds it),
  the scenario's voltage limits;
* ``buses``: every bus (``id``, ``x``, ``y``; ``null`` coordinates where the data set has
  none), ``lines`` (pairs of indexes into ``buses``: parent, child), ``root`` and
  ``layout``: ``drawable`` and ``note`` (why the feeder is not drawn, or how many buses
  are missing; empty when all is well);
* ``phases``: ``["a", "b", "c"]`` on a three-phase feeder, ``[]`` on a balanced one;
* ``voltages``: per recorded voltage (``name``, ``label``) its ``values``:
  ``phase -> [slot][bus]`` in p.u. (``null``: no value; key ``"bus"`` on a balanced feeder);
* ``exchanges``: the microgrids' exchange with the network (``p_ex_kw``, ``q_ex_kvar``) or,
  in a market run, the suppliers' cleared output, per slot.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gridcosim.outputs.overview import summary_dict
from gridcosim.outputs.reader import Trajectory, read

#: The voltages of ``bus/`` in the page's order (the first one with values is shown first).
BUS_VOLTAGES = (("vm_real_pu", "realised (AC power flow)"),
                ("vm_pu", "plan (AC power flow)"),
                ("vm_lin_pu", "plan (LinDistFlow)"))
PHASES = ("a", "b", "c")
#: The ``values`` key of a balanced feeder's voltages (one value per bus).
BALANCED = "bus"
#: Decimals kept of a voltage in p.u. (1e-6 p.u. is far below any limit's meaning).
DIGITS = 6
#: The schema's defaults when the stored scenario names no limits.
DEFAULT_LIMITS = {"v_min_pu": 0.9, "v_max_pu": 1.1, "v_ref_pu": 1.0}


@dataclass(frozen=True)
class Feeder:
    """A feeder's drawing: bus ids (as strings), coordinates, lines and what is missing.

    Attributes:
        buses: Bus ids in the data set's order.
        xy: Coordinates of the buses that have them.
        lines: ``(parent, child)`` bus ids.
        root: The root bus (``None`` when the data set could not be loaded).
        note: Why nothing can be drawn (empty when the data set was loaded).

    """

    buses: list[str] = field(default_factory=list)
    xy: dict[str, tuple[float, float]] = field(default_factory=dict)
    lines: list[tuple[str, str]] = field(default_factory=list)
    root: str | None = None
    note: str = ""


def load_feeder(source: str | None) -> Feeder:
    """The buses, coordinates and lines of the network data set ``source``."""
    from gridcosim.scenarios.errors import GridcosimError
    from gridcosim.scenarios.network import network_from_source

    if not source:
        return Feeder(note="the file's scenario names no network data set")
    try:
        net = network_from_source(source)
    except (OSError, KeyError, ValueError, ImportError, GridcosimError) as err:
        return Feeder(note=f"the network data set {source!r} could not be loaded ({err})")
    edges = net.branches if hasattr(net, "branches") else net.lines
    xy = {str(bus): (float(row.x), float(row.y)) for bus, row in net.buses.iterrows()
          if np.isfinite(row.x) and np.isfinite(row.y)}
    lines = [(str(a), str(b)) for a, b in zip(edges["from_bus"], edges["to_bus"], strict=True)]
    return Feeder([str(b) for b in net.buses.index], xy, lines, str(net.root_bus))


def split_phase_ids(ids: list[str]) -> list[tuple[str, str]] | None:
    """``bus.phase`` ids as ``(bus, phase)``; ``None`` when they are plain bus ids."""
    parts = [str(i).rpartition(".") for i in ids]
    if parts and all(sep and phase in PHASES for _, sep, phase in parts):
        return [(bus, phase) for bus, _, phase in parts]
    return None


def _by_phase(frame: pd.DataFrame) -> tuple[list[str], dict[str, np.ndarray]]:
    """A ``bus/`` variable as bus ids and ``phase -> (slots, buses)`` arrays."""
    values = frame.to_numpy(dtype=float)
    split = split_phase_ids([str(c) for c in frame.columns])
    if split is None:
        return [str(c) for c in frame.columns], {BALANCED: values}
    buses = list(dict.fromkeys(bus for bus, _ in split))
    column = {bus: i for i, bus in enumerate(buses)}
    out = {p: np.full((values.shape[0], len(buses)), np.nan) for p in PHASES
           if any(q == p for _, q in split)}
    for j, (bus, phase) in enumerate(split):
        out[phase][:, column[bus]] = values[:, j]
    return buses, out


def recorded_voltages(tr: Trajectory) -> tuple[list[str], list[dict[str, Any]]]:
    """The file's bus ids and its voltages: ``name``, ``label``, ``values`` (arrays).

    A market run's ``phase_bus/vm_<phase>_pu``, else the variables of ``bus/`` that hold
    at least one finite value.
    """
    market = tr.groups.get("phase_bus", {})
    if market:
        ids = [str(i) for i in tr.entity_ids["phase_bus"]]
        values = {p: market[f"vm_{p}_pu"].to_numpy(dtype=float) for p in PHASES
                  if f"vm_{p}_pu" in market}
        return ids, [{"name": "phase_bus/vm_pu", "label": "AC power flow (adopted clearing)",
                      "values": values}]
    group, ids, out = tr.groups.get("bus", {}), [], []
    for var, label in BUS_VOLTAGES:
        if var in group and np.isfinite(group[var].to_numpy(dtype=float)).any():
            ids, values = _by_phase(group[var])
            out.append({"name": f"bus/{var}", "label": label, "values": values})
    return ids, out


def page_buses(feeder: Feeder, file_ids: list[str]) -> list[str]:
    """The data set's buses, then any bus of the file it does not know."""
    known = set(feeder.buses)
    return feeder.buses + [b for b in file_ids if b not in known]


def layout(feeder: Feeder, buses: list[str]) -> dict[str, Any]:
    """Whether the feeder can be drawn (``drawable``) and what the page says (``note``).

    It is drawn when the data set was loaded and at least two buses have distinct
    coordinates; the note says why not, or how many buses are left out (empty: none).
    """
    if feeder.note:
        return {"drawable": False, "note": f"The feeder is not drawn: {feeder.note}."}
    placed = [b for b in buses if b in feeder.xy]
    if len({feeder.xy[b] for b in placed}) < 2:
        return {"drawable": False,
                "note": f"The feeder is not drawn: the network data set has no bus "
                        f"coordinates ({len(placed)} of {len(buses)} buses have x, y)."}
    missing = len(buses) - len(placed)
    return {"drawable": True, "note": f"{missing} of {len(buses)} buses have no coordinates "
                                      f"and are not drawn." if missing else ""}


def _json_matrix(values: np.ndarray) -> list[list[float | None]]:
    """Rows of rounded floats, ``None`` for NaN and infinities (not valid JSON)."""
    rounded = np.round(values.astype(float), DIGITS)
    return [[float(v) if np.isfinite(v) else None for v in row] for row in rounded]


def _json_list(values: Any) -> list[float | None]:
    return _json_matrix(np.asarray(values, dtype=float)[None, :])[0]


def aligned(values: np.ndarray, ids: list[str], buses: list[str]) -> np.ndarray:
    """``(slots, len(ids))`` values reordered to ``buses`` (NaN where a bus has none)."""
    column = {bus: j for j, bus in enumerate(ids)}
    out = np.full((values.shape[0], len(buses)), np.nan)
    for i, bus in enumerate(buses):
        if bus in column:
            out[:, i] = values[:, column[bus]]
    return out


def exchanges(tr: Trajectory, config: dict[str, Any], root: str | None) -> dict[str, Any]:
    """The microgrids' exchange (or the market suppliers' output) per slot, with their buses.

    Returns:
        ``title``, ``q`` (whether reactive power is recorded) and ``rows``: ``name``,
        ``bus`` (``None`` if unknown), ``p`` and ``q`` per slot (``q`` ``None`` if absent).

    """
    if "microgrid" in tr.groups or not {"market_der", "upstream"} & set(tr.groups):
        buses = {m.get("name"): m.get("bus") for m in config.get("microgrids", [])}
        group = tr.groups.get("microgrid", {})
        rows = [_row(name, buses.get(name), group.get("p_ex_kw"), group.get("q_ex_kvar"))
                for name in tr.entity_ids.get("microgrid", [])]
        return {"title": "Microgrids: exchange with the network (export positive)",
                "q": "q_ex_kvar" in group, "rows": rows}
    ders = {d.get("name"): d.get("bus") for d in config.get("market", {}).get("ders", [])}
    rows = [_row(name, ders.get(name), tr.groups["market_der"].get("p_kw"), None)
            for name in tr.entity_ids.get("market_der", [])]
    rows += [_row(name, root, tr.groups["upstream"].get("p_kw"), None)
             for name in tr.entity_ids.get("upstream", [])]
    return {"title": "Market suppliers: cleared output (into the feeder positive)", "q": False,
            "rows": rows}


def _row(name: str, bus: Any, p: pd.DataFrame | None, q: pd.DataFrame | None
         ) -> dict[str, Any]:
    return {"name": str(name), "bus": None if bus is None else str(bus),
            "p": _json_list(p[name]) if p is not None else None,
            "q": _json_list(q[name]) if q is not None else None}


def slot_labels(tr: Trajectory) -> list[str]:
    """Each slot's start as text: a date and time, or hours."""
    if isinstance(tr.time, pd.DatetimeIndex):
        return [t.strftime("%Y-%m-%d %H:%M") for t in tr.time]
    return [f"{h:g} h" for h in tr.time_h]


def _meta(path: Path, facts: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    attrs, network = facts["attrs"], config.get("network", {})
    costs = {k: v for k, v in facts["cost_usd"].items() if k != "total"}
    total = facts["cost_usd"]["total"]
    return {"file": path.name, "scenario": attrs.get("scenario"),
            "description": config.get("description", ""), "status": facts["status"],
            "status_text": facts["status_text"], "slots": facts["slots"],
            "windows": facts["windows"], "seed": attrs.get("seed"),
            "created_utc": attrs.get("created_utc"),
            "gridcosim_version": attrs.get("gridcosim_version"),
            "network": network.get("source"), "market": config.get("market") is not None,
            "total_cost_usd": float(total) if costs and np.isfinite(total) else None,
            **{k: float(network.get(k, v)) for k, v in DEFAULT_LIMITS.items()}}


def page_data(path: str | Path) -> dict[str, Any]:
    """Everything the page shows of a trajectory file, JSON-serialisable (no NaN).

    Raises:
        OSError, KeyError, ValueError: If the file is not a readable trajectory.

    """
    path = Path(path)
    facts, tr = summary_dict(path), read(path)
    config = json.loads(tr.attrs.get("scenario_json") or "{}")
    feeder = load_feeder(config.get("network", {}).get("source"))
    ids, voltages = recorded_voltages(tr)
    buses = page_buses(feeder, ids)
    index = {bus: i for i, bus in enumerate(buses)}
    phases = sorted({p for v in voltages for p in v["values"]} - {BALANCED})
    return {
        "meta": _meta(path, facts, config), "slot_labels": slot_labels(tr),
        "buses": [{"id": b, "x": feeder.xy.get(b, (None, None))[0],
                   "y": feeder.xy.get(b, (None, None))[1]} for b in buses],
        "root": feeder.root, "layout": layout(feeder, buses),
        "lines": [[index[a], index[b]] for a, b in feeder.lines
                  if a in feeder.xy and b in feeder.xy],
        "phases": phases,
        "voltages": [{"name": v["name"], "label": v["label"],
                      "values": {p: _json_matrix(aligned(m, ids, buses))
                                 for p, m in v["values"].items()}} for v in voltages],
        "exchanges": exchanges(tr, config, feeder.root),
    }
