"""Figures, targets, the printed table and the chart."""

import math
from dataclasses import asdict, dataclass

# The targets drawn in the chart's throughput panel, as figure / target.
THROUGHPUT_KEYS = {
    "waiting.small.ideal_pct",
    "waiting.large.ideal_pct",
    "api.get_session_rps",
    "api.create_session_rps",
    "api.get_vs_floor_pct",
    "instant.turns_per_s",
}


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100), linear between the closest ranks; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "min": min(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values),
        "mean": sum(values) / len(values),
    }


def distribution(values: list[float], group: str, unit: str = "ms") -> dict:
    """What the chart needs, small enough for the JSON: the 0th..100th percentiles, and a summary."""
    return {
        "group": group,
        "unit": unit,
        "summary": summary(values),
        "percentiles": [round(percentile(values, q), 3) for q in range(101)] if values else [],
    }


@dataclass
class Target:
    key: str
    label: str
    op: str  # ">=" or "<="
    limit: float
    unit: str
    value: float | None = None
    note: str = ""
    bound: str = ""  # "<" when the figure is a bound (a scenario stopped at its time cap)
    broken: bool = False  # the run broke the target's premise (refused requests, failed turns): not met

    @property
    def met(self) -> bool | None:
        if self.broken:
            return False
        if self.value is None:
            return None
        return self.value >= self.limit if self.op == ">=" else self.value <= self.limit

    def to_dict(self) -> dict:
        return {**asdict(self), "met": self.met}


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "n/a"
    if unit in ("s",):
        text = f"{value:.2f}" if value < 10 else f"{value:.1f}"
    elif abs(value) >= 100 or float(value).is_integer():
        text = f"{value:.0f}"
    else:
        text = f"{value:.1f}"
    return f"{text} {unit}".strip()


def table(results: dict) -> str:
    """Each target beside its figure, scenario by scenario."""
    rows = [("target", "figure", "met", "note")]
    for name, result in results["scenarios"].items():
        rows.append((f"[{name}]", "", "", result.get("status", "")))
        for t in result.get("targets", []):
            met = {True: "yes", False: "NO", None: "-"}[t["met"]]
            target = f"  {t['label']} {t['op']} {t['limit']:g} {t['unit']}".rstrip()
            rows.append((target, t["bound"] + _fmt(t["value"], t["unit"]), met, t["note"]))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = []
    for r in rows:
        lines.append("  ".join(r[i].ljust(widths[i]) for i in range(3)) + ("  " + r[3] if r[3] else ""))
        if r is rows[0]:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def chart(results: dict, path: str) -> None:
    """Latency distributions (one panel per kind) and throughput against its targets, as one PNG."""
    import matplotlib  # noqa: PLC0415 - bench-only dependency (bench/requirements.txt), loaded only to draw

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415 - after choosing the headless backend
    from matplotlib.ticker import FuncFormatter, NullFormatter  # noqa: PLC0415 - as above

    panels = [
        ("api", "API request latency (16 clients)"),
        ("turn", "Turn latency: POST -> turn seen ended"),
        ("delivery", "SSE delivery latency from the event's created_at"),
    ]
    dists = {}
    for scenario in results["scenarios"].values():
        for label, d in scenario.get("distributions", {}).items():
            if d.get("percentiles"):
                dists.setdefault(d["group"], []).append((label, d))
    fig, axes = plt.subplots(2, 2, figsize=(14, 9))
    for ax, (group, title) in zip(axes.flat, panels, strict=False):
        for label, d in dists.get(group, []):
            ax.plot(d["percentiles"], range(101), label=f"{label} (n={d['summary']['n']})")
        for _label, d in dists.get(group, []):
            if d.get("target_ms"):
                ax.axvline(
                    d["target_ms"], linestyle="--", color="grey", linewidth=0.8, label=f"target {d['target_ms']} ms"
                )
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel("ms (log scale)")
        ax.set_ylabel("percentile")
        ax.set_title(title, fontsize=10)
        ax.grid(True, which="both", alpha=0.3)
        if dists.get(group):
            ax.legend(fontsize=7, loc="lower right")
        else:
            ax.text(0.5, 0.5, "not measured", ha="center", transform=ax.transAxes)
    ax = axes.flat[3]
    bars = [
        t
        for scenario in results["scenarios"].values()
        for t in scenario.get("targets", [])
        if t["key"] in THROUGHPUT_KEYS
    ]
    labels, ratios, colours, notes = [], [], [], []
    for t in bars:
        labels.append(t["label"])
        ratio = (t["value"] / t["limit"] * 100) if t["value"] is not None else 0
        ratios.append(ratio)
        colours.append("tab:green" if t["met"] else "tab:red")
        notes.append(t["bound"] + _fmt(t["value"], t["unit"]) + f" / {t['limit']:g} {t['unit']}")
    positions = list(range(len(bars)))
    drawn = ax.barh(positions, ratios, color=colours)
    for bar, t in zip(drawn, bars, strict=True):
        if t["bound"]:  # only a bound (the run hit its time cap): hatched, the true figure is below
            bar.set_hatch("//")
            bar.set_alpha(0.5)
    ax.axvline(100, color="black", linewidth=1)
    for y, ratio, note in zip(positions, ratios, notes, strict=True):
        ax.text(max(ratio, 1) + 2, y, note, va="center", fontsize=7)
    ax.set_yticks(positions, labels, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max([120, *[r * 1.6 for r in ratios]]))
    ax.set_xlabel("% of target (figure / target)")
    ax.set_title("Throughput against its targets", fontsize=10)
    meta = results["meta"]
    fig.suptitle(f"Everruns bench {meta['started']}  commit {meta['commit']}  {meta['mode']}", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
