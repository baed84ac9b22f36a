#!/usr/bin/env python3
"""Independently check silkroute's release-shaped sample data against the published bulletin.

Reads data/releases/{trade,freight,fx}.jsonl (contract v2 events: `basis` "month" or "ytd"),
applies the revision rules of contract §2 per cell (cell identity includes `basis`; the
highest `revision` wins; at equal revision the later event in file order), derives the
indicators of contract v2 §3 — "Deriving months and year-to-date": Y(M), v(M), the TTM, the
dollar chain Yusd/vusd with half-to-even rounding to the cent, partial YTD, shares, growth in
yuan and in dollars, ranks, leaders, streaks over v — with exact decimals (no floating point),
and compares the 13 statements of the bulletin with the published figures, rounded as
published. It implements the v2 rules here, on its own: it shares with check_sample.py only
the event loading helpers, the rounding and the statements' wording.

It also checks the shape of the set (no January figure; every series cumulative from
February; region totals also monthly from March; breakdowns cumulative only; `value_usd` on
every cumulative total; the deliberate month/cumulative gaps, as its README lists them; a
flash/formal pair whose formal figure the bulletin needs), and that data/releases and
data/sample give the same headline figures (and the same YTD for every series and period),
both derived here. Its own derivation is first run on hand-worked cases of the rules.

Exit status 0 when everything holds, 1 otherwise. Standard library only.

    python3 scripts/check_releases.py [--dir data/releases] [--sample data/sample]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path

from check_sample import (EXCLUDE, PERIOD, RATE_RE, THRESHOLD, TOP_N, Store, bn2,
                          bulletin, dec_money, fmt, print_results, r1, read_jsonl)

ROOT = Path(__file__).resolve().parent.parent
CENT = Decimal("0.01")
BASES = ("month", "ytd")
LAST = {2023: 12, 2024: 9}  # the months each year of the data sets covers


# ------------------------------------------------------------------------------------------
# Loading (contract §2, v2)


def load(d: Path, problems: list[str], keep=None):
    """-> (events, trade, freight, fx). `keep(ev)` may drop events (to show what a consumer
    that mishandles revisions would compute)."""
    evs = {name: read_jsonl(d / f"{name}.jsonl", problems) for name in ("trade", "freight", "fx")}
    for name, typ in (("trade", "customs_trade"), ("freight", "freight_trains"), ("fx", "fx_rate")):
        periods = [ev.get("period") for ev in evs[name]]
        if periods != sorted(periods):
            problems.append(f"{name}.jsonl: not in chronological order of period")
        for ev in evs[name]:
            where = f"{name}.jsonl:{ev['_line']}"
            if ev.get("type") != typ:
                problems.append(f"{where}: type {ev.get('type')!r}, expected {typ}")
            if ev.get("source") != "reconstruction":
                problems.append(f"{where}: source is not 'reconstruction'")
            rev = ev.get("revision", 0)
            if not isinstance(rev, int) or isinstance(rev, bool) or rev < 0:
                problems.append(f"{where}: bad revision {rev!r}")
            if name != "fx" and ev.get("basis") not in (None, *BASES):
                problems.append(f"{where}: basis {ev.get('basis')!r}")
    if keep is not None:
        evs = {k: [ev for ev in v if keep(ev)] for k, v in evs.items()}
    readme = d / "README.md"
    evs["readme"] = readme.read_text(encoding="utf-8") if readme.exists() else ""

    trade = Store()
    for ev in evs["trade"]:
        where = f"trade.jsonl:{ev['_line']}"
        dim, member = ev["dimension"], ev.get("member")
        if (dim == "total") != (member is None):
            problems.append(f"{where}: member {member!r} with dimension {dim!r}")
        if ev["flow"] not in ("import", "export", "total"):
            problems.append(f"{where}: flow {ev['flow']!r}")
        values = {"cny": dec_money(ev, "value_cny", problems, where), "usd": None}
        if ev.get("value_usd") is not None:
            values["usd"] = dec_money(ev, "value_usd", problems, where)
        key = (ev["region"], ev["period"], ev["flow"], dim, member, ev.get("basis") or "month")
        trade.offer(key, ev.get("revision", 0), values)

    freight = Store()
    for ev in evs["freight"]:
        t, basis = ev["trains"], ev.get("basis") or "month"
        limit = 12_000_000 if basis == "ytd" else 1_000_000
        if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t <= limit:
            problems.append(f"freight.jsonl:{ev['_line']}: bad trains {t!r}")
        key = (ev["port"], ev.get("service") or "china_europe", ev["period"], basis)
        freight.offer(key, ev.get("revision", 0), {"cny": t, "usd": None})

    fx = Store()
    for ev in evs["fx"]:
        raw = str(ev["cny_per_unit"])
        if not RATE_RE.match(raw) or Decimal(raw) <= 0:
            problems.append(f"fx.jsonl:{ev['_line']}: bad cny_per_unit {raw!r}")
        fx.offer((ev["currency"], ev["period"]), ev.get("revision", 0),
                 {"cny_per_unit": Decimal(raw)})
    return evs, trade, freight, fx


# ------------------------------------------------------------------------------------------
# Deriving months and year-to-date (contract v2 §3)


def per(y: int, m: int) -> str:
    return f"{y}-{m:02d}"


def split_period(period: str) -> tuple[int, int]:
    return int(period[:4]), int(period[5:])


class Year:
    """One series' year: Y, v, Yusd, vusd, gap for months 0..12 (None = unknown).

    m, c: {month: {"cny", "usd"}} of the month-basis and ytd-basis cells; rate: {month: CNY per
    USD} (absent when unknown). Trains use the same chain with no dollars (usd=False)."""

    def __init__(self, m: dict, c: dict, rate: dict, usd: bool = True):
        self.m, self.c = m, c
        Y, v, Yu, vu, gap = {0: 0}, {}, {0: Decimal(0) if usd else None}, {}, {}
        for M in range(1, 13):
            mm, cc, prev = m.get(M), c.get(M), Y[M - 1]
            # Y(M): a reported cumulative prevails; else the previous Y plus the month.
            if cc is not None:
                Y[M] = cc["cny"]
            elif prev is not None and mm is not None:
                Y[M] = prev + mm["cny"]
            else:
                Y[M] = None
            # v(M): the month figure; else the difference of cumulatives (may be negative).
            if mm is not None:
                v[M] = mm["cny"]
            elif Y[M] is not None and prev is not None:
                v[M] = Y[M] - prev
            else:
                v[M] = None
            gap[M] = (cc["cny"] - (prev + mm["cny"])
                      if cc is not None and mm is not None and prev is not None else None)
            if not usd:
                vu[M] = Yu[M] = None
                continue
            r = rate.get(M)
            # vusd(M): with a c(M), the reported step over the month's rate (dollars follow the
            # reported cumulative); without, m(M)'s value_usd or m(M) over the rate.
            if cc is not None:
                d = (Y[M] - prev) / r if prev is not None and r is not None else None
            elif mm is not None:
                d = mm["usd"]
                if d is None and r is not None:
                    d = mm["cny"] / r
            else:
                d = None
            vu[M] = None if d is None else d.quantize(CENT, rounding=ROUND_HALF_EVEN)
            # Yusd(M): c(M)'s value_usd; else Yusd(M-1) + vusd(M).
            if cc is not None and cc["usd"] is not None:
                Yu[M] = cc["usd"]
            elif Yu[M - 1] is not None and vu[M] is not None:
                Yu[M] = Yu[M - 1] + vu[M]
            else:
                Yu[M] = None
        self.Y, self.v, self.Yusd, self.vusd, self.gap = Y, v, Yu, vu, gap

    def has(self, M: int) -> bool:
        return M in self.m or M in self.c

    def window(self, M: int) -> dict:
        """ytd_cny, months_in_ytd, ytd_basis, ytd_usd at M (partial when Y(M) is unknown)."""
        if self.Y[M] is not None:
            return {"ytd": self.Y[M], "months": M, "complete": True,
                    "basis": "reported" if M in self.c else "derived", "ytd_usd": self.Yusd[M]}
        k = max(i for i in range(M) if self.Y[i] is not None)  # Y(0) = 0 is always known
        later = [i for i in range(k + 1, M + 1) if i in self.m]
        usd_terms = [self.Yusd[k]] + [self.vusd[i] for i in later]
        return {"ytd": self.Y[k] + sum(self.m[i]["cny"] for i in later),
                "months": k + len(later), "complete": False, "basis": "partial",
                "ytd_usd": None if None in usd_terms else sum(usd_terms, Decimal(0))}


class Derived:
    """The indicator queries of check_sample.Indicators (same result keys), by contract v2."""

    def __init__(self, trade: Store, freight: Store, fx: Store):
        self.trade, self.freight, self.fx = trade, freight, fx
        self.trade_cells = {k: c[1] for k, c in trade.cells.items()}
        self.freight_cells = {k: c[1] for k, c in freight.cells.items()}

    # --- cells and series

    def cell(self, region, period, flow, dim, member, basis):
        """The total flow, per basis: the explicit total cell, else import + export (value_usd
        only if both carry it)."""
        c = self.trade_cells.get((region, period, flow, dim, member, basis))
        if c is not None or flow != "total":
            return c
        i = self.trade_cells.get((region, period, "import", dim, member, basis))
        e = self.trade_cells.get((region, period, "export", dim, member, basis))
        if i is None or e is None:
            return None
        usd = i["usd"] + e["usd"] if i["usd"] is not None and e["usd"] is not None else None
        return {"cny": i["cny"] + e["cny"], "usd": usd}

    def rates(self, year: int) -> dict:
        out = {}
        for M in range(1, 13):
            r = self.fx.get(("USD", per(year, M)))
            if r is not None:
                out[M] = r["cny_per_unit"]
        return out

    @lru_cache(maxsize=None)
    def year(self, region, flow, dim, member, year) -> Year:
        by_basis = {b: {} for b in BASES}
        for M in range(1, 13):
            for b in BASES:
                c = self.cell(region, per(year, M), flow, dim, member, b)
                if c is not None:
                    by_basis[b][M] = c
        return Year(by_basis["month"], by_basis["ytd"], self.rates(year))

    @lru_cache(maxsize=None)
    def freight_year(self, port, service, year) -> Year:
        by_basis = {b: {} for b in BASES}
        for M in range(1, 13):
            for b in BASES:
                c = self.freight_cells.get((port, service, per(year, M), b))
                if c is not None:
                    by_basis[b][M] = c
        return Year(by_basis["month"], by_basis["ytd"], {}, usd=False)

    @staticmethod
    def ttm(cur: Year, prev: Year, M: int):
        if M == 12 and cur.Y[12] is not None:
            return cur.Y[12]
        terms = (cur.Y[M], prev.Y[12], prev.Y[M])
        if None not in terms:
            return cur.Y[M] + prev.Y[12] - prev.Y[M]
        vs = [prev.v[i] for i in range(M + 1, 13)] + [cur.v[i] for i in range(1, M + 1)]
        return None if None in vs else sum(vs)

    def record(self, cur: Year, prev: Year, M: int) -> dict | None:
        """The fields of a trade (or freight) record at month M, None when it has no record."""
        if not cur.has(M):
            return None
        w = cur.window(M)
        prior, prior_usd = prev.Y[M], prev.Yusd[M]
        yoy = usd_yoy = None
        if w["complete"] and prior is not None and prior > 0:
            yoy = (Decimal(w["ytd"]) / Decimal(prior) - 1) * 100
        if (w["complete"] and prior is not None and w["ytd_usd"] is not None
                and prior_usd is not None and prior_usd > 0):
            usd_yoy = (w["ytd_usd"] / prior_usd - 1) * 100
        return {"month": cur.v[M], "ytd": w["ytd"], "months": w["months"],
                "complete": w["complete"], "ytd_basis": w["basis"], "gap": cur.gap[M],
                "prior": prior, "yoy": yoy, "ytd_usd": w["ytd_usd"], "prior_usd": prior_usd,
                "usd_yoy": usd_yoy, "ttm": self.ttm(cur, prev, M)}

    @lru_cache(maxsize=None)
    def trade_record(self, region, flow, dim, member, period) -> dict | None:
        y, M = split_period(period)
        rec = self.record(self.year(region, flow, dim, member, y),
                          self.year(region, flow, dim, member, y - 1), M)
        if rec is None:
            return None
        rec["share"] = None
        if dim != "total":
            tot = self.trade_record(region, flow, "total", None, period)
            if rec["complete"] and tot is not None and tot["complete"] and tot["ytd"] > 0:
                rec["share"] = rec["ytd"] / tot["ytd"] * 100
        return rec

    # --- the queries the bulletin's statements use

    def series(self, region, flow, dim, member, period) -> dict:
        rec = self.trade_record(region, flow, dim, member, period)
        if rec is None:
            return {"ytd": None, "months": 0, "complete": False, "prior": None, "yoy": None,
                    "ytd_usd": None, "share": None}
        return rec

    def regions(self) -> set[str]:
        return {k[0] for k in self.trade_cells if k[3] == "total"}

    def yoy_rank(self, region, flow, period):
        yoys = {}
        for r in self.regions() - EXCLUDE:
            rec = self.trade_record(r, flow, "total", None, period)
            if rec is not None and rec["yoy"] is not None:
                yoys[r] = rec["yoy"]
        if region in EXCLUDE or region not in yoys:
            return None, len(yoys), yoys
        return 1 + sum(1 for y in yoys.values() if y > yoys[region]), len(yoys), yoys

    def leaders(self, region, flow, dim, period) -> dict:
        flows = (flow,) if flow != "total" else ("total", "import", "export")
        members = sorted({k[4] for k in self.trade_cells
                          if k[0] == region and k[3] == dim and k[4] is not None
                          and k[2] in flows})
        rows = {m: self.trade_record(region, flow, dim, m, period) for m in members}
        rows = {m: r for m, r in rows.items() if r is not None}
        ranked = [m for m in rows if rows[m]["complete"]]
        by_share = sorted(ranked, key=lambda m: (-rows[m]["ytd"], m))[:TOP_N]
        with_yoy = [m for m in rows if rows[m]["yoy"] is not None]
        by_yoy = sorted(with_yoy, key=lambda m: (-rows[m]["yoy"], m))[:TOP_N]
        return {"members_ranked": len(ranked),
                "by_share": [(m, rows[m]["ytd"], rows[m]["share"]) for m in by_share],
                "by_yoy": [(m, rows[m]["yoy"]) for m in by_yoy]}

    def freight_series(self, port, service, period) -> dict:
        y, M = split_period(period)
        rec = self.record(self.freight_year(port, service, y),
                          self.freight_year(port, service, y - 1), M)
        if rec is None:
            return {"month": None, "ytd": None, "months": 0, "prior": None, "yoy": None,
                    "streak": 0}
        # Streak: consecutive months ending here whose v is known and above the threshold.
        streak = 0
        while True:
            v = self.freight_year(port, service, y).v[M]
            if v is None or v <= THRESHOLD:
                break
            streak += 1
            y, M = (y, M - 1) if M > 1 else (y - 1, 12)
        rec["streak"] = streak
        return rec


def self_test() -> list[str]:
    """Hand-worked cases of "Deriving months and year-to-date" (expected values worked out by
    hand from the contract's text, not by this code) -> the failures."""
    D = Decimal
    bad = []

    def cells(**by_month):
        return {int(k[1:]): {"cny": D(v[0]) if isinstance(v, tuple) else D(v),
                             "usd": D(v[1]) if isinstance(v, tuple) else None}
                for k, v in by_month.items()}

    def expect(name, got, want):
        if got != want:
            bad.append(f"{name}: got {got}, want {want}")

    # January–February combined: no Y(1), Y(2) = c(2), v(2) unknown, v(3) = m(3), gap 0.
    y = Year(cells(m3="30.00"), cells(c2="100.00", c3="130.00"), {})
    expect("combined Y(1), Y(2), v(2), v(3), gap(3)",
           (y.Y[1], y.Y[2], y.v[2], y.v[3], y.gap[3], y.has(1)),
           (None, D("100.00"), None, D("30.00"), D("0.00"), False))
    # Cumulative only: months are differences of cumulatives; a revision can make one negative.
    y = Year({}, cells(c2="100.00", c3="150.00", c4="140.00"), {})
    expect("cumulative only v(3), v(4)", (y.v[3], y.v[4]), (D("50.00"), D("-10.00")))
    # A cumulative that disagrees with Y(M-1) + m(M): the cumulative wins, the gap shows it.
    y = Year(cells(m3="30.00"), cells(c2="100.00", c3="131.00"), {})
    expect("gap: Y(3), v(3), gap(3)", (y.Y[3], y.v[3], y.gap[3]),
           (D("131.00"), D("30.00"), D("1.00")))
    # Partial YTD after a missing month: Y(2) + m(4), 3 months, partial.
    y = Year(cells(m1="10.00", m2="20.00", m4="40.00"), {}, {})
    w = y.window(4)
    expect("partial after a gap", (w["ytd"], w["months"], w["basis"], y.Y[4]),
           (D("70.00"), 3, "partial", None))
    # Dollars through a derived month: c(3) has no value_usd, so Yusd(3) = Yusd(2) + (Y(3) -
    # Y(2)) / rate(3), half-to-even to the cent: 0.25 / 2 = 0.125 -> 0.12.
    y = Year({}, cells(c2=("100.00", "50.00"), c3="100.25"), {3: D("2")})
    expect("dollars through a derived month", (y.vusd[3], y.Yusd[3]), (D("0.12"), D("50.12")))
    # ... and a combined January–February without value_usd gives no dollar YTD at all.
    y = Year(cells(m3="7.00"), cells(c2="100.00"), {2: D("2"), 3: D("7")})
    expect("no dollars without the Jan–Feb value_usd", (y.Yusd[2], y.Yusd[3], y.vusd[3]),
           (None, None, D("1.00")))
    # TTM from cumulatives across a combined January–February: Y(2) + Y_prev(12) - Y_prev(2).
    prev = Year({}, cells(c2="100.00", c12="700.00"), {})
    cur = Year({}, cells(c2="120.00"), {})
    expect("TTM across Jan–Feb", Derived.ttm(cur, prev, 2), D("720.00"))
    # Streak over v, broken by an unknown month; the derived total flow per basis.
    trade, freight, fx = Store(), Store(), Store()
    for M, t in enumerate([700, 700, 700, None, 700, 700], start=1):
        if t is not None:
            freight.offer(("p", "s", per(2024, M), "month"), 0, {"cny": t, "usd": None})
    freight.offer(("p", "s", per(2024, 6), "ytd"), 0, {"cny": 3500, "usd": None})
    for flow, basis, v in (("import", "ytd", "10.00"), ("export", "ytd", "5.00"),
                           ("import", "month", "3.00")):
        trade.offer(("R", "2024-03", flow, "total", None, basis), 0, {"cny": D(v), "usd": None})
    ind = Derived(trade, freight, fx)
    fs = ind.freight_series("p", "s", "2024-06")
    expect("streak broken by an unknown month; trains YTD reported",
           (fs["streak"], fs["ytd"], fs["ytd_basis"],
            ind.freight_series("p", "s", "2024-05")["streak"]),
           (2, 3500, "reported", 1))
    tot = ind.trade_record("R", "total", "total", None, "2024-03")
    expect("derived total flow per basis (ytd from both flows; no month: export has none)",
           (tot["ytd"], tot["month"], tot["ytd_basis"]), (D("15.00"), None, "reported"))
    return bad


# ------------------------------------------------------------------------------------------
# The shape of the release-shaped set


def shape_checks(evs: dict, trade: Store, freight: Store, ind: Derived) -> list[tuple[str, bool]]:
    """-> [(line, ok)]: the release shape of issue 13."""
    out = []
    cells = ind.trade_cells
    series = {(r, f, d, m) for (r, p, f, d, m, b) in cells}
    jan = [k for k in cells if k[1].endswith("-01")]
    out.append((f"no January trade figure of any basis ({len(jan)} found)", not jan))

    want_ytd = [per(y, M) for y in LAST for M in range(2, LAST[y] + 1)]
    missing = [(s, p) for s in series for p in want_ytd if (*s[:1], p, *s[1:], "ytd") not in cells]
    out.append((f"every one of {len(series)} series has a cumulative figure at each of "
                f"{len(want_ytd)} periods (Feb–Dec 2023, Feb–Sep 2024): {len(missing)} missing",
                not missing))

    totals = {s for s in series if s[2] == "total"}
    want_month = [per(y, M) for y in LAST for M in range(3, LAST[y] + 1)]
    missing = [(s, p) for s in totals for p in want_month
               if (s[0], p, s[1], s[2], s[3], "month") not in cells]
    feb_month = [k for k in cells if k[5] == "month" and k[1].endswith("-02")]
    out.append((f"every one of {len(totals)} region-total series has a month figure at each of "
                f"{len(want_month)} periods from March: {len(missing)} missing, "
                f"{len(feb_month)} February month figures", not missing and not feb_month))

    bd_month = [k for k in cells if k[3] != "total" and k[5] == "month"]
    n_bd = len(series) - len(totals)
    out.append((f"{n_bd} breakdown series are cumulative only ({len(bd_month)} month figures)",
                n_bd > 0 and not bd_month))

    tot_ytd = [k for k in cells if k[3] == "total" and k[5] == "ytd"]
    no_usd = [k for k in tot_ytd if cells[k]["usd"] is None]
    out.append((f"{len(tot_ytd)} cumulative totals, {len(no_usd)} without value_usd",
                tot_ytd and not no_usd))

    gaps = []
    for (r, f, d, m) in sorted(series, key=str):
        for y in LAST:
            yr = ind.year(r, f, d, m, y)
            for M in range(1, 13):
                if yr.gap[M] not in (None, 0):
                    gaps.append((r, per(y, M), f, d, m, yr.gap[M]))
    n_checked = sum(1 for k in cells if k[5] == "month")
    ok = 3 <= len(gaps) <= 6 and all(100 <= abs(g[-1]) < 1000 for g in gaps)
    # The README's table of deliberate gaps says the same.
    listed = set()
    readme = evs.get("readme") or ""
    for row in re.finditer(r"^\| `(\w+)` (\d{4}-\d{2}) flow `(\w+)` dimension `total` \| \d+ \| "
                           r"-?[\d.]+ \| (-?[\d.]+) \|$", readme, re.M):
        listed.add((row[1], row[2], row[3], "total", None, Decimal(row[4])))
    ok = ok and listed == set(gaps)
    out.append((f"month figures off against their cumulative (of {n_checked} month cells): "
                + ", ".join(f"{r} {p} {f} ytd_gap_cny {fmt(g)}" for r, p, f, d, m, g in gaps)
                + f"; README lists {'the same' if listed == set(gaps) else sorted(listed, key=str)}",
                ok))

    # Flash/formal: the same cell sent with revision 0, later with a higher one, different.
    first: dict = {}
    pairs = []
    for ev in evs["trade"]:
        key = (ev["region"], ev["period"], ev["flow"], ev["dimension"], ev.get("member"),
               ev.get("basis") or "month")
        rev = ev.get("revision", 0)
        if key in first and rev > first[key][0] and ev["value_cny"] != first[key][1]:
            pairs.append((key, first[key][2], ev["_line"]))
        first.setdefault(key, (rev, ev["value_cny"], ev["_line"]))
    out.append((f"{len(pairs)} flash figures followed by a different formal revision: "
                + ", ".join(f"{k[0]} {k[1]} {k[2]} {k[3]}{'/' + k[4] if k[4] else ''} {k[5]} "
                            f"(lines {a}→{b})" for k, a, b in pairs), bool(pairs)))

    kh_gaps = [M for y in LAST
               for M, g in ind.freight_year("khorgos", "china_europe", y).gap.items()
               if g not in (None, 0)]
    kh_ytd = [k for k in ind.freight_cells if k[0] == "khorgos" and k[3] == "ytd"]
    kh_month = [per(y, M) for y in LAST for M in range(1, LAST[y] + 1)
                if ("khorgos", "china_europe", per(y, M), "month") not in ind.freight_cells]
    out.append((f"Khorgos: month figures every month ({len(kh_month)} missing), {len(kh_ytd)} "
                f"cumulative figures, {len(kh_gaps)} gaps", not kh_month and not kh_gaps))
    return out


# ------------------------------------------------------------------------------------------
# Headline figures, for comparing the two data sets


def headline(ind) -> dict:
    xj = ind.series("XJ", "total", "total", None, PERIOD)
    out = {"XJ ytd_cny": xj["ytd"], "XJ prior_ytd_cny": xj["prior"], "XJ ytd_yoy_pct": xj["yoy"],
           "XJ ttm_cny": xj.get("ttm"),
           "XJ ytd_usd (bn, 2 dp)": bn2(xj["ytd_usd"]),
           "XJ ytd_usd_yoy_pct (1 dp)": r1(xj.get("usd_yoy")),
           "XJ yoy_rank": ind.yoy_rank("XJ", "total", PERIOD)[0]}
    for dim, member in (("partner_group", "belt_and_road"), ("enterprise_type", "private"),
                        ("enterprise_type", "state_owned"),
                        ("enterprise_type", "foreign_invested")):
        s = ind.series("XJ", "total", dim, member, PERIOD)
        out.update({f"{member} ytd_cny": s["ytd"], f"{member} ytd_yoy_pct": s["yoy"],
                    f"{member} share_pct": s["share"]})
    out["partner_region by_yoy"] = ind.leaders("XJ", "total", "partner_region", PERIOD)["by_yoy"]
    for flow in ("export", "import"):
        out[f"{flow} commodity by_share"] = ind.leaders("XJ", flow, "commodity", PERIOD)["by_share"]
    kh = ind.freight_series("khorgos", "china_europe", PERIOD)
    out.update({"khorgos ytd_trains": kh["ytd"], "khorgos ytd_yoy_pct": kh["yoy"],
                "khorgos streak_months": kh["streak"]})
    return out


def every_ytd_agrees(rel: Derived, smp: Derived) -> tuple[int, list[str]]:
    """Every trade and freight series, every period from February: the same ytd (and TTM)."""
    n, bad = 0, []
    series = {(r, f, d, m) for (r, p, f, d, m, b) in rel.trade_cells}
    series |= {(r, "total", d, m) for (r, f, d, m) in series if f in ("import", "export")}
    periods = [per(y, M) for y in LAST for M in range(2, LAST[y] + 1)]
    for s in sorted(series, key=str):
        for p in periods:
            a, b = rel.trade_record(*s, p), smp.trade_record(*s, p)
            if a is None and b is None:
                continue  # no such series at all (an import-only member's total flow)
            n += 1
            if a is None or b is None or a["ytd"] != b["ytd"] or a["ttm"] != b["ttm"]:
                bad.append(f"{s} {p}: {a and a['ytd']} / {b and b['ytd']}")
    for port in ("khorgos", "alashankou"):
        for p in periods:
            a = rel.freight_series(port, "china_europe", p)
            b = smp.freight_series(port, "china_europe", p)
            n += 1
            if (a["ytd"], a["streak"], a.get("ttm")) != (b["ytd"], b["streak"], b.get("ttm")):
                bad.append(f"{port} {p}: {a['ytd']} / {b['ytd']}")
    return n, bad


# ------------------------------------------------------------------------------------------
# Worked examples and the full record set (for comparing an engine's output)


def money_str(x) -> str | None:
    return None if x is None else f"{Decimal(x):.2f}"


def pct(x) -> float | None:
    return None if x is None else float(x)


def example(ind: Derived, region, flow, dim, member, year, months) -> list[str]:
    name = f"{region}/{flow}/{dim}/{member or '-'}"
    rows = [f"    {name:<32} month_cny          ytd_cny            months basis    "
            f"ytd_gap_cny  ytd_usd"]
    for M in months:
        rec = ind.trade_record(region, flow, dim, member, per(year, M))
        if rec is None:
            rows.append(f"    {per(year, M):<32} (no record)")
            continue
        rows.append(f"    {per(year, M):<32} {money_str(rec['month']) or 'null':<18} "
                    f"{money_str(rec['ytd']):<18} {rec['months']:<6} {rec['ytd_basis']:<8} "
                    f"{money_str(rec['gap']) or 'null':<12} {money_str(rec['ytd_usd']) or 'null'}")
    return rows


def all_records(ind: Derived) -> list[tuple[str, dict]]:
    """Every trade, trade_leaders and freight record of contract §3, keyed as on the topic."""
    out = []
    years = sorted({split_period(k[1])[0] for k in ind.trade_cells}
                   | {split_period(k[2])[0] for k in ind.freight_cells})
    series = {(r, f, d, m) for (r, p, f, d, m, b) in ind.trade_cells}
    series |= {(r, "total", d, m) for (r, f, d, m) in series if f in ("import", "export")}
    ranks: dict = {}
    groups: set = set()
    for (r, f, d, m) in series:
        for y in years:
            for M in range(1, 13):
                period = per(y, M)
                rec = ind.trade_record(r, f, d, m, period)
                if rec is None:
                    continue
                rank = rank_of = None
                if d == "total":
                    if (f, period) not in ranks:
                        ranks[(f, period)] = ind.yoy_rank("XJ", f, period)[2]
                    yoys = ranks[(f, period)]
                    if r in yoys:
                        rank = 1 + sum(1 for v in yoys.values() if v > yoys[r])
                        rank_of = len(yoys)
                else:
                    groups.add((r, f, d, period))
                out.append((f"trade/{r}/{f}/{d}/{m or '-'}/{period}", {
                    "kind": "trade", "region": r, "flow": f, "dimension": d, "member": m,
                    "period": period, "month_cny": money_str(rec["month"]),
                    "ytd_cny": money_str(rec["ytd"]), "months_in_ytd": rec["months"],
                    "ytd_basis": rec["ytd_basis"], "ytd_gap_cny": money_str(rec["gap"]),
                    "prior_ytd_cny": money_str(rec["prior"]), "ytd_yoy_pct": pct(rec["yoy"]),
                    "ytd_usd": money_str(rec["ytd_usd"]),
                    "prior_ytd_usd": money_str(rec["prior_usd"]),
                    "ytd_usd_yoy_pct": pct(rec["usd_yoy"]), "ttm_cny": money_str(rec["ttm"]),
                    "share_pct": pct(rec["share"]), "yoy_rank": rank, "yoy_rank_of": rank_of}))
    for (r, f, d, period) in groups:
        ld = ind.leaders(r, f, d, period)
        out.append((f"leaders/{r}/{f}/{d}/{period}", {
            "kind": "trade_leaders", "region": r, "flow": f, "dimension": d, "period": period,
            "members_ranked": ld["members_ranked"],
            "by_share": [{"member": m, "ytd_cny": money_str(v), "share_pct": pct(sh)}
                         for m, v, sh in ld["by_share"]],
            "by_yoy": [{"member": m, "ytd_yoy_pct": pct(v)} for m, v in ld["by_yoy"]]}))
    for (port, service) in sorted({(k[0], k[1]) for k in ind.freight_cells}):
        for y in years:
            for M in range(1, 13):
                period = per(y, M)
                if not ind.freight_year(port, service, y).has(M):
                    continue
                rec = ind.freight_series(port, service, period)
                out.append((f"freight/{port}/{service}/{period}", {
                    "kind": "freight", "port": port, "service": service, "period": period,
                    "month_trains": rec["month"], "ytd_trains": rec["ytd"],
                    "months_in_ytd": rec["months"], "ytd_basis": rec["ytd_basis"],
                    "ytd_gap_trains": rec["gap"], "prior_ytd_trains": rec["prior"],
                    "ytd_yoy_pct": pct(rec["yoy"]), "ttm_trains": rec["ttm"],
                    "streak_months": rec["streak"], "streak_threshold": THRESHOLD}))
    return sorted(out, key=lambda kv: kv[0])


# ------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=ROOT / "data" / "releases")
    ap.add_argument("--sample", type=Path, default=ROOT / "data" / "sample")
    ap.add_argument("--records", type=Path, metavar="FILE",
                    help="also write every record this checker derives from --dir (JSON lines "
                         "{key, record}, sorted by key), to compare an engine's output with")
    args = ap.parse_args()

    problems: list[str] = []
    evs, trade, freight, fx = load(args.dir, problems)
    print(f"events: trade.jsonl={len(evs['trade'])} freight.jsonl={len(evs['freight'])} "
          f"fx.jsonl={len(evs['fx'])} | trade cells={len(trade.cells)} "
          f"freight cells={len(freight.cells)} fx cells={len(fx.cells)} | "
          f"superseded by a higher revision={trade.applied - len(trade.cells)} "
          f"stale={trade.stale + freight.stale + fx.stale} "
          f"duplicate={trade.duplicate + freight.duplicate + fx.duplicate}")
    ind = Derived(trade, freight, fx)
    results, yoys = bulletin(ind)
    failed = print_results(results)

    xj = ind.series("XJ", "total", "total", None, PERIOD)
    print(f"[INFO] XJ 2024-09 growth in dollar terms: ytd_usd {fmt(xj['ytd_usd'])} / "
          f"prior_ytd_usd {fmt(xj['prior_usd'])} → ytd_usd_yoy_pct {fmt(r1(xj['usd_yoy']))} "
          f"[{fmt(xj['usd_yoy'].quantize(Decimal('0.000001')))}]; "
          f"ytd_basis {xj['ytd_basis']}, ttm_cny {fmt(xj['ttm'])}")
    print("[INFO] derived records, January–February combined (cumulative figures from February, "
          "region totals' month figures from March, breakdowns cumulative only):")
    for line in (example(ind, "XJ", "total", "total", None, 2024, range(1, 10))
                 + example(ind, "XJ", "total", "partner_group", "belt_and_road", 2024,
                           range(1, 5))):
        print(line)

    checks: list[tuple[str, bool]] = []
    st = self_test()
    for b in st:
        print(f"    BAD {b}")
    checks.append(("this checker's derivation on 9 hand-worked cases of contract v2 §3 "
                   f"({len(st)} wrong)", not st))
    checks.append((f"XJ 2024-09 ytd_basis reported, ytd_usd_yoy_pct computable "
                   f"({fmt(r1(xj['usd_yoy']))} %)", xj["ytd_basis"] == "reported"
                   and xj["usd_yoy"] is not None))
    for r, y in sorted(yoys.items()):
        if r != "XJ" and y >= yoys.get("XJ", Decimal(0)):
            problems.append(f"province {r} grows {fmt(r1(y))} %, not below XJ")
    checks += shape_checks(evs, trade, freight, ind)

    # The formal figures are what the bulletin needs: keep only the flashes and it breaks.
    flash_only_problems: list[str] = []
    _, ftrade, ffreight, ffx = load(args.dir, flash_only_problems,
                                    keep=lambda ev: ev.get("revision", 0) == 0)
    flash_results, _ = bulletin(Derived(ftrade, ffreight, ffx))
    broken = [t.split(".")[0] for t, cs in flash_results if not all(c[3] for c in cs)]
    checks.append((f"with the flash figures kept instead of the formal ones, statements "
                   f"{', '.join(broken) or 'none'} fail", bool(broken)))

    # data/releases and data/sample: the same headline figures, the same YTD everywhere.
    sample_problems: list[str] = []
    _, strade, sfreight, sfx = load(args.sample, sample_problems)
    problems += [f"data/sample: {p}" for p in sample_problems]
    smp = Derived(strade, sfreight, sfx)
    h_rel, h_smp = headline(ind), headline(smp)
    differ = [k for k in h_rel if h_rel[k] != h_smp[k]]
    for k in differ:
        print(f"    BAD {k}: releases {h_rel[k]}, sample {h_smp[k]}")
    smp_usd = smp.series("XJ", "total", "total", None, PERIOD)["ytd_usd"]
    cents = (xj["ytd_usd"] or 0) - (smp_usd or 0)
    checks.append((f"data/releases and data/sample agree on {len(h_rel) - len(differ)}/"
                   f"{len(h_rel)} headline figures (XJ ytd_usd differs by ${fmt(cents)}: "
                   f"per-flow vs per-total rounding of each month)", not differ))
    n, bad = every_ytd_agrees(ind, smp)
    for b in bad[:10]:
        print(f"    BAD {b}")
    checks.append((f"data/releases and data/sample: the same ytd and ttm in {n - len(bad)}/{n} "
                   f"(series, period) from February", not bad))

    for line, ok in checks:
        print(f"[{'PASS' if ok else 'FAIL'}] {line}")
    if problems:
        print(f"consistency: {len(problems)} problem(s)")
        for p in problems[:50]:
            print(f"    {p}")
    if args.records:
        recs = all_records(ind)
        with open(args.records, "w", encoding="utf-8", newline="\n") as f:
            for key, rec in recs:
                f.write(json.dumps({"key": key, "record": rec}, ensure_ascii=False) + "\n")
        print(f"wrote {len(recs)} records to {args.records}")
    bad_checks = sum(1 for _, ok in checks if not ok)
    print(f"{len(results) - failed}/{len(results)} statements match as published; "
          f"{len(checks) - bad_checks}/{len(checks)} shape and agreement checks hold")
    return 0 if failed == 0 and bad_checks == 0 and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
