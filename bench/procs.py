"""What the kernel says about a process: CPU time, RSS and threads from /proc (Linux only)."""

import os
from dataclasses import dataclass

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Stat:
    ppid: int
    cpu: float  # seconds of utime + stime of the process itself
    children_cpu: float  # seconds of cutime + cstime: children it has reaped


def parse_stat(text: str) -> Stat:
    """Parse /proc/<pid>/stat. The command name (field 2) may hold spaces and parentheses, so split after it."""
    fields = text[text.rindex(")") + 2 :].split()
    # fields[0] is field 3 (state): ppid is field 4, utime..cstime are fields 14..17.
    utime, stime, cutime, cstime = (int(v) for v in fields[11:15])
    return Stat(ppid=int(fields[1]), cpu=(utime + stime) / CLOCK_TICKS, children_cpu=(cutime + cstime) / CLOCK_TICKS)


def parse_status(text: str) -> dict:
    """RSS in MB and the thread count from /proc/<pid>/status."""
    out = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == "VmRSS":
            out["rss_mb"] = int(value.split()[0]) / 1024
        elif key == "Threads":
            out["threads"] = int(value)
    return out


def stat(pid: int) -> Stat | None:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return parse_stat(f.read())
    except (FileNotFoundError, ProcessLookupError, ValueError):
        return None


def status(pid: int) -> dict:
    try:
        with open(f"/proc/{pid}/status") as f:
            return parse_status(f.read())
    except (FileNotFoundError, ProcessLookupError):
        return {}


def cpu(pid: int) -> float:
    s = stat(pid)
    return s.cpu if s else 0.0


def tree_cpu(root: int) -> float:
    """CPU seconds of a process, its live descendants, and the descendants it has already reaped.

    A child's time moves into its parent's cutime/cstime when the parent reaps it, so a short-lived
    PostgreSQL backend (one per request with CONN_MAX_AGE=0) is counted even though it never lived
    through a sample.
    """
    stats = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            s = stat(int(name))
            if s:
                stats[int(name)] = s
    children: dict[int, list[int]] = {}
    for pid, s in stats.items():
        children.setdefault(s.ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        s = stats.get(pid)
        if s is None:
            continue
        total += s.cpu + s.children_cpu
        todo.extend(children.get(pid, []))
    return total
