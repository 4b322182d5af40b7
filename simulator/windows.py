"""Cut a scenario into the private data of one optimisation window.

The DSO gets a :class:`~simulator.models.lindistflow.NetworkWindow` (network, bus loads,
prices, SVCs and the bounds the microgrids publish); each microgrid controller gets its own
:class:`~simulator.models.microgrid.MicrogridWindow`. Profiles are per-slot multipliers of
nominal values (FORMULATION §8).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from scenarios.network import NetworkData
from scenarios.schema import Microgrid, Scenario
from simulator.messages import ExchangeBounds
from simulator.models.lindistflow import NetworkWindow
from simulator.models.microgrid import MicrogridState, MicrogridWindow


def _profile(values: Sequence[float], start: int, slots: int, name: str) -> np.ndarray:
    out = np.asarray(values[start:start + slots], dtype=float)
    if len(out) != slots:
        raise ValueError(f"profile {name} has {len(values)} slots; window needs {start}+{slots}")
    return out


def network_window(scenario: Scenario, network: NetworkData,
                   exchanges: Sequence[ExchangeBounds], start: int = 0,
                   slots: int | None = None) -> NetworkWindow:
    """The DSO's data for slots ``start .. start + slots - 1``.

    Args:
        scenario: Validated scenario.
        network: Its network data.
        exchanges: Bounds published by the microgrid controllers.
        start: First slot of the window.
        slots: Window length (default: the scenario horizon).

    """
    slots = scenario.horizon.slots if slots is None else slots
    prof = scenario.profiles
    load_mult = _profile(prof.load, start, slots, "load") * scenario.network.load_scale
    price = _profile(prof.price, start, slots, "price") * prof.price_usd_per_kwh
    buses = list(network.bus_ids)
    p_nom = network.load_p_kw.reindex(buses).to_numpy()
    q_nom = network.load_q_kvar.reindex(buses).to_numpy()
    spec = scenario.network
    return NetworkWindow(
        network=network,
        load_kw=pd.DataFrame(np.outer(p_nom, load_mult), index=buses, columns=range(slots)),
        load_kvar=pd.DataFrame(np.outer(q_nom, load_mult), index=buses, columns=range(slots)),
        price_usd_per_kwh=price,
        slot_hours=scenario.horizon.slot_hours,
        curtailment_cost_usd_per_kwh=scenario.curtailment_cost_usd_per_kwh,
        v_ref_pu=spec.v_ref_pu, v_min_pu=spec.v_min_pu, v_max_pu=spec.v_max_pu,
        svcs=scenario.svcs,
        exchanges=tuple(exchanges),
    )


def microgrid_window(scenario: Scenario, mg: Microgrid, state: MicrogridState | None = None,
                     start: int = 0, slots: int | None = None) -> MicrogridWindow:
    """Microgrid ``mg``'s private data for slots ``start .. start + slots - 1``."""
    slots = scenario.horizon.slots if slots is None else slots
    prof = scenario.profiles
    re_mult = _profile(prof.renewables, start, slots, "renewables")
    load_mult = _profile(prof.load, start, slots, "load")
    renewable_kw = np.array([r.forecast_kw * re_mult for r in mg.renewables]).reshape(
        len(mg.renewables), slots)
    return MicrogridWindow(
        spec=mg,
        renewable_kw=renewable_kw,
        load_kw=mg.local_load_kw * load_mult,
        load_kvar=mg.local_load_kvar * load_mult,
        slot_hours=scenario.horizon.slot_hours,
        curtailment_cost_usd_per_kwh=scenario.curtailment_cost_usd_per_kwh,
        state=state if state is not None else MicrogridState.initial(mg),
    )


def published_bounds(w: MicrogridWindow) -> ExchangeBounds:
    """What a microgrid controller publishes: PCC rating and a cost upper bound."""
    spec = w.spec
    return ExchangeBounds(
        mg=spec.name, bus=spec.bus,
        p_min_kw=-spec.pcc_p_max_kw, p_max_kw=spec.pcc_p_max_kw,
        q_min_kvar=-spec.pcc_q_max_kvar, q_max_kvar=spec.pcc_q_max_kvar,
        eta_ub_usd=w.cost_upper_bound_usd(),
    )
