#!/usr/bin/env python3
"""Independently check silkroute's sample data against the published bulletin.

Reads data/sample/{trade,freight,fx}.jsonl, applies the revision rules of contract §2
(per cell the highest `revision` wins; at equal revision the later event in file order
replaces the earlier one), computes the indicators of contract §3 at period 2024-09 with
exact decimals (no floating point anywhere), and compares the 13 statements of the
bulletin (Global Times, 24 Oct 2024: Xinjiang's trade in Jan–Sep 2024) with the published
figures, rounded as published (billions to 2 decimals, percentages to 1 decimal, '29 %' to 0).

Also checks the data set's own consistency (breakdowns add up each month, CN covers the
provinces, all 21 months present, chronological order, money formats).

Exit status 0 when everything matches, 1 otherwise. Standard library only.

    python3 scripts/check_sample.py [--dir data/sample]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, getcontext
from pathlib import Path

getcontext().prec = 60

PERIOD = "2024-09"
THRESHOLD = 600          # freight.streak_threshold default
EXCLUDE = {"CN"}         # ranking.exclude_regions default
TOP_N = 10               # ranking.top_n default
MONEY_RE = re.compile(r"^(0|[1-9][0-9]*)\.[0-9]{2}$")
RATE_RE = re.compile(r"^(0|[1-9][0-9]*)(\.[0-9]{1,6})?$")
PROVINCES = ("BJ TJ HE SX NM LN JL HL SH JS ZJ AH FJ JX SD HA HB HN GD GX HI "
             "CQ SC GZ YN XZ SN GS QH NX XJ").split()
ALL_PERIODS = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13) if (y, m) <= (2024, 9)]


# ------------------------------------------------------------------------------------------
# Loading and revisions


class Store:
    """Current cell set after the contract's revision rules."""

    def __init__(self):
        self.cells: dict[tuple, tuple[int, dict]] = {}
        self.applied = self.stale = self.duplicate = self.replaced = 0

    def offer(self, key: tuple, revision: int, values: dict) -> None:
        cur = self.cells.get(key)
        if cur is None or revision > cur[0]:
            self.cells[key] = (revision, values)
            self.applied += 1
        elif revision < cur[0]:
            self.stale += 1
        elif values == cur[1]:
            self.duplicate += 1
        else:
            self.cells[key] = (revision, values)  # same revision, later in log order wins
            self.replaced += 1

    def get(self, key: tuple):
        cur = self.cells.get(key)
        return None if cur is None else cur[1]


def read_jsonl(path: Path, problems: list[str]) -> list[dict]:
    events = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                problems.append(f"{path.name}:{n}: empty line")
                continue
            ev = json.loads(line, parse_float=Decimal)
            if not isinstance(ev, dict):
                problems.append(f"{path.name}:{n}: not an object")
                continue
            ev["_line"] = n
            events.append(ev)
    return events


def dec_money(ev: dict, field: str, problems: list[str], where: str) -> Decimal:
    raw = ev[field]
    if not isinstance(raw, str) or not MONEY_RE.match(raw):
        problems.append(f"{where}: {field} {raw!r} is not a string with exactly 2 decimals")
    return Decimal(str(raw))


