"""The market operator's clearing LP against the merit order worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gridcosim.simulator.market.clearing import ClearingModel
from gridcosim.simulator.market.messages import UPSTREAM, LimitKind, MarketCut, SupplyOffer

SUPPLIERS = ("G1", "G2", "wind", UPSTREAM)


def offers(lmp: tuple[float, float], wind_kw: tuple[float, float]) -> list[SupplyOffer]:
    """Two slots: G1 0-125 kW at 0.075, G2 0-100 at 0.05, free wind, upstream at the LMP."""
    return [SupplyOffer("G1", (0.0, 0.0), (125.0, 125.0), (0.075, 0.075)),
            SupplyOffer("G2", (0.0, 0.0), (100.0, 100.0), (0.05, 0.05)),
            SupplyOffer("wind", (0.0, 0.0), wind_kw, (0.0, 0.0)),
            SupplyOffer(UPSTREAM, (0.0, 0.0), (250.0, 250.0), lmp)]


def cleared(demand: tuple[float, float], lmp: tuple[float, float] = (0.04, 0.20),
            wind: tuple[float, float] = (10.0, 10.0), cuts: tuple[MarketCut, ...] = ()
            ) -> tuple[ClearingModel, object]:
    model = ClearingModel(SUPPLIERS, 2, slot_hours=1.0)
    model.set_offers(offers(lmp, wind))
    model.set_demand(demand)
    model.add_cuts(cuts)
    return model, model.solve()


def test_merit_order_and_clearing_prices() -> None:
    _, out = cleared((60.0, 180.0))
    c = out.clearing
    # slot 0: wind 10, then the upstream at 0.04 (cheaper than G2) for the other 50
    assert c.of("wind")[0] == pytest.approx(10.0) and c.of(UPSTREAM)[0] == pytest.approx(50.0)
    # slot 1 (LMP 0.20): wind 10, G2 100, G1 the remaining 70
    assert c.of("G2")[1] == pytest.approx(100.0) and c.of("G1")[1] == pytest.approx(70.0)
    assert c.cost_usd == pytest.approx(50 * 0.04 + 100 * 0.05 + 70 * 0.075)
    assert c.clearing_price_usd_per_kwh == pytest.approx((0.04, 0.075), abs=1e-5)
    # G2 at its limit in slot 1 is worth the marginal unit's cost, above its own
    assert out.marginal_value_usd_per_kwh["G2"][1] == pytest.approx(0.075, abs=1e-5)


def test_a_cut_moves_supply_and_raises_the_marginal_value() -> None:
    # at most 60 kW from G2 in slot 1 (a DSO cut: 1 * p_G2 <= 60)
    cut = MarketCut(1, LimitKind.VOLTAGE_MIN, (("G2", 1.0),), 60.0, 0.01)
    model, out = cleared((60.0, 180.0), cuts=(cut,))
    assert out.clearing.of("G2")[1] == pytest.approx(60.0)
    assert out.clearing.of("G1")[1] == pytest.approx(110.0)
    assert out.cut_duals[0] == pytest.approx(-(0.075 - 0.05), abs=1e-5)
    assert model.cut_count == 1
    model.drop_cuts()
    assert model.cut_count == 0
    assert model.solve().clearing.of("G2")[1] == pytest.approx(100.0)


def test_equal_offers_split_the_same_way_every_time() -> None:
    # wind and a free second renewable would tie: the tie-break fixes the split
    free = [SupplyOffer("a", (0.0,), (10.0,), (0.0,)), SupplyOffer("b", (0.0,), (10.0,), (0.0,)),
            SupplyOffer(UPSTREAM, (0.0,), (50.0,), (0.1,))]
    splits = set()
    for _ in range(3):
        model = ClearingModel(("a", "b", UPSTREAM), 1)
        model.set_offers(free)
        model.set_demand((12.0,))
        c = model.solve().clearing
        splits.add((c.of("a")[0], c.of("b")[0]))
    assert splits == {(10.0, 2.0)}


def test_demand_beyond_every_offer_is_infeasible_not_an_exception() -> None:
    _, out = cleared((60.0, 1000.0))
    assert out.status == "infeasible" and out.clearing is None


def test_offers_must_cover_every_supplier_and_slot() -> None:
    model = ClearingModel(SUPPLIERS, 2)
    with pytest.raises(ValueError, match="offers from"):
        model.set_offers(offers((0.04, 0.2), (10.0, 10.0))[:3])
    short = [SupplyOffer(o.supplier, o.p_min_kw[:1], o.p_max_kw[:1], o.cost_usd_per_kwh[:1])
             for o in offers((0.04, 0.2), (10.0, 10.0))]
    with pytest.raises(ValueError, match="cover 2 slots"):
        model.set_offers(short)


def test_costs_reported_without_the_tie_break() -> None:
    _, out = cleared((30.0, 30.0), lmp=(0.2, 0.2))
    c = out.clearing
    expected = sum(np.asarray(c.of("G2")) * 0.05) + sum(np.asarray(c.of("G1")) * 0.075)
    assert c.cost_usd == pytest.approx(expected, abs=1e-12)
