"""Mesa agents of the co-simulation: DSO, microgrid controllers, one module per DER kind, customers.

Each agent holds only its own data and state and exposes a small lifecycle
(``observe`` → ``decide`` → ``commit``) that the model in :mod:`simulator.cosim` drives.
"""
