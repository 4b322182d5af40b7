"""``gridcosim run tem-eulv`` end to end: seed 001's market checked against references.

The session's market runs (:func:`market_runs`, shared with ``test_market_physics.py``) are
made once, at the same time: ``gridcosim run tem-eulv --json --seed 0`` through the console
script (the trajectory the checker reads), the ``lindist3flow`` cut-model variant, the
malformed market scenarios (each a subprocess: exit 2, field named, no traceback) and, in
this process, the same default run with the market operator's, the customers' and the
DSO's entry points wrapped to keep every message they receive (the privacy audit).

:func:`trajectory_problems` is the independent checker: it reads only the HDF5 file (with
``h5py``) and the scenario (its own numbers, the profile CSV, ``market_series`` for the
customers' original profiles) and recomputes every rule of docs/market.md: price bounds and
daily cap, each customer's band and closed-form response with the calibrated beta, payments,
the DERs' availability, the LMP's daily affine map, the transformer limit, the market
balance, the DERs' price ceiling, the voltage band on every bus-phase. Corrupted copies of
the file show that it fails. About 25 s on 2 idle cores (the runs; the lindist3flow one,
~15 s, sets the pace).
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import json
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cached_property
from importlib.resources import files
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel
from test_cosim import assert_same_datasets
from test_malformed_inputs import builtin_text, to_toml

import gridcosim.simulator.market.messages as market_messages
from gridcosim.agents.market_dso import MarketDSOAgent
from gridcosim.agents.market_operator import MarketOperatorAgent
from gridcosim.agents.price_responsive_customer import PriceResponsiveCustomer
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.market_schema import MarketCustomers
from gridcosim.scenarios.market_series import MarketSeries, market_series
from gridcosim.scenarios.network import network_for
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import RunSettings
from gridcosim.simulator.market.customer_response import UtilityParameters
from gridcosim.simulator.market.messages import (
    UPSTREAM,
    Clearing,
    DemandBid,
    DemandResponse,
    LimitKind,
    MarketCut,
    MeteredDemand,
    PersonalisedPrices,
    SupplyOffer,
)
from gridcosim.simulator.market.network_limits import NetworkLimits, SupplierConnection
from gridcosim.simulator.runner import run_scenario

SCENARIO = "tem-eulv"
DAY = 24
#: Seed 001's flexibility: residential +-10 %, every other class +-5 %.
RESIDENTIAL_FLEX, OTHER_FLEX = 0.10, 0.05
V_TOL_PU = 1e-5
BALANCE_TOL_KW = 1e-6
CLOSED_FORM_RTOL = 1e-9
EXIT_INVALID = 2


# =============================================================================== the scenario
@dataclass(frozen=True)
class Facts:
    """What a checker knows in advance: the scenario, its feeder, its series."""

    scenario: Scenario
    network: PhaseNetwork
    series: MarketSeries

    @cached_property
    def profiles(self) -> pd.DataFrame:
        """The run's hourly rows of the scenario's profile set, read from its CSV."""
        ts = self.scenario.timeseries
        assert ts is not None
        csv = files("gridcosim.scenarios") / "data" / "profiles" / f"{ts.profile_set}.csv"
        with csv.open(encoding="utf-8") as handle:
            frame = pd.read_csv(handle)
        rows = frame.iloc[ts.start_day * DAY:(ts.start_day + ts.days) * DAY]
        return rows.reset_index(drop=True)

    @property
    def slot_hours(self) -> float:
        return float(self.scenario.horizon.slot_hours)

    @cached_property
    def available_kw(self) -> dict[str, np.ndarray]:
        """Each DER's availability: dispatchable p_max; wind/pv p_max times its shape."""
        out = {}
        for der in self.scenario.market.ders:  # type: ignore[union-attr]
            kind = str(der.kind)
            out[der.name] = (np.full(len(self.profiles), der.p_max_kw) if kind == "dispatchable"
                             else der.p_max_kw * self.profiles[kind].to_numpy(float))
        return out

    @cached_property
    def lmp(self) -> np.ndarray:
        """Each day's price shape mapped affinely onto [lmp_min, lmp_max]."""
        up = self.scenario.market.upstream  # type: ignore[union-attr]
        days = self.profiles["price"].to_numpy(float).reshape(-1, DAY)
        low, high = days.min(axis=1, keepdims=True), days.max(axis=1, keepdims=True)
        unit = (days - low) / (high - low)
        return (up.lmp_min_usd_per_kwh
                + (up.lmp_max_usd_per_kwh - up.lmp_min_usd_per_kwh) * unit).ravel()

    @cached_property
    def customer_class(self) -> dict[str, str]:
        listed = {name: cls for cls, names in
                  self.scenario.market.customers.classes.items()  # type: ignore[union-attr]
                  for name in names}
        return {str(n): listed.get(str(n), "residential") for n in self.network.loads.index}

    def p0_kw(self) -> pd.DataFrame:
        """Original consumption, slots x customers (from the scenario's series)."""
        return pd.DataFrame(self.series.p0_kw.T, columns=list(self.series.customers))

    def offers(self, slots: slice = slice(0, DAY)) -> list[SupplyOffer]:
        """Every supplier's offer over ``slots``, built from the scenario's rules."""
        market = self.scenario.market
        assert market is not None
        n = slots.stop - slots.start
        out = [SupplyOffer(d.name, (0.0,) * n, tuple(self.available_kw[d.name][slots].tolist()),
                           (float(d.cost_usd_per_kwh),) * n) for d in market.ders]
        out.append(SupplyOffer(UPSTREAM, (0.0,) * n, (float(market.upstream.p_max_kw),) * n,
                               tuple(self.lmp[slots].tolist())))
        return out

    def cost_per_kwh(self) -> pd.DataFrame:
        """Each supplier's marginal cost per slot (the upstream's: the LMP)."""
        market = self.scenario.market
        assert market is not None
        cost = {d.name: np.full(len(self.lmp), float(d.cost_usd_per_kwh)) for d in market.ders}
        return pd.DataFrame({**cost, UPSTREAM: self.lmp})

    def connections(self) -> list[SupplierConnection]:
        return [SupplierConnection(d.name, d.bus, d.phases)
                for d in self.scenario.market.ders]  # type: ignore[union-attr]

    def limits(self) -> NetworkLimits:
        net, market = self.scenario.network, self.scenario.market
        assert market is not None
        return NetworkLimits(net.v_min_pu, net.v_max_pu, net.v_ref_pu, market.line_p_max_pu,
                             market.line_q_max_pu)


