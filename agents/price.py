"""The utility price signal source."""

from __future__ import annotations

from dataclasses import dataclass

import mesa
import pandas as pd


@dataclass(frozen=True)
class PriceSignal:
    """The utility price of one slot."""

    slot: int
    price_usd_per_kwh: float


class PriceSignalAgent(mesa.Agent):
    """Publishes the utility price profile slot by slot."""

    def __init__(self, model: mesa.Model, price_usd_per_kwh: pd.Series):
        super().__init__(model)
        self._price = price_usd_per_kwh

    def observe(self, slot: int) -> PriceSignal:
        """The price signal of ``slot``."""
        return PriceSignal(slot, float(self._price.iloc[slot]))
