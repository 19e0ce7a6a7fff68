"""Run the reference client (the notebook shown as text) unmodified: its code cells, in order.

Usage: python tests/e2e/refclient.py [path/to/agent_api_example.md]
Shell lines (`!pip install ...`) are skipped: the packages come from requirements.txt.
"""

import os
import sys
from pathlib import Path

# The contract's copy lives in ../shared beside the repository; EVERRUNS_REFERENCE_CLIENT overrides. A checkout
# without ../shared beside it (a clone made elsewhere) runs the copy kept here, which a test holds equal to the
# contract's whenever both are present.
CONTRACT = Path(__file__).resolve().parents[3] / "shared" / "seed" / "agent_api_example.md"
KEPT = Path(__file__).resolve().with_name("agent_api_example.md")
DEFAULT = Path(os.environ.get("EVERRUNS_REFERENCE_CLIENT") or (CONTRACT if CONTRACT.exists() else KEPT))


def code_cells(text: str) -> list[str]:
    cells, current = [], None
    for line in text.splitlines():
        if line.strip() == "In [None]:":
            if current is not None:
                cells.append("\n".join(current))
            current = []
        elif current is not None and line.startswith("## "):
            cells.append("\n".join(current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        cells.append("\n".join(current))
    return ["\n".join(line for line in c.splitlines() if not line.lstrip().startswith("!")) for c in cells]


def main(path: str | None = None) -> None:
    source = Path(path) if path else DEFAULT
    namespace = {"__name__": "__refclient__"}
    for i, cell in enumerate(code_cells(source.read_text())):
        print(f"----- cell {i + 1} -----", flush=True)
        exec(compile(cell, f"{source.name}[cell {i + 1}]", "exec"), namespace)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
