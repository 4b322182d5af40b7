"""LinDist3Flow (docs/formulation.md §6a): matrices, network data, three-phase master.

References: the matrices against §6a's entry-by-entry form (written out here, the
corrected seed 001 (B4)/(B5)) on every IEEE 123 line code as OpenDSS compiles it; the
feeder data against the IEEE 123 source documentation (``SOURCE.md`` totals and phase
counts); the three-phase decomposition against the monolithic three-phase problem.
"""

from __future__ import annotations

import math
from importlib.resources import files
from pathlib import Path

import numpy as np
import opendssdirect as dss
import pyomo.environ as pyo
import pytest

from gridcosim.scenarios.loader import load_scenario
from gridcosim.scenarios.phase_network import delta_split
from gridcosim.scenarios.phase_sources.builtin import load_phase_network
from gridcosim.scenarios.phase_sources.opendss_source import compile_feeder
from gridcosim.simulator.models.lindist3flow import LinDist3Flow, m_matrices
from gridcosim.simulator.solve import solve_scenario

S3 = math.sqrt(3.0)


def expected_mp(r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """§6a's M^P written out entry by entry (minus the corrected seed (B4))."""
    return np.array([
        [2 * r[0, 0], -r[0, 1] + S3 * x[0, 1], -r[0, 2] - S3 * x[0, 2]],
        [-r[1, 0] - S3 * x[1, 0], 2 * r[1, 1], -r[1, 2] + S3 * x[1, 2]],
        [-r[2, 0] + S3 * x[2, 0], -r[2, 1] - S3 * x[2, 1], 2 * r[2, 2]]])


def expected_mq(r: np.ndarray, x: np.ndarray) -> np.ndarray:
    """§6a's M^Q written out entry by entry (minus the corrected seed (B5))."""
    return np.array([
        [2 * x[0, 0], -x[0, 1] - S3 * r[0, 1], -x[0, 2] + S3 * r[0, 2]],
        [-x[1, 0] + S3 * r[1, 0], 2 * x[1, 1], -x[1, 2] - S3 * r[1, 2]],
        [-x[2, 0] - S3 * r[2, 0], -x[2, 1] + S3 * r[2, 1], 2 * x[2, 2]]])


def ieee123_linecodes() -> dict[str, np.ndarray]:
    """Every IEEE 123 line code's phase impedance matrix (ohm per kft), padded to 3×3.

    The phases of a two- or single-phase code sit where the feeder uses them (codes 7:
    a-c, 8: a-b, 9/10/11: a/b/c); the formula must hold wherever they sit.
    """
    compile_feeder(Path(str(files("gridcosim.scenarios"))) / "data" / "ieee123" / "opendss"
                   / "IEEE123Master.dss")
    places = {"7": [0, 2], "8": [0, 1], "9": [0], "10": [1], "11": [2]}
    out = {}
    i = dss.LineCodes.First()
    while i:
        n = dss.LineCodes.Phases()
        z = (np.reshape(dss.LineCodes.Rmatrix(), (n, n))
             + 1j * np.reshape(dss.LineCodes.Xmatrix(), (n, n)))
        pos = places.get(dss.LineCodes.Name(), list(range(n)))
        full = np.zeros((3, 3), complex)
        full[np.ix_(pos, pos)] = z
        out[dss.LineCodes.Name()] = full
        i = dss.LineCodes.Next()
    return out


def test_m_matrices_match_the_formula_for_every_ieee123_line_code() -> None:
    codes = ieee123_linecodes()
    assert {str(k) for k in range(1, 13)} <= set(codes)
    for name, z in codes.items():
        mp, mq = m_matrices(z)
        np.testing.assert_allclose(mp, expected_mp(z.real, z.imag), atol=1e-12, err_msg=name)
        np.testing.assert_allclose(mq, expected_mq(z.real, z.imag), atol=1e-12, err_msg=name)


def test_balanced_diagonal_line_reduces_to_lindistflow() -> None:
    r, x = 0.013, 0.021
    mp, mq = m_matrices(np.diag([r + 1j * x] * 3))
    np.testing.assert_allclose(mp, 2 * r * np.eye(3), atol=1e-15)
    np.testing.assert_allclose(mq, 2 * x * np.eye(3), atol=1e-15)


def test_delta_split_keeps_the_load_and_rotates_it() -> None:
    shares = delta_split("ab", "delta", 100.0, 50.0)
    assert sum(p for p, _ in shares.values()) == pytest.approx(100.0)
    assert sum(q for _, q in shares.values()) == pytest.approx(50.0)
    # S_a = S_ab / (1 - alpha): 0.5 P + Q / (2 sqrt 3) on the leading phase
    assert shares["a"][0] == pytest.approx(50.0 + 50.0 / (2 * S3))
    assert shares["b"][0] == pytest.approx(50.0 - 50.0 / (2 * S3))
    assert set(delta_split("ac", "delta", 10.0, 0.0)) == {"a", "c"}


def test_ieee123_three_phase_data_match_the_source_documentation() -> None:
    net = load_phase_network("ieee123-3ph")
    assert len(net.buses) == 123 and net.phase_problems() == []
    assert net.root_bus == 1 and set(net.bus_ids) == set(range(1, 124))
    assert net.loads["p_kw"].sum() == pytest.approx(3490.0)
    assert net.loads["q_kvar"].sum() == pytest.approx(1920.0)
    assert (net.loads["conn"] == "delta").sum() == 7 and len(net.loads) == 91
    assert net.shunts["q_kvar"].sum() == pytest.approx(750.0)
    # phase loads add up to each bus's load (the delta rotation moves P between phases)
    shares = net.load_shares.groupby(level="bus").sum()
    loaded = net.load_p_kw[net.load_p_kw > 0].index
    np.testing.assert_allclose(shares.loc[loaded, "p"], 1.0, atol=1e-12)


def test_sensitivities_are_the_path_sums_of_the_m_matrices() -> None:
    net = load_phase_network("ieee123-3ph")
    lin = LinDist3Flow(net)
    pos = lin.position
    far, other = (114, "a"), (104, "c")
    common = set(net.path_to_root(114)[:-1]) & set(net.path_to_root(104)[:-1])
    expected = sum(lin.line_m[net.line_of[b]][0][0, 2] for b in common) / net.phase_base_kva
    assert lin.dw_dp[pos[far], pos[other]] == pytest.approx(expected, rel=1e-12)
    assert lin.dw_dp[pos[far], pos[far]] > lin.dw_dp[pos[far], pos[other]]


@pytest.mark.parametrize("name", ["ieee123-nmg-3ph", "ieee123-nmg-3ph-stressed"])
def test_three_phase_decomposition_equals_monolithic(name: str) -> None:
    scenario = load_scenario(name)
    mono = solve_scenario(scenario, "monolithic")
    dec = solve_scenario(scenario, "decomposition")
    assert mono.status == dec.status == "optimal"
    assert dec.objective_usd == pytest.approx(mono.objective_usd, rel=1e-6)
    vm = dec.network.vm_pu
    v_min = scenario.network.v_min_pu
    assert "114.a" in vm and min(min(v) for v in vm.values()) >= v_min - 1e-6
    if name.endswith("stressed"):  # the band binds on some phase: more than one price round
        assert min(min(v) for v in vm.values()) == pytest.approx(v_min, abs=1e-6)
        assert dec.info["cuts"]["lagrangian"] > len(scenario.microgrids)


def test_per_phase_line_rating_is_respected() -> None:
    """A rating on the feeder head (line l3, bus 1 → 7, three-phase) binds per phase.

    The unrated optimum carries more than 500 kVA on some phase of it; a 500 kVA per-phase
    rating (inner octagon of the circle) keeps every phase within it, at a cost.
    """
    from dataclasses import replace

    from gridcosim.scenarios.network import network_for
    from gridcosim.simulator.highs_model import HighsModel
    from gridcosim.simulator.models.monolithic_model import build_monolithic
    from gridcosim.simulator.windows import microgrid_window, network_window, published_bounds

    scenario = load_scenario("ieee123-nmg-3ph")
    mgs = [microgrid_window(scenario, mg) for mg in scenario.microgrids]
    base = network_for(scenario)

    def solve(net: object) -> tuple[float, object]:
        window = network_window(scenario, net, [published_bounds(w) for w in mgs])
        m = build_monolithic(window, mgs)
        hm = HighsModel(m)
        out = hm.solve()
        assert out.status == "optimal"
        hm.load_values(out)
        return float(out.objective), m

    free_cost, free = solve(base)
    rating = 500.0
    lines = base.lines.copy()
    lines.loc["l3", "s_max_kva"] = rating
    rated_cost, rated = solve(replace(base, lines=lines))
    flows = [(pyo.value(rated.net.p_flow["l3", p, t]), pyo.value(rated.net.q_flow["l3", p, t]))
             for p in "abc" for t in rated.net.T]
    assert max(math.hypot(*f) for f in flows) <= rating + 1e-6
    assert max(math.hypot(pyo.value(free.net.p_flow["l3", p, t]),
                          pyo.value(free.net.q_flow["l3", p, t]))
               for p in "abc" for t in free.net.T) > rating
    assert rated_cost > free_cost