def load(d: Path, problems: list[str]):
    trade_ev = read_jsonl(d / "trade.jsonl", problems)
    freight_ev = read_jsonl(d / "freight.jsonl", problems)
    fx_ev = read_jsonl(d / "fx.jsonl", problems)
    for name, evs, typ in (("trade.jsonl", trade_ev, "customs_trade"),
                           ("freight.jsonl", freight_ev, "freight_trains"),
                           ("fx.jsonl", fx_ev, "fx_rate")):
        periods = [ev.get("period") for ev in evs]
        if periods != sorted(periods):
            problems.append(f"{name}: not in chronological order of period")
        for ev in evs:
            if ev.get("type") != typ:
                problems.append(f"{name}:{ev['_line']}: type {ev.get('type')!r}, expected {typ}")
            if ev.get("source") != "reconstruction":
                problems.append(f"{name}:{ev['_line']}: source is not 'reconstruction'")
            rev = ev.get("revision", 0)
            if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
                problems.append(f"{name}:{ev['_line']}: bad revision {rev!r}")

    trade = Store()
    for ev in trade_ev:
        where = f"trade.jsonl:{ev['_line']}"
        dim = ev["dimension"]
        member = ev.get("member")
        if (dim == "total") != (member is None):
            problems.append(f"{where}: member {member!r} with dimension {dim!r}")
        if ev["flow"] not in ("import", "export", "total"):
            problems.append(f"{where}: flow {ev['flow']!r}")
        v = dec_money(ev, "value_cny", problems, where)
        if v < 0:
            problems.append(f"{where}: negative value_cny")
        key = (ev["region"], ev["period"], ev["flow"], dim, member)
        trade.offer(key, ev.get("revision", 0), {"value_cny": v})

    freight = Store()
    for ev in freight_ev:
        t = ev["trains"]
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= 1_000_000:
            problems.append(f"freight.jsonl:{ev['_line']}: bad trains {t!r}")
        key = (ev["port"], ev.get("service", "china_europe"), ev["period"])
        freight.offer(key, ev.get("revision", 0), {"trains": t})

    fx = Store()
    for ev in fx_ev:
        raw = ev["cny_per_unit"]
        if not RATE_RE.match(str(raw)) or Decimal(str(raw)) <= 0:
            problems.append(f"fx.jsonl:{ev['_line']}: bad cny_per_unit {raw!r}")
        fx.offer((ev["currency"], ev["period"]), ev.get("revision", 0),
                 {"cny_per_unit": Decimal(str(raw))})
    return (trade_ev, freight_ev, fx_ev), trade, freight, fx


# ------------------------------------------------------------------------------------------
# Indicators (contract §3)


def ytd_periods(period: str) -> list[str]:
    y, m = int(period[:4]), int(period[5:])
    return [f"{y}-{i:02d}" for i in range(1, m + 1)]


def prior_periods(period: str) -> list[str]:
    y, m = int(period[:4]), int(period[5:])
    return [f"{y - 1}-{i:02d}" for i in range(1, m + 1)]


class Indicators:
    def __init__(self, trade: Store, freight: Store, fx: Store):
        self.trade, self.freight, self.fx = trade, freight, fx

    def month_cny(self, region, period, flow, dim, member):
        """The month's value; the `total` flow is the explicit cell, else import + export."""
        c = self.trade.get((region, period, flow, dim, member))
        if c is not None:
            return c["value_cny"]
        if flow == "total":
            i = self.trade.get((region, period, "import", dim, member))
            e = self.trade.get((region, period, "export", dim, member))
            if i is not None and e is not None:
                return i["value_cny"] + e["value_cny"]
        return None

    def month_usd(self, region, period, flow, dim, member):
        cny = self.month_cny(region, period, flow, dim, member)
        rate = self.fx.get(("USD", period))
        if cny is None or rate is None:
            return None
        return (cny / rate["cny_per_unit"]).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)

    def series(self, region, flow, dim, member, period) -> dict:
        ytd_vals = [self.month_cny(region, p, flow, dim, member) for p in ytd_periods(period)]
        present = [v for v in ytd_vals if v is not None]
        prior_vals = [self.month_cny(region, p, flow, dim, member) for p in prior_periods(period)]
        complete = len(present) == len(ytd_vals)
        prior = sum(prior_vals, Decimal(0)) if all(v is not None for v in prior_vals) else None
        ytd = sum(present, Decimal(0))
        yoy = None
        if complete and prior is not None and prior > 0:
            yoy = (ytd / prior - 1) * 100
        usd_vals = [self.month_usd(region, p, flow, dim, member)
                    for p in ytd_periods(period)
                    if self.month_cny(region, p, flow, dim, member) is not None]
        ytd_usd = sum(usd_vals, Decimal(0)) if all(u is not None for u in usd_vals) else None
        share = None
        if dim != "total":
            tot = self.series(region, flow, "total", None, period)
            if complete and tot["complete"] and tot["ytd"] > 0:
                share = ytd / tot["ytd"] * 100
        return {"ytd": ytd, "months": len(present), "complete": complete, "prior": prior,
                "yoy": yoy, "ytd_usd": ytd_usd, "share": share}

    def regions(self) -> set[str]:
        return {k[0] for k in self.trade.cells if k[3] == "total"}

    def yoy_rank(self, region, flow, period):
        """Rank by ytd_yoy_pct among non-excluded regions; ties share the best rank."""
        yoys = {}
        for r in self.regions() - EXCLUDE:
            y = self.series(r, flow, "total", None, period)["yoy"]
            if y is not None:
                yoys[r] = y
        if region in EXCLUDE or region not in yoys:
            return None, len(yoys), yoys
        return 1 + sum(1 for y in yoys.values() if y > yoys[region]), len(yoys), yoys

    def leaders(self, region, flow, dim, period) -> dict:
        members = sorted({k[4] for k in self.trade.cells
                          if k[0] == region and k[3] == dim and k[4] is not None
                          and (k[2] == flow or (flow == "total" and k[2] in ("import", "export")))})
        rows = {m: self.series(region, flow, dim, m, period) for m in members}
        ranked = [m for m in members if rows[m]["complete"]]
        by_share = sorted(ranked, key=lambda m: (-rows[m]["ytd"], m))[:TOP_N]
        with_yoy = [m for m in members if rows[m]["yoy"] is not None]
        by_yoy = sorted(with_yoy, key=lambda m: (-rows[m]["yoy"], m))[:TOP_N]
        return {"members_ranked": len(ranked),
                "by_share": [(m, rows[m]["ytd"], rows[m]["share"]) for m in by_share],
                "by_yoy": [(m, rows[m]["yoy"]) for m in by_yoy]}

    def freight_series(self, port, service, period) -> dict:
        def trains(p):
            c = self.freight.get((port, service, p))
            return None if c is None else c["trains"]
        ytd_vals = [trains(p) for p in ytd_periods(period)]
        present = [v for v in ytd_vals if v is not None]
        prior_vals = [trains(p) for p in prior_periods(period)]
        complete = len(present) == len(ytd_vals)
        prior = sum(prior_vals) if all(v is not None for v in prior_vals) else None
        ytd = sum(present)
        yoy = None
        if complete and prior is not None and prior > 0:
            yoy = (Decimal(ytd) / Decimal(prior) - 1) * 100
        streak = 0
        y, m = int(period[:4]), int(period[5:])
        while True:
            t = trains(f"{y}-{m:02d}")
            if t is None or t <= THRESHOLD:
                break
            streak += 1
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        return {"month": trains(period), "ytd": ytd, "months": len(present), "prior": prior,
                "yoy": yoy, "streak": streak}


