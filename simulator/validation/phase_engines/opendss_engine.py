"""OpenDSS as a three-phase engine: a :class:`PhaseNetwork` written as an OpenDSS circuit (§6b).

The network is written once, at construction, into a private OpenDSS engine (its own
``opendssdirect`` context, so that :func:`~scenarios.phase_sources.opendss_source.read_opendss`
or any other user of the process-wide engine neither clobbers it nor is clobbered):

* a very stiff ``Vsource`` at the root bus (impedance ``1e-8`` of the impedance base);
* every line with its phases and its full phase impedance matrix in ohm (``length=1
  units=none``, no shunt capacitance); a closed switch is a line of ``1e-7`` p.u. resistance
  per phase (its voltage drop stays below ``1e-6`` p.u. at several times rated current);
* every load as one constant-power OpenDSS ``Load`` (``model=1``, ``vminpu=0.5
  vmaxpu=1.5``): wye loads from each phase to ground, delta loads between their two phases
  (or all three);
* every capacitor as a wye ``Capacitor`` rated at the network's voltage base (constant
  impedance, its nominal kvar at 1 p.u.).

Injections are constant-power ``Load`` elements with negative kW, created the first time
a bus (balanced) or bus-phase (single-phase) appears in an operating point and then reused.
:meth:`OpenDSSPhaseEngine.solve` writes only the powers that changed through the API
setters (no text parsing), solves from the previous solution, and reads everything back
with bulk calls. Bus names in the circuit are the network's integer bus ids.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import opendssdirect as dss
import pandas as pd

from gridcosim.scenarios.phase_network import PHASES, PhaseNetwork
from gridcosim.simulator.validation.phase_engines.base import (
    PhaseFlowResult,
    PhaseOperatingPoint,
)

#: Source impedance (positive and zero sequence reactance) as a share of the impedance base.
SOURCE_Z_PU = 1e-8
#: Resistance per phase of a closed switch, share of the impedance base.
SWITCH_R_PU = 1e-7
#: Voltage band (p.u.) inside which OpenDSS keeps a ``model=1`` load at constant power.
V_MIN_PU, V_MAX_PU = 0.5, 1.5
#: Slack balance tolerance: relative to the total |P| handled, and its floor in kW.
BALANCE_REL, BALANCE_MIN_KW = 1e-3, 0.01


def dss_nodes(bus: int, phases: str) -> str:
    """OpenDSS terminal ``bus.1.3`` of a bus's phases (a -> 1, b -> 2, c -> 3)."""
    return ".".join([str(bus), *(str(PHASES.index(p) + 1) for p in phases)])


def dss_matrix(values: np.ndarray) -> str:
    """A real matrix in OpenDSS's ``(a b | c d)`` syntax, full precision."""
    return "(" + " | ".join(" ".join(repr(float(v)) for v in row) for row in values) + ")"


def load_kv(network: PhaseNetwork, phases: str, conn: str) -> float:
    """The ``kV`` OpenDSS expects: line-to-neutral for a 1-phase wye element, else line-to-line."""
    return network.base_kv / math.sqrt(3.0) if conn == "wye" and len(phases) == 1 \
        else network.base_kv


def line_command(network: PhaseNetwork, name: str, label: str) -> str:
    """``New Line`` of one line of ``network`` (zero impedance: a tiny resistance per phase)."""
    line = network.lines.loc[label]
    phases = str(line.phases)
    n = len(phases)
    z = np.asarray(network.z_ohm[label], dtype=complex)
    if not np.any(z):  # a closed switch (or any zero-impedance line)
        z = np.eye(n) * SWITCH_R_PU * network.z_base_ohm
    return (f"New Line.{name} bus1={dss_nodes(int(line.from_bus), phases)} "
            f"bus2={dss_nodes(int(line.to_bus), phases)} phases={n} "
            f"rmatrix={dss_matrix(z.real)} xmatrix={dss_matrix(z.imag)} "
            f"cmatrix={dss_matrix(np.zeros((n, n)))} length=1 units=none")


