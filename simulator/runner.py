"""Run a co-simulation end to end: model, HDF5 recorder, progress bar."""

from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from gridcosim.scenarios.schema import Scenario
from gridcosim.simulator.cosim import CoSimulation, RunSettings
from gridcosim.simulator.decomposition.settings import DecompositionSettings
from gridcosim.simulator.recording import Recorder


def run_scenario(scenario: Scenario, out: str | Path, *, slots: int | None = None,
                 horizon: int | None = None, commit: int = 1, seed: int = 0,
                 noise: float = 0.0, ac_cuts: bool = False,
                 decomposition: DecompositionSettings | None = None,
                 progress: bool = True) -> str:
    """Simulate ``scenario`` and write its trajectory to ``out``; return the run status.

    The file is flushed after every window, so it stays readable whatever happens later.
    """
    settings = RunSettings(slots=slots, horizon=horizon, commit=commit, seed=seed,
                           noise=noise, ac_cuts=ac_cuts,
                           decomposition=decomposition or DecompositionSettings())
    model = CoSimulation(scenario, settings)
    recorder = Recorder(out, model)
    model.recorder = recorder
    bar = tqdm(total=model.total_slots, unit="slot", disable=not progress,
               desc=scenario.name)
    try:
        while model.running:
            model.step()
            bar.update(1)
            bar.set_postfix(cost=f"{model.dso.cost_usd + _mg_cost(model):.2f}$",
                            windows=len(model.dso.reports))
    finally:
        bar.close()
        model.close()
        recorder.close()
    return model.status


def _mg_cost(model: CoSimulation) -> float:
    return sum(mc.cost_usd for mc in model.microgrids)