# ------------------------------------------------------------------------------------------
# Rounding as published


def bn2(x: Decimal | None) -> Decimal | None:
    """322390000000.00 -> 322.39 (billions, 2 decimals)."""
    return None if x is None else (x / Decimal(10) ** 9).quantize(Decimal("0.01"), ROUND_HALF_UP)


def r1(x: Decimal | None) -> Decimal | None:
    return None if x is None else x.quantize(Decimal("0.1"), ROUND_HALF_UP)


def r0(x: Decimal | None) -> Decimal | None:
    return None if x is None else x.quantize(Decimal("1"), ROUND_HALF_UP)


def fmt(x) -> str:
    if isinstance(x, Decimal):
        return f"{x:f}"
    return str(x)


# ------------------------------------------------------------------------------------------
# Consistency of the data set itself


def consistency(ind: Indicators, trade: Store, freight: Store, fx: Store) -> list[str]:
    bad = []
    regions = ind.regions()
    if regions != set(PROVINCES) | {"CN"}:
        bad.append(f"regions: {sorted(regions)}")
    for p in ALL_PERIODS:
        if fx.get(("USD", p)) is None:
            bad.append(f"fx USD {p} missing")
        for port in ("khorgos", "alashankou"):
            if freight.get((port, "china_europe", p)) is None:
                bad.append(f"freight {port} {p} missing")
        for r in regions:
            for flow in ("import", "export"):
                if trade.get((r, p, flow, "total", None)) is None:
                    bad.append(f"trade {r} {p} {flow} missing")
        # CN: explicit total = import + export, and covers the provinces.
        cn = {f: trade.get(("CN", p, f, "total", None)) for f in ("import", "export", "total")}
        if None not in cn.values():
            if cn["total"]["value_cny"] != cn["import"]["value_cny"] + cn["export"]["value_cny"]:
                bad.append(f"CN {p}: explicit total != import + export")
            for f in ("import", "export"):
                s = sum((trade.get((r, p, f, "total", None)) or {"value_cny": Decimal(0)})
                        ["value_cny"] for r in PROVINCES)
                if cn[f]["value_cny"] < s:
                    bad.append(f"CN {p} {f}: below the sum of the provinces")
        # XJ breakdowns add up each month.
        xj_i = ind.month_cny("XJ", p, "import", "total", None)
        xj_e = ind.month_cny("XJ", p, "export", "total", None)
        for dim, flow, target in (("partner_group", "total", None),
                                  ("partner_region", "total", None),
                                  ("enterprise_type", "total", None),
                                  ("commodity", "export", xj_e),
                                  ("commodity", "import", xj_i)):
            if target is None:
                target = (xj_i or 0) + (xj_e or 0)
            s = sum(c[1]["value_cny"] for k, c in trade.cells.items()
                    if k[0] == "XJ" and k[1] == p and k[2] == flow and k[3] == dim)
            if s != target:
                bad.append(f"XJ {p} {dim}/{flow}: members sum to {s}, expected {target}")
    return bad


