#!/usr/bin/env python3
"""Keeps the benchmark history (docs/bench-history/) and draws its chart.

    python3 scripts/bench_history.py add     # copy target/bench/{engine,backfill}.json in
    python3 scripts/bench_history.py chart   # redraw docs/bench-history/history.svg
    python3 scripts/bench_history.py         # both

`add` files each result under the day and commit it measured
(`<YYYY-MM-DD>-<commit>-<bench>.json`); a result already filed is left alone. `chart` reads
every filed result, in time order, and draws one panel per measure: the engine's events/s
(with parsing and flush, both data shapes) and its time against a serde_json::Value parse of
the same bytes, and the backfill's drain against the same-I/O pipe when a result has it. The
targets of issue 17 are drawn as dashed lines. Plain SVG, so that it renders wherever the
markdown does, with nothing to install.
"""

import datetime
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
HISTORY = ROOT / "docs" / "bench-history"
SOURCES = ["engine.json", "backfill.json"]


def add():
    HISTORY.mkdir(parents=True, exist_ok=True)
    for name in SOURCES:
        path = ROOT / "target" / "bench" / name
        if not path.is_file():
            print(f"bench_history: no {path.relative_to(ROOT)}; run its benchmark first")
            continue
        result = json.loads(path.read_text())
        commit = (result.get("commit") or result.get("git_commit") or "unknown")[:12]
        when = result.get("unix_time") or int(path.stat().st_mtime)
        day = datetime.datetime.fromtimestamp(when, datetime.timezone.utc).date()
        name = path.stem
        if result.get("guarantee"):
            name += "-" + result["guarantee"]
        target = HISTORY / f"{day}-{commit}-{name}.json"
        if target.exists():
            print(f"bench_history: {target.relative_to(ROOT)} already filed")
            continue
        result.setdefault("unix_time", when)
        target.write_text(json.dumps(result, indent=2) + "\n")
        print(f"bench_history: filed {target.relative_to(ROOT)}")


def get(d, *path):
    for key in path:
        if not isinstance(d, dict) or key not in d:
            return None
        d = d[key]
    return d


def series():
    """(label, unit, [(target, its label) …], [(x label, value) …] per line) for each panel."""
    engine, backfill = [], []
    for path in sorted(HISTORY.glob("*.json")):
        r = json.loads(path.read_text())
        tag = "-".join(path.stem.split("-")[:4])  # day and commit
        (engine if r.get("bench") == "engine" else backfill).append((r.get("unix_time", 0), tag, r))
    engine.sort(key=lambda e: e[0])
    backfill.sort(key=lambda e: e[0])

    def points(rows, *path, scale=1.0):
        return [((t, tag), v * scale) for t, tag, r in rows if (v := get(r, *path)) is not None]

    panels = [
        (
            "engine: events/s with parsing and flush (criterion, one core)",
            "k events/s",
            [(800, "target 800")],
            [
                ("month basis", points(engine, "events_per_s", "parse_apply_flush", scale=1e-3)),
                ("cumulative", points(engine, "events_per_s", "cumulative_parse_apply_flush", scale=1e-3)),
            ],
        ),
        (
            "engine: time against a serde_json::Value parse of the same bytes",
            "x",
            [(1.5, "target 1.5")],
            [
                ("month basis", points(engine, "time_vs_json_value_parse", "month_basis")),
                ("cumulative", points(engine, "time_vs_json_value_parse", "cumulative")),
            ],
        ),
    ]
    def set_a(rows, mode):
        return [(t, tag, r["sets"][0]) for t, tag, r in rows if r.get("guarantee") == mode and r.get("sets")]

    pipe = [
        (mode, points(set_a(backfill, mode), "ratio_drain_to_pipe", scale=100))
        for mode in ["at_least_once", "exactly_once"]
    ]
    if any(p for _, p in pipe):
        targets = [(80, "target 80 (at least once)"), (70, "target 70 (exactly once)")]
        panels.append(("backfill: drain against the same-I/O pipe (set A)", "%", targets, pipe))
    return panels


def chart():
    panels = series()
    # Room under each plot for the commit labels, written at a slant so that neighbours
    # do not overlap.
    width, height, left, top = 760, 270, 70, 30
    colours = ["#1f77b4", "#d62728", "#2ca02c"]
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height * len(panels)}" '
        'font-family="sans-serif" font-size="11">',
        f'<rect width="{width}" height="{height * len(panels)}" fill="white"/>',
    ]
    for n, (title, unit, targets, lines) in enumerate(panels):
        y0 = n * height
        # (time, label) pairs: in the order they were measured.
        tags = sorted({t for _, pts in lines for t, _ in pts})
        values = [v for _, pts in lines for _, v in pts] + [t for t, _ in targets]
        lo, hi = 0.0, max(values) * 1.15 if values else 1.0
        plot_w, plot_h = width - left - 20, height - top - 100

        def x(tag):
            i = tags.index(tag)
            return left + (plot_w * (i + 0.5) / len(tags) if tags else 0)

        def y(v):
            return y0 + top + plot_h * (1 - (v - lo) / (hi - lo))

        out.append(f'<text x="{left}" y="{y0 + 18}" font-weight="bold">{title}</text>')
        out.append(
            f'<line x1="{left}" y1="{y0 + top + plot_h}" x2="{left + plot_w}" y2="{y0 + top + plot_h}" stroke="#888"/>'
        )
        out.append(f'<line x1="{left}" y1="{y0 + top}" x2="{left}" y2="{y0 + top + plot_h}" stroke="#888"/>')
        for k in range(5):
            v = lo + (hi - lo) * k / 4
            out.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:,.{0 if hi > 20 else 1}f}</text>')
        out.append(f'<text x="12" y="{y0 + top + plot_h / 2}" transform="rotate(-90 12 {y0 + top + plot_h / 2})" text-anchor="middle">{unit}</text>')
        for target, label in targets:
            out.append(
                f'<line x1="{left}" y1="{y(target):.1f}" x2="{left + plot_w}" y2="{y(target):.1f}" '
                'stroke="#555" stroke-dasharray="4 3"/>'
            )
            out.append(f'<text x="{left + plot_w}" y="{y(target) - 3:.1f}" text-anchor="end" fill="#555">{label}</text>')
        for tag in tags:
            lx, ly = x(tag), y0 + top + plot_h + 12
            out.append(
                f'<text x="{lx:.1f}" y="{ly}" text-anchor="end" font-size="9" '
                f'transform="rotate(-35 {lx:.1f} {ly})">{tag[1]}</text>'
            )
        for i, (label, pts) in enumerate(lines):
            colour = colours[i % len(colours)]
            if not pts:
                continue
            path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
            out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
            for t, v in pts:
                out.append(f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="3" fill="{colour}"/>')
            out.append(f'<text x="{left + 10 + 120 * i}" y="{y0 + top + plot_h + 88}" fill="{colour}">■ {label}</text>')
    out.append("</svg>")
    HISTORY.mkdir(parents=True, exist_ok=True)
    (HISTORY / "history.svg").write_text("\n".join(out) + "\n")
    print(f"bench_history: drew {(HISTORY / 'history.svg').relative_to(ROOT)} ({len(panels)} panels)")


if __name__ == "__main__":
    what = sys.argv[1:] or ["add", "chart"]
    for w in what:
        {"add": add, "chart": chart}.get(w, lambda: sys.exit(f"bench_history: unknown command {w!r}"))()
