"""`python main.py`: serve the API and run the scheduler; `python main.py --help` lists the other
commands (token, version, tasks, logs, keys, apply, export). The same as the `insignia` command."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