# ------------------------------------------------------------------------------------------


def bulletin(ind) -> tuple[list[tuple[str, list[tuple[str, str, str, bool]]]], dict]:
    """The 13 statements at PERIOD, each as (title, [(label, published, computed, ok)]), and
    every ranked region's ytd_yoy_pct. `ind` is any implementation of the indicator queries
    (`series`, `yoy_rank`, `leaders`, `freight_series`) with the result keys used here."""
    results: list[tuple[str, list[tuple[str, str, str, bool]]]] = []

    def stmt(title, checks):
        results.append((title, checks))

    def cmp(label, published, computed, exact=None):
        return (label, fmt(published), fmt(computed) + (f"  [{fmt(exact)}]" if exact is not None else ""),
                published == computed)

    xj = ind.series("XJ", "total", "total", None, PERIOD)
    stmt("1. Xinjiang imports and exports: 322.39 bn yuan",
         [cmp("ytd_cny (bn yuan)", Decimal("322.39"), bn2(xj["ytd"]), xj["ytd"]),
          cmp("months_in_ytd", 9, xj["months"])])
    stmt("2. … which is $44.17 bn",
         [cmp("ytd_usd (bn USD)", Decimal("44.17"), bn2(xj["ytd_usd"]), xj["ytd_usd"])])
    stmt("3. up 29 % year on year",
         [cmp("ytd_yoy_pct (0 dp)", Decimal("29"), r0(xj["yoy"]), r1(xj["yoy"])),
          cmp("prior_ytd_cny (bn yuan, implied ≈249.9)", Decimal("249.9"),
              None if xj["prior"] is None else r1(xj["prior"] / 10 ** 9), xj["prior"])])
    rank, of, yoys = ind.yoy_rank("XJ", "total", PERIOD)
    runner = sorted(((y, r) for r, y in yoys.items() if r != "XJ"), reverse=True)[:1]
    stmt("4. first nationwide in cumulative growth rate",
         [cmp(f"yoy_rank of {of} (runner-up {runner[0][1]} at {fmt(r1(runner[0][0]))} %)"
              if runner else f"yoy_rank of {of}", 1, rank)])

    bri = ind.series("XJ", "total", "partner_group", "belt_and_road", PERIOD)
    stmt("5. Belt and Road partners: 297.85 bn yuan, up 25.8 %, 92.4 % of the total",
         [cmp("ytd_cny (bn yuan)", Decimal("297.85"), bn2(bri["ytd"]), bri["ytd"]),
          cmp("ytd_yoy_pct", Decimal("25.8"), r1(bri["yoy"])),
          cmp("share_pct", Decimal("92.4"), r1(bri["share"]))])

    pr = ind.leaders("XJ", "total", "partner_region", PERIOD)
    first = pr["by_yoy"][0] if pr["by_yoy"] else (None, None)
    second = pr["by_yoy"][1] if len(pr["by_yoy"]) > 1 else (None, None)
    stmt("6. Central and Eastern Europe led partner growth at 437.1 %",
         [cmp("by_yoy[0].member", "central_eastern_europe", first[0]),
          cmp(f"by_yoy[0].ytd_yoy_pct (next: {second[0]} {fmt(r1(second[1]))})",
              Decimal("437.1"), r1(first[1]))])

    for n, member, title, pub_bn, pub_yoy, pub_share in (
            (7, "private", "private enterprises: 298.35 bn yuan, up 28.2 %, 92.5 % of the total",
             "298.35", "28.2", "92.5"),
            (8, "state_owned", "state-owned enterprises: 21.68 bn yuan, up 42.6 %",
             "21.68", "42.6", None),
            (9, "foreign_invested", "foreign-invested enterprises: 1.87 bn yuan, up 19.4 %",
             "1.87", "19.4", None)):
        s = ind.series("XJ", "total", "enterprise_type", member, PERIOD)
        checks = [cmp("ytd_cny (bn yuan)", Decimal(pub_bn), bn2(s["ytd"]), s["ytd"]),
                  cmp("ytd_yoy_pct", Decimal(pub_yoy), r1(s["yoy"]))]
        if pub_share:
            checks.append(cmp("share_pct", Decimal(pub_share), r1(s["share"])))
        stmt(f"{n}. {title}", checks)

    ex = ind.leaders("XJ", "export", "commodity", PERIOD)
    top2 = [m for m, _, _ in ex["by_share"][:2]]
    detail = ", ".join(f"{m} {fmt(bn2(v))} bn ({fmt(r1(s))} %)" for m, v, s in ex["by_share"])
    stmt("10. exports led by labour-intensive and electromechanical products",
         [cmp(f"by_share[0..2] of export commodity — {detail}",
              ["labour_intensive", "electromechanical"], top2)])
    im = ind.leaders("XJ", "import", "commodity", PERIOD)
    detail = ", ".join(f"{m} {fmt(bn2(v))} bn ({fmt(r1(s))} %)" for m, v, s in im["by_share"])
    stmt("11. imports dominated by bulk commodities",
         [cmp(f"by_share[0] of import commodity — {detail}", "bulk_commodities",
              im["by_share"][0][0] if im["by_share"] else None)])

    kh = ind.freight_series("khorgos", "china_europe", PERIOD)
    stmt("12. 6,269 China–Europe trains through Khorgos, Jan–Sep, up 8.1 %",
         [cmp("ytd_trains", 6269, kh["ytd"]),
          cmp(f"ytd_yoy_pct (prior_ytd_trains {kh['prior']})", Decimal("8.1"), r1(kh["yoy"]))])
    stmt("13. monthly traffic above 600 for 12 consecutive months",
         [cmp(f"streak_months (threshold {THRESHOLD})", 12, kh["streak"])])

    return results, yoys


