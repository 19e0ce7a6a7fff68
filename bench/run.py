"""Everruns capacity benchmarks (issue 8): `python bench/run.py --scenario all --out bench/results/<date>.json`.

See bench/cli.py for what it starts, measures and prints; `make bench` runs it with the bench's own
requirements installed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/run.py` from any directory

from bench.cli import main  # noqa: E402 - needs the repository root on sys.path first

if __name__ == "__main__":
    sys.exit(main())
