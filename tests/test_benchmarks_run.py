"""Every benchmark script still runs (tiny cases, as subprocesses).

The figures in the README come from these scripts; a refactor that breaks one would leave
the README's numbers without a command that reproduces them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CASES = {
    "bench_cosim.py": ["--days", "0.25", "--horizon", "6"],
    "bench_decomposition.py": ["--only", "seed", "--repeats", "1"],
    "bench_long_windows.py": ["--starts", "0", "--slots", "6"],
    "bench_monolithic.py": ["--repeats", "1"],
    "bench_powerflow.py": ["--points", "50", "--runpp", "2", "--repeats", "1"],
    "bench_scale.py": ["--microgrids", "2", "--slots", "2", "--only", "dec1", "mono"],
    "bench_hdf5.py": ["6", "2"],
    "bench_phase_powerflow.py": ["--points", "50", "--pp-points", "2", "--repeats", "1"],
    "bench_phase_ac_cuts.py": ["--scenarios", "ieee123-nmg-3ph", "--repeats", "1",
                               "--no-warm-up"],
    "bench_market.py": ["--repeats", "1", "--no-warm-up", "--loop-only"],
    "bench_sweep.py": ["--runs", "2", "--horizon", "3", "--commit", "3", "--no-warm-up"],
}


def test_every_benchmark_has_a_smoke_case() -> None:
    assert sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py")) == sorted(CASES)


#: The heaviest smoke cases (8-11 s each on 2 cores) run with the slow tests, to keep the
#: default run inside its budget.
SLOW = {"bench_cosim.py", "bench_market.py", "bench_phase_ac_cuts.py",
        "bench_phase_powerflow.py", "bench_scale.py", "bench_sweep.py"}


@pytest.mark.parametrize("script", [
    pytest.param(s, marks=pytest.mark.slow) if s in SLOW else s for s in sorted(CASES)])
def test_benchmark_runs(script: str) -> None:
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), *CASES[script]],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.strip()
