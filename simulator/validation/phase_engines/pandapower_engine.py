"""pandapower ``runpp_3ph`` as a :class:`~.base.PhaseEngine`, with a guard for each trap.

The net is built once from the :class:`PhaseNetwork` (:func:`build_net`); a solve writes the
operating point into its tables in bulk and runs ``runpp_3ph``. A failure is a result:

* before the run, :func:`check_runpp_3ph_traps` lists what ``runpp_3ph`` would get wrong
  without saying so (each one measured with pandapower 3.2.2 and 3.5.6): loads,
  asymmetric loads and (asymmetric) sgens whose ``type`` is not ``wye``/``delta`` are
  dropped (the ``create_sgen`` default is ``None`` since 3.5, ``"wye"`` up to 3.4);
  storage, wards and motors are ignored; voltage-dependent loads are solved as constant
  power; a ``gen`` gives NaN results (3.5) or raises ``KeyError`` (up to 3.4);
  missing or NaN ``r0``/``x0``/``c0`` raise or give NaN; ext_grid short-circuit data
  missing raises, NaN gives all-NaN results with ``converged`` True;
* after the run: ``converged``, no NaN in the voltages (pandapower #3068: an overloaded
  feeder gives NaN with ``converged`` True), and the slack balance: the ext_grid's P over
  its three phases equals the in-service loads (of any type, so that a dropped element
  shows) minus the generation plus the branch and shunt losses, within
  ``balance_rtol`` of the gross power.

What ``runpp_3ph`` cannot represent is rejected when the engine is built
(:func:`network_problems`): lines or buses with fewer than three phases (pandapower's
lines are always three-phase), phase matrices that are not circulant (equal diagonal,
equal off-diagonal entries) within :data:`CIRCULANT_RTOL`, since a sequence impedance
pair holds only such a matrix, zero-impedance lines, shunts not on all three phases.
Three-phase shunts are honoured: ``runpp_3ph`` puts them in all three sequence networks
(a third of ``q_mvar`` per phase, times |V|²; checked against the line flows).
"""

from __future__ import annotations

import importlib.util
import warnings
from dataclasses import dataclass

import numpy as np
import pandapower as pp
import pandas as pd
from pandapower import pandapowerNet, runpp_3ph

from gridcosim.scenarios.errors import ScenarioError
from gridcosim.scenarios.phase_network import PHASES, PhaseNetwork, phase_positions
from gridcosim.scenarios.phase_sources.pandapower_source import P_COLS, Q_COLS
from gridcosim.simulator.validation.phase_engines.base import (
    PhaseFlowResult,
    PhaseOperatingPoint,
)

#: Largest deviation of a phase matrix from its circulant part, relative to its largest
#: entry, that is still solved with sequence impedances (a transposed line's matrix).
CIRCULANT_RTOL = 1e-6
#: The slack: a stiff source (the slack phases stay at v_ref within 1e-10 p.u. on EULV).
STIFF_SOURCE = {"s_sc_max_mva": 1e8, "rx_max": 0.1, "x0x_max": 1.0, "r0x0_max": 0.1}
#: Slack-balance tolerance, relative to the gross power (loads + generation + losses).
BALANCE_RTOL = 1e-4
BALANCE_ATOL_KW = 1e-3
HAS_NUMBA = importlib.util.find_spec("numba") is not None
VM_COLS = [f"vm_{p}_pu" for p in PHASES]
VA_COLS = [f"va_{p}_degree" for p in PHASES]
PL_COLS = [f"pl_{p}_mw" for p in PHASES]
P_COLS_EG = [f"p_{p}_mw" for p in PHASES]  # res_ext_grid_3ph
TYPED = ("load", "asymmetric_load", "sgen", "asymmetric_sgen")
IGNORED = {"storage": "ignored by runpp_3ph", "ward": "ignored by runpp_3ph",
           "xward": "ignored by runpp_3ph", "motor": "ignored by runpp_3ph",
           "gen": "gives NaN results in runpp_3ph (pandapower 3.5+; up to 3.4 it raises)"}
VOLTAGE_DEPENDENT = ("const_z_p_percent", "const_i_p_percent", "const_z_q_percent",
                     "const_i_q_percent")
#: Share of a load's P and Q on pandapower's phase columns (delta: a = ab, b = bc, c = ca).
_WEIGHTS = {("delta", "ab"): (1, 0, 0), ("delta", "bc"): (0, 1, 0), ("delta", "ac"): (0, 0, 1)}


