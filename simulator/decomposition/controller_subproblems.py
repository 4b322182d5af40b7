"""Microgrid i's elastic model compiled for the loop: the unified LP or the restoration MILP.

Both hold the same Pyomo model (:func:`simulator.models.elastic_model.build_elastic`),
compiled once into a persistent HiGHS instance (the MILP) and copied without integrality
(the LP); the loop then only sets the proposal's right-hand sides, swaps objective
coefficients (price responses, economic restoration) and re-loads the window data rows
between windows, in bulk (:class:`WindowBounds`: read from Pyomo once per window, set in
every instance).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyomo.environ as pyo
from pyomo.repn import generate_standard_repn

from gridcosim.scenarios.schema import Microgrid
from gridcosim.simulator.decomposition.milp_dive import RelaxedMILP
from gridcosim.simulator.highs_instance import LP_RESOLVE_OPTIONS, SolveOutcome
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.messages import ExchangeBounds, PriceSignal, RestoredExchange, UnifiedCut
from gridcosim.simulator.models.ders import DerModel
from gridcosim.simulator.models.microgrid_model import (
    MicrogridWindow,
    binary_vars,
    reactive_band,
    reactive_need,
    unit_blocks,
    unit_reactive_ranges,
    window_rows,
    window_vars,
)
from gridcosim.simulator.schedule import MicrogridSchedule, UnitSchedule
from gridcosim.simulator.warm_basis import WarmBasis

#: The MILP's relaxation: no presolve, dual simplex (its re-solves change bounds in a dive
#: and costs between solves; measured fastest from a moved basis on the week case).
RELAXATION_OPTIONS = {"presolve": "off", "simplex_strategy": 1}

#: How far (kvar) a requested reactive exchange may lie outside the band: the DSO's
#: values sit on band edges up to its LP's tolerance.
_REDISPATCH_TOL = 1e-4



@dataclass(frozen=True)
class Point:
    """A point of the coupling space of one microgrid: exchange per slot and eta."""

    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...]
    eta_usd: float


@dataclass(frozen=True)
class WindowBounds:
    """The window-data rows' and columns' bounds of one window (indices, lower, upper)."""

    rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    cols: tuple[np.ndarray, np.ndarray, np.ndarray]


class WindowBoundReader:
    """Reads the bounds that follow window data from a built microgrid block.

    The block's window-data variables, their columns and rows are listed once (they are
    the same for every window the block is re-loaded with); :meth:`read` takes their
    bounds as the re-loaded block holds them now.
    """

    def __init__(self, hm: HighsModel, b: pyo.Block, mg: Microgrid):
        self.hm = hm
        self._vars = window_vars(b, mg)
        self._cols = np.array([hm.col(v) for v in self._vars], dtype=np.int32)
        self._rows = window_rows(b, mg)

    def read(self) -> WindowBounds:
        """The current bounds of the window-data rows and columns."""
        lo = np.array([v.lb for v in self._vars], dtype=float)
        hi = np.array([v.ub for v in self._vars], dtype=float)
        return WindowBounds(self.hm.row_bounds(self._rows), (self._cols, lo, hi))


def window_bounds(hm: HighsModel, b: pyo.Block, window: MicrogridWindow) -> WindowBounds:
    """Read the bounds that follow window data from a re-loaded microgrid block, once."""
    return WindowBoundReader(hm, b, window.spec).read()


class CompiledElastic:
    """A compiled elastic model (unified LP or restoration MILP) with its parameter rows.

    The LP and the MILP hold the same Pyomo model: the MILP compiles it, the LP copies
    the compiled MILP without integrality (``compiled``). The MILP is solved through its
    LP relaxation wherever that proves the optimum (:class:`~gridcosim.simulator.
    decomposition.milp_dive.RelaxedMILP`, :attr:`relaxed`).
    """

    def __init__(self, model: pyo.ConcreteModel, window: MicrogridWindow, *, relax: bool,
                 compiled: HighsModel | None = None):
        self.model, self.window = model, window
        options = LP_RESOLVE_OPTIONS if relax else None
        self.hm = (HighsModel.clone(compiled, relax_integrality=relax, options=options)
                   if compiled is not None else
                   HighsModel(model, relax_integrality=relax, options=options))
        m = self.model
        self.rows_p = [m.couple_p[t] for t in m.mg.T]
        self.rows_q = [m.couple_q[t] for t in m.mg.T]
        b = m.mg
        self.binary_cols = [self.hm.col(v) for v in binary_vars(b, window.spec)]
        self._cost = self._read_cost_terms()
        self._blocks = {model.kind: block for model, block in unit_blocks(b, window.spec)}
        self._unit_cols: dict[tuple[str, str], np.ndarray] = {}
        self._curtail_cols = np.array([self.hm.col(b.curtail[t]) for t in b.T], dtype=np.int64)
        self._q_ex_cols = np.array([self.hm.col(b.q_ex[t]) for t in b.T], dtype=np.int64)
        self._p_ex_cols = np.array([self.hm.col(b.p_ex[t]) for t in b.T], dtype=np.int64)
        self._coupling = self.hm.rhs_rows([*self.rows_p, *self.rows_q, m.couple_eta])
        self._price_cols = np.concatenate([self._p_ex_cols, self._q_ex_cols]).astype(np.int32)
        self._price_base = self._price_objective()
        self._binary_bounds = self.hm.col_bounds(self.binary_cols)
        self.relaxed = None if relax else RelaxedMILP(self.hm, self.binary_cols,
                                                      RELAXATION_OPTIONS)
        self._price_root: Any = None  # the relaxation's basis at the last price response

    def _instances(self) -> list[HighsModel]:
        return [self.hm] + ([self.relaxed.lp] if self.relaxed is not None else [])

    def reload(self, window: MicrogridWindow, bounds: WindowBounds | None = None) -> None:
        """Set the window data rows and bounds after the Pyomo block was re-loaded.

        ``bounds`` (:func:`window_bounds`) are read from the block if not given. Every
        instance then starts the window cold, as a model compiled afresh for it.
        """
        self.window = window
        bounds = bounds or window_bounds(self.hm, self.model.mg, window)
        for hm in self._instances():
            hm.set_row_bounds(*bounds.rows)
            hm.set_cols_bounds(*bounds.cols)
            # what the last window's solves set goes back to the compiled values, so the
            # instance holds exactly the LP a model compiled for this window holds
            hm.set_cols_bounds(self.binary_cols, *self._binary_bounds)
            hm.set_rhs(self._coupling, np.zeros(len(self._coupling.idx)))
        self.hm.reset()
        if self.relaxed is not None:
            self.relaxed.lp.copy_costs(self.hm)
            self.relaxed.reset()
        self._price_root = None

    def start_from(self, basis: WarmBasis | None, relaxed: WarmBasis | None = None) -> None:
        """Start the window's solves from these bases (``None``: cold), after :meth:`reload`.

        ``relaxed`` is the MILP's relaxation's (ignored by the LP).
        """
        self.hm.reset(basis)
        if self.relaxed is not None:
            self.relaxed.reset(relaxed)
        self._price_root = None

    def solve_at(self, x: Point, start: HighsModel | None = None) -> SolveOutcome:
        """Solve at the proposal ``x`` (its values become the coupling right-hand sides).

        The right-hand sides are set in HiGHS only (the Pyomo parameters ``p_hat`` etc.
        keep their compiled values: nothing reads them after compilation). ``start``: an
        LP of the same model whose basis the MILP's relaxation starts from.
        """
        for hm in self._instances():
            hm.set_rhs(self._coupling, [*x.p_kw, *x.q_kvar, x.eta_usd])
        return self.solve(start)

    def solve(self, start: HighsModel | None = None) -> SolveOutcome:
        """Solve as the model stands (the MILP through its relaxation where it can)."""
        return self.relaxed.solve(start) if self.relaxed is not None else self.hm.solve()

    def relaxed_basis(self) -> WarmBasis | None:
        """The relaxation's basis at this window's last price response (``None``: none).

        The next window's price responses start from it (a warm start).
        """
        root = self._price_root
        if isinstance(root, WarmBasis) or root is None:
            return root
        self._price_root = WarmBasis.from_highs(root) if root.valid else None  # read once
        return self._price_root

    def exchange(self, out: SolveOutcome) -> RestoredExchange:
        """The exchange of a solution, the microgrid's true cost of it and its reactive band.

        The band is only given for an integral solution (a runnable schedule).
        """
        x = out.x
        q = tuple(x[self._q_ex_cols].tolist())
        lo, hi = self._band(out, q)
        return RestoredExchange(
            p_kw=tuple(x[self._p_ex_cols].tolist()), q_kvar=q,
            cost_usd=self.cost_usd(x),
            q_min_kvar=lo, q_max_kvar=hi)

    def _band(self, out: SolveOutcome, q: tuple[float, ...]
              ) -> tuple[tuple[float, ...], tuple[float, ...]]:
        x = out.x
        binaries = x[self.binary_cols]  # commitments and storage modes
        if np.any(np.abs(binaries - np.round(binaries)) > 1e-6):
            return (), ()
        lo, hi = reactive_band(self.window, self._reactive_ranges(x), x[self._curtail_cols])
        # the schedule's own Q is in the band up to solver tolerance: widen to contain it
        return (tuple(np.minimum(lo, q).tolist()), tuple(np.maximum(hi, q).tolist()))

    def redispatch_reactive(self, out: SolveOutcome, q_kvar: tuple[float, ...]
                            ) -> SolveOutcome | None:
        """The schedule ``out`` with its reactive exchange moved to ``q_kvar`` (in its band).

        Only the generators' and renewables' reactive outputs and the reactive exchange
        change; every active value, commitment and the cost stay exactly ``out``'s. Per
        slot each unit is placed at the same fraction of its reactive range (the ranges
        :func:`~simulator.models.microgrid_model.unit_reactive_ranges`). Returns ``None`` if
        ``q_kvar`` leaves the band by more than :data:`_REDISPATCH_TOL` kvar.
        """
        x = out.x.copy()
        need = reactive_need(self.window, np.asarray(q_kvar), x[self._curtail_cols])
        ranges = self._reactive_ranges(x)
        zero = np.zeros(self.window.slots)
        lo_sum = sum((lo.sum(axis=0) for _, lo, _ in ranges), zero)
        hi_sum = sum((hi.sum(axis=0) for _, _, hi in ranges), zero)
        if np.any(need < lo_sum - _REDISPATCH_TOL) or np.any(need > hi_sum + _REDISPATCH_TOL):
            return None
        width = hi_sum - lo_sum
        frac = np.clip(np.divide(need - lo_sum, width, out=np.zeros_like(width),
                                 where=width > 0), 0.0, 1.0)
        for model, lo, hi in ranges:
            x[self.unit_cols(model, model.reactive)] = lo + frac * (hi - lo)
        x[self._q_ex_cols] = q_kvar
        return out.with_x(x)

    def unit_cols(self, model: DerModel, component: str) -> np.ndarray:
        """Columns of one of a kind's components, shape (units, slots)."""
        key = (model.kind, component)
        cols = self._unit_cols.get(key)
        if cols is None:
            block = self._blocks[model.kind]
            var = block.component(component)
            cols = np.array([[self.hm.col(var[k, t]) for t in block.T] for k in block.K],
                            dtype=np.int64).reshape(len(block.K), len(block.T))
            self._unit_cols[key] = cols
        return cols

    def _reactive_ranges(self, x: np.ndarray) -> list[tuple[DerModel, np.ndarray, np.ndarray]]:
        return unit_reactive_ranges(self.window.spec, lambda m, c: x[self.unit_cols(m, c)])

    def _read_cost_terms(self) -> list[tuple[int, float]]:
        repn = generate_standard_repn(self.model.mg.cost_usd.expr)
        if repn.constant:
            raise ValueError("microgrid cost expression with a constant term")
        return [(self.hm.col(v), float(c))
                for v, c in zip(repn.linear_vars, repn.linear_coefs, strict=True)]

    def _price_objective(self) -> tuple[np.ndarray, np.ndarray]:
        """Columns and coefficients of a price response's objective besides the exchange.

        The elastic slacks and ``s_eta`` cost nothing, the MG's own cost terms carry it.
        """
        m, hm = self.model, self.hm
        slacks = [v for comp in (m.sp_plus, m.sp_minus, m.sq_plus, m.sq_minus)
                  for v in comp.values()]
        costs = {hm.col(v): 0.0 for v in [*slacks, m.s_eta]}
        costs.update(dict(self._cost))
        return (np.fromiter(costs, dtype=np.int32, count=len(costs)),
                np.fromiter(costs.values(), dtype=float, count=len(costs)))

    def price_response(self, signal: PriceSignal) -> SolveOutcome:
        """Minimise ``C − Σ λ_P P_ex − Σ λ_Q Q_ex`` with the exchange free.

        The elastic slacks and ``s_eta`` cost nothing, so the coupling rows never bind
        whatever x̂ they hold; the MG's own cost terms carry the objective. The outcome's
        ``bound`` is a proven lower bound on ``L(λ)``.
        """
        prices = -np.concatenate([np.asarray(signal.p_usd_per_kw, dtype=float),
                                  np.asarray(signal.q_usd_per_kvar, dtype=float)])
        cols = np.concatenate([self._price_base[0], self._price_cols])
        with self.hm.temporary_costs((cols, np.concatenate([self._price_base[1], prices]))):
            out = self.solve()
        if self.relaxed is not None:
            self._price_root = self.relaxed.last_root
        return out

    def schedule(self, out: SolveOutcome) -> MicrogridSchedule:
        """The unit schedule of a solution, read from its column values.

        The same values :func:`~gridcosim.simulator.schedule.extract_microgrid` reads from a
        loaded Pyomo block (series rounded to 1e-9), without loading them.
        """
        x, spec = out.x, self.window.spec
        units = []
        for model, _ in unit_blocks(self.model.mg, spec):
            def read(name: str, _model: DerModel = model) -> np.ndarray:
                return x[self.unit_cols(_model, name)]
            for unit_name, series in model.schedules(model.units(spec), read):
                own = {k: v for k, v in series.items() if k not in ("p_kw", "q_kvar")}
                units.append(UnitSchedule(unit_name, model.kind, series["p_kw"],
                                          series.get("q_kvar", ()), own))
        return MicrogridSchedule(
            name=spec.name, bus=spec.bus, p_ex_kw=_rounded(x[self._p_ex_cols]),
            q_ex_kvar=_rounded(x[self._q_ex_cols]), cost_usd=self.cost_usd(x),
            curtail_kw=_rounded(x[self._curtail_cols]), units=tuple(units))

    def cost_usd(self, x: np.ndarray) -> float:
        """The microgrid's own cost of a solution's column values."""
        return float(sum(x[j] * c for j, c in self._cost))


