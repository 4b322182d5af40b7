"""AC validation of the DSO's schedules and AC feasibility cuts (docs/formulation.md §6).

* :mod:`.feeder` builds the scenario's pandapower net once and solves AC power flows on its
  internal arrays (lightsim2grid's KLU Newton-Raphson); the only code touching pandapower.
* :mod:`.operating_point` turns a tentative schedule into per-slot bus injections.
* :mod:`.validator` runs the power flows and reports voltages, losses and violations.
* :mod:`.sensitivity` gives voltage sensitivities (AC Jacobian, or LinDistFlow).
* :mod:`.cut` and :mod:`.ac_cuts` build the AC feasibility cuts (seed 001 (A5)-(A12)).
* :mod:`.ac_loop` runs the decomposition with AC validation (Step 7).

Importing this package imports neither pandapower nor Pyomo; the submodules do.
"""