def print_results(results) -> int:
    """Print one line per statement (and one per figure under it); -> number failed."""
    failed = 0
    for title, checks in results:
        ok = all(c[3] for c in checks)
        failed += not ok
        print(f"[{'PASS' if ok else 'FAIL'}] {title}")
        for label, pub, comp, good in checks:
            print(f"    {'ok ' if good else 'BAD'} {label}: published {pub}, computed {comp}")
    return failed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path,
                    default=Path(__file__).resolve().parent.parent / "data" / "sample")
    args = ap.parse_args()

    problems: list[str] = []
    (trade_ev, freight_ev, fx_ev), trade, freight, fx = load(args.dir, problems)
    print(f"events: trade.jsonl={len(trade_ev)} freight.jsonl={len(freight_ev)} "
          f"fx.jsonl={len(fx_ev)} | trade cells={len(trade.cells)} "
          f"freight cells={len(freight.cells)} fx cells={len(fx.cells)} | "
          f"superseded by a higher revision={trade.applied - len(trade.cells)} "
          f"stale={trade.stale + freight.stale + fx.stale} "
          f"duplicate={trade.duplicate + freight.duplicate + fx.duplicate} "
          f"same-revision replaced={trade.replaced + freight.replaced + fx.replaced}")

    ind = Indicators(trade, freight, fx)
    results, yoys = bulletin(ind)
    failed = print_results(results)

    problems += consistency(ind, trade, freight, fx)
    for r, y in sorted(yoys.items()):
        if r != "XJ" and y >= yoys.get("XJ", Decimal(0)):
            problems.append(f"province {r} grows {fmt(r1(y))} %, not below XJ")
    if problems:
        print(f"consistency: {len(problems)} problem(s)")
        for p in problems[:50]:
            print(f"    {p}")
    else:
        print("consistency: ok (formats, order, 21 months everywhere, breakdown sums, CN ≥ provinces)")
    print(f"{len(results) - failed}/{len(results)} statements match as published")
    return 0 if failed == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
