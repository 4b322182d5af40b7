"""The co-simulation on a rolling horizon (docs/formulation.md §5), checked from its HDF5 output.

Every recorded trajectory is re-checked slot by slot in plain numpy against the scenario
data (:func:`trajectory_violations`): storage energy balance with efficiencies, energy and
power limits, DG output within ``[P_min·on, P_max·on]``, ramping from the initial state
and across every window boundary, start-up costs charged once per off -> on transition,
renewables within forecast and realised availability, the PCC balance of every microgrid
and the (lossless LinDistFlow) substation balance. Each window's plan is checked by
:mod:`tests.feasibility` against the window's data and initial state, and that initial
state is compared with the state the previous committed slots left behind.

Runs: the seed scenario day-ahead (K = H = 6, one window), day-ahead with two windows
(K = H = 3), receding (K = 1, six windows), with seeded noise, and a short run of the week
scenario. The whole module takes about 30 s (50 s on a busy 2-core machine).
"""

from __future__ import annotations

import dataclasses
import math
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h5py
import mesa
import numpy as np
import pandas as pd
import pytest
from feasibility import check_microgrid_schedule, renewable_forecast, start_ups, state_of

from gridcosim.agents.customer import CustomerAgent
from gridcosim.agents.dso import DSOAgent
from gridcosim.agents.generator import GeneratorAgent
from gridcosim.agents.microgrid_controller import MicrogridControllerAgent
from gridcosim.agents.renewable import RenewableAgent
from gridcosim.agents.storage import StorageAgent
from gridcosim.outputs import Trajectory, read
from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.schema import Generator, Microgrid, Renewable, Scenario, Storage
from gridcosim.scenarios.series import ScenarioSeries
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.models.microgrid_model import MicrogridState, MicrogridWindow
from gridcosim.simulator.recording import Recorder
from gridcosim.simulator.schedule import MicrogridSchedule, UnitSchedule
from gridcosim.simulator.solve import solve_scenario
from gridcosim.simulator.validation.validator import NetworkValidator

TOL = 1e-6


