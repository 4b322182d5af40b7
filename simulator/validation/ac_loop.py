"""The decomposition with AC validation (seed 000 Step 7; docs/formulation.md §6).

:class:`ACDecomposition` is :class:`~simulator.decomposition.loop.Decomposition` with an
:class:`~simulator.validation.ac_cuts.ACCutGenerator` as its validator; the loop applies
three rules whenever it has a validator:

1. **AC cuts also bind the network LP** that prices exchange combinations (the
   evaluator). Otherwise it would re-optimise SVCs and curtailment without them, hand the
   validator the same violating schedule again and the loop would repeat one cut forever.
2. **Only AC-feasible schedules become incumbents.** The loop stops when the gap between
   the master's bound and the best incumbent closes; an incumbent the AC power flow rejects
   would stop it with an AC-infeasible schedule.
3. **The reported schedule is the one that was validated** (not re-optimised at the end
   under cuts added later).

Outcome: ``optimal`` when every microgrid accepts and every slot has ``E_t <= tol_pu``
(or the gap to an AC-feasible incumbent closes); ``infeasible`` when AC cuts leave the
master no solution (the run then reports the best AC-feasible incumbent, if any);
``not_converged`` at the iteration or time cap. AC cuts are first-order models, not valid
inequalities, so the master's bound is a bound of the cut-augmented LinDistFlow problem.
``Solution.info["ac"]`` holds the AC report of the reported schedule (per slot: status,
E_t, losses, LinDistFlow-vs-AC voltage gap; AC voltages by bus) and counters;
:meth:`ACDecomposition.records_frame` adds per-iteration AC columns.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import AcEngine
from gridcosim.simulator.decomposition.controller_pool import ResponderPool
from gridcosim.simulator.decomposition.cut_families import CutFamily
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.network_models import NetworkModels
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.schedule import Solution
from gridcosim.simulator.status import WindowStatus
from gridcosim.simulator.validation.ac_cuts import ACCutGenerator, window_validator
from gridcosim.simulator.validation.phase_cuts import PhaseCutGenerator, PhaseValidator
from gridcosim.simulator.validation.phase_engines.select import phase_engine
from gridcosim.simulator.validation.results import ValidationReport
from gridcosim.simulator.validation.validator import NetworkValidator
from gridcosim.simulator.warm_basis import WarmBasis


class ACDecomposition(Decomposition):
    """One window's DSO–microgrid iteration with AC validation and AC feasibility cuts.

    The loop itself (:class:`~simulator.decomposition.loop.Decomposition`) applies the AC
    rules: only AC-feasible incumbents, AC cuts in the master and the network LP, the
    validated schedule reported. This class adds the AC reports.

    Args:
        window: The DSO's window data.
        pool: The microgrid controllers.
        settings: Decomposition settings.
        cuts: The AC cut generator of this window.
        models: The previous window's compiled network models (re-loaded if they fit).

    """

    def __init__(self, window: NetworkWindow, pool: ResponderPool,
                 settings: DecompositionSettings, cuts: ACCutGenerator | PhaseCutGenerator,
                 models: NetworkModels | None = None, basis: WarmBasis | None = None):
        super().__init__(window, pool, settings, validator=cuts, models=models, basis=basis)
        self.cuts = cuts
        self.master.cut_counts[CutFamily.AC] = 0  # every record counts AC cuts, even 0

    @property
    def best_report(self) -> ValidationReport | None:
        """The AC report of the incumbent (``None`` without one)."""
        return self.best.report

    def solution(self, status: WindowStatus, lb: float, wall_s: float) -> Solution:
        """The loop's solution plus ``info["ac"]``."""
        solution = super().solution(status, lb, wall_s)
        solution.info["ac"] = self.ac_info()
        return solution

    # -------------------------------------------------------------- reports
    def ac_info(self) -> dict[str, Any]:
        """JSON-friendly AC summary: counters and the reported schedule's AC report."""
        return {
            "validations": len(self.cuts.history),
            "power_flows": self.cuts.validator.power_flows,
            "cuts": int(self.master.cut_counts.get("ac", 0)),
            "pf_failed_cuts": sum(c.source == "pf_failed" for _, cuts in self.cuts.history
                                  for c in cuts),
            "final": None if self.best_report is None else self.best_report.summary(),
        }

    def records_frame(self) -> pd.DataFrame:
        """Iteration records plus, where a validation ran, its AC figures.

        Columns ``ac_feasible``, ``ac_violation_pu`` (sum of E_t), ``ac_pf_failed``
        (slots whose power flow failed), ``ac_losses_kw`` and ``ac_max_vm_gap_pu`` (over the
        converged slots); empty (NaN) in iterations without a validation.
        """
        frame = super().records_frame()
        rows = {}
        for iteration, report in self.validation_reports.items():
            slots = report.slot_frame()
            rows[iteration] = {
                "ac_feasible": report.feasible,
                "ac_violation_pu": float(slots["violation_pu"].fillna(0.0).sum()),
                "ac_pf_failed": report.power_flows_failed,
                "ac_losses_kw": float(slots["losses_kw"].sum()),
                "ac_max_vm_gap_pu": float(slots["max_abs_vm_gap_pu"].max()),
            }
        if frame.empty or not rows:
            return frame
        extra = pd.DataFrame.from_dict(rows, orient="index")
        return frame.merge(extra, left_on="iteration", right_index=True, how="left")


