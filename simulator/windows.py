"""Cut a scenario into the private data of one optimisation window.

The DSO gets a :class:`~simulator.models.lindistflow_model.NetworkWindow` (network, bus loads,
prices, SVCs and the bounds the microgrids publish); each microgrid controller gets its own
:class:`~simulator.models.microgrid_model.MicrogridWindow`. Values come from the scenario's
:class:`~scenarios.series.ScenarioSeries` (forecasts); the co-simulation applies realised
deviations itself.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gridcosim.scenarios.network import NetworkData
from gridcosim.scenarios.phase_network import PhaseNetwork
from gridcosim.scenarios.schema import Microgrid, Scenario
from gridcosim.scenarios.series import ScenarioSeries, scenario_series
from gridcosim.simulator.messages import ExchangeBounds
from gridcosim.simulator.models.ders import der_models
from gridcosim.simulator.models.lindistflow_model import NetworkWindow
from gridcosim.simulator.models.microgrid_model import MicrogridState, MicrogridWindow
from gridcosim.simulator.models.thermal_screen import LoadRange


def _span(series: ScenarioSeries, start: int, slots: int) -> slice:
    if start < 0 or start + slots > series.slots:
        raise ValueError(f"window {start}..{start + slots - 1} outside the scenario's "
                         f"{series.slots} slots")
    return slice(start, start + slots)


def load_multiplier(scenario: Scenario, series: ScenarioSeries, customer_class: str,
                    span: slice) -> np.ndarray:
    """The forecast multiplier of a load of ``customer_class`` over ``span``."""
    return series.load[customer_class].to_numpy()[span] * scenario.network.load_scale


def bus_multipliers(scenario: Scenario, network: NetworkData | PhaseNetwork,
                    series: ScenarioSeries, span: slice) -> np.ndarray:
    """Forecast multiplier of every bus's nominal load over ``span`` (``bus_ids`` × slots).

    The bus's customer-class profile times ``load_scale``; on a network whose loads carry
    their own measured shapes (:attr:`PhaseNetwork.load_shapes`) also times the bus's shape;
    a bus with its own time-series file column follows it instead
    (:meth:`ScenarioSeries.with_bus_loads`).
    """
    buses = list(network.bus_ids)
    mult = np.array([load_multiplier(scenario, series, series.bus_class.get(b, "residential"),
                                     span) for b in buses])
    shapes = (network.bus_shape_multipliers(series.slot_hours, span.stop)
              if isinstance(network, PhaseNetwork) else None)
    if shapes is not None:
        mult = mult * shapes.reindex(buses, fill_value=1.0).to_numpy()[:, span]
    return series.with_bus_loads(mult, buses, network.load_p_kw, scenario.network.load_scale,
                                 span)


def bus_loads(scenario: Scenario, network: NetworkData | PhaseNetwork, series: ScenarioSeries,
              start: int, slots: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Forecast bus loads (kW, kvar) of a window, DataFrames bus x slot (0-based)."""
    span = _span(series, start, slots)
    buses = list(network.bus_ids)
    p_nom = network.load_p_kw.reindex(buses).to_numpy()
    q_nom = network.load_q_kvar.reindex(buses).to_numpy()
    mult = bus_multipliers(scenario, network, series, span)
    cols = range(slots)
    return (pd.DataFrame(p_nom[:, None] * mult, index=buses, columns=cols),
            pd.DataFrame(q_nom[:, None] * mult, index=buses, columns=cols))


@dataclass(frozen=True, eq=False)
class RunLoads:
    """Every bus's forecast load over all of a run's slots, cut once per run.

    A rolling horizon's windows are slices of it (the forecasts are per slot, so a
    window's slice equals :func:`bus_loads` of that window). Its range over every slot of
    the run bounds the thermal screen (:mod:`~simulator.models.thermal_screen`): every
    window is cut from the same series, so a network model screened with it holds for
    each of them.

    Attributes:
        load_kw: Forecast active load, bus x run slot (kW).
        load_kvar: Forecast reactive load, bus x run slot (kvar).
        load_range: The loads' range, curtailment included (``None``: three-phase).

    """

    load_kw: pd.DataFrame
    load_kvar: pd.DataFrame
    load_range: LoadRange | None

    @classmethod
    def of(cls, scenario: Scenario, network: NetworkData | PhaseNetwork,
           series: ScenarioSeries) -> RunLoads:
        """The run's loads of ``network`` from ``series``."""
        load_kw, load_kvar = bus_loads(scenario, network, series, 0, series.slots)
        load_range = (None if isinstance(network, PhaseNetwork)
                      else LoadRange.of(network, load_kw, load_kvar))
        return cls(load_kw, load_kvar, load_range)

    def window(self, start: int, slots: int) -> tuple[pd.DataFrame, pd.DataFrame]:
        """The loads of slots ``start .. start + slots - 1`` (columns 0-based)."""
        if start < 0 or start + slots > self.load_kw.shape[1]:
            raise ValueError(f"window {start}..{start + slots - 1} outside the run's "
                             f"{self.load_kw.shape[1]} slots")
        cols = range(slots)
        return tuple(pd.DataFrame(frame.to_numpy()[:, start:start + slots], index=frame.index,
                                  columns=cols) for frame in (self.load_kw, self.load_kvar))


