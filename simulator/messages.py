"""Messages exchanged between the DSO (master) and the microgrid controllers.

Each message is a small frozen dataclass carrying only coupling quantities: exchange
powers per slot, the cost estimate eta, cut coefficients and anonymous branch-node ids.
Nothing here names a generator, a storage unit or a network element; the audit test
checks every message of a run against that rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class KeySource(StrEnum):
    """Where a restored schedule a controller keeps came from."""

    START = "start"  # the schedule nearest zero exchange, before iterating
    PRICE = "price"  # the answer to a price signal
    PROPOSAL = "proposal"  # the restoration of a master proposal


@dataclass(frozen=True, order=True)
class ScheduleKey:
    """The DSO's reference to one schedule a controller restored (to award it later).

    Numbers count within their source, from 1 (``START`` has only 0); they say nothing
    of the microgrid.
    """

    source: KeySource
    number: int


START_KEY = ScheduleKey(KeySource.START, 0)


@dataclass(frozen=True)
class ExchangeBounds:
    """What microgrid controller i publishes once per window: its PCC and its cost range."""

    mg: str
    bus: int
    p_min_kw: float
    p_max_kw: float
    q_min_kvar: float
    q_max_kvar: float
    eta_ub_usd: float


@dataclass(frozen=True)
class RestoredExchange:
    """An exchange microgrid i can actually run (MILP-feasible) and its true cost.

    ``q_min_kvar`` / ``q_max_kvar`` (empty: not given) is the schedule's reactive band:
    per slot, the PCC's reactive exchange can be set anywhere in it without changing the
    active schedule, the commitments or the cost (generators' and renewables' reactive
    capability at their scheduled output). ``q_kvar`` lies in it.
    """

    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...]
    cost_usd: float
    q_min_kvar: tuple[float, ...] = ()
    q_max_kvar: tuple[float, ...] = ()


@dataclass(frozen=True)
class ExchangeProposal:
    """The master's tentative exchange x̂_i and the branch leaf it selected for MG i.

    ``sep_*`` is the in-out separation point (empty when stabilisation is off): the
    controller tries it first and falls back to x̂ when it yields no cut that cuts off x̂.
    ``key`` is the DSO's reference of the proposal (to award its schedule later).
    ``restore`` asks the controller to return a restored (runnable) exchange near x̂
    even when it answers with a unified cut (for the upper bound).
    """

    mg: str
    key: ScheduleKey
    leaf: int
    p_kw: tuple[float, ...]
    q_kvar: tuple[float, ...]
    eta_usd: float
    sep_p_kw: tuple[float, ...] = ()
    sep_q_kvar: tuple[float, ...] = ()
    sep_eta_usd: float = 0.0
    restore: bool = False


@dataclass(frozen=True)
class UnifiedCut:
    """``f + Σ π_p (P − p̂) + Σ π_q (Q − q̂) + π_eta (eta − eta_hat) ≤ 0`` (if ``leaf``)."""

    mg: str
    leaf: int
    f: float
    pi_p: tuple[float, ...]
    pi_q: tuple[float, ...]
    pi_eta: float
    p_hat_kw: tuple[float, ...]
    q_hat_kvar: tuple[float, ...]
    eta_hat_usd: float
    restored: RestoredExchange | None = None


@dataclass(frozen=True)
class RestorationCut:
    """``Σ w_p|P − p̂| + Σ w_q|Q − q̂| + w_eta (eta − eta_hat)⁺ ≥ f`` (seed 000 (14i))."""

    mg: str
    f: float
    w_p: float
    w_q: float
    w_eta: float
    p_hat_kw: tuple[float, ...]
    q_hat_kvar: tuple[float, ...]
    eta_hat_usd: float
    restored: RestoredExchange


@dataclass(frozen=True)
class BranchNotice:
    """MG i split leaf ``parent`` into two anonymous children (docs/formulation.md §3c).

    ``cuts`` are unified cuts of the children at the current proposal; children listed
    in ``infeasible`` have an empty LP and must not be selected.
    """

    mg: str
    parent: int
    children: tuple[int, int]
    cuts: tuple[UnifiedCut, ...]
    infeasible: tuple[int, ...]
    restored: RestoredExchange


@dataclass(frozen=True)
class Accept:
    """MG i can run the proposal: its restored exchange and the true cost of it."""

    mg: str
    restored: RestoredExchange


@dataclass(frozen=True)
class Infeasible:
    """MG i can run no schedule at all in this window, whatever the exchange.

    Its own constraints conflict (initial state, ramps, storage energy, PCC rating); the
    message names the microgrid and nothing of its data. The DSO stops the window with
    status ``infeasible``.
    """

    mg: str


@dataclass(frozen=True)
class ScheduleAward:
    """The DSO's choice for microgrid i at the end of a window: which restored schedule.

    ``key`` is the reference of the proposal or price signal whose restored schedule the
    DSO settled on; ``q_kvar`` the reactive exchange it picked within that schedule's
    reactive band. The microgrid's controller turns it into its own unit schedule; the
    DSO never sees that schedule.
    """

    mg: str
    key: ScheduleKey
    q_kvar: tuple[float, ...]


@dataclass(frozen=True)
class PriceSignal:
    """The DSO's marginal value of microgrid i's exchange, per slot (a nodal price).

    ``p_usd_per_kw[t]`` is what one more kW exported at the PCC during slot t is worth to
    the DSO over the slot (price × slot length), ``q_usd_per_kvar[t]`` the same for
    reactive power. ``key`` is the DSO's reference (to award the schedule later).
    """

    mg: str
    key: ScheduleKey
    p_usd_per_kw: tuple[float, ...]
    q_usd_per_kvar: tuple[float, ...]


@dataclass(frozen=True)
class PriceResponse:
    """Microgrid i's best answer to a price signal: a Lagrangian cut and a runnable exchange.

    ``bound_usd`` is a proven lower bound on ``L(λ) = min C(y) − Σ λ_P P(y) − Σ λ_Q Q(y)``
    over everything the microgrid can run (the MILP's dual bound), so
    ``eta ≥ bound_usd + Σ λ_P P + Σ λ_Q Q`` holds for every exchange the microgrid can
    run at cost ``eta`` (a Lagrangian cut, docs/decisions.md). ``restored`` is the schedule
    that attains it (runnable, with its true cost): an upper-bound candidate.
    """

    mg: str
    key: ScheduleKey
    bound_usd: float
    p_usd_per_kw: tuple[float, ...]
    q_usd_per_kvar: tuple[float, ...]
    restored: RestoredExchange


@dataclass(frozen=True)
class SettlementPrices:
    """The DSO's nodal prices for microgrid i's adopted exchange in one window.

    Sent with the window's award: ``price_usd_per_kwh[t]`` is what one more kWh exported
    at the PCC in slot ``start_slot + t`` saves the DSO's network LP with every exchange
    fixed at the adopted schedule (its slope for more export, in $ per kW over the slot,
    divided by the slot length: minus the fixed column's reduced cost, or at a kink the
    next kWh's value; :mod:`~gridcosim.simulator.decomposition.settlement_prices`);
    ``price_q_usd_per_kvarh[t]`` the same for reactive energy. Export to the network is
    positive, so a positive price means the DSO values more export; NaN where the network
    LP had no valid duals. The controller settles each executed slot at them.
    """

    mg: str
    start_slot: int
    price_usd_per_kwh: tuple[float, ...]
    price_q_usd_per_kvarh: tuple[float, ...]


Response = UnifiedCut | RestorationCut | BranchNotice | Accept | Infeasible


@dataclass(frozen=True)
class ReplyStats:
    """The bookkeeping that travels with a controller's answer (for the iteration record).

    Attributes:
        f_d: The unified LP's value at the proposal (infinite: the microgrid is infeasible).
        f_f: The restoration MILP's distance, if it ran.
        lp_solves: LPs solved for the answer.
        milp_solves: MILPs solved for the answer.

    """

    f_d: float
    f_f: float | None
    lp_solves: int
    milp_solves: int


@dataclass(frozen=True)
class Reply:
    """A controller's answer to one proposal and its bookkeeping."""

    response: Response
    stats: ReplyStats