def network_validator(window: NetworkWindow, engine: AcEngine = AcEngine.AUTO
                      ) -> NetworkValidator | PhaseValidator:
    """The AC validator of the window's feeder: balanced, or per phase (three-phase)."""
    if isinstance(window.network, PhaseNetwork):
        return PhaseValidator(window, phase_engine(window.network, engine))
    return window_validator(window)


def cut_generator(window: NetworkWindow, engine: AcEngine = AcEngine.AUTO, *,
                  validator: NetworkValidator | PhaseValidator | None = None,
                  **cut_options: Any) -> ACCutGenerator | PhaseCutGenerator:
    """The AC cut generator of ``window``: balanced, or per phase on a three-phase feeder.

    Args:
        window: The DSO's window.
        engine: The three-phase engine choice (ignored on a balanced feeder).
        validator: A validator built before for the same feeder (built if omitted).
        **cut_options: Options of the generator (``tol_pu``, ``margin_pu``, ...).

    """
    validator = validator if validator is not None else network_validator(window, engine)
    if isinstance(validator, PhaseValidator):
        return PhaseCutGenerator(validator, window, **cut_options)
    return ACCutGenerator(validator, window, **cut_options)


def ac_decomposition(window: NetworkWindow, pool: ResponderPool, settings: DecompositionSettings,
                     engine: AcEngine = AcEngine.AUTO, **cut_options: Any) -> ACDecomposition:
    """An :class:`ACDecomposition` with a validator built for ``window``.

    Args:
        window: The DSO's window.
        pool: The microgrid controllers.
        settings: Decomposition settings.
        engine: The three-phase engine choice (ignored on a balanced feeder).
        **cut_options: Options of the cut generator (``tol_pu``, ``margin_pu``, ...).

    """
    return ACDecomposition(window, pool, settings, cut_generator(window, engine, **cut_options))


def ac_check_info(window: NetworkWindow, solution: Solution,
                  engine: AcEngine = AcEngine.AUTO) -> dict[str, Any]:
    """AC check (no cuts) of a finished solution, e.g. the monolithic LinDistFlow optimum.

    Returns:
        ``{"power_flows": n, "final": report summary}`` (``final`` is ``None`` when the
        solution has no network schedule).

    """
    if solution.network is None:
        return {"power_flows": 0, "final": None}
    cuts = cut_generator(window, engine)
    report = cuts.check(solution.network, solution.exchanges)
    return {"power_flows": cuts.validator.power_flows, "final": report.summary()}