def load_command(network: PhaseNetwork, name: str, bus: int, phases: str, conn: str) -> str:
    """``New Load`` at zero power: constant PQ over the whole ``V_MIN_PU``-``V_MAX_PU`` band.

    A two-phase delta load is OpenDSS's one-phase delta load between its two nodes.
    """
    n = 1 if conn == "delta" and len(phases) == 2 else len(phases)
    return (f"New Load.{name} bus1={dss_nodes(bus, phases)} phases={n} conn={conn} "
            f"kV={load_kv(network, phases, conn)!r} kW=0 kvar=0 model=1 "
            f"vminpu={V_MIN_PU} vmaxpu={V_MAX_PU}")


def circuit_commands(network: PhaseNetwork, tolerance: float, max_iterations: int
                     ) -> Iterable[str]:
    """Every OpenDSS command that builds ``network`` (loads named ``d<row>``)."""
    x_source = SOURCE_Z_PU * network.z_base_ohm
    yield "clear"
    yield "Set DefaultBaseFrequency=60"  # any: the impedances are ohm at the solved frequency
    yield (f"New Circuit.{_safe(network.name)} bus1={dss_nodes(network.root_bus, PHASES)} "
           f"basekv={network.base_kv!r} pu=1 angle=0 phases=3 "
           f"R1=0 X1={x_source!r} R0=0 X0={x_source!r}")
    for i, label in enumerate(network.lines.index):
        yield line_command(network, f"l{i}", label)
    for i, load in enumerate(network.loads.itertuples()):
        yield load_command(network, f"d{i}", int(load.bus), str(load.phases), str(load.conn))
    for i, shunt in enumerate(network.shunts.itertuples()):
        phases = str(shunt.phases)
        yield (f"New Capacitor.c{i} bus1={dss_nodes(int(shunt.bus), phases)} "
               f"phases={len(phases)} kvar={float(shunt.q_kvar)!r} "
               f"kV={load_kv(network, phases, 'wye')!r}")
    yield f"Set voltagebases=[{network.base_kv!r}]"
    yield "calcvoltagebases"
    yield (f"Set mode=snap controlmode=off tolerance={tolerance!r} "
           f"maxiterations={max_iterations}")


def _safe(name: str) -> str:
    """An OpenDSS-safe object name."""
    return "".join(c if c.isalnum() or c in "_-" else "_" for c in name) or "network"


def _complex(values: np.ndarray) -> np.ndarray:
    """DSS-Python's interleaved (re, im) float array (or a complex one) as complex."""
    arr = np.asarray(values)
    return np.atleast_1d(arr if np.iscomplexobj(arr) else arr.view(complex))