def sequence_impedances(z: np.ndarray) -> tuple[complex, complex, float]:
    """Positive- and zero-sequence impedance of a 3x3 phase matrix, and its asymmetry.

    Returns:
        ``(z1, z0, deviation)``: ``z1 = Zs - Zm``, ``z0 = Zs + 2 Zm`` from the mean
        diagonal ``Zs`` and off-diagonal ``Zm``; ``deviation`` is the largest distance of
        an entry from that circulant matrix over the largest entry (0 for a zero matrix).

    """
    z = np.asarray(z, dtype=complex)
    zs, zm = np.mean(np.diag(z)), (z.sum() - np.trace(z)) / 6.0
    model = np.full((3, 3), zm) + np.eye(3) * (zs - zm)
    scale = float(np.abs(z).max())
    return complex(zs - zm), complex(zs + 2.0 * zm), float(np.abs(z - model).max()) / (scale or 1.0)


def network_problems(network: PhaseNetwork) -> list[str]:
    """What ``runpp_3ph`` cannot represent in ``network`` (empty when it can)."""
    problems = list(network.phase_problems())
    for label, line in network.lines.iterrows():
        if line.phases != PHASES:
            problems.append(f"line {label}: phases {line.phases!r}; pandapower lines are always "
                            "three-phase (single- and two-phase laterals cannot be modelled)")
            continue
        z1, z0, deviation = sequence_impedances(network.z_ohm[label])
        if deviation > CIRCULANT_RTOL:
            problems.append(f"line {label}: phase matrix not circulant (deviation {deviation:.2g}"
                            f" > {CIRCULANT_RTOL:g}): no sequence impedances represent it")
        elif z1 == 0 or z0 == 0:
            problems.append(f"line {label}: zero sequence impedance (a switch?)")
    problems += [f"shunt {label}: on phases {s.phases!r}; only three-phase shunts"
                 for label, s in network.shunts.iterrows() if s.phases != PHASES]
    return problems


def build_net(network: PhaseNetwork) -> pandapowerNet:
    """The pandapower net of ``network``: buses, slack, lines, asymmetric loads, shunts.

    Bus indices are the network's bus ids; lines and asymmetric loads are named by their
    labels. ``sn_mva`` is the network's base: runpp_3ph's outer tolerance (3e-8 p.u. per
    bus) is on it, so pandapower's own EULV net (100 MVA) leaves 0.013 kW of slack
    mismatch where this one (1 MVA) leaves 1e-5 kW. Raises :class:`ScenarioError`
    listing :func:`network_problems`.
    """
    problems = network_problems(network)
    if problems:
        raise ScenarioError([f"{network.name} (pandapower runpp_3ph): {p}" for p in problems])
    net = pp.create_empty_network(name=network.name, sn_mva=network.base_kva / 1000.0)
    buses = list(network.bus_ids)
    pp.create_buses(net, len(buses), vn_kv=network.base_kv, index=buses,
                    name=[str(network.buses.at[b, "name"]) for b in buses])
    pp.create_ext_grid(net, network.root_bus, vm_pu=1.0, va_degree=0.0, **STIFF_SOURCE)
    _add_lines(net, network)
    for label, load in network.loads.iterrows():
        pp.create_asymmetric_load(net, int(load.bus), name=str(label), type=load.conn)
    for label, shunt in network.shunts.iterrows():
        pp.create_shunt(net, int(shunt.bus), q_mvar=-float(shunt.q_kvar) / 1000.0, p_mw=0.0,
                        vn_kv=network.base_kv, name=str(label))
    return net


def _add_lines(net: pandapowerNet, network: PhaseNetwork) -> None:
    seq = np.array([sequence_impedances(network.z_ohm[label])[:2] for label in network.lines.index])
    rating = network.lines["s_max_kva"].to_numpy(float) * np.sqrt(3.0) / network.base_kv / 1000.0
    pp.create_lines_from_parameters(
        net, network.lines["from_bus"].to_numpy(int), network.lines["to_bus"].to_numpy(int),
        length_km=1.0, r_ohm_per_km=seq[:, 0].real, x_ohm_per_km=seq[:, 0].imag,
        c_nf_per_km=0.0, max_i_ka=np.nan_to_num(rating, nan=1.0),
        name=[str(label) for label in network.lines.index],
        r0_ohm_per_km=seq[:, 1].real, x0_ohm_per_km=seq[:, 1].imag, c0_nf_per_km=0.0)


def _active(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame["in_service"].fillna(False).astype(bool)] if "in_service" in frame else frame


