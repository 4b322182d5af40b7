"""The standard form read off flat linear rows (``simulator/linear_compile.py``).

Reference: Pyomo's own ``LinearStandardFormCompiler`` on the same model. Where every row
is flat (the network models) the fast read must give the same columns in the same order,
the same rows, coefficients, bounds and objective; any other model must be handed to
Pyomo's compiler whole, so that it compiles as before. About 15 s on 2 cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyomo.environ as pyo
import pytest
from test_network_sources import SIMBENCH_LV

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.network import network_for
from gridcosim.simulator.highs_model import HighsModel
from gridcosim.simulator.linear_compile import (
    StandardForm,
    _flat_form,
    _pyomo_form,
    standard_form,
)
from gridcosim.simulator.models.lindistflow_model import add_network, linear
from gridcosim.simulator.models.master_model import build_master
from gridcosim.simulator.models.monolithic_model import build_monolithic
from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds


def same_form(a: StandardForm, b: StandardForm) -> bool:
    """Whether two standard forms are the same (columns, rows, coefficients, bounds)."""
    return (len(a.columns) == len(b.columns) and len(a.constraints) == len(b.constraints)
            and all(x is y for x, y in zip(a.columns, b.columns, strict=True))
            and all(x is y for x, y in zip(a.constraints, b.constraints, strict=True))
            and np.array_equal(a.cost, b.cost) and a.offset == b.offset
            and np.array_equal(a.row_lo, b.row_lo) and np.array_equal(a.row_hi, b.row_hi)
            and np.array_equal(a.row_offset, b.row_offset)
            and a.matrix.shape == b.matrix.shape and (a.matrix != b.matrix).nnz == 0)


def windows(name: str):  # noqa: ANN201 - (network window, microgrid windows)
    scenario = load_scenario(name)
    mgs = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    return network_window(scenario, network_for(scenario), [published_bounds(w) for w in mgs]), mgs


@pytest.mark.parametrize("name", ["ieee123-nmg", "case33bw-3mg", "ieee123-nmg-stressed"])
def test_balanced_master_reads_flat_and_equals_pyomo(name: str) -> None:
    master = build_master(windows(name)[0])
    flat = _flat_form(master)
    assert flat is not None
    assert same_form(flat, _pyomo_form(master))


def test_rated_lines_and_a_transformer_equal_pyomo(tmp_path: Path) -> None:
    """A SimBench LV grid: every thermal side of its rated lines, a tap ratio on v."""
    path = tmp_path / "lv.toml"
    path.write_text(SIMBENCH_LV, encoding="utf-8")
    window = windows(str(path))[0]
    m = pyo.ConcreteModel()
    m.net = pyo.Block()
    add_network(m.net, window, screen_thermal=False)
    m.obj = pyo.Objective(expr=m.net.cost_usd)
    assert len(m.net.thermal) > 0
    flat = _flat_form(m)
    assert flat is not None and same_form(flat, _pyomo_form(m))


@pytest.mark.parametrize("name", ["ieee123-nmg-3ph", "ieee123-nmg"])
def test_every_model_compiles_as_pyomo_compiles_it(name: str) -> None:
    """Three-phase master and monolithic MILPs: fast where flat, Pyomo's otherwise."""
    net, mgs = windows(name)
    for model in (build_master(net), build_monolithic(net, mgs)):
        assert same_form(standard_form(model), _pyomo_form(model))


def _small(body: str) -> pyo.ConcreteModel:
    m = pyo.ConcreteModel()
    m.x = pyo.Var([0, 1], bounds=(0, 4))
    m.y = pyo.Var(bounds=(-1, 1))
    m.p = pyo.Param(mutable=True, initialize=2.0)
    m.obj = pyo.Objective(expr=m.x[0] + 2 * m.x[1] - m.y)
    if body == "flat":
        m.c = pyo.Constraint(expr=linear([(1.0, m.x[0]), (1.0, m.x[1])]) == m.p)
    elif body == "nested":
        m.c = pyo.Constraint(expr=m.x[0] + 3 * (m.x[1] + m.y) >= 1)
    elif body == "fixed":
        m.y.fix(0.5)
        m.c = pyo.Constraint(expr=linear([(1.0, m.x[0]), (1.0, m.y)]) <= 3)
    elif body == "parameter coefficient":
        m.c = pyo.Constraint(expr=pyo.quicksum([m.p * m.x[0], m.x[1]], linear=True) >= 1)
    elif body == "maximise":
        m.obj.sense = pyo.maximize
        m.c = pyo.Constraint(expr=linear([(1.0, m.x[0]), (1.0, m.x[1])]) <= 3)
    return m


def test_a_flat_model_reads_flat() -> None:
    m = _small("flat")
    flat = _flat_form(m)
    assert flat is not None and same_form(flat, _pyomo_form(m))
    assert flat.row_lo.tolist() == flat.row_hi.tolist() == [2.0]
    assert [v.name for v in flat.columns] == ["x[0]", "x[1]", "y"]  # objective order


@pytest.mark.parametrize("body", ["nested", "fixed", "parameter coefficient", "maximise"])
def test_other_rows_go_to_pyomo(body: str) -> None:
    m = _small(body)
    assert _flat_form(m) is None
    assert same_form(standard_form(m), _pyomo_form(m))


@pytest.mark.parametrize("body", ["flat", "nested", "fixed", "maximise"])
def test_compiled_model_solves_to_pyomos_optimum(body: str) -> None:
    """Reference: the same model solved by Pyomo's HiGHS interface (appsi/contrib)."""
    m = _small(body)
    ours = HighsModel(m).solve()
    result = pyo.SolverFactory("appsi_highs").solve(m)
    assert str(result.solver.termination_condition) == "optimal"
    sense = -1.0 if m.obj.sense == pyo.maximize else 1.0
    assert sense * ours.objective == pytest.approx(pyo.value(m.obj), abs=1e-9)
    assert np.isfinite(ours.objective)
