"""Cost of writing a trajectory: appends, flushes, file size, reading.

Run from anywhere with gridcosim installed::

    python benchmarks/bench_hdf5.py WINDOW VARS_PER_KIND

300 entities in 8 kinds (4 microgrids, 10 generators, 10 renewables, 8 storage units, 120
customers, 128 buses, 1 substation, 19 SVCs), one slot per ``append_slots`` call, a
convergence row and a checkpoint per window, a flush every WINDOW slots, 720 slots.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np

from gridcosim.outputs import TrajectoryWriter, read, summary


def main(window: int, n_vars: int) -> None:
    kinds = ["microgrid", "generator", "renewable", "storage", "customer", "bus",
             "substation", "svc"]
    sizes = [4, 10, 10, 8, 120, 128, 1, 19]
    ents = {k: [f"{k}{i}" for i in range(n)] for k, n in zip(kinds, sizes, strict=True)}
    variables = {k: [f"v{j}_kw" for j in range(n_vars)] for k in kinds}
    slots, rng = 720, np.random.default_rng(0)
    data = {k: {v: rng.random((slots, len(ents[k]))) for v in variables[k]} for k in kinds}
    t_app = t_fl = 0.0
    path = os.path.join(tempfile.mkdtemp(), "bench.h5")
    with TrajectoryWriter(path, scenario="b", scenario_json="{}", seed=1, entities=ents,
                          variables=variables, convergence={"start_slot": "int",
                                                            "status": "str"},
                          time_units="hours since 2016-01-04T00:00:00", version="0") as w:
        for s in range(slots):
            vals = {k: {v: data[k][v][s:s + 1] for v in variables[k]} for k in kinds}
            t0 = time.perf_counter()
            w.append_slots([float(s)], vals)
            t_app += time.perf_counter() - t0
            if (s + 1) % window == 0:
                t0 = time.perf_counter()
                w.append_convergence({"start_slot": s, "status": "optimal"})
                w.append_checkpoint(json.dumps({"slot": s + 1}))
                w.flush()
                t_fl += time.perf_counter() - t0
    t0 = time.perf_counter()
    read(path)
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    summary(path)
    t_sum = time.perf_counter() - t0
    print(f"datasets {len(kinds) * n_vars}, flush every {window}: append/slot "
          f"{1e3 * t_app / slots:.3f} ms, flush {1e3 * t_fl / (slots // window):.2f} ms, "
          f"file {os.path.getsize(path) / 1e6:.1f} MB, read {1e3 * t_read:.0f} ms, "
          f"summary {1e3 * t_sum:.0f} ms")


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