def _rows(index: pd.Index) -> str:
    shown = ", ".join(str(i) for i in index[:5])
    return f"{shown}, ... ({len(index)} rows)" if len(index) > 5 else shown


def check_runpp_3ph_traps(net: pandapowerNet) -> list[str]:
    """What ``runpp_3ph`` would silently get wrong (or fail on) in ``net``; empty if none."""
    problems = []
    for table in TYPED:
        frame = _active(net[table])
        bad = frame.index[~frame["type"].isin(["wye", "delta"])]
        if len(bad):
            problems.append(f"{table} {_rows(bad)}: type not 'wye'/'delta' "
                            f"({sorted({repr(t) for t in frame.loc[bad, 'type']})}): runpp_3ph "
                            "drops such elements silently")
    for table, why in IGNORED.items():
        if table in net and len(_active(net[table])):
            problems.append(f"{table} {_rows(_active(net[table]).index)}: {why}")
    loads = _active(net.load)
    for column in VOLTAGE_DEPENDENT:
        bad = loads.index[loads[column].fillna(0.0) != 0.0] if column in loads else []
        if len(bad):
            problems.append(f"load {_rows(bad)}: {column} != 0, but runpp_3ph solves every load "
                            "as constant power")
    return problems + _zero_sequence_problems(net) + _ext_grid_problems(net)


def _zero_sequence_problems(net: pandapowerNet) -> list[str]:
    lines = _active(net.line)
    problems = []
    for column in ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km"):
        if column not in lines:
            problems.append(f"line: no {column} column (runpp_3ph raises KeyError)")
        elif lines[column].isna().any():
            problems.append(f"line {_rows(lines.index[lines[column].isna()])}: {column} is NaN")
    if not problems:
        zero = lines.index[(lines["r0_ohm_per_km"] == 0) & (lines["x0_ohm_per_km"] == 0)]
        if len(zero):
            problems.append(f"line {_rows(zero)}: r0 = x0 = 0 (singular zero-sequence network)")
    return problems


def _ext_grid_problems(net: pandapowerNet) -> list[str]:
    grids = _active(net.ext_grid)
    if not len(grids):
        return ["no ext_grid in service"]
    problems = []
    for column in STIFF_SOURCE:
        if column not in grids:
            problems.append(f"ext_grid: no {column} column (runpp_3ph raises)")
            continue
        values = grids[column].to_numpy(float)
        if not (np.isfinite(values).all() and (column != "s_sc_max_mva" or (values > 0).all())):
            problems.append(f"ext_grid {_rows(grids.index)}: {column} = {values.tolist()}: "
                            "runpp_3ph gives NaN results with converged True")
    return problems


def _table_kw(net: pandapowerNet, table: str, columns: list[str]) -> float:
    frame = _active(net[table]) if table in net else pd.DataFrame()
    if not len(frame):
        return 0.0
    return float((frame[columns].to_numpy(float).sum(axis=1) * frame["scaling"]).sum() * 1000.0)


def _shunt_kw(net: pandapowerNet) -> float:
    """Active power of the shunts at the solved voltages (a third per phase times |V|²)."""
    shunts = _active(net.shunt)
    if not len(shunts):
        return 0.0
    vm2 = (net.res_bus_3ph.loc[shunts["bus"], VM_COLS].to_numpy(float) ** 2).mean(axis=1)
    ratio = (net.bus.loc[shunts["bus"], "vn_kv"].to_numpy(float) / shunts["vn_kv"].to_numpy(float))
    return float((shunts["p_mw"] * shunts["step"]).to_numpy(float) @ (vm2 * ratio**2) * 1000.0)


def slack_balance_kw(net: pandapowerNet) -> tuple[float, float]:
    """After a run: (slack P − (loads − generation + losses), gross power), in kW."""
    demand = (_table_kw(net, "load", ["p_mw"]) + _table_kw(net, "asymmetric_load", P_COLS)
              + _table_kw(net, "storage", ["p_mw"]) + _shunt_kw(net))
    supply = _table_kw(net, "sgen", ["p_mw"]) + _table_kw(net, "asymmetric_sgen", P_COLS)
    losses = sum(float(net[t][PL_COLS].to_numpy(float).sum()) * 1000.0
                 for t in ("res_line_3ph", "res_trafo_3ph") if t in net and len(net[t]))
    slack = float(net.res_ext_grid_3ph[P_COLS_EG].to_numpy(float).sum()) * 1000.0
    return slack - (demand - supply + losses), abs(demand) + abs(supply) + abs(losses)


