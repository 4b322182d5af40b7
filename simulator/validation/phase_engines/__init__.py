"""Three-phase AC power-flow engines behind one interface (docs/formulation.md §6b).

* :mod:`.base`: the operating point, the result and the :class:`~.base.PhaseEngine` protocol.
* :mod:`.opendss_engine`: OpenDSS through OpenDSSDirect.py (any phasing, the reference).
* :mod:`.pandapower_engine`: pandapower ``runpp_3ph``, with a guard for each of its traps.
"""
