"""The families of cuts the DSO's master grows by: the one list of them.

The master counts its cuts by family, the iteration records and the convergence table
have one column per family (``cuts_<family>``), the JSON output one key, and
``docs/formulation.md`` one paragraph: all of them read :data:`CUT_FAMILIES`.
"""

from __future__ import annotations

from enum import StrEnum


class CutFamily(StrEnum):
    """A kind of row (or selector) the master gets from the controllers or the network."""

    UNIFIED = "unified"
    LAGRANGIAN = "lagrangian"
    RESTORATION = "restoration"
    BRANCH = "branch"
    AC = "ac"
    MARKET = "market"


#: Every family and what it is, in the order of the records and outputs.
CUT_FAMILIES: dict[CutFamily, str] = {
    CutFamily.UNIFIED: "unified Benders cut from a controller's LP relaxation: a "
                       "feasibility and an optimality cut in one (seed 000 (13b))",
    CutFamily.LAGRANGIAN: "Lagrangian cut from a controller's answer to the DSO's nodal "
                          "prices: eta >= L(lambda) + lambda x",
    CutFamily.RESTORATION: "feasibility-restoration (distance) cut from a controller's MILP "
                           "(seed 000 (14i)), with binaries in the master",
    CutFamily.BRANCH: "a branch of a controller's binary: two anonymous children with "
                      "selectors in the master (microgrid-side branching)",
    CutFamily.AC: "AC feasibility cut from the DSO's own AC power flow (seed 001 (A12))",
    CutFamily.MARKET: "the DSO's feasibility cut on a market clearing: one per violated "
                      "limit and slot, in the suppliers' outputs only (seed 001 (A12) per "
                      "limit; market scenarios)",
}


def zero_counts() -> dict[str, int]:
    """A count of 0 per family (keys are the families' values)."""
    return {str(f): 0 for f in CUT_FAMILIES}