def _rounded(values: Any) -> tuple[float, ...]:
    """A series as :func:`~gridcosim.simulator.schedule.extract_microgrid` reports it."""
    return tuple(round(v, 9) for v in np.asarray(values, dtype=float).tolist())


def probes(ex: RestoredExchange, b: ExchangeBounds) -> list[Point]:
    """Probe points around an exchange (for the responder's probe cuts).

    The point itself with eta = 0, then each slot's P and Q pushed to the published
    rating, up and down, with eta at its bound.
    """
    points = [Point(ex.p_kw, ex.q_kvar, 0.0)]
    for t in range(len(ex.p_kw)):
        for lo, hi, is_p in ((b.p_min_kw, b.p_max_kw, True), (b.q_min_kvar, b.q_max_kvar, False)):
            for v in (lo, hi):
                p, q = list(ex.p_kw), list(ex.q_kvar)
                (p if is_p else q)[t] = v
                points.append(Point(tuple(p), tuple(q), b.eta_ub_usd))
    return points


def cut_value(cut: UnifiedCut, x: Point) -> float:
    """Left-hand side of a unified cut at ``x`` (positive: ``x`` is cut off)."""
    pi = (*cut.pi_p, *cut.pi_q, cut.pi_eta)
    at = (*x.p_kw, *x.q_kvar, x.eta_usd)
    hat = (*cut.p_hat_kw, *cut.q_hat_kvar, cut.eta_hat_usd)
    return cut.f + sum(a * (v - h) for a, v, h in zip(pi, at, hat, strict=True))