def result_problems(net: pandapowerNet, balance_rtol: float = BALANCE_RTOL) -> list[str]:
    """What is wrong with ``net``'s ``runpp_3ph`` results (empty when they can be used)."""
    if not net.get("converged", False):
        return ["runpp_3ph did not converge"]
    nan = int(net.res_bus_3ph[VM_COLS + VA_COLS].isna().to_numpy().sum())
    nan += int(net.res_ext_grid_3ph.isna().to_numpy().sum())
    if nan or net.res_bus_3ph.empty:
        return [f"runpp_3ph: {nan} NaN results although converged is True (pandapower #3068)"]
    mismatch, gross = slack_balance_kw(net)
    if not abs(mismatch) <= max(balance_rtol * gross, BALANCE_ATOL_KW):
        return [f"slack balance off by {mismatch:.4g} kW (gross {gross:.4g} kW, tolerance "
                f"{balance_rtol:g}): an element was dropped or the results are wrong"]
    return []


@dataclass(frozen=True)
class _Layout:
    """Where the network's loads, lines and nodes sit in the pandapower tables."""

    loads: pd.Index  # asymmetric_load index of every network load
    weights: np.ndarray  # (n_loads, 3) share of each load on pandapower's phase columns
    lines: pd.Index  # line index of every network line
    reversed: np.ndarray  # line drawn child -> parent in the net
    node_rows: np.ndarray  # res_bus_3ph row of every network node
    node_cols: np.ndarray  # phase column (0, 1, 2) of every node

    @classmethod
    def of(cls, net: pandapowerNet, network: PhaseNetwork) -> _Layout:
        load_at = pd.Series(net.asymmetric_load.index, index=net.asymmetric_load["name"])
        line_at = pd.Series(net.line.index, index=net.line["name"])
        lines = pd.Index(line_at.loc[network.lines.index].to_numpy())
        weights = np.array([_weights(str(ld.conn), str(ld.phases))
                            for ld in network.loads.itertuples()]).reshape(-1, 3)
        position = pd.Series(np.arange(len(net.bus)), index=net.bus.index)
        parents = network.lines["from_bus"].to_numpy()
        return cls(pd.Index(load_at.loc[network.loads.index].to_numpy()), weights, lines,
                   net.line.loc[lines, "from_bus"].to_numpy() != parents,
                   position.loc[[b for b, _ in network.nodes]].to_numpy(),
                   np.array([PHASES.index(p) for _, p in network.nodes]))


def _weights(conn: str, phases: str) -> tuple[float, ...]:
    if conn == "delta" and len(phases) == 2:
        return _WEIGHTS[(conn, phases)]
    share = np.zeros(3)
    share[phase_positions(phases)] = 1.0 / len(phases)
    return tuple(share)