def facts_of(scenario: Scenario) -> Facts:
    network = network_for(scenario)
    assert isinstance(network, PhaseNetwork)
    return Facts(scenario, network, market_series(scenario, network))


# =============================================================================== the file
@dataclass(frozen=True)
class Trajectory:
    """A trajectory read with h5py alone: kind -> variable -> (slots x ids) frame."""

    groups: dict[str, dict[str, pd.DataFrame]]
    statuses: list[str]

    def __getitem__(self, key: str) -> pd.DataFrame:
        kind, var = key.split("/")
        return self.groups[kind][var]

    @property
    def slots(self) -> int:
        return len(self["market/p_m_kw"])


def read_trajectory(path: Path) -> Trajectory:
    groups: dict[str, dict[str, pd.DataFrame]] = {}
    with h5py.File(path, "r", swmr=True) as f:
        slots = int(f["checkpoint/committed"][0])
        for kind, group in f.items():
            if not isinstance(group, h5py.Group) or "ids" not in group:
                continue
            ids = [str(i) for i in group["ids"].asstr()[()]]
            groups[kind] = {name: pd.DataFrame(ds[:slots], columns=ids)
                            for name, ds in group.items()
                            if isinstance(ds, h5py.Dataset) and ds.ndim == 2}
        statuses = [str(s) for s in f["convergence/status"].asstr()[()]]
    return Trajectory(groups, statuses)


def load_frames(tr: Trajectory, network: PhaseNetwork) -> tuple[np.ndarray, np.ndarray]:
    """The customers' consumption as load arrays (slots x ``network.loads``), kW and kvar."""
    names = [str(n) for n in network.loads.index]
    return (tr["market_customer/p_kw"][names].to_numpy(),
            tr["market_customer/q_kvar"][names].to_numpy())


# =============================================================================== the checker
def _cells(label: str, bad: np.ndarray, values: pd.DataFrame) -> list[str]:
    """One problem line for the cells where ``bad`` holds (their count, the first one)."""
    if not np.any(bad):
        return []
    t, k = np.argwhere(bad)[0]
    return [f"{label}: {int(np.sum(bad))} value(s), first {values.columns[k]} at slot {t} "
            f"(got {values.iat[t, k]!r})"]


def _outside(label: str, values: pd.DataFrame, low: Any, high: Any, tol: float = 0.0
             ) -> list[str]:
    x = values.to_numpy(float)
    bounds = f"[{low}, {high}]" if np.isscalar(low) and np.isscalar(high) else "its bounds"
    return _cells(f"{label} outside {bounds}",
                  ~((x >= np.asarray(low) - tol) & (x <= np.asarray(high) + tol)), values)


def _differs(label: str, values: pd.DataFrame, want: Any, rtol: float, atol: float
             ) -> list[str]:
    x = values.to_numpy(float)
    return _cells(label, ~np.isclose(x, np.asarray(want, float), rtol=rtol, atol=atol), values)


