"""The DER kinds of a microgrid's model, one module each (see :mod:`.base`).

Every module of this package that defines ``MODEL`` (a
:class:`~gridcosim.simulator.models.ders.base.DerModel`) is a kind; :func:`der_models`
finds them, so adding a kind is adding a module.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from gridcosim.simulator.models.ders.base import DerModel


@cache
def der_models() -> tuple[DerModel, ...]:
    """Every DER kind's model, in their ``order``."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        model = getattr(module, "MODEL", None)
        if isinstance(model, DerModel):
            found.append(model)
    return tuple(sorted(found, key=lambda m: (m.order, m.kind)))


def der_model(kind: str) -> DerModel:
    """The model of one DER kind.

    Raises:
        KeyError: If there is no such kind.

    """
    for model in der_models():
        if model.kind == kind:
            return model
    raise KeyError(f"no DER kind {kind!r}; kinds: {[m.kind for m in der_models()]}")


__all__ = ["DerModel", "der_model", "der_models"]