def network_window(scenario: Scenario, network: NetworkData,
                   exchanges: Sequence[ExchangeBounds], start: int = 0,
                   slots: int | None = None, series: ScenarioSeries | None = None,
                   run_loads: RunLoads | None = None) -> NetworkWindow:
    """The DSO's data for slots ``start .. start + slots - 1`` (default: the horizon).

    The window's network is ``network`` on the scenario's ``[network]`` base (the same
    object for every window of a run). ``run_loads`` (of the same network and
    ``series``) gives the loads cut once for the run; without it they are cut here.
    """
    slots = scenario.horizon.slots if slots is None else slots
    spec = scenario.network
    network = network.with_base(spec.base_kva, spec.base_kv)
    series = series if series is not None else scenario_series(scenario, network)
    if run_loads is None:
        run_loads = RunLoads.of(scenario, network, series)
    load_kw, load_kvar = run_loads.window(start, slots)
    return NetworkWindow(
        network=network, load_kw=load_kw, load_kvar=load_kvar,
        price_usd_per_kwh=series.price_usd_per_kwh.to_numpy()[_span(series, start, slots)],
        slot_hours=scenario.horizon.slot_hours,
        curtailment_cost_usd_per_kwh=scenario.curtailment_cost_usd_per_kwh,
        v_ref_pu=spec.v_ref_pu, v_min_pu=spec.v_min_pu, v_max_pu=spec.v_max_pu,
        svcs=scenario.svcs, exchanges=tuple(exchanges), start=start,
        load_range=run_loads.load_range)


def microgrid_window(scenario: Scenario, mg: Microgrid, state: MicrogridState | None = None,
                     start: int = 0, slots: int | None = None,
                     series: ScenarioSeries | None = None,
                     forecasts: dict[str, np.ndarray] | None = None) -> MicrogridWindow:
    """Microgrid ``mg``'s private forecast data for slots ``start .. start + slots - 1``.

    ``forecasts`` (per unit name) are the units' own; by default each kind's model makes
    them from the series (:func:`unit_forecasts`).
    """
    slots = scenario.horizon.slots if slots is None else slots
    series = series if series is not None else scenario_series(scenario)
    span = _span(series, start, slots)
    load_kw, load_kvar = series.local_load(mg, span)
    return MicrogridWindow(
        spec=mg, forecast_kw=unit_forecasts(mg, series, span) if forecasts is None else forecasts,
        load_kw=load_kw, load_kvar=load_kvar,
        slot_hours=scenario.horizon.slot_hours,
        curtailment_cost_usd_per_kwh=scenario.curtailment_cost_usd_per_kwh,
        state=state if state is not None else MicrogridState.initial(mg),
        price_usd_per_kwh=series.price_usd_per_kwh.to_numpy()[span], start=start)


def unit_forecasts(mg: Microgrid, series: ScenarioSeries, span: slice
                   ) -> dict[str, np.ndarray]:
    """Each unit's forecast over ``span``, for the kinds that have one."""
    out = {}
    for model in der_models():
        for unit in model.units(mg):
            forecast = model.forecast_kw(unit, series, span)
            if forecast is not None:
                out[unit.name] = np.asarray(forecast, dtype=float)
    return out


def published_bounds(w: MicrogridWindow) -> ExchangeBounds:
    """What a microgrid controller publishes: PCC rating and a cost upper bound."""
    spec = w.spec
    return ExchangeBounds(
        mg=spec.name, bus=spec.bus,
        p_min_kw=-spec.pcc_p_max_kw, p_max_kw=spec.pcc_p_max_kw,
        q_min_kvar=-spec.pcc_q_max_kvar, q_max_kvar=spec.pcc_q_max_kvar,
        eta_ub_usd=w.cost_upper_bound_usd())
