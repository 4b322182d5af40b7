"""The scenario's pandapower net, built once, and a fast AC power flow on its internal arrays.

pandapower's ``runpp`` spends ~20 ms per call on this feeder converting tables to its
internal "ppc" arrays and back; the Newton-Raphson itself is a fraction of that. Between
two slots only the bus injections change, so :class:`CompiledFeeder` runs ``runpp`` once,
keeps the internal admittance matrices (``net._ppc["internal"]``: ``Ybus``, ``Yf``, ``Yt``,
``ref``/``pv``/``pq``) and the bus lookup (``net._pd2ppc_lookups["bus"]``: closed bus-bus
switches fuse buses, so several bus ids share one internal node), and then solves each
slot with lightsim2grid's C++ Newton-Raphson (KLU sparse LU when compiled in), fed only a
new injection vector ``Sbus``. Loads are constant-PQ and capacitors are shunts inside
``Ybus``, so ``Sbus`` is the whole operating point. ``tests/test_validation_feeder.py``
checks the result against a plain ``pandapower.runpp`` (1e-6 p.u.).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandapower as pp
from pandapower.auxiliary import pandapowerNet
from scipy import sparse

from gridcosim.scenarios.errors import PowerFlowError
from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.pandapower_net import build_pandapower_net
from gridcosim.simulator.validation.operating_point import OperatingPoint

try:  # KLU is an optional lightsim2grid build feature; SparseLU is always there
    from lightsim2grid.algorithm import NRSing_KLU as _NewtonSolver
except ImportError:  # pragma: no cover - depends on the lightsim2grid build
    from lightsim2grid.algorithm import NRSing_SparseLU as _NewtonSolver

#: Newton-Raphson stops when the largest power mismatch is below this (p.u. of base_kva).
DEFAULT_TOLERANCE_PU = 1e-10
#: Newton-Raphson iterations before a slot is declared not converged.
DEFAULT_MAX_ITERATIONS = 20


class CompiledFeeder:
    """A pandapower net with one sgen per microgrid PCC and per SVC, compiled for fast AC runs.

    Args:
        network: The feeder (see :func:`scenarios.pandapower_net.build_pandapower_net`).
        v_ref_pu: Substation (ext_grid) voltage magnitude.
        mg_buses: Bus id of every microgrid's PCC, by microgrid name, in the order of
            ``OperatingPoint.mg_kw``.
        svc_buses: Bus id of every SVC, in the scenario's SVC order.
        max_iterations: Newton-Raphson iteration cap per slot.
        tolerance_pu: Newton-Raphson mismatch tolerance (p.u.).

    Raises:
        PowerFlowError: If the initial ``runpp`` at nominal load does not converge or the
            net is not a single-slack, PQ-only feeder.

    """

    def __init__(self, network: NetworkData, *, v_ref_pu: float, mg_buses: Mapping[str, int],
                 svc_buses: Sequence[int], max_iterations: int = DEFAULT_MAX_ITERATIONS,
                 tolerance_pu: float = DEFAULT_TOLERANCE_PU):
        self.network = network
        self.base_kva = float(network.base_kva)
        self.bus_ids = tuple(int(b) for b in network.bus_ids)
        self.net = build_pandapower_net(network, v_ref_pu=v_ref_pu)
        for mg, bus in mg_buses.items():
            pp.create_sgen(self.net, bus=int(bus), p_mw=0.0, q_mvar=0.0, name=f"mg {mg}")
        for s, bus in enumerate(svc_buses):
            pp.create_sgen(self.net, bus=int(bus), p_mw=0.0, q_mvar=0.0, name=f"svc {s}")
        self.max_iterations, self.tolerance_pu = max_iterations, tolerance_pu
        row = {bus: k for k, bus in enumerate(self.bus_ids)}
        self._mg_row = np.array([row[int(b)] for b in mg_buses.values()], dtype=np.int64)
        self._svc_row = np.array([row[int(b)] for b in svc_buses], dtype=np.int64)
        self._load_row = np.array([row[int(b)] for b in self.net.load["bus"]], dtype=np.int64)
        self._compile()
        self._solver = _NewtonSolver()

    def _compile(self) -> None:
        """Run pandapower once and keep its internal arrays (the only full ``runpp``)."""
        try:
            pp.runpp(self.net, numba=False)
        except pp.LoadflowNotConverged as exc:
            raise PowerFlowError(f"{self.network.name}: no AC solution at nominal load") from exc
        ppci = self.net._ppc["internal"]
        if len(ppci["ref"]) != 1 or len(ppci["pv"]) != 0:
            raise PowerFlowError("the validator expects one slack bus and no PV buses")
        if not math.isclose(float(ppci["baseMVA"]) * 1000.0, self.base_kva):
            raise PowerFlowError("pandapower base power differs from the network base_kva")
        self._keep(ppci)

    def _keep(self, ppci: dict) -> None:
        """Admittances, node sets, bus -> node lookup and line rows of the internal ppc."""
        self.ybus = _canonical_csc(ppci["Ybus"])
        self.yf, self.yt = sparse.csr_matrix(ppci["Yf"]), sparse.csr_matrix(ppci["Yt"])
        self.ref = np.asarray(ppci["ref"], dtype=np.int32)
        self.pv = np.asarray(ppci["pv"], dtype=np.int32)
        self.pq = np.asarray(ppci["pq"], dtype=np.int32)
        self.n_nodes = self.ybus.shape[0]
        self.node_of_bus = np.asarray(self.net._pd2ppc_lookups["bus"][list(self.bus_ids)],
                                      dtype=np.int64)
        self.slack_weights = np.zeros(self.n_nodes)
        self.slack_weights[self.ref] = 1.0
        self.v_start = np.asarray(ppci["V"], dtype=complex).copy()
        self.v_flat = np.full(self.n_nodes, complex(self.v_start[self.ref[0]]))
        start, end = self.net._pd2ppc_lookups["branch"]["line"]
        self.line_rows = np.arange(start, end)
        self.line_labels = tuple(str(n) for n in self.net.line["name"])
        self._y_line_ends = sparse.vstack([self.yf[self.line_rows], self.yt[self.line_rows]],
                                          format="csr")
        line_kv = self.net.bus["vn_kv"].reindex(self.net.line["from_bus"]).to_numpy(float)
        if self.network.ac_net_json is None:  # the shipped tables: every bus at base_kv
            line_kv = np.full(len(self.line_rows), float(self.network.base_kv))
        #: Current base of every line (kA per p.u.), at its own voltage level.
        self.i_base_ka = self.base_kva / 1000.0 / (math.sqrt(3.0) * line_kv)

    def sbus(self, injection_kw: np.ndarray, injection_kvar: np.ndarray) -> np.ndarray:
        """Internal injection vector (p.u.) from net injections per bus id (kW, kvar)."""
        p = np.bincount(self.node_of_bus, weights=injection_kw, minlength=self.n_nodes)
        q = np.bincount(self.node_of_bus, weights=injection_kvar, minlength=self.n_nodes)
        return (p + 1j * q) / self.base_kva

    def solve(self, sbus: np.ndarray, v_init: np.ndarray | None = None,
              accept: Callable[[np.ndarray], bool] | None = None
              ) -> tuple[np.ndarray | None, int]:
        """Newton-Raphson from ``v_init``, else the nominal-load solution, else a flat start.

        Args:
            sbus: Internal injection vector (p.u.), e.g. from :meth:`sbus`.
            v_init: Optional warm start (e.g. the same slot's previous solution).
            accept: Optional test a converged solution must pass (else the next start).

        Returns:
            The complex node voltages (``None`` if no start gives an accepted solution) and
            the number of Newton iterations of the last attempt.

        """
        iterations = 0
        starts = (self.v_start, self.v_flat) if v_init is None else (
            v_init, self.v_start, self.v_flat)
        for start in starts:
            ok = self._solver.solve(self.ybus, start.copy(), sbus, self.ref, self.slack_weights,
                                    self.pv, self.pq, self.max_iterations, self.tolerance_pu)
            iterations = int(self._solver.get_nb_iter())
            if not ok:
                continue
            v = np.array(self._solver.get_V(), dtype=complex)  # a copy: get_V is a view
            if np.all(np.isfinite(v)) and (accept is None or accept(v)):
                return v, iterations
        return None, iterations

    def injected_power_pu(self, v: np.ndarray) -> np.ndarray:
        """Complex power injected at every internal node by the network, ``V conj(Ybus V)``."""
        return v * np.conj(self.ybus @ v)

    def line_currents_ka(self, v: np.ndarray) -> np.ndarray:
        """Largest of the two end currents of every line, in kA (pandapower's ``i_ka``)."""
        ends = np.abs(self._y_line_ends @ v).reshape(2, -1)
        return ends.max(axis=0) * self.i_base_ka

    def injections(self, point: OperatingPoint) -> tuple[np.ndarray, np.ndarray]:
        """Net injection per bus id (kW, kvar): exchanges and SVCs minus loads."""
        p = np.bincount(self._mg_row, weights=point.mg_kw, minlength=len(self.bus_ids))
        q = np.bincount(self._mg_row, weights=point.mg_kvar, minlength=len(self.bus_ids))
        q += np.bincount(self._svc_row, weights=point.svc_kvar, minlength=len(self.bus_ids))
        return p - point.load_kw, q - point.load_kvar

    def apply(self, point: OperatingPoint) -> pandapowerNet:
        """Write ``point`` into the net's load and sgen tables (for a plain ``runpp``).

        Returns:
            The feeder's own net, updated in place (the fast path does not read it).

        """
        self.net.load["p_mw"] = point.load_kw[self._load_row] / 1000.0
        self.net.load["q_mvar"] = point.load_kvar[self._load_row] / 1000.0
        n_svc = len(self._svc_row)
        self.net.sgen["p_mw"] = np.concatenate([point.mg_kw, np.zeros(n_svc)]) / 1000.0
        self.net.sgen["q_mvar"] = np.concatenate([point.mg_kvar, point.svc_kvar]) / 1000.0
        return self.net


def _canonical_csc(matrix: sparse.spmatrix) -> sparse.csc_matrix:
    out = sparse.csc_matrix(matrix, dtype=complex)
    out.sum_duplicates()
    out.sort_indices()
    return out