class PandapowerPhaseEngine:
    """pandapower ``runpp_3ph`` on one three-phase network, re-solved per operating point.

    Args:
        network: The network (three-phase lines with circulant phase matrices).
        net: A net to solve instead of :func:`build_net`'s (see :meth:`from_net`).
        balance_rtol: Slack-balance tolerance relative to the gross power.

    """

    name = "pandapower"

    def __init__(self, network: PhaseNetwork, *, net: pandapowerNet | None = None,
                 balance_rtol: float = BALANCE_RTOL):
        self.network = network
        self.net = build_net(network) if net is None else net
        self.balance_rtol = balance_rtol
        self._layout = _Layout.of(self.net, network)
        self._sgens: dict[int, int] = {}  # bus -> asymmetric_sgen index, created when needed
        self._warm = False
        index = pd.MultiIndex.from_tuples(network.nodes, names=["bus", "phase"])
        self._node_index = index
        self._flow_index = pd.MultiIndex.from_product([network.lines.index, list(PHASES)],
                                                      names=["line", "phase"])

    @classmethod
    def from_net(cls, net: pandapowerNet, network: PhaseNetwork,
                 **kwargs: float) -> PandapowerPhaseEngine:
        """An engine on an externally supplied net (every trap check still applies).

        The net must use the network's bus ids as bus indices and name its lines and
        asymmetric loads by the network's labels (as :func:`build_net` does).
        """
        return cls(network, net=net, **kwargs)

    def reset(self) -> None:
        """Start the next power flow from a flat start (not the last result)."""
        self._warm = False

    def solve(self, point: PhaseOperatingPoint) -> PhaseFlowResult:
        """The AC power flow of ``point``; a failure is a result, never an exception."""
        problems = self._point_problems(point) or check_runpp_3ph_traps(self.net)
        if problems:
            return self._failed("; ".join(problems))
        self._write(point)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                runpp_3ph(self.net, numba=HAS_NUMBA, init="results" if self._warm else "flat")
        except Exception as exc:  # LoadflowNotConverged, and whatever bad data raise
            return self._failed(f"runpp_3ph raised {type(exc).__name__}: {exc}")
        problems = result_problems(self.net, self.balance_rtol)
        return self._failed("; ".join(problems)) if problems else self._result()

    def _failed(self, message: str) -> PhaseFlowResult:
        self._warm = False
        return PhaseFlowResult.failed(self.name, self.network, message)

    def _point_problems(self, point: PhaseOperatingPoint) -> list[str]:
        n = len(self.network.loads)
        if np.shape(point.load_p_kw) != (n,) or np.shape(point.load_q_kvar) != (n,):
            return [f"the point's load arrays are not of length {n}"]
        values = [*point.load_p_kw, *point.load_q_kvar, point.v_ref_pu,
                  *(v for u in (*point.balanced, *point.single_phase) for v in (u.p_kw, u.q_kvar))]
        if not np.isfinite(np.asarray(values, dtype=float)).all():
            return ["the operating point is not finite"]
        phases = self.network.buses["phases"].to_dict()
        nodes = [(u.bus, p) for u in point.balanced for p in PHASES]
        nodes += [(u.bus, u.phase) for u in point.single_phase]
        return [f"injection at bus {bus} phase {p}: no such node"
                for bus, p in nodes if p not in phases.get(bus, "")]

    def _write(self, point: PhaseOperatingPoint) -> None:
        """Loads, injections and the slack voltage written into the net's tables in bulk."""
        lay, net = self._layout, self.net
        p = np.asarray(point.load_p_kw, float)[:, None] * lay.weights / 1000.0
        q = np.asarray(point.load_q_kvar, float)[:, None] * lay.weights / 1000.0
        net.asymmetric_load.loc[lay.loads, P_COLS] = p
        net.asymmetric_load.loc[lay.loads, Q_COLS] = q
        units: dict[int, np.ndarray] = {}
        for u in point.balanced:
            units.setdefault(u.bus, np.zeros(3, complex))[:] += complex(u.p_kw, u.q_kvar) / 3.0
        for u in point.single_phase:
            units.setdefault(u.bus, np.zeros(3, complex))[PHASES.index(u.phase)] += complex(
                u.p_kw, u.q_kvar)
        for bus in units.keys() - self._sgens.keys():
            self._sgens[bus] = pp.create_asymmetric_sgen(net, bus, type="wye", name=f"unit {bus}")
        s = np.array([units.get(bus, np.zeros(3)) for bus in self._sgens]).reshape(-1, 3) / 1000.0
        net.asymmetric_sgen.loc[list(self._sgens.values()), P_COLS] = s.real
        net.asymmetric_sgen.loc[list(self._sgens.values()), Q_COLS] = s.imag
        net.ext_grid.loc[_active(net.ext_grid).index, "vm_pu"] = point.v_ref_pu

    def _result(self) -> PhaseFlowResult:
        lay, net = self._layout, self.net
        bus = net.res_bus_3ph
        vm = bus[VM_COLS].to_numpy(float)[lay.node_rows, lay.node_cols]
        va = bus[VA_COLS].to_numpy(float)[lay.node_rows, lay.node_cols]
        grid = net.res_ext_grid_3ph
        lines = net.res_line_3ph.loc[lay.lines]
        self._warm = True
        return PhaseFlowResult(
            self.name, True, "", pd.Series(vm, index=self._node_index),
            pd.Series(va, index=self._node_index.copy()),
            p_sub_kw=float(grid[P_COLS_EG].to_numpy(float).sum() * 1000.0),
            q_sub_kvar=float(grid[Q_COLS].to_numpy(float).sum() * 1000.0),
            losses_kw=float(lines[PL_COLS].to_numpy(float).sum() * 1000.0),
            p_flow_kw=self._flows(lines, "p", "mw"), q_flow_kvar=self._flows(lines, "q", "mvar"))

    def _flows(self, lines: pd.DataFrame, kind: str, unit: str) -> pd.Series:
        """Sending-end (parent side) flow per (line, phase), kW or kvar."""
        send = lines[[f"{kind}_{p}_from_{unit}" for p in PHASES]].to_numpy(float)
        back = -lines[[f"{kind}_{p}_to_{unit}" for p in PHASES]].to_numpy(float)
        flow = np.where(self._layout.reversed[:, None], back, send)
        return pd.Series(flow.ravel() * 1000.0, index=self._flow_index)
