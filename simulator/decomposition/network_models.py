"""The DSO's compiled master and network LP, kept from one window to the next.

A rolling horizon re-plans every K slots with windows of the same length; the two models
are compiled once per window length and re-loaded for each window
(:mod:`~gridcosim.simulator.decomposition.network_reload`). Each window starts both
from a basis chosen by rule (the network LP's final basis of the previous window, moved
on by the slots between the two windows: :class:`~gridcosim.simulator.warm_basis.
SlotShift`), so that what they solve depends only on the window's data and that basis.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from gridcosim.simulator.decomposition.master_problem import MasterProblem
from gridcosim.simulator.decomposition.network_evaluator import NetworkEvaluator
from gridcosim.simulator.decomposition.power_flow_basis import power_flow_basis
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.models.lindistflow_model import NetworkWindow, same_shape
from gridcosim.simulator.warm_basis import SlotShift, WarmBasis


@dataclass
class NetworkModels:
    """The DSO's compiled master and network LP."""

    master: MasterProblem
    evaluator: NetworkEvaluator
    _shifts: dict[int, SlotShift] = field(default_factory=dict, repr=False)

    @classmethod
    def for_window(cls, window: NetworkWindow, settings: DecompositionSettings,
                   previous: NetworkModels | None = None,
                   basis: WarmBasis | None = None) -> NetworkModels:
        """Re-load ``previous`` with the window's data if it has its shape, else build.

        Both LPs then start from ``basis`` (the previous window's :meth:`final_basis`),
        moved on to the window's first slot when it comes from an overlapping earlier
        window; without one the network LP starts from its power-flow basis
        (:mod:`.power_flow_basis`) and the master from scratch (presolve and dual simplex:
        the Benders iterations' path depends on the master's vertices, and this keeps
        it). A resumed run that restores the basis from its checkpoint continues exactly.
        """
        if previous is not None and same_shape(previous.master.window, window):
            previous.evaluator.reload(previous.master.window, window)
            previous.master.reload(window)
            models = previous
        else:
            master = MasterProblem(window, time_limit_s=settings.master_time_limit_s,
                                   mip_rel_gap=settings.rel_gap / 10,
                                   cut_purge_age=settings.cut_purge_age)
            models = cls(master, NetworkEvaluator(master.model, master.hm, master.reloader))
        start = models.moved(basis, window)
        models.evaluator.hm.reset(start if start is not None else models.power_flow_start)
        models.master.hm.reset_when_solved(start)  # many windows settle without a master
        return models

    def moved(self, basis: WarmBasis | None, window: NetworkWindow) -> WarmBasis | None:
        """``basis`` moved on to ``window``'s first slot (as it is if not from before it)."""
        if basis is None or basis.slot is None:
            return basis
        shift = window.start - basis.slot
        if not 0 < shift < window.slots:
            return basis
        if shift not in self._shifts:
            self._shifts[shift] = self.master.hm.slot_shift(window.slots, shift)
        return self._shifts[shift].basis(basis, window.start)

    @functools.cached_property
    def power_flow_start(self) -> WarmBasis | None:
        """The network LP's power-flow basis (computed once: it follows the shape only)."""
        return power_flow_basis(self.evaluator.hm, self.evaluator.model.net)

    def final_basis(self) -> WarmBasis | None:
        """The network LP's basis at the end of a window (the next window's warm start).

        The network LP and the master share their compiled rows and columns; with AC cuts
        appended the LP's basis is taken without them when it stays consistent.
        """
        hm = self.evaluator.hm
        basis = hm.basis()
        if basis is None:
            return None
        rows, cols, _ = hm.compiled_shape
        cut = WarmBasis(basis.col_status[:cols], basis.row_status[:rows],
                        self.master.window.start)
        basic = int((cut.col_status == 1).sum() + (cut.row_status == 1).sum())
        return cut if basic == rows else None
