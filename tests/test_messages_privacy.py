"""The privacy boundary of docs/formulation.md §1, audited on real runs.

A recording proxy sits between the DSO's loop and the microgrid controllers (a
:class:`~gridcosim.simulator.decomposition.controller_pool.LocalPool`, or a
:class:`~gridcosim.simulator.decomposition.controller_pool.ProcessPool` in a multi-window
co-simulation with re-loaded models) and keeps every object that crosses in either
direction. Every message must be a small frozen record of
:mod:`gridcosim.simulator.messages` carrying only coupling quantities; the DSO's side of the
run (the :class:`~gridcosim.simulator.decomposition.loop.Decomposition`, the DSO agent and
everything they reference) must hold no microgrid data. The ``schedules()`` call turns the
DSO's awards into unit schedules for the microgrid controllers (and the user); the DSO's
loop never makes it, and what it returns never reaches the DSO.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

import gridcosim.simulator.cosim as cosim_module
from gridcosim.scenarios import variants
from gridcosim.scenarios.network import load_network
from gridcosim.scenarios.schema import SVC, Generator, Microgrid, Renewable, Scenario, Storage
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.decomposition.controller_pool import LocalPool, ProcessPool, make_pool
from gridcosim.simulator.decomposition.iteration_records import McReply
from gridcosim.simulator.decomposition.loop import Decomposition
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.messages import (
    Accept,
    BranchNotice,
    ExchangeBounds,
    ExchangeProposal,
    Infeasible,
    KeySource,
    PriceResponse,
    PriceSignal,
    Reply,
    ReplyStats,
    RestorationCut,
    RestoredExchange,
    ScheduleAward,
    ScheduleKey,
    UnifiedCut,
)
from gridcosim.simulator.models.microgrid_model import MicrogridState, MicrogridWindow
from gridcosim.simulator.schedule import MicrogridSchedule, Solution, UnitSchedule
from gridcosim.simulator.solve import solve_scenario, with_unit_schedules
from gridcosim.simulator.windows import microgrid_window, network_window

MESSAGE_TYPES = (ExchangeBounds, ExchangeProposal, UnifiedCut, RestorationCut, BranchNotice,
                 Accept, RestoredExchange, PriceSignal, PriceResponse, Infeasible, ScheduleAward,
                 ScheduleKey)
PRIVATE_TYPES = (Microgrid, Generator, Storage, Renewable, MicrogridWindow, MicrogridState)
FORBIDDEN_WORDS = ("generator", "dg", "storage", "ess", "renewable", "soc", "commit")
SKIPPED_MODULES = ("pyomo", "highspy", "pandas", "numpy")


class RecordingPool:
    """A :class:`LocalPool` behind a proxy that logs every call and what crossed."""

    def __init__(self, inner: LocalPool):
        self.inner = inner
        self.calls: list[str] = []
        self.to_mcs: list[Any] = []      # DSO -> microgrid controllers
        self.to_dso: list[Any] = []      # microgrid controllers -> DSO
        self.stats: list[ReplyStats] = []
        self.output: list[MicrogridSchedule] = []

    def bounds(self) -> list[ExchangeBounds]:
        self.calls.append("bounds")
        out = self.inner.bounds()
        self.to_dso.extend(out)
        return out

    def respond(self, proposals: Sequence[ExchangeProposal], eps: float) -> list[Reply]:
        self.calls.append("respond")
        self.to_mcs.extend(proposals)
        self.to_mcs.append(eps)
        replies = self.inner.respond(proposals, eps)
        for reply in replies:
            assert type(reply) is Reply, reply
            self.to_dso.append(reply.response)
            self.stats.append(reply.stats)
        return replies

    def initial_cuts(self, warm_start: bool = True) -> list:
        self.calls.append("initial_cuts")
        out = self.inner.initial_cuts(warm_start)
        self.to_dso.extend(out)
        return out

    def price_responses(self, signals: Sequence[PriceSignal]) -> list:
        self.calls.append("price_responses")
        self.to_mcs.extend(signals)
        out = self.inner.price_responses(signals)
        self.to_dso.extend(out)
        return out

    def warm_start_cuts(self) -> list:
        self.calls.append("warm_start_cuts")
        out = self.inner.warm_start_cuts()
        self.to_dso.extend(out)
        return out

    def schedules(self, awards: Sequence[ScheduleAward]) -> list[MicrogridSchedule]:
        self.calls.append("schedules")
        self.to_mcs.extend(awards)
        out = self.inner.schedules(awards)
        self.output.extend(out)
        return out

    def load(self, windows: Sequence[MicrogridWindow]) -> None:
        self.calls.append("load")
        self.inner.load(windows)

    def close(self) -> None:
        self.calls.append("close")
        self.inner.close()


Run = tuple[Decomposition, RecordingPool, Solution, Scenario]


def run_recorded(scenario: Scenario, settings: DecompositionSettings) -> Run:
    windows = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    pool = RecordingPool(LocalPool(windows, settings))
    try:
        window = network_window(scenario, load_network(scenario.network.source), pool.bounds())
        dec = Decomposition(window, pool, settings)
        sol = with_unit_schedules(dec.run(), pool)
    finally:
        pool.close()
    return dec, pool, sol, scenario


@pytest.fixture(scope="module", params=["seed", "small_pcc_150", "stressed"])
def run(request: pytest.FixtureRequest, base: Scenario) -> Run:
    """The seed and the stressed case with price signals (the default), small_pcc(150)
    with Benders cuts alone (it branches).

    The seed case settles before iterating (its first price round proves the optimum:
    price signals, responses and awards only), the stressed case iterates with prices.
    """
    builders: dict[str, Callable[[Scenario], Scenario]] = {
        "seed": lambda s: s, "small_pcc_150": lambda s: variants.small_pcc(s, 150.0, 100.0),
        "stressed": variants.stressed}
    settings = DecompositionSettings(price_signals=request.param != "small_pcc_150")
    return run_recorded(builders[request.param](base), settings)


# ---------------------------------------------------------------------------- audit helpers


def is_number(value: Any) -> bool:
    return type(value) in (int, float, bool)


def field_problems(msg: Any, path: str = "") -> list[str]:
    """Every rule of the message format that ``msg`` (recursively) breaks."""
    where = path or type(msg).__name__
    if type(msg) not in MESSAGE_TYPES:
        return [f"{where}: {type(msg).__module__}.{type(msg).__qualname__} is not a message"]
    out = []
    if not type(msg).__dataclass_params__.frozen:
        out.append(f"{where}: not frozen")
    for f in dataclasses.fields(msg):
        name, value = f.name, getattr(msg, f.name)
        here = f"{where}.{name}"
        lowered = name.lower()
        out += [f"{here}: field name mentions {w!r}" for w in FORBIDDEN_WORDS if w in lowered]
        if isinstance(value, KeySource):  # where a schedule came from: start, price, proposal
            pass
        elif isinstance(value, str):
            if name != "mg":
                out.append(f"{here}: a string outside the 'mg' field ({value!r})")
        elif is_number(value):
            pass
        elif isinstance(value, tuple):
            for k, item in enumerate(value):
                if type(item) in MESSAGE_TYPES:
                    out += field_problems(item, f"{here}[{k}]")
                elif not is_number(item):
                    out.append(f"{here}[{k}]: {type(item).__name__} in a tuple")
        elif type(value) in MESSAGE_TYPES:
            out += field_problems(value, here)
        elif value is None and f.default is None:  # an optional part left out
            pass
        else:
            out.append(f"{here}: field of type {type(value).__name__}")
    return out


def node_ids(msg: Any) -> Iterator[Any]:
    if isinstance(msg, BranchNotice):
        yield msg.parent
        yield from msg.children
        yield from msg.infeasible
        for cut in msg.cuts:
            yield cut.leaf
    elif isinstance(msg, UnifiedCut | ExchangeProposal):
        yield msg.leaf


def messages(pool: RecordingPool) -> list[Any]:
    return [m for m in (*pool.to_mcs, *pool.to_dso) if not isinstance(m, float)]


def find_private(root: Any, boundary: tuple[Any, ...] = (),
                 wanted: tuple[type, ...] = PRIVATE_TYPES) -> list[str]:
    """Paths from ``root`` to any ``wanted`` object (private microgrid data by default).

    Pyomo, highspy, pandas and numpy objects are not entered.

    Walks ``__dict__`` and ``__slots__`` attributes, lists, tuples, sets and dicts (keys and
    values). Objects in ``boundary`` (the controllers' side) are not entered.
    """
    found: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, type(root).__name__)]
    while stack:
        obj, path = stack.pop()
        if id(obj) in seen or obj is None or isinstance(obj, str | bytes | int | float):
            continue
        seen.add(id(obj))
        if any(obj is b for b in boundary):
            continue
        if isinstance(obj, wanted):
            found.append(f"{path}: {type(obj).__name__}")
            continue
        module = type(obj).__module__ or ""
        if module.split(".")[0] in SKIPPED_MODULES:
            continue
        if isinstance(obj, dict):
            for k, v in obj.items():
                stack.append((k, f"{path}{{key {k!r}}}"))
                stack.append((v, f"{path}[{k!r}]"))
            continue
        if isinstance(obj, list | tuple | set | frozenset):
            stack.extend((v, f"{path}[{k}]") for k, v in enumerate(obj))
            continue
        if isinstance(obj, type | types.FunctionType | types.MethodType
                      | types.BuiltinFunctionType | types.ModuleType):
            continue
        attrs: dict[str, Any] = dict(getattr(obj, "__dict__", {}))
        for cls in type(obj).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                if hasattr(obj, slot):
                    attrs.setdefault(slot, getattr(obj, slot))
        stack.extend((v, f"{path}.{k}") for k, v in attrs.items())
    return found


# ---------------------------------------------------------------------------- tests


def test_run_converges_through_the_proxy(run: Run) -> None:
    dec, pool, sol, scenario = run
    assert sol.status == "optimal"
    reference = solve_scenario(scenario, "monolithic")
    assert abs(sol.objective_usd - reference.objective_usd) <= 1e-6 * abs(
        reference.objective_usd)
    sent = {type(m) for m in pool.to_mcs if not isinstance(m, float)}
    assert sent <= {ExchangeProposal, PriceSignal, ScheduleAward} and ScheduleAward in sent
    assert (ExchangeProposal in sent) == (sol.info["iterations"] > 0)
    assert (PriceSignal in sent) == dec.settings.price_signals
    assert len(pool.to_dso) > len(scenario.microgrids)


def test_every_message_is_a_frozen_coupling_record(run: Run) -> None:
    _, pool, _, _ = run
    problems = [p for m in messages(pool) for p in field_problems(m)]
    assert problems == []
    assert all(isinstance(e, float) for e in pool.to_mcs
               if not isinstance(e, ExchangeProposal | PriceSignal | ScheduleAward))


def test_messages_cannot_be_modified(run: Run) -> None:
    dec, pool, sol, _ = run
    one_of_each: dict[type, Any] = {}
    for m in messages(pool):
        one_of_each.setdefault(type(m), m)
        for f in dataclasses.fields(m):
            value = getattr(m, f.name)
            if type(value) in MESSAGE_TYPES:
                one_of_each.setdefault(type(value), value)
    for msg in one_of_each.values():
        first = dataclasses.fields(msg)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(msg, first, getattr(msg, first))
    assert {ExchangeBounds, RestoredExchange, ScheduleAward} <= set(one_of_each)
    assert (ExchangeProposal in one_of_each) == (sol.info["iterations"] > 0)
    # with price signals the seed and stressed cases settle without a unified cut
    extra = {PriceSignal, PriceResponse} if dec.settings.price_signals else {Accept, UnifiedCut}
    assert extra <= set(one_of_each)


def test_branch_node_ids_are_anonymous_ints(run: Run) -> None:
    _, pool, sol, scenario = run
    ids = [i for m in messages(pool) for i in node_ids(m)]
    assert all(type(i) is int and i >= 0 for i in ids)
    assert bool(ids) == (sol.info["iterations"] > 0)  # proposals and cuts carry them
    notices = [m for m in pool.to_dso if isinstance(m, BranchNotice)]
    assert len(notices) == sol.info["cuts"]["branch"]
    if scenario.name.endswith("small-pcc"):
        assert notices, "small_pcc(150) should exercise microgrid-side branching"
    for n in notices:
        assert len(n.children) == 2 and n.parent not in n.children
        assert set(n.infeasible) <= set(n.children)


def test_bounds_reveal_only_the_pcc_rating_and_a_cost_bound(run: Run) -> None:
    _, pool, _, scenario = run
    bounds = [m for m in pool.to_dso if isinstance(m, ExchangeBounds)]
    assert [b.mg for b in bounds] == [mg.name for mg in scenario.microgrids]
    for b, mg in zip(bounds, scenario.microgrids, strict=True):
        assert (b.bus, b.p_max_kw, b.q_max_kvar) == (mg.bus, mg.pcc_p_max_kw, mg.pcc_q_max_kvar)
        assert (b.p_min_kw, b.q_min_kvar) == (-mg.pcc_p_max_kw, -mg.pcc_q_max_kvar)
        assert b.eta_ub_usd > 0


def test_response_statistics_carry_only_numbers(run: Run) -> None:
    """The per-reply bookkeeping that travels with each response (for the records).

    It is not a :mod:`simulator.messages` record; it must at least be frozen and carry
    only F_D, F_F and solve counts.
    """
    _, pool, sol, _ = run
    assert bool(pool.stats) == (sol.info["iterations"] > 0)  # one per reply to a proposal
    for stats in pool.stats:
        assert type(stats) is ReplyStats
        assert type(stats).__dataclass_params__.frozen
        assert [f.name for f in dataclasses.fields(stats)] == [
            "f_d", "f_f", "lp_solves", "milp_solves"]
        assert is_number(stats.f_d) and (stats.f_f is None or is_number(stats.f_f))
        assert type(stats.lp_solves) is int and type(stats.milp_solves) is int


def test_schedules_requested_once_after_the_loop(run: Run) -> None:
    dec, pool, sol, scenario = run
    first = "price_responses" if dec.settings.price_signals else "initial_cuts"
    assert pool.calls[0] == "bounds" and pool.calls[1] == first
    assert pool.calls.count("schedules") == 1
    assert pool.calls[-2:] == ["schedules", "close"]
    assert pool.calls.count("respond") == sol.info["iterations"]
    assert sorted(s.name for s in pool.output) == sorted(mg.name for mg in scenario.microgrids)
    assert tuple(pool.output) == sol.microgrids


def test_dso_side_holds_no_microgrid_data(run: Run) -> None:
    dec, pool, _, _ = run
    assert find_private(dec, boundary=(pool,)) == []
    assert find_private(dec.master) == []
    assert find_private(dec.evaluator) == []


def test_private_data_finder_is_not_vacuous(run: Run) -> None:
    """The controllers' side does hold private data, and the walker sees it."""
    dec, pool, sol, _ = run
    inner = find_private(pool.inner)
    assert any("MicrogridWindow" in p for p in inner), inner
    # without the boundary the walk reaches the controllers through the proxy
    assert find_private(dec) != []
    # the walk does reach the DSO's own data (published bounds, SVCs, iteration records)
    seen = find_private(dec, boundary=(pool,), wanted=(ExchangeBounds, McReply, SVC))
    records = {"McReply"} if sol.info["iterations"] else set()
    assert {p.rsplit(": ", 1)[1] for p in seen} == {"ExchangeBounds", "SVC", *records}


@dataclasses.dataclass(frozen=True)
class _Leaky:
    mg: str
    dg_p_max_kw: float


@dataclasses.dataclass
class _Mutable:
    mg: str


def test_message_audit_is_not_vacuous() -> None:
    assert field_problems(_Leaky("mg7", 1.0)) != []
    assert field_problems(_Mutable("mg7")) != []
    cut = UnifiedCut("mg7", 0, 1.0, (1.0,), (0.0,), -0.1, (0.0,), (0.0,), 0.0)
    assert field_problems(cut) == []
    assert any("string" in p for p in field_problems(dataclasses.replace(cut, leaf="dg7")))
    assert field_problems(dataclasses.replace(cut, pi_p=(1.0, "x"))) != []
    assert field_problems(dataclasses.replace(cut, f=[1.0])) != []
    notice = BranchNotice("mg7", 0, (1, 2), (cut,), (), RestoredExchange((0.0,), (0.0,), 0.0))
    assert field_problems(notice) == []
    bad = dataclasses.replace(notice, cuts=(dataclasses.replace(cut, mg=_Mutable("x")),))
    assert field_problems(bad) != []


# ------------------------------------------------------ co-simulation through a process pool
@pytest.fixture(scope="module")
def cosim_run(base: Scenario) -> tuple[CoSimulation, list[RecordingPool]]:
    """Four receding 3-slot windows of the seed case (K = 1): one build, three re-loads of
    the controllers' models, in two worker processes."""
    pools: list[RecordingPool] = []

    def recorded_pool(windows: Sequence[MicrogridWindow], settings: DecompositionSettings
                      ) -> RecordingPool:
        pool = RecordingPool(make_pool(windows, settings))
        pools.append(pool)
        return pool

    model = CoSimulation(base, RunSettings(slots=4, horizon=3, commit=1,
                                           decomposition=DecompositionSettings(workers=2)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(cosim_module, "make_pool", recorded_pool)
        assert model.run() == "finished"
    return model, pools


def test_cosim_messages_through_process_pool_are_coupling_records(cosim_run) -> None:
    model, pools = cosim_run
    assert len(pools) == 1 and isinstance(pools[0].inner, ProcessPool)
    pool = pools[0]
    assert pool.calls.count("load") == 3  # four windows: one build, three re-loads
    assert pool.calls.count("schedules") == 4
    problems = [p for m in pool.to_dso for p in field_problems(m)]
    assert problems == [] and len(pool.to_dso) > 4 * len(model.microgrids)
    awards = [m for m in pool.to_mcs if isinstance(m, ScheduleAward)]
    assert len(awards) == 4 * len(model.microgrids)


def test_cosim_dso_agent_holds_no_microgrid_data(cosim_run) -> None:
    model, pools = cosim_run
    wanted = (*PRIVATE_TYPES, MicrogridSchedule, UnitSchedule)
    assert find_private(model.dso, boundary=(pools[0], model), wanted=wanted) == []
    # the unit schedules reached the controllers, which hold them
    assert all(find_private(mc, boundary=(model,), wanted=(MicrogridSchedule,))
               for mc in model.microgrids)
    assert pools[0].output and all(type(s) is MicrogridSchedule for s in pools[0].output)
