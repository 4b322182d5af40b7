"""Settings of the decomposition (tolerances, limits, stabilisation, integer method)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from numbers import Integral

from gridcosim.scenarios.errors import InputError
from gridcosim.simulator.models.elastic_model import ElasticWeights


class IntegerMethod(StrEnum):
    """How the loop closes the integer gap of a controller's MILP."""

    BRANCH = "branch"  # microgrid-side branching, exact
    RESTORATION = "restoration"  # seed 000's distance cut


class Stabilisation(StrEnum):
    """How proposals are stabilised."""

    IN_OUT = "in-out"  # a separation point between x-hat and a core point
    NONE = "none"


@dataclass(frozen=True)
class DecompositionSettings:
    """How the DSO and the microgrid controllers iterate.

    Attributes:
        integer_method: ``branch`` (microgrid-side branching, exact, docs/formulation.md §3c) or
            ``restoration`` (seed 000's distance cut, §3b).
        stabilisation: ``in-out`` (separation point between x̂ and a core point) or ``none``.
        in_out_alpha: Weight of x̂ in the separation point ``alpha·x̂ + (1−alpha)·x_core``.
        in_out_core_step: After each iteration the core point moves this fraction of the
            way to x̂ (a slow core kept the seed case at about 60 iterations, 0.5 at 190).
        rel_gap: Stop when (UB − LB) / max(1, |UB|) is below this.
        eps_rel: Acceptance tolerance of F_D and F_F relative to 1 + |master objective|.
        max_iterations: Iteration cap (then status ``not_converged``).
        time_limit_s: Wall-time limit of the loop (then status ``not_converged``).
        master_time_limit_s: Time limit of one master MILP solve.
        weights: Elastic slack weights of the subproblems.
        workers: Microgrid-controller processes (1: in-process).
        warm_start_cuts: Controllers send unified cuts at probe points around their
            starting schedule: before iterating, or, with price signals, only when the
            first iteration did not already close the gap.
        restore_every: Every this many iterations the controllers also return an
            economically restored schedule near the proposal (for the upper bound).
        price_signals: Before iterating, the DSO sends each controller the network LP's
            nodal prices at the incumbent; the controllers answer with a Lagrangian cut
            and the schedule that attains it (docs/decisions.md).
        price_rounds: Price rounds before the first master: the first at the nodal prices
            of zero exchange, each next one at the inner master's duals (with
            ``inner_master``; else at the network LP's nodal prices at the previous
            round's answers), until the inner master's value meets the master's bound or
            the prices repeat.
        price_every: With price signals, every this many iterations the DSO also sends
            nodal prices (the inner master's; without it, the network LP's at the
            master's proposal); 0: only before iterating.
        inner_master: With price signals, keep the inner master (docs/formulation.md §7):
            the network LP over convex combinations of the schedules the controllers
            sent. Its duals price the rounds, and whenever its value meets the master's
            bound (no branch selectors yet) its combination is the proposal.
        cut_purge_age: Unified and Lagrangian cuts slack at this many consecutive master
            solutions leave the master for a pool; a parked cut the master's solution
            violates goes back in before the master is solved again (0: keep every cut).

    """

    integer_method: IntegerMethod = IntegerMethod.BRANCH
    stabilisation: Stabilisation = Stabilisation.IN_OUT
    in_out_alpha: float = 0.4
    in_out_core_step: float = 0.1
    rel_gap: float = 1e-6
    eps_rel: float = 1e-7
    max_iterations: int = 500
    time_limit_s: float = 300.0
    master_time_limit_s: float = 60.0
    weights: ElasticWeights = field(default_factory=ElasticWeights)
    workers: int = 1
    warm_start_cuts: bool = True
    restore_every: int = 20
    price_signals: bool = True
    price_every: int = 0
    price_rounds: int = 10
    inner_master: bool = True
    cut_purge_age: int = 0

    def __post_init__(self) -> None:
        # accept the enums' string values ("branch", "none", ...), as the CLI gives them
        object.__setattr__(self, "integer_method", IntegerMethod(self.integer_method))
        object.__setattr__(self, "stabilisation", Stabilisation(self.stabilisation))
        for name in ("price_rounds", "price_every", "cut_purge_age"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < 0:
                raise InputError(f"{name} must be a non-negative integer (got {value!r})")
