"""Code execution: the studio's ready kernel against the original's way of running an answer's code.

The same typical data snippet (import pandas and matplotlib, print a DataFrame's sum) runs
  - ready: in the studio's fresh-per-run kernel, taken from the spare that started and imported the
    common libraries in the background (as it does while the model is still writing);
  - cold: written to a file and run by a new venvs/jupyter interpreter (Samantha's temp.py way).
Both are timed from "run this code" to "its output is back", alternating, several times.

Prints one JSON line: {"metric": "code_exec_ready_over_cold", "value": ..., "target": 0.05, ...}.
Usage: venvs/app/bin/python bench/code_exec.py [--repeats N]
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from _common import median, report

SNIPPET = """import pandas as pd
import matplotlib.pyplot as plt
frame = pd.DataFrame({"a": range(1000), "b": range(1000, 2000)})
print(frame.sum().sum())
"""
EXPECTED = "1999000\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from app.execution.kernel import code_python
    from app.execution.pool import KernelPool

    python = code_python()
    workdir = Path(tempfile.mkdtemp(prefix="chain-studio-bench-"))
    script = workdir / "temp.py"
    script.write_text(SNIPPET, encoding="utf-8")
    pool = KernelPool(workdir=workdir)
    ready_times: list[float] = []
    cold_times: list[float] = []
    try:
        for _ in range(args.repeats):
            pool.prepare()
            assert pool.wait_ready(), "the spare kernel did not start"
            started = time.perf_counter()
            result = pool.run(SNIPPET, timeout=120)
            ready_times.append(time.perf_counter() - started)
            assert result.stdout == EXPECTED, result

            started = time.perf_counter()
            done = subprocess.run([str(python), str(script)], capture_output=True, text=True, cwd=workdir, check=True)
            cold_times.append(time.perf_counter() - started)
            assert done.stdout == EXPECTED, done.stdout

        # what a run costs when no spare was ready (the worst case the spare avoids)
        pool.close_python()
        started = time.perf_counter()
        pool.run(SNIPPET, timeout=120)
        unprepared = time.perf_counter() - started
    finally:
        pool.close()
    ready, cold = median(ready_times), median(cold_times)
    report("code_exec_ready_over_cold", ready / cold, 0.05,
           ready_ms=round(ready * 1000, 1), cold_ms=round(cold * 1000, 1),
           no_spare_ms=round(unprepared * 1000, 1), repeats=args.repeats)


if __name__ == "__main__":
    main()
