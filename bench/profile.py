"""`--profile DIR`: py-spy on the web and worker processes during each scenario's measured phase.

For each phase and process it writes the collapsed stacks py-spy records (`<phase>-<process>.txt`, samples
only while the process holds the GIL: CPU in Python, not waiting) and a summary of them
(`<phase>-<process>.summary.txt`): the share of samples in each function, inclusive and self. py-spy comes
with the bench's own requirements (bench/requirements.txt); it needs to be allowed to read the processes'
memory (root, or ptrace allowed).
"""

import collections
import shutil
import signal
import subprocess
import sys
from pathlib import Path

RATE = 200  # samples per second


def py_spy() -> str | None:
    found = Path(sys.executable).with_name("py-spy")
    return str(found) if found.exists() else shutil.which("py-spy")


class Profiler:
    """Records `pids` ({name: pid}) from `start()` until `stop()`; a no-op without a directory or py-spy."""

    def __init__(self, directory: Path | None, phase: str, pids: dict[str, int]):
        self.directory, self.phase, self.pids = directory, phase, {k: v for k, v in pids.items() if v}
        self.procs: dict[str, tuple[subprocess.Popen, Path]] = {}

    def __enter__(self) -> "Profiler":
        binary = py_spy()
        if self.directory is None or binary is None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            out = self.directory / f"{self.phase}-{name}.txt"
            command = [binary, "record", "-p", str(pid), "-r", str(RATE), "-f", "raw", "-o", str(out)]
            command += ["--nonblocking", "--gil"]
            proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.procs[name] = (proc, out)
        return self

    def __exit__(self, *exc) -> None:
        for proc, _ in self.procs.values():
            proc.send_signal(signal.SIGINT)  # py-spy writes what it has and exits
        for name, (proc, out) in self.procs.items():
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            if out.exists():
                out.with_suffix(".summary.txt").write_text(summarize(out.read_text(), f"{self.phase}: {name}"))


def _name(frame: str) -> str:
    """`function (path/file.py:line)` -> `function (file.py)`."""
    function, _, where = frame.partition(" (")
    return f"{function} ({where.split(':')[0].rsplit('/', 1)[-1]})" if where else function


def summarize(collapsed: str, title: str, top: int = 60) -> str:
    inclusive, own, total = collections.Counter(), collections.Counter(), 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [_name(f) for f in stack.split(";")]
        total += int(count)
        for name in set(frames):
            inclusive[name] += int(count)
        own[frames[-1]] += int(count)
    lines = [f"{title}: {total} samples at {RATE}/s while holding the GIL (py-spy --gil)", "", "inclusive:"]
    lines += [f"{n * 100 / total:5.1f}%  {name}" for name, n in inclusive.most_common(top)] if total else []
    lines += ["", "self:"]
    lines += [f"{n * 100 / total:5.1f}%  {name}" for name, n in own.most_common(top // 2)] if total else []
    return "\n".join(lines) + "\n"
