"""Every benchmark in its quick mode, one after another, in about a minute (CI runs this).

Figures from a shared CI machine are not compared with targets here (the full runs in
docs/BENCHMARKS.md are); what fails this run is a benchmark that crashes or reports a lost,
failed or duplicated delivery (each program exits non-zero then). The drift benchmark needs
minutes by its nature, and the side-by-side with APScheduler needs bench/requirements.txt;
neither runs here.

    python -m bench.quick
"""

import subprocess
import sys
import time

PROGRAMS = [
    ["bench.lateness", "--quick"],
    ["bench.throughput", "--quick", "--tasks", "1000"],
    ["bench.http_clients", "--requests", "200"],
    [
        "bench.scale",
        "--tasks",
        "2000",
        "--logs-per-task",
        "20",
        "--requests",
        "16",
        "--idle-seconds",
        "2",
    ],
]


def main() -> int:
    failed = []
    started = time.monotonic()
    for program in PROGRAMS:
        print(f"$ python -m {' '.join(program)}", flush=True)
        began = time.monotonic()
        code = subprocess.call([sys.executable, "-m", *program])
        print(f"# exit {code} after {time.monotonic() - began:.0f} s\n", flush=True)
        if code != 0:
            failed.append(program[0])
    print(f"# all quick benchmarks: {time.monotonic() - started:.0f} s")
    if failed:
        print(f"!! failed: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