class OpenDSSPhaseEngine:
    """OpenDSS (OpenDSSDirect.py) re-solving one :class:`PhaseNetwork` for many points.

    Attributes:
        name: ``"opendss"``.
        network: The network solved.
        line_flows: Whether results carry the sending-end flow per (line, phase).

    """

    name = "opendss"

    def __init__(self, network: PhaseNetwork, *, line_flows: bool = False,
                 tolerance: float = 1e-9, max_iterations: int = 100) -> None:
        """Write ``network`` into a private OpenDSS context.

        Args:
            network: The network.
            line_flows: Read the per-(line, phase) flows after each solve (a bulk call).
            tolerance: OpenDSS's convergence tolerance on the node voltages, p.u.
            max_iterations: OpenDSS's iteration limit per solve.

        """
        self.network = network
        self.line_flows = line_flows
        self._dss = dss.NewContext()
        self._circuit = self._dss.to_dss_python().ActiveCircuit  # numpy bulk reads
        for command in circuit_commands(network, tolerance, max_iterations):
            self._dss.Text.Command(command)
        self._index = pd.MultiIndex.from_tuples(network.nodes, names=["bus", "phase"])
        self._v_base = network.base_kv * 1000.0 / math.sqrt(3.0)
        names = [n.lower() for n in self._dss.Loads.AllNames()]
        self._load_idx = [names.index(f"d{i}") + 1 for i in range(len(network.loads))]
        self._written = np.full((len(network.loads), 2), np.nan)  # kW, kvar as last written
        self._units: dict[tuple[int, str], tuple[int, complex]] = {}  # injection loads
        self._nodes_stale = False  # an element was added: re-read the node order
        self._v_ref = 1.0
        self._dss.Solution.Solve()
        self._map_nodes()
        self._flow_pos, self._flow_index = self._map_flows()

    def _map_nodes(self) -> None:
        """Position of every network node in OpenDSS's node order (bus order may change)."""
        position = {name.lower(): i for i, name in enumerate(self._dss.Circuit.AllNodeNames())}
        self._node_pos = np.array([position[dss_nodes(bus, p)] for bus, p in self.network.nodes])

    def _map_flows(self) -> tuple[np.ndarray, pd.MultiIndex]:
        """Positions of each line's terminal-1 conductors in ``PDElements.AllPowers``."""
        pd_elements = self._circuit.PDElements
        names = [n.lower() for n in pd_elements.AllNames]
        sizes = np.asarray(pd_elements.AllNumConductors) * np.asarray(pd_elements.AllNumTerminals)
        start = dict(zip(names, np.concatenate([[0], np.cumsum(sizes)[:-1]]), strict=True))
        pos, index = [], []
        for i, (label, phases) in enumerate(self.network.lines["phases"].items()):
            pos.extend(int(start[f"line.l{i}"]) + k for k in range(len(str(phases))))
            index.extend((label, p) for p in str(phases))
        return np.array(pos, dtype=int), pd.MultiIndex.from_tuples(index,
                                                                   names=["line", "phase"])

    def solve(self, point: PhaseOperatingPoint) -> PhaseFlowResult:
        """The AC power flow of ``point`` (warm-started from the previous solution).

        Args:
            point: Loads in ``network.loads`` order, injections, slack voltage.

        Returns:
            The result; not converged (NaN values, the reason in ``message``) when OpenDSS
            does not converge, a value is not finite or the slack balance does not hold.

        Raises:
            ValueError: An injection names a bus or phase that is not in the network.

        """
        p = np.asarray(point.load_p_kw, dtype=float)
        q = np.asarray(point.load_q_kvar, dtype=float)
        if not (np.all(np.isfinite(p)) and np.all(np.isfinite(q))
                and math.isfinite(point.v_ref_pu)):
            return self._failed("the operating point is not finite")
        try:
            self._write_loads(p, q)
            self._write_injections(point)
            self._write_source(point.v_ref_pu)
            self._dss.Solution.Solve()
        except dss.DSSException as exc:
            return self._failed(f"OpenDSS: {exc}")
        if self._nodes_stale:
            self._map_nodes()
            self._nodes_stale = False
        if not self._dss.Solution.Converged():
            return self._failed(f"OpenDSS did not converge in "
                                f"{self._dss.Solution.Iterations()} iterations")
        return self._result(point, p)

    def _write_loads(self, p: np.ndarray, q: np.ndarray) -> None:
        """Write the loads whose kW or kvar changed since the last solve."""
        new = np.column_stack([p, q])
        loads = self._dss.Loads
        for i in np.flatnonzero(np.any(new != self._written, axis=1)):
            loads.Idx(self._load_idx[i])
            loads.kW(p[i])  # kW first: it recomputes kvar from the present power factor
            loads.kvar(q[i])
            self._written[i] = new[i]

    def _write_injections(self, point: PhaseOperatingPoint) -> None:
        """Write every injection: a negative load per bus or bus-phase, created on first use."""
        wanted: dict[tuple[int, str], complex] = {}
        for unit in point.balanced:
            key = (unit.bus, self._phases_at(unit.bus, None))
            wanted[key] = wanted.get(key, 0j) + complex(unit.p_kw, unit.q_kvar)
        for single in point.single_phase:
            key = (single.bus, self._phases_at(single.bus, single.phase))
            wanted[key] = wanted.get(key, 0j) + complex(single.p_kw, single.q_kvar)
        missing = [key for key in wanted if key not in self._units]
        for bus, phases in missing:
            self._dss.Text.Command(load_command(self.network, f"u{bus}_{phases}", bus, phases,
                                                "wye"))
            names = [n.lower() for n in self._dss.Loads.AllNames()]
            self._units[(bus, phases)] = (names.index(f"u{bus}_{phases}") + 1, 0j)
            self._nodes_stale = True
        loads = self._dss.Loads
        for key, (idx, written) in self._units.items():
            s = wanted.get(key, 0j)
            if s != written:
                loads.Idx(idx)
                loads.kW(-s.real)
                loads.kvar(-s.imag)
                self._units[key] = (idx, s)

    def _phases_at(self, bus: int, phase: str | None) -> str:
        """The phases an injection uses: all of its bus's, or the one named."""
        if bus not in self.network.buses.index:
            raise ValueError(f"injection at bus {bus}, which is not in {self.network.name}")
        phases = str(self.network.buses.at[bus, "phases"])
        if phase is not None and phase not in phases:
            raise ValueError(f"injection on phase {phase} of bus {bus}, which has {phases}")
        return phases if phase is None else phase

    def _write_source(self, v_ref_pu: float) -> None:
        """Set the slack voltage when it changed."""
        if v_ref_pu != self._v_ref:
            self._dss.Vsources.First()
            self._dss.Vsources.PU(float(v_ref_pu))
            self._v_ref = float(v_ref_pu)

    def _result(self, point: PhaseOperatingPoint, p_load: np.ndarray) -> PhaseFlowResult:
        """Read the solution back and check it."""
        v = _complex(self._circuit.AllBusVolts)[self._node_pos]
        vm = np.abs(v) / self._v_base
        s_sub = -_complex(self._circuit.TotalPower)[0]  # TotalPower: into the source
        losses = float(_complex(self._circuit.LineLosses)[0].real)
        values = np.array([s_sub.real, s_sub.imag, losses])
        if not (np.all(np.isfinite(v)) and np.all(np.isfinite(values))):
            return self._failed("OpenDSS returned non-finite values")
        injected = point.injected_kw()
        mismatch = s_sub.real - (float(p_load.sum()) - injected + losses)
        allowed = max(BALANCE_REL * (float(np.abs(p_load).sum()) + _abs_injected(point)),
                      BALANCE_MIN_KW)
        if abs(mismatch) > allowed:
            return self._failed(f"slack balance off by {mismatch:.4g} kW (allowed {allowed:.3g})")
        if vm.min() < V_MIN_PU or vm.max() > V_MAX_PU:
            return self._failed(f"|V| from {vm.min():.3f} to {vm.max():.3f} p.u. leaves the "
                                f"constant-power band {V_MIN_PU}-{V_MAX_PU}")
        flows = self._flows() if self.line_flows else (None, None)
        return PhaseFlowResult(
            self.name, True, "", pd.Series(vm, index=self._index),
            pd.Series(np.degrees(np.angle(v)), index=self._index),
            p_sub_kw=float(s_sub.real), q_sub_kvar=float(s_sub.imag), losses_kw=losses,
            p_flow_kw=flows[0], q_flow_kvar=flows[1])

    def _flows(self) -> tuple[pd.Series, pd.Series]:
        """Sending-end (terminal 1) flow per (line, phase), kW and kvar."""
        s = _complex(self._circuit.PDElements.AllPowers)[self._flow_pos]
        return (pd.Series(s.real, index=self._flow_index),
                pd.Series(s.imag, index=self._flow_index))

    def reset(self) -> None:
        """Start the next solve from OpenDSS's no-load solution (not the last one's)."""
        self._dss.YMatrix.SolutionInitialized(False)

    def _failed(self, message: str) -> PhaseFlowResult:
        """A failed result; the next solve starts again from OpenDSS's no-load solution."""
        self._dss.YMatrix.SolutionInitialized(False)  # not from diverged voltages
        return PhaseFlowResult.failed(self.name, self.network, message)


def _abs_injected(point: PhaseOperatingPoint) -> float:
    """Total |P| of the injections."""
    return float(sum(abs(u.p_kw) for u in point.balanced)
                 + sum(abs(u.p_kw) for u in point.single_phase))