def _customer_problems(tr: Trajectory, facts: Facts) -> list[str]:
    market = facts.scenario.market
    assert market is not None
    agg, terms, dt = market.aggregator, market.customers, facts.slot_hours
    names = list(facts.series.customers)
    if sorted(tr["market_customer/p_kw"].columns) != sorted(names):
        return ["market_customer: the ids are not the feeder's loads"]
    col = {v: tr[f"market_customer/{v}"][names] for v in (
        "p_kw", "q_kvar", "p_original_kw", "price_usd_per_kwh", "payment_usd", "utility_usd")}
    p, price = col["p_kw"].to_numpy(float), col["price_usd_per_kwh"].to_numpy(float)
    p0 = facts.p0_kw()[names].to_numpy(float)[:tr.slots]
    flex = np.array([RESIDENTIAL_FLEX if facts.customer_class[n] == "residential"
                     else OTHER_FLEX for n in names])
    out = _outside("customer price", col["price_usd_per_kwh"], agg.price_min_usd_per_kwh,
                   agg.price_max_usd_per_kwh)
    daily = col["price_usd_per_kwh"].groupby(np.arange(tr.slots) // DAY).sum()
    out += _cells(f"daily price sum above {agg.daily_cap_usd}",
                  daily.to_numpy() > agg.daily_cap_usd + 1e-9, daily)
    out += _differs("p_original_kw differs from the scenario's profile", col["p_original_kw"],
                    p0, 1e-12, 1e-12)
    out += _outside("consumption", col["p_kw"], (1 - flex) * p0, (1 + flex) * p0,
                    1e-9 * p0 + 1e-12)
    alpha, ref = terms.alpha_usd_per_kwh, terms.reference_price_usd_per_kwh
    if str(terms.utility) == "calibrated":
        beta = np.where(p0 > 0, (alpha - ref) / (2 * np.where(p0 > 0, p0, 1.0)), 1.0)
    else:
        beta = np.full_like(p0, terms.beta_usd_per_kwh_per_kw)
    response = np.clip((alpha - price) / (2 * beta), (1 - flex) * p0, (1 + flex) * p0)
    out += _differs("consumption is not clip((alpha - pi) / (2 beta), lo, hi)", col["p_kw"],
                    response, CLOSED_FORM_RTOL, 1e-12)
    out += _differs("payment is not price x p x dt", col["payment_usd"], price * p * dt,
                    1e-9, 1e-12)
    out += _differs("utility is not (alpha p - beta p^2) dt", col["utility_usd"],
                    (alpha * p - beta * p * p) * dt, 1e-9, 1e-12)
    q_per_p = (facts.network.loads["q_kvar"] / facts.network.loads["p_kw"])[names]
    out += _differs("q_kvar is not p at the load's power factor", col["q_kvar"],
                    p * q_per_p.to_numpy(float), 1e-9, 1e-12)
    return out


def _supply_problems(tr: Trajectory, facts: Facts) -> list[str]:
    market = facts.scenario.market
    assert market is not None
    names, dt, n = [d.name for d in market.ders], facts.slot_hours, tr.slots
    p = tr["market_der/p_kw"][names]
    avail = pd.DataFrame({k: v[:n] for k, v in facts.available_kw.items()})[names]
    out = _differs("DER availability is not the scenario's rule", tr["market_der/available_kw"]
                   [names], avail, 1e-9, 1e-12)
    out += _outside("DER output", p, 0.0, avail.to_numpy(), 1e-9)
    out += _outside("DER selling price", tr["market_der/price_usd_per_kwh"][names], 0.0,
                    market.der_price_max_usd_per_kwh)
    p_m = tr["upstream/p_kw"][[UPSTREAM]]
    out += _outside("upstream purchase", p_m, 0.0, market.upstream.p_max_kw, 1e-9)
    out += _differs("upstream price is not the LMP", tr["upstream/price_usd_per_kwh"]
                    [[UPSTREAM]], facts.lmp[:n, None], 1e-12, 1e-12)
    demand = tr["market_customer/p_kw"].sum(axis=1).to_numpy()
    supply = p.sum(axis=1).to_numpy() + p_m[UPSTREAM].to_numpy()
    balance = pd.DataFrame({"market": supply - demand})
    out += _cells(f"market balance off by more than {BALANCE_TOL_KW} kW",
                  np.abs(balance.to_numpy()) > BALANCE_TOL_KW, balance)
    out += _differs("market/p_m_kw is not the upstream's output", tr["market/p_m_kw"],
                    p_m.to_numpy(), 0.0, 1e-9)
    out += _differs("market/demand_kw is not the customers' total", tr["market/demand_kw"],
                    demand[:, None], 0.0, BALANCE_TOL_KW)
    cost = facts.cost_per_kwh()[[*names, UPSTREAM]].to_numpy()[:n]
    energy = np.column_stack([p.to_numpy(), p_m.to_numpy()]) * dt
    out += _differs("market/cost_usd is not the supply at the offers' costs",
                    tr["market/cost_usd"], (cost * energy).sum(axis=1)[:, None], 1e-9, 1e-9)
    return out


def _network_problems(tr: Trajectory, facts: Facts) -> list[str]:
    net, out = facts.scenario.network, []
    phases = facts.network.buses["phases"].astype(str)
    for ph in "abc":
        vm = tr[f"phase_bus/vm_{ph}_pu"]
        present = np.array([ph in phases.loc[int(b)] for b in vm.columns])
        x = vm.to_numpy(float)
        out += _cells(f"phase {ph}: NaN on a present phase or a value on an absent one",
                      np.isnan(x) == present[None, :], vm)
        out += _outside(f"phase {ph} voltage", vm.loc[:, present], net.v_min_pu,
                        net.v_max_pu, V_TOL_PU)
    out += _cells("AC power flow not converged",
                  tr["feeder/ac_converged"].to_numpy() != 1.0, tr["feeder/ac_converged"])
    days = -(-tr.slots // DAY)
    if tr.statuses != ["optimal"] * days:
        out.append(f"convergence status: one optimal row per day expected (got {tr.statuses})")
    return out


def trajectory_problems(path: Path, facts: Facts) -> list[str]:
    """Every rule of seed 001's market the trajectory at ``path`` breaks (empty: none)."""
    tr = read_trajectory(path)
    return [*_customer_problems(tr, facts), *_supply_problems(tr, facts),
            *_network_problems(tr, facts)]


# =============================================================================== the runs
@dataclass(frozen=True)
class Done:
    """A finished subprocess."""

    code: int
    stdout: str
    stderr: str


def cli_argv(*args: str) -> list[str]:
    return [sys.executable, "-m", "gridcosim.simulator.cli", *args]


def console_script() -> list[str]:
    """The ``gridcosim`` console script of this interpreter (``-m`` if it is missing)."""
    script = Path(sys.executable).with_name("gridcosim")
    found = str(script) if script.exists() else shutil.which("gridcosim")
    return [found] if found else cli_argv()


def run_argv(argv: list[str], timeout: float = 300) -> Done:
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    return Done(proc.returncode, proc.stdout, proc.stderr)


def scenario_dict(name: str = SCENARIO) -> dict[str, Any]:
    return tomllib.loads(builtin_text(name))


def lindist_dict() -> dict[str, Any]:
    data = scenario_dict()
    data["market"]["cut_model"] = "lindist3flow"
    return data


def _der_phase_lacking(d: dict[str, Any]) -> None:
    """A DER on phase c of bus 9 of the IEEE 123 three-phase feeder (bus 9 has phase a)."""
    d["network"].update(source="ieee123-3ph", base_kv=4.16)
    for key in ("classes", "nominal_kw"):
        d["market"]["customers"].pop(key)
    for der, bus in zip(d["market"]["ders"], (9, 13, 18, 52), strict=True):
        der["bus"] = bus  # 13, 18, 52 are three-phase buses
    d["market"]["ders"][0]["phases"] = "c"


def _profiles_not_timeseries(d: dict[str, Any]) -> None:
    d.pop("timeseries")
    d["profiles"] = {"price_usd_per_kwh": 0.11, "price": [1.0] * DAY, "load": [1.0] * DAY,
                     "renewables": [1.0] * DAY}


def _with_microgrids(d: dict[str, Any]) -> None:
    d["microgrids"] = scenario_dict("ieee123-nmg")["microgrids"][:1]


def _set(*path: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def edit(d: dict[str, Any]) -> None:
        node: Any = d
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return edit


#: Malformed market scenarios: the edit, then what one error line must name.
BAD_INPUTS: dict[str, tuple[Callable[[dict[str, Any]], None], tuple[str, ...]]] = {
    "der-phase-the-feeder-lacks": (_der_phase_lacking, ("market.ders[0].phases", "'c'")),
    "unknown-load-in-classes": (
        _set("market", "customers", "classes", "industrial", 2, value="load999"),
        ("market.customers.classes.industrial[2]", "load999")),
    "horizon-12-slots": (_set("horizon", "slots", value=12), ("horizon.slots", "12")),
    "profiles-instead-of-timeseries": (_profiles_not_timeseries, ("timeseries", "[profiles]")),
    "market-with-microgrids": (_with_microgrids, ("[[microgrids]]", "[market]")),
    "aggregator-price-min-at-max": (
        _set("market", "aggregator", "price_min_usd_per_kwh", value=0.24),
        ("market.aggregator", "price_min_usd_per_kwh", "0.24")),
}


@dataclass(frozen=True)
class Call:
    """One call of an audited agent method: who, which, with what (never the model)."""

    agent: str
    method: str
    args: tuple[Any, ...]


#: The agents' entry points whose arguments the privacy audit keeps.
AUDITED: tuple[tuple[type, tuple[str, ...]], ...] = (
    (MarketOperatorAgent, ("__init__", "open_window", "new_round", "add_cuts")),
    (PriceResponsiveCustomer, ("respond",)),
    (MarketDSOAgent, ("__init__", "validate", "adopt", "load_arrays", "commit")),
)


def _recording(cls: type, method: str, calls: list[Call]) -> Callable[..., Any]:
    original = getattr(cls, method)

    @functools.wraps(original)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        given = (*args[1:], *kwargs.values()) if method == "__init__" else (*args,
                                                                            *kwargs.values())
        out = original(self, *args, **kwargs)
        who = f"customer:{self.name}" if isinstance(self, PriceResponsiveCustomer) else \
            cls.__name__
        calls.append(Call(who, method, given))
        return out

    return wrapper


def audited_run(out: Path) -> list[Call]:
    """``run_scenario(tem-eulv)`` in this process, every audited call recorded."""
    calls: list[Call] = []
    with pytest.MonkeyPatch.context() as patch:
        for cls, methods in AUDITED:
            for method in methods:
                patch.setattr(cls, method, _recording(cls, method, calls))
        outcome = run_scenario(load_scenario(SCENARIO), out, RunSettings(seed=0),
                               progress=False)
    assert outcome.status == "finished", outcome.failure
    return calls


@dataclass(frozen=True)
class Runs:
    """The runs both market test modules read (made once per session)."""

    folder: Path
    json: Done
    lindist: Done
    bad: dict[str, Done]
    calls: list[Call]

    @property
    def main_file(self) -> Path:
        """``gridcosim run tem-eulv --json --seed 0`` (subprocess)."""
        return self.folder / "market.h5"

    @property
    def audited_file(self) -> Path:
        """The same run in this process, its agents audited."""
        return self.folder / "audited.h5"

    @property
    def lindist_file(self) -> Path:
        return self.folder / "lindist.h5"


def _make_runs(folder: Path) -> Runs:
    (folder / "lindist.toml").write_text(to_toml(lindist_dict()), encoding="utf-8")
    commands = {
        "lindist": cli_argv("run", str(folder / "lindist.toml"), "--json", "--out",
                            str(folder / "lindist.h5")),
        "json": [*console_script(), "run", SCENARIO, "--json", "--seed", "0", "--out",
                 str(folder / "market.h5")]}
    for case, (edit, _) in BAD_INPUTS.items():
        data = copy.deepcopy(scenario_dict())
        edit(data)
        (folder / f"{case}.toml").write_text(to_toml(data), encoding="utf-8")
        commands[f"bad:{case}"] = cli_argv("run", str(folder / f"{case}.toml"), "--no-progress",
                                           "--out", str(folder / f"{case}.h5"))
    with ThreadPoolExecutor(max_workers=2) as pool:  # the long lindist3flow run goes first
        futures = {name: pool.submit(run_argv, argv) for name, argv in commands.items()}
        calls = audited_run(folder / "audited.h5")
        done = {name: f.result() for name, f in futures.items()}
    return Runs(folder, done["json"], done["lindist"],
                {k.removeprefix("bad:"): v for k, v in done.items() if k.startswith("bad:")},
                calls)


_SHARED: dict[str, Runs] = {}


def market_runs(factory: pytest.TempPathFactory) -> Runs:
    """The session's market runs (test_market_physics imports this and shares them)."""
    if "runs" not in _SHARED:
        _SHARED["runs"] = _make_runs(factory.mktemp("market"))
    return _SHARED["runs"]


@functools.cache
def scenario_facts(name: str = SCENARIO) -> Facts:
    return facts_of(load_scenario(name))


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    return market_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def facts() -> Facts:
    return scenario_facts()


def run_document(done: Done) -> dict[str, Any]:
    def reject(token: str) -> Any:
        raise ValueError(f"{token} is not JSON")

    doc = json.loads(done.stdout, parse_constant=reject)
    assert isinstance(doc, dict)
    return doc


# =============================================================================== 1. checker
def test_market_trajectory_obeys_every_rule(runs: Runs, facts: Facts) -> None:
    assert runs.json.code == 0, runs.json.stderr
    assert trajectory_problems(runs.main_file, facts) == []


def test_market_run_cuts_and_responds(runs: Runs, facts: Facts) -> None:
    """The day is not trivial: the DSO cut, and prices moved consumption off the profile."""
    tr = read_trajectory(runs.main_file)
    assert tr.slots == DAY and tr["market/cuts"].to_numpy().sum() > 0
    p, p0 = tr["market_customer/p_kw"], tr["market_customer/p_original_kw"]
    assert np.abs(p.to_numpy() - p0.to_numpy()).max() > 1e-3
    price = tr["market_customer/price_usd_per_kwh"].to_numpy()
    assert price.min() < price.max()


def test_business_customers_follow_their_class_shape(facts: Facts) -> None:
    """The series the checker takes p_original from, against the profile CSV: a commercial,
    industrial or agricultural customer is its class's shape scaled to a first-day mean of
    the class's nominal_kw."""
    customers = facts.scenario.market.customers  # type: ignore[union-attr]
    p0 = facts.p0_kw()
    for cls, names in customers.classes.items():
        shape = facts.profiles[str(cls)].to_numpy(float)
        want = customers.nominal_kw[cls] * shape / shape[:DAY].mean()
        for name in names:
            np.testing.assert_allclose(p0[name].to_numpy(), want, rtol=1e-12, err_msg=name)
    assert sum(len(n) for n in customers.classes.values()) == 15


#: dataset, entity, slot, the change, what the checker must say and name (with the slot)
Corruption = tuple[str, str, int, Callable[[float], float], str, str]
CORRUPTIONS: dict[str, Corruption] = {
    "price-above-cap": ("market_customer/price_usd_per_kwh", "load1", 18,
                        lambda v: 0.2401, "customer price outside [0.12, 0.24]", "load1"),
    "consumption-off-its-response": ("market_customer/p_kw", "load35", 12, lambda v: v * 1.01,
                                     "consumption is not clip", "load35"),
    "phase-b-below-band": ("phase_bus/vm_b_pu", "899", 9, lambda v: 0.9498,
                           "phase b voltage outside", "899"),
    "supply-short": ("market_der/p_kw", "G2", 9, lambda v: v - 0.01, "market balance",
                     "market"),
    "der-above-availability": ("market_der/p_kw", "PV", 12, lambda v: v + 30.0,
                               "DER output outside", "PV"),
    "der-price-above-ceiling": ("market_der/price_usd_per_kwh", "G1", 3, lambda v: 0.2241,
                                "DER selling price outside [0.0, 0.224]", "G1"),
    "purchase-above-transformer": ("upstream/p_kw", "upstream", 20, lambda v: 250.5,
                                   "upstream purchase outside [0.0, 250.0]", "upstream"),
}


def _corrupt(src: Path, dst: Path, dataset: str, entity: str, slot: int,
             change: Callable[[float], float]) -> None:
    shutil.copyfile(src, dst)
    with h5py.File(dst, "r+") as f:
        ids = [str(i) for i in f[dataset.split("/")[0]]["ids"].asstr()[()]]
        k = ids.index(entity)
        f[dataset][slot, k] = change(float(f[dataset][slot, k]))


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_checker_reports_a_corrupted_file(runs: Runs, facts: Facts, tmp_path: Path,
                                          case: str) -> None:
    dataset, entity, slot, change, expected, named = CORRUPTIONS[case]
    _corrupt(runs.main_file, tmp_path / "bad.h5", dataset, entity, slot, change)
    problems = trajectory_problems(tmp_path / "bad.h5", facts)
    assert any(p.startswith(expected) and f"first {named} at slot {slot} " in p
               for p in problems), problems


def test_checker_reports_a_broken_daily_cap(runs: Runs, facts: Facts, tmp_path: Path) -> None:
    """Every price within bounds, their sum 24 x 0.1801 = 4.3224 > 4.32."""
    dst = tmp_path / "cap.h5"
    shutil.copyfile(runs.main_file, dst)
    with h5py.File(dst, "r+") as f:
        f["market_customer/price_usd_per_kwh"][:, 4] = 0.1801
    problems = trajectory_problems(dst, facts)
    assert any(p.startswith("daily price sum above 4.32") for p in problems), problems
    assert not any(p.startswith("customer price outside") for p in problems), problems


# =============================================================================== 4. privacy
def leaves(obj: Any, path: str) -> Iterator[tuple[str, Any]]:
    """Every value inside a market message (its dataclasses and tuples opened)."""
    if dataclasses.is_dataclass(obj) and type(obj).__module__ == market_messages.__name__:
        for f in dataclasses.fields(obj):
            yield from leaves(getattr(obj, f.name), f"{path}.{f.name}")
    elif isinstance(obj, tuple | list):
        for i, item in enumerate(obj):
            yield from leaves(item, f"{path}[{i}]")
    else:
        yield path, obj


def _calls(runs: Runs, agent: str) -> list[Call]:
    return [c for c in runs.calls if c.agent == agent]


def _is_count(path: str, value: Any) -> bool:
    """An int that is a slot (a cut's, a window's start) or the window's slot count."""
    return type(value) is int and (path.endswith(".slot") or "." not in path and "[" not in path)


def operator_problems(calls: list[Call], suppliers: set[str]) -> list[str]:
    out = []
    for call in calls:
        for i, arg in enumerate(call.args):
            for path, value in leaves(arg, f"{call.method}#{i}"):
                if isinstance(value, LimitKind) or (type(value) is float and np.isfinite(value)):
                    continue
                if isinstance(value, str) and value in suppliers:
                    continue
                if _is_count(path, value):
                    continue
                out.append(f"{path}: {type(value).__name__} {value!r:.60}")
    return out


def test_operator_receives_only_suppliers_floats_slots_and_limit_kinds(runs: Runs,
                                                                       facts: Facts) -> None:
    calls = _calls(runs, "MarketOperatorAgent")
    suppliers = {d.name for d in facts.scenario.market.ders} | {UPSTREAM}  # type: ignore[union-attr]
    net = facts.network
    topology = ({str(b) for b in net.buses.index} | {str(n) for n in net.loads.index}
                | {str(line) for line in net.lines.index} | {"a", "b", "c", "abc"})
    assert not suppliers & topology  # a supplier's name is no element of the feeder
    assert operator_problems(calls, suppliers) == []
    seen = {type(m) for c in calls for arg in c.args
            for m in (arg if isinstance(arg, list | tuple) else (arg,))
            if dataclasses.is_dataclass(m)}
    assert seen == {SupplyOffer, DemandBid, MarketCut}, seen
    assert sum(len(c.args[0]) for c in calls if c.method == "add_cuts") > 0


def test_operator_audit_catches_a_bus_id() -> None:
    """The rule can fail: a cut naming a bus, or a record of where a DER is connected."""
    cut = MarketCut(3, LimitKind.VOLTAGE_MIN, (("G1", 1e-4), ("899", 2e-4)), 1.0, 0.01)
    bad = [Call("MarketOperatorAgent", "add_cuts", ((cut,),)),
           Call("MarketOperatorAgent", "open_window", ([SupplierConnection("G1", 899, "abc")],
                                                       0))]
    problems = operator_problems(bad, {"G1", UPSTREAM})
    assert len(problems) == 2 and "'899'" in problems[0], problems
    assert "SupplierConnection" in problems[1], problems


def test_each_customer_receives_only_its_own_prices(runs: Runs, facts: Facts) -> None:
    calls = [c for c in runs.calls if c.agent.startswith("customer:")]
    by_customer: dict[str, list[Call]] = {}
    for call in calls:
        by_customer.setdefault(call.agent.removeprefix("customer:"), []).append(call)
    assert sorted(by_customer) == sorted(facts.series.customers)
    rounds = {len(v) for v in by_customer.values()}
    assert len(rounds) == 1 and min(rounds) >= 1  # everyone answers every pricing round
    committed = read_trajectory(runs.audited_file)["market_customer/price_usd_per_kwh"]
    for name, received in by_customer.items():
        for call in received:
            prices, start = call.args
            assert type(prices) is PersonalisedPrices and start == 0
            assert prices.customer == name and len(prices.price_usd_per_kwh) == DAY
            assert all(type(p) is float for p in prices.price_usd_per_kwh)
        np.testing.assert_array_equal(received[-1].args[0].price_usd_per_kwh,
                                      committed[name].to_numpy())


PRIVATE_UTILITY = (UtilityParameters, MarketCustomers, PersonalisedPrices, DemandResponse)


def utility_paths(obj: Any, path: str = "", seen: set[int] | None = None) -> list[str]:
    """Where ``obj`` (dataclasses, pydantic models, containers opened) holds a customer's
    utility terms: a utility record, or a field named ``alpha``/``beta``/``utility``."""
    seen = set() if seen is None else seen
    if id(obj) in seen or isinstance(obj, str | int | float | np.ndarray | pd.core.base.
                                     PandasObject) or obj is None:
        return []
    seen.add(id(obj))
    if isinstance(obj, PRIVATE_UTILITY):
        return [f"{path}: {type(obj).__name__}"]
    if isinstance(obj, BaseModel):
        items = [(k, getattr(obj, k)) for k in type(obj).model_fields]
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        items = [(f.name, getattr(obj, f.name)) for f in dataclasses.fields(obj)]
    elif isinstance(obj, dict):
        items = [(str(k), v) for k, v in obj.items()]
    elif isinstance(obj, tuple | list):
        return [p for i, v in enumerate(obj) for p in utility_paths(v, f"{path}[{i}]", seen)]
    else:
        return []
    out = [f"{path}.{k}" for k, _ in items if k.startswith(("alpha", "beta", "utility"))]
    for key, value in items:
        out += utility_paths(value, f"{path}.{key}", seen)
    return out


def test_dso_messages_carry_no_utility_and_name_only_loads(runs: Runs, facts: Facts) -> None:
    calls = [c for c in _calls(runs, "MarketDSOAgent") if c.method != "__init__"]
    assert {c.method for c in calls} >= {"validate", "adopt", "commit"}
    assert [p for c in calls for p in utility_paths(c.args, c.method)] == []
    names = {str(n) for n in facts.network.loads.index} | {
        d.name for d in facts.scenario.market.ders} | {UPSTREAM}  # type: ignore[union-attr]
    for call in calls:
        assert all(type(a) in (Clearing, MeteredDemand, int) for a in call.args), call
        for path, value in leaves(call.args, call.method):
            assert type(value) in (float, int) or value in names, (path, value)


def test_dso_audit_catches_utility_parameters() -> None:
    params = UtilityParameters(0.25, np.ones(2), np.zeros(2), np.ones(2))
    assert utility_paths(((params,), {"x": MarketCustomers()})) == [
        "[0][0]: UtilityParameters", "[1].x: MarketCustomers"]


def test_dso_is_never_handed_utility_parameters(runs: Runs) -> None:
    calls = _calls(runs, "MarketDSOAgent")
    assert [c for c in calls if c.method == "__init__"]
    assert [p for c in calls for p in utility_paths(c.args, c.method)] == []


# =============================================================================== 5. CLI
def test_run_json_is_one_document(runs: Runs) -> None:
    done = runs.json
    doc = run_document(done)
    assert done.code == doc["exit_code"] == 0
    assert "Traceback" not in done.stderr
    # the keys of the DSO-microgrid run document (test_json_output.test_run_document)
    assert set(doc) == {"status", "exit_code", "file", "slots", "windows",
                        "windows_not_optimal", "powerflow_failures", "failed_slot", "reason",
                        "resumed_from_slot", "notes"}
    assert (doc["status"], doc["file"]) == ("finished", str(runs.main_file))
    assert (doc["slots"], doc["windows"]) == (DAY, 1)  # one day = one market window
    assert (doc["windows_not_optimal"], doc["powerflow_failures"]) == (0, 0)
    assert (doc["failed_slot"], doc["reason"], doc["resumed_from_slot"]) == (None, None, None)
    assert doc["notes"] == []


def test_same_seed_gives_identical_datasets(runs: Runs) -> None:
    """The console-script subprocess and the in-process run (both seed 0) agree bit for bit."""
    assert_same_datasets(runs.main_file, runs.audited_file)


def _windows_on_disk(path: Path) -> int:
    try:
        with h5py.File(path, "r", swmr=True) as f:
            return int(f["checkpoint/committed"][1])
    except (OSError, KeyError):
        return 0


@pytest.mark.slow
def test_two_day_run_interrupted_and_resumed_equals_uninterrupted(tmp_path: Path) -> None:
    """About 35 s: a two-day run, and the same run stopped after day 1 and resumed."""
    data = scenario_dict()
    data["timeseries"]["days"] = 2
    scenario = tmp_path / "two-days.toml"
    scenario.write_text(to_toml(data), encoding="utf-8")
    whole, stopped = tmp_path / "whole.h5", tmp_path / "stopped.h5"
    reference = subprocess.Popen(cli_argv("run", str(scenario), "--no-progress", "--out",
                                          str(whole)), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
    proc = subprocess.Popen(cli_argv("run", str(scenario), "--no-progress", "--out",
                                     str(stopped)), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    partial = stopped.with_name("stopped.h5.partial")
    deadline = time.monotonic() + 240
    while _windows_on_disk(partial) < 1:
        assert proc.poll() is None, f"the run ended before its first day: {proc.communicate()}"
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert _windows_on_disk(stopped) == 1
    resumed = run_argv(cli_argv("run", str(scenario), "--no-progress", "--out", str(stopped),
                                "--resume"))
    assert resumed.code == 0, resumed.stderr
    assert reference.wait(timeout=300) == 0
    assert_same_datasets(stopped, whole)
    tr = read_trajectory(whole)
    assert tr.slots == 2 * DAY and tr.statuses == ["optimal", "optimal"]


# =============================================================================== 6. bad input
@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_malformed_market_scenario_exits_2_naming_the_field(runs: Runs, case: str) -> None:
    done = runs.bad[case]
    _, names = BAD_INPUTS[case]
    assert done.code == EXIT_INVALID, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr and "internal error" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip().startswith("- ")]
    assert any(all(n in line for n in names) for line in lines), done.stderr
    assert not (runs.folder / f"{case}.h5").exists()