# ---------------------------------------------------------------- independent checks
def trajectory_violations(scenario: Scenario, series: ScenarioSeries, tr: Trajectory,
                          tol: float = TOL) -> list[str]:
    """Every violated limit in a recorded trajectory (empty list: feasible).

    Uses only the scenario data, its series (forecasts) and the recorded values; the
    initial state is the scenario's. Realised renewables may fall short of the forecast
    (noise), so renewables are checked against both forecast and recorded availability.
    """
    out: list[str] = []
    n, dt = tr.slots, series.slot_hours
    g = tr.groups
    inj_total = np.zeros(n)
    for mg in scenario.microgrids:
        inj, q_inj = np.zeros(n), np.zeros(n)
        for gen in mg.generators:
            q_inj += g["generator"]["q_kvar"][gen.name].to_numpy()
            p = g["generator"]["p_kw"][gen.name].to_numpy()
            on = g["generator"]["on"][gen.name].to_numpy()
            cost = g["generator"]["cost_usd"][gen.name].to_numpy()
            if not np.isin(on, (0.0, 1.0)).all():
                out.append(f"{gen.name}: on not binary: {on}")
                continue
            for t in range(n):
                if p[t] < gen.p_min_kw * on[t] - tol or p[t] > gen.p_max_kw * on[t] + tol:
                    out.append(f"{gen.name} t={t}: p={p[t]:.9g} outside "
                               f"[{gen.p_min_kw}, {gen.p_max_kw}]·{on[t]:g}")
            prev = np.concatenate(([gen.initial_p_kw], p[:-1]))
            for t in np.flatnonzero(np.abs(p - prev) > gen.ramp_kw_per_slot + tol):
                out.append(f"{gen.name} t={t}: ramp {prev[t]:.9g} -> {p[t]:.9g} exceeds "
                           f"{gen.ramp_kw_per_slot}")
            starts = start_ups(on.astype(int), gen.initial_on)
            want = gen.cost_usd_per_kwh * p * dt + gen.startup_cost_usd * starts
            for t in np.flatnonzero(np.abs(cost - want) > tol * np.maximum(1.0, np.abs(want))):
                out.append(f"{gen.name} t={t}: recorded cost {cost[t]:.9g}, energy and "
                           f"start-up give {want[t]:.9g}")
            inj += p
        for res in mg.renewables:
            q_inj += g["renewable"]["q_kvar"][res.name].to_numpy()
            p = g["renewable"]["p_kw"][res.name].to_numpy()
            avail = g["renewable"]["available_kw"][res.name].to_numpy()
            forecast = res.forecast_kw * series.renewables[res.kind].to_numpy()[:n]
            for t in range(n):
                if p[t] < -tol or p[t] > min(forecast[t], avail[t]) + tol:
                    out.append(f"{res.name} t={t}: p={p[t]:.9g} outside [0, min(forecast "
                               f"{forecast[t]:.9g}, available {avail[t]:.9g})]")
            inj += p
        for ess in mg.storage:
            p = g["storage"]["p_kw"][ess.name].to_numpy()
            e = g["storage"]["e_kwh"][ess.name].to_numpy()
            e_prev = ess.e_initial_kwh
            for t in range(n):
                if p[t] < -ess.p_charge_max_kw - tol or p[t] > ess.p_discharge_max_kw + tol:
                    out.append(f"{ess.name} t={t}: p={p[t]:.9g} outside "
                               f"[-{ess.p_charge_max_kw}, {ess.p_discharge_max_kw}]")
                if p[t] >= 0:
                    e_now = e_prev - p[t] * dt / ess.eta_discharge
                else:
                    e_now = e_prev - p[t] * ess.eta_charge * dt
                if abs(e_now - e[t]) > tol:
                    out.append(f"{ess.name} t={t}: e={e[t]:.9g} but the energy balance from "
                               f"{e_prev:.9g} at p={p[t]:.9g} gives {e_now:.9g}")
                if e[t] < ess.e_min_kwh - tol or e[t] > ess.e_max_kwh + tol:
                    out.append(f"{ess.name} t={t}: e={e[t]:.9g} outside "
                               f"[{ess.e_min_kwh}, {ess.e_max_kwh}]")
                e_prev = e[t]
            inj += p
        mult = series.load[mg.local_load_class].to_numpy()[:n]
        load, load_q = mg.local_load_kw * mult, mg.local_load_kvar * mult
        p_ex = g["microgrid"]["p_ex_kw"][mg.name].to_numpy()
        q_ex = g["microgrid"]["q_ex_kvar"][mg.name].to_numpy()
        curtail = p_ex - (inj - load)  # local curtailment implied by the balance
        pf = mg.local_load_kvar / mg.local_load_kw if mg.local_load_kw > 0 else 0.0
        q_want = q_inj - load_q + pf * curtail  # reactive balance at the same power factor
        for t in range(n):
            if curtail[t] < -tol or curtail[t] > load[t] + tol:
                out.append(f"{mg.name} t={t}: p_ex={p_ex[t]:.9g} but DG+RE+ESS-load = "
                           f"{inj[t] - load[t]:.9g}")
            if abs(q_ex[t] - q_want[t]) > tol:
                out.append(f"{mg.name} t={t}: q_ex={q_ex[t]:.9g} but DG+RE-load gives "
                           f"{q_want[t]:.9g}")
            if abs(p_ex[t]) > mg.pcc_p_max_kw + tol:
                out.append(f"{mg.name} t={t}: |p_ex|={abs(p_ex[t]):.9g} > {mg.pcc_p_max_kw}")
        inj_total += p_ex
    p_sub = g["substation"]["p_kw"]["substation"].to_numpy()
    losses = g["substation"]["losses_kw"]["substation"].to_numpy()
    served = g["customer"]["p_kw"].to_numpy().sum(axis=1)
    # the realised slot's AC power flow: import = loads - exchanges + losses
    for t in np.flatnonzero(~(np.abs(p_sub - (served - inj_total + losses))
                              <= 1e-6 * max(1, served.max()))):
        out.append(f"substation t={t}: p={p_sub[t]:.9g} but loads - exchanges + losses = "
                   f"{served[t] - inj_total[t] + losses[t]:.9g}")
    for t in np.flatnonzero(~((losses > 0) & (losses < 0.1 * served))):
        out.append(f"substation t={t}: realised losses {losses[t]:.9g} kW")
    return out


