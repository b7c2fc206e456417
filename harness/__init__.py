"""The test harness that tests/, bench/ and drills/ share; it is not part of the service.

- `receiver`: a Discord-like webhook receiver in the test's own process, with scripted answers;
- `receiver_process`: a fast recording webhook receiver in a process of its own;
- `service`: `python main.py` in a child process (start, health, SIGTERM, kill -9, CPU time);
- `replica`: a second scheduler in a thread of the test's process, with a clock of its choice;
- `network`: free ports and a TCP proxy that can be cut, to simulate a database outage;
- `waiting`: waiting for a condition with a deadline.

`ROOT` is the repository's root folder.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
