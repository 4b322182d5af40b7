"""Scenario variants that make the integer part or the network matter (tests, benchmarks).

Each variant is a pure function of a scenario; :func:`perturbed` draws from its own
seeded generator, so a variant is reproducible from its name and seed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gridcosim.scenarios.schema import Microgrid, Scenario


def _map_generators(s: Scenario, **scale: float) -> Scenario:
    mgs = tuple(mg.model_copy(update={"generators": tuple(
        g.model_copy(update={k: getattr(g, k) * v for k, v in scale.items()})
        for g in mg.generators)}) for mg in s.microgrids)
    return s.model_copy(update={"microgrids": mgs})


def startup_x6(s: Scenario) -> Scenario:
    """Start-up costs times six: commitment decisions change."""
    out = _map_generators(s, startup_cost_usd=6.0)
    return out.model_copy(update={"name": f"{s.name}+startup-x6"})


def stressed(s: Scenario) -> Scenario:
    """Loads x2 and a 0.95-1.05 p.u. band: voltages bind and load curtailment appears."""
    net = s.network.model_copy(update={"load_scale": 2.0, "v_min_pu": 0.95, "v_max_pu": 1.05})
    return s.model_copy(update={"network": net, "name": f"{s.name}+stressed"})


def small_pcc(s: Scenario, p_max_kw: float = 60.0, q_max_kvar: float = 40.0) -> Scenario:
    """A small exchange limit at every PCC."""
    mgs = tuple(mg.model_copy(update={"pcc_p_max_kw": p_max_kw, "pcc_q_max_kvar": q_max_kvar})
                for mg in s.microgrids)
    return s.model_copy(update={"microgrids": mgs, "name": f"{s.name}+small-pcc"})


def _perturb_microgrid(mg: Microgrid, rng: np.random.Generator) -> Microgrid:
    gens = tuple(g.model_copy(update={
        "cost_usd_per_kwh": g.cost_usd_per_kwh * rng.uniform(0.7, 1.6),
        "startup_cost_usd": g.startup_cost_usd * rng.uniform(0.5, 8.0)}) for g in mg.generators)
    res = tuple(r.model_copy(update={"forecast_kw": r.forecast_kw * rng.uniform(0.5, 1.5)})
                for r in mg.renewables)
    ess = tuple(e.model_copy(update={"e_initial_kwh": float(
        rng.uniform(e.e_min_kwh, e.e_max_kwh))}) for e in mg.storage)
    return mg.model_copy(update={"generators": gens, "renewables": res, "storage": ess})


def perturbed(s: Scenario, seed: int) -> Scenario:
    """Seeded random perturbation of unit costs, forecasts, storage states and profiles."""
    rng = np.random.default_rng(seed)
    mgs = tuple(_perturb_microgrid(mg, rng) for mg in s.microgrids)
    prof = s.profiles
    noisy = {k: tuple(float(x * rng.uniform(0.85, 1.15)) for x in getattr(prof, k))
             for k in ("price", "load", "renewables")}
    return s.model_copy(update={"microgrids": mgs, "profiles": prof.model_copy(update=noisy),
                                "name": f"{s.name}+perturbed-{seed}"})


VARIANTS: dict[str, Callable[[Scenario], Scenario]] = {
    "startup-x6": startup_x6, "stressed": stressed, "small-pcc": small_pcc}