def planned_cost_usd(tr: Trajectory, scenario: Scenario) -> float:
    """The run's cost with the substation billed at its planned (lossless) import.

    The recorded substation cost prices the realised import (the AC power flow of the
    executed slot, losses included); the plan's cost, the decomposition's objective, is it
    less the price of the difference.
    """
    g = tr.groups
    sub = g["substation"]
    price = sub["price_usd_per_kwh"]["substation"].to_numpy()
    extra = (sub["p_kw"]["substation"] - sub["p_plan_kw"]["substation"]).to_numpy()
    realised = sub["cost_usd"].to_numpy().sum() + g["microgrid"]["cost_usd"].to_numpy().sum()
    return float(realised - (price * extra).sum() * scenario.horizon.slot_hours)


def state_after(tr: Trajectory, mg: Microgrid, slot: int) -> MicrogridState:
    """The microgrid state recorded at the end of ``slot`` (-1: the scenario's)."""
    if slot < 0:
        return MicrogridState.initial(mg)
    g = tr.groups
    return state_of(
        mg, dg_on=tuple(bool(g["generator"]["on"][x.name].iloc[slot]) for x in mg.generators),
        dg_p_kw=tuple(float(g["generator"]["p_kw"][x.name].iloc[slot]) for x in mg.generators),
        e_kwh=tuple(float(g["storage"]["e_kwh"][x.name].iloc[slot]) for x in mg.storage))


def datasets(path: Path) -> dict[str, np.ndarray]:
    """Every dataset of an HDF5 file by its path."""
    out: dict[str, np.ndarray] = {}
    with h5py.File(path, "r", swmr=True) as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return out


def assert_same_datasets(a: Path, b: Path) -> None:
    da, db = datasets(a), datasets(b)
    assert sorted(da) == sorted(db)
    for name in da:
        x, y = da[name], db[name]
        assert x.dtype == y.dtype and x.shape == y.shape, name
        if name.endswith("wall_s"):  # wall time is not part of the trajectory
            continue
        if x.dtype.kind == "f":
            assert np.array_equal(x, y, equal_nan=True), name
        else:
            assert (x == y).all(), name


# ---------------------------------------------------------------- running
@dataclasses.dataclass
class Run:
    """A finished co-simulation, its file and what each controller saw and decided."""

    model: CoSimulation
    path: Path
    status: str
    windows: dict[str, list[MicrogridWindow]]
    plans: dict[str, list[tuple[int, MicrogridSchedule]]]

    @property
    def trajectory(self) -> Trajectory:
        return read(self.path)


def simulate(scenario: Scenario, path: Path, **settings: Any) -> Run:
    """Run a co-simulation recording to ``path``, capturing every MC's windows and plans."""
    model = CoSimulation(scenario, RunSettings(**settings))
    recorder = Recorder(path, model)
    model.recorder = recorder
    windows: dict[str, list[MicrogridWindow]] = {mc.spec.name: [] for mc in model.microgrids}
    plans: dict[str, list[tuple[int, MicrogridSchedule]]] = {n: [] for n in windows}
    for mc in model.microgrids:
        def window(*args: Any, _mc: MicrogridControllerAgent = mc,
                   _orig: Any = mc.window) -> MicrogridWindow:
            w = _orig(*args)
            windows[_mc.spec.name].append(w)
            return w

        def decide(schedule: MicrogridSchedule, start: int,
                   _mc: MicrogridControllerAgent = mc, _orig: Any = mc.decide) -> None:
            plans[_mc.spec.name].append((start, schedule))
            _orig(schedule, start)

        mc.window, mc.decide = window, decide
    try:
        status = model.run()
    finally:
        recorder.close()
        for mc in model.microgrids:  # leave the agents as the model built them
            del mc.window, mc.decide
    return Run(model, path, status, windows, plans)


@pytest.fixture(scope="module")
def seed() -> Scenario:
    return load_scenario("ieee123-nmg")


