"""Readers that fill a :class:`~scenarios.phase_network.PhaseNetwork` from where feeders live.

* :mod:`.opendss_source`: OpenDSS files, compiled by OpenDSSDirect.py.
* :mod:`.pandapower_source`: pandapower nets (``ieee_european_lv_asymmetric``).
* :mod:`.builtin`: the shipped three-phase feeders (``ieee123-3ph``, ``eulv``).
"""
