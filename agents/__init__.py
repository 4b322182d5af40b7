"""Mesa agents of the co-simulation: DSO, microgrid controllers, DERs, customers, prices.

Each agent holds only its own data and state and exposes a small lifecycle
(``observe`` → ``decide`` → ``commit``) that the model in :mod:`simulator.cosim` drives.
"""