@pytest.fixture(scope="module")
def day_ahead(seed: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """K = H = 6: the whole seed case in one window."""
    return simulate(seed, tmp_path_factory.mktemp("da") / "da.h5", horizon=6, commit=6)


@pytest.fixture(scope="module")
def day_ahead_split(seed: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """K = H = 3: two day-ahead windows, the second starting from the first's end."""
    return simulate(seed, tmp_path_factory.mktemp("da3") / "da3.h5", horizon=3, commit=3)


@pytest.fixture(scope="module")
def receding(seed: Scenario, tmp_path_factory: pytest.TempPathFactory) -> Run:
    """K = 1, H = 6: six windows (the last ones shrink to the end of the data)."""
    return simulate(seed, tmp_path_factory.mktemp("rh") / "rh.h5", horizon=6, commit=1)


@pytest.fixture(scope="module")
def noisy(seed: Scenario, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Run]:
    """Noise 0.05, K = H = 3: seed 1 twice, seed 2 once."""
    base = tmp_path_factory.mktemp("noise")
    return {name: simulate(seed, base / f"{name}.h5", horizon=3, commit=3, seed=s, noise=0.05)
            for name, s in (("s1", 1), ("s1_again", 1), ("s2", 2))}


@pytest.fixture(scope="module")
def week(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """The week scenario, shortened: 6 slots, H = 3, K = 3."""
    return simulate(load_scenario("ieee123-nmg-week"),
                    tmp_path_factory.mktemp("week") / "week.h5", slots=6, horizon=3, commit=3)


RUNS = ["day_ahead", "day_ahead_split", "receding"]


@pytest.fixture(params=RUNS)
def run(request: pytest.FixtureRequest) -> Run:
    return request.getfixturevalue(request.param)


# ---------------------------------------------------------------- feasibility
def test_runs_finish_with_every_window_optimal(run: Run) -> None:
    assert run.status == "finished"
    conv = run.trajectory.convergence
    assert list(conv["status"]) == ["optimal"] * len(conv)
    k, h = run.model.settings.commit, run.model.horizon
    assert list(conv["start_slot"]) == list(range(0, 6, k))
    assert list(conv["slots"]) == [min(h, 6 - s) for s in range(0, 6, k)]
    assert run.trajectory.slots == 6


def test_recorded_trajectory_is_feasible(run: Run) -> None:
    tr = run.trajectory
    assert trajectory_violations(run.model.scenario, run.model.series, tr) == []


def test_every_window_plan_is_feasible_from_its_initial_state(run: Run) -> None:
    for mc in run.model.microgrids:
        ws, plans = run.windows[mc.spec.name], run.plans[mc.spec.name]
        assert len(ws) == len(plans) == len(run.model.dso.reports)
        for w, (start, plan) in zip(ws, plans, strict=True):
            assert plan.name == mc.spec.name
            bad = check_microgrid_schedule(
                w.spec, plan, renewable_forecast(w), w.load_kw, w.load_kvar, w.slot_hours,
                w.curtailment_cost_usd_per_kwh, w.state)
            assert bad == [], (start, bad)


def test_state_carries_over_between_windows(run: Run) -> None:
    """Each window starts where the committed slots before it ended (storage, DG on, p)."""
    tr, k = run.trajectory, run.model.settings.commit
    for mc in run.model.microgrids:
        ws, plans = run.windows[mc.spec.name], run.plans[mc.spec.name]
        for i, (w, (start, _)) in enumerate(zip(ws, plans, strict=True)):
            assert start == i * k
            assert w.state == state_after(tr, mc.spec, start - 1), (mc.spec.name, start)
            if i == 0:
                continue
            # no noise: the end of the previous plan's committed part is the new start
            prev = plans[i - 1][1]
            assert [w.state.of(s.name)["e_kwh"] for s in prev.storage] == pytest.approx(
                [s.e_kwh[k - 1] for s in prev.storage], abs=1e-9)
            assert [w.state.of(g.name)["p_kw"] for g in prev.generators] == pytest.approx(
                [g.p_kw[k - 1] for g in prev.generators], abs=1e-9)
            assert [bool(w.state.of(g.name)["on"]) for g in prev.generators] == [
                bool(g.on[k - 1]) for g in prev.generators]


def test_recorded_slots_are_the_committed_plan_slots(run: Run) -> None:
    """Without noise every recorded slot is the plan of the window that covered it."""
    tr, k = run.trajectory, run.model.settings.commit
    g = tr.groups
    for mc in run.model.microgrids:
        for start, plan in run.plans[mc.spec.name]:
            for j in range(min(k, 6 - start)):
                t = start + j
                assert g["microgrid"]["p_ex_kw"][mc.spec.name].iloc[t] == pytest.approx(
                    plan.p_ex_kw[j], abs=1e-9)
                for u in plan.generators:
                    assert g["generator"]["p_kw"][u.name].iloc[t] == pytest.approx(
                        u.p_kw[j], abs=1e-9)
                    assert g["generator"]["on"][u.name].iloc[t] == u.on[j]
                for u in plan.storage:
                    assert g["storage"]["e_kwh"][u.name].iloc[t] == pytest.approx(
                        u.e_kwh[j], abs=1e-6)


def test_start_ups_counted_once_per_off_on(run: Run) -> None:
    tr = run.trajectory
    for mc in run.model.microgrids:
        for agent in mc.generators:
            on = tr.groups["generator"]["on"][agent.spec.name].to_numpy().astype(int)
            assert agent.starts == int(start_ups(on, agent.spec.initial_on).sum())
            cost = tr.groups["generator"]["cost_usd"][agent.spec.name].sum()
            assert agent.total_cost_usd == pytest.approx(cost, rel=1e-12, abs=1e-9)


def test_costs_add_up(run: Run) -> None:
    tr, model = run.trajectory, run.model
    mg_cost = tr.groups["microgrid"]["cost_usd"].to_numpy().sum()
    sub_cost = tr.groups["substation"]["cost_usd"].to_numpy().sum()
    assert mg_cost == pytest.approx(sum(mc.total_cost_usd for mc in model.microgrids),
                                    rel=1e-12)
    assert sub_cost == pytest.approx(model.dso.total_cost_usd, rel=1e-12)
    # without local loads or noise a microgrid's cost is its generators' cost
    gen_cost = tr.groups["generator"]["cost_usd"].to_numpy().sum()
    assert mg_cost == pytest.approx(gen_cost, rel=1e-12)


def test_receding_crosses_window_boundaries_with_ramps_and_starts(receding: Run) -> None:
    """K = 1 re-plans every slot: some DG starts and ramps inside the run (not vacuous)."""
    on = receding.trajectory.groups["generator"]["on"].to_numpy()
    assert on.any(), "no generator is ever committed: the ramp/start-up checks are vacuous"
    assert sum(a.starts for mc in receding.model.microgrids for a in mc.generators) >= 1


def test_day_ahead_reproduces_monolithic_solve(day_ahead: Run, seed: Scenario) -> None:
    mono = solve_scenario(seed, "monolithic")
    assert mono.status == "optimal"
    tr = day_ahead.trajectory
    g = tr.groups

    def close(kind: str, var: str, unit: UnitSchedule | MicrogridSchedule, values: Any) -> None:
        got = g[kind][var][unit.name].to_numpy()
        np.testing.assert_allclose(got, np.asarray(values, dtype=float), rtol=0, atol=1e-4,
                                   err_msg=f"{kind}/{var}/{unit.name}")

    for mg in mono.microgrids:
        close("microgrid", "p_ex_kw", mg, mg.p_ex_kw)
        for u in mg.generators:
            close("generator", "p_kw", u, u.p_kw)
            close("generator", "on", u, u.on)
        for u in mg.renewables:
            close("renewable", "p_kw", u, u.p_kw)
        for u in mg.storage:
            close("storage", "p_kw", u, u.p_kw)
            close("storage", "e_kwh", u, u.e_kwh)
    np.testing.assert_allclose(g["substation"]["p_plan_kw"]["substation"].to_numpy(),
                               mono.network.p_sub_kw, rtol=0, atol=1e-4)
    assert planned_cost_usd(tr, seed) == pytest.approx(mono.objective_usd, rel=1e-6)
    assert tr.convergence["cost_usd"].iloc[0] == pytest.approx(mono.objective_usd, rel=1e-6)


# ---------------------------------------------------------------- noise and determinism
def test_same_seed_same_datasets_with_noise(noisy: dict[str, Run]) -> None:
    assert_same_datasets(noisy["s1"].path, noisy["s1_again"].path)


def test_other_seed_other_datasets(noisy: dict[str, Run]) -> None:
    a, b = datasets(noisy["s1"].path), datasets(noisy["s2"].path)
    for name in ("customer/p_kw", "renewable/available_kw", "substation/p_kw"):
        assert not np.array_equal(a[name], b[name]), name


def test_noisy_trajectories_are_feasible(noisy: dict[str, Run]) -> None:
    for run in noisy.values():
        assert run.status == "finished"
        tr = run.trajectory
        assert trajectory_violations(run.model.scenario, run.model.series, tr) == []
        # the noise is applied: realised customer loads differ from the forecast
        forecast = np.array([c.profile_kw[:6] for c in run.model.customers]).T
        assert not np.allclose(tr.groups["customer"]["p_kw"].to_numpy(), forecast)


def test_noisy_next_window_starts_from_realised_state(noisy: dict[str, Run]) -> None:
    run = noisy["s2"]
    tr = run.trajectory
    for mc in run.model.microgrids:
        for w, (start, _) in zip(run.windows[mc.spec.name], run.plans[mc.spec.name],
                                 strict=True):
            assert w.state == state_after(tr, mc.spec, start - 1)


# ---------------------------------------------------------------- HDF5 layout
def test_hdf5_readable_by_h5py_outputs_and_xarray(day_ahead_split: Run) -> None:
    xr = pytest.importorskip("xarray")
    pytest.importorskip("h5netcdf")
    path, model = day_ahead_split.path, day_ahead_split.model
    with h5py.File(path, "r") as f:
        assert f.attrs["complete"] == 1
        assert f.attrs["scenario"] == "ieee123-nmg"
        assert int(f.attrs["seed"]) == 0
        assert f["storage/e_kwh"].shape == (6, 6)
        assert f["customer/p_kw"].shape == (6, len(model.customers))
        assert f["convergence/window"].shape == (2,)
    tr = read(path)
    assert tr.slots == 6
    assert list(tr.time_h) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert tr.entity_ids["storage"] == [s.name for mg in model.scenario.microgrids
                                        for s in mg.storage]
    assert set(tr.groups) >= {"microgrid", "generator", "renewable", "storage", "customer",
                              "bus", "substation", "svc"}
    with xr.open_dataset(path, group="storage", engine="h5netcdf") as ds:
        assert ds["e_kwh"].dims == ("time", "ids")
        assert ds.sizes == {"time": 6, "ids": 6}
        assert list(ds["ids"].values) == tr.entity_ids["storage"]
        np.testing.assert_array_equal(ds["e_kwh"].values, tr.groups["storage"]["e_kwh"])
    with xr.open_dataset(path, group="convergence", engine="h5netcdf") as ds:
        assert ds["status"].dims == ("window",)
        assert list(ds["status"].values) == ["optimal", "optimal"]


def test_bus_voltages_recorded_within_limits(day_ahead_split: Run) -> None:
    spec = day_ahead_split.model.scenario.network
    vm = day_ahead_split.trajectory.groups["bus"]["vm_lin_pu"].to_numpy()
    assert np.isfinite(vm).all()
    assert vm.min() >= spec.v_min_pu - 1e-6 and vm.max() <= spec.v_max_pu + 1e-6



def test_one_planned_ac_flow_per_committed_slot(seed: Scenario, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """K = 1, H = 6: the plan's AC flow runs for the committed slot only (21 before).

    With no noise the realised slot is the plan's first slot, so the planned flow recorded
    as ``bus/vm_pu`` and the realised flow (``vm_real_pu``) must agree.
    """
    slots: list[int] = []
    solve = NetworkValidator.solve

    def counted(self: NetworkValidator, point: Any) -> Any:
        slots.append(point.slot)
        return solve(self, point)

    monkeypatch.setattr(NetworkValidator, "solve", counted)
    tr = simulate(seed, tmp_path / "rh.h5", horizon=6, commit=1).trajectory
    assert len(slots) == 2 * 6  # one planned and one realised flow per slot
    planned, real = (tr.groups["bus"][v].to_numpy() for v in ("vm_pu", "vm_real_pu"))
    assert np.isfinite(planned).all() and planned.shape == (6, len(tr.entity_ids["bus"]))
    np.testing.assert_allclose(planned, real, atol=1e-6)

# ---------------------------------------------------------------- agents
FORBIDDEN_FOR_DSO = (MicrogridControllerAgent, GeneratorAgent, RenewableAgent, StorageAgent,
                     Microgrid, Generator, Renewable, Storage, MicrogridWindow,
                     MicrogridSchedule)
_LEAVES = (str, bytes, int, float, bool, complex, type(None), np.ndarray, np.generic,
           pd.Series, pd.DataFrame, pd.Index, type, types.ModuleType, types.FunctionType,
           types.BuiltinFunctionType, types.MethodType)


def reachable(agent: mesa.Agent) -> Iterator[object]:
    """Every object reachable from an agent's own attributes (never through the model)."""
    seen: set[int] = set()
    stack = [v for k, v in vars(agent).items() if k != "model"]
    while stack:
        obj = stack.pop()
        if id(obj) in seen or isinstance(obj, mesa.Model):
            continue
        seen.add(id(obj))
        yield obj
        if isinstance(obj, _LEAVES):
            continue
        if isinstance(obj, dict):
            stack.extend(obj.keys())
            stack.extend(obj.values())
        elif isinstance(obj, list | tuple | set | frozenset):
            stack.extend(obj)
        elif isinstance(obj, mesa.Agent):
            stack.extend(v for k, v in vars(obj).items() if k != "model")
        elif hasattr(obj, "__dict__"):
            stack.extend(vars(obj).values())
        elif hasattr(obj, "__slots__"):
            stack.extend(getattr(obj, s) for s in obj.__slots__ if hasattr(obj, s))


def test_every_agent_is_a_mesa_agent_of_the_model(day_ahead: Run) -> None:
    model = day_ahead.model
    agents = list(model.agents)
    assert all(isinstance(a, mesa.Agent) for a in agents)
    expected = [model.dso, *model.microgrids, *model.customers]
    expected += [d for mc in model.microgrids
                 for d in (*mc.generators, *mc.renewables, *mc.storage)]
    assert {id(a) for a in agents} == {id(a) for a in expected}
    assert len(agents) == len(expected)
    assert isinstance(model.dso, DSOAgent)
    assert all(isinstance(c, CustomerAgent) for c in model.customers)
    by_type = {t: len(model.agents_by_type.get(t, [])) for t in (
        DSOAgent, MicrogridControllerAgent, GeneratorAgent, StorageAgent)}
    assert by_type == {DSOAgent: 1, MicrogridControllerAgent: 6, GeneratorAgent: 6,
                       StorageAgent: 6}


def test_dso_holds_no_microgrid_internals(day_ahead: Run) -> None:
    found = [type(o).__name__ for o in reachable(day_ahead.model.dso)
             if isinstance(o, FORBIDDEN_FOR_DSO)]
    assert found == [], f"the DSO agent reaches microgrid internals: {sorted(set(found))}"


def test_microgrid_controllers_hold_only_their_own_ders(day_ahead: Run) -> None:
    for mc in day_ahead.model.microgrids:
        own = {id(a) for a in (*mc.generators, *mc.renewables, *mc.storage)}
        own_specs = {id(mc.spec), *(id(u) for u in (*mc.spec.generators, *mc.spec.renewables,
                                                     *mc.spec.storage))}
        for obj in reachable(mc):
            if isinstance(obj, GeneratorAgent | RenewableAgent | StorageAgent):
                assert id(obj) in own, (mc.spec.name, obj.spec.name)
            assert not isinstance(obj, MicrogridControllerAgent | DSOAgent | CustomerAgent)
            if isinstance(obj, Microgrid | Generator | Renewable | Storage):
                assert id(obj) in own_specs, (mc.spec.name, obj.name)
            if isinstance(obj, MicrogridSchedule):
                assert obj.name == mc.spec.name
        assert [g.spec for g in mc.generators] == list(mc.spec.generators)
        assert [s.spec for s in mc.storage] == list(mc.spec.storage)


# ---------------------------------------------------------------- the week scenario
def test_week_short_run(week: Run) -> None:
    assert week.status == "finished"
    tr = week.trajectory
    assert tr.slots == 6 and len(tr.convergence) == 2
    assert list(tr.convergence["status"]) == ["optimal", "optimal"]
    assert tr.attrs["scenario"] == "ieee123-nmg-week"
    price = tr.groups["substation"]["price_usd_per_kwh"]["substation"].to_numpy()
    assert np.ptp(price) > 0, "the week's price should vary with time"
    loads = tr.groups["customer"]["p_kw"].to_numpy()
    assert (np.ptp(loads, axis=0) > 0).sum() >= loads.shape[1] // 2, "loads should vary"
    np.testing.assert_allclose(price, week.model.series.price_usd_per_kwh.to_numpy()[:6])
    assert trajectory_violations(week.model.scenario, week.model.series, tr) == []
    for mc in week.model.microgrids:
        w = week.windows[mc.spec.name][1]
        assert w.state == state_after(tr, mc.spec, 2)
    assert math.isfinite(tr.convergence["cost_usd"].sum())


# ---------------------------------------------------------------- crash safety
def test_file_holds_whole_committed_windows_at_every_step(seed: Scenario, tmp_path: Path
                                                          ) -> None:
    """After every slot the file on disk holds whole windows: rows × K slots, no more."""
    path = tmp_path / "steps.h5"
    model = CoSimulation(seed, RunSettings(horizon=3, commit=2))
    recorder = Recorder(path, model)
    model.recorder = recorder
    seen = []
    try:
        while model.running:
            model.step()
            tr = read(path)
            seen.append((tr.slots, len(tr.convergence)))
            assert tr.slots == 2 * len(tr.convergence)
            assert tr.slots == 2 * (model.slot // 2)
    finally:
        model.close()
        recorder.close()
    assert seen == [(0, 0), (2, 1), (2, 1), (4, 2), (4, 2), (6, 3)]
    assert read(path).attrs["complete"] == 1


# ---------------------------------------------------------------------------- lookahead


def _one_day_week() -> Scenario:
    week = load_scenario("ieee123-nmg-week")
    return week.model_copy(update={"timeseries": week.timeseries.model_copy(
        update={"days": 1})})


def test_forecasts_reach_past_the_run_scaled_like_the_run() -> None:
    """A 1-day run of the 14-day profile set sees H − 1 slots of day 2, scaled like day 1."""
    from gridcosim.scenarios.series import scenario_series

    scenario = _one_day_week()
    plain, ahead = scenario_series(scenario), scenario_series(scenario, lookahead_slots=23)
    assert (plain.slots, ahead.slots) == (24, 47)
    pd.testing.assert_series_equal(ahead.price_usd_per_kwh.iloc[:24], plain.price_usd_per_kwh)
    pd.testing.assert_frame_equal(ahead.load.iloc[:24], plain.load)
    pd.testing.assert_frame_equal(ahead.renewables.iloc[:24], plain.renewables)
    assert not np.allclose(ahead.load.iloc[24:].to_numpy(), plain.load.iloc[1:].to_numpy())
    # the seed's per-slot multipliers have nothing past their last slot
    assert scenario_series(load_scenario("ieee123-nmg"), lookahead_slots=5).slots == 6


def test_receding_windows_keep_their_length_to_the_end_of_the_run() -> None:
    """H = 24, K = 1 over one day: 24 windows of 24 slots, each certified optimal."""
    model = CoSimulation(_one_day_week(), RunSettings(horizon=24, commit=1))
    assert model.run() == "finished" and model.slot == 24
    reports = model.dso.reports
    assert [r.start for r in reports] == list(range(24))
    assert {r.slots for r in reports} == {24}
    assert {r.status for r in reports} == {"optimal"}
    assert all(r.cost_usd - r.lower_bound_usd <= 1e-6 * abs(r.cost_usd) for r in reports)


def test_substation_absorbs_active_and_reactive_deviations() -> None:
    """Realised load above forecast and exchange below plan both raise the import."""
    model = CoSimulation(load_scenario("ieee123-nmg"), RunSettings(slots=1, horizon=6))
    model.step()  # plans the first window and runs slot 0
    plan, dso = model.dso.plan, model.dso
    # slot 0 as recorded by the model: no noise, so the plan plus its AC losses
    assert dso.realised.converged and dso.realised.losses_kw > 0
    assert dso.substation.p_kw == pytest.approx(plan.p_sub_kw[0] + dso.realised.losses_kw)
    dso.commit(1, (10.0, 4.0), (-5.0, -2.0))  # no realised state: the lossless estimate
    sub = dso.substation
    assert sub.p_kw == pytest.approx(plan.p_sub_kw[1] + 15.0)
    assert sub.q_kvar == pytest.approx(plan.q_sub_kvar[1] + 6.0)
    price = float(model.series.price_usd_per_kwh.iloc[1])
    curtail = sum(v[1] for v in plan.curtail_kw.values())
    rho = model.scenario.curtailment_cost_usd_per_kwh
    assert sub.cost_usd == pytest.approx((price * sub.p_kw + rho * curtail)
                                         * model.series.slot_hours)
