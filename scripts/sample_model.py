"""The reconstructed figures behind silkroute's sample data sets (a RECONSTRUCTION, not data).

One model, two shapes: `gen_sample.py` writes it month by month (data/sample/, contract v1
events), `gen_releases.py` writes the same figures as customs release them (data/releases/,
cumulative January-to-month figures, January and February combined; contract v2 `basis`).

What is published (Global Times, 24 Oct 2024, citing Urumqi Customs / CCTV News) are only the
January–September 2024 aggregates of the project's bulletin. Every monthly value here is
invented so that the contract's indicators at period 2024-09 reproduce them exactly.

Deterministic: standard library only, one fixed seed, all money in integer fen (1 yuan =
100 fen). The order of the random draws is part of the output: do not reorder the generators
in `build_model`.
"""


import json
import random
from decimal import ROUND_HALF_EVEN, Decimal, getcontext
from pathlib import Path

getcontext().prec = 50

SEED = 20241024  # date of the Global Times report
SOURCE = "reconstruction"

PERIODS = [f"{y}-{m:02d}" for y in (2023, 2024) for m in range(1, 13) if (y, m) <= (2024, 9)]
P23_YTD = PERIODS[0:9]  # 2023-01 … 2023-09 (prior YTD window of 2024-09)
P23_Q4 = PERIODS[9:12]  # 2023-10 … 2023-12
P24_YTD = PERIODS[12:21]  # 2024-01 … 2024-09
assert len(PERIODS) == 21 and P24_YTD[-1] == "2024-09"

PROVINCES = ("BJ TJ HE SX NM LN JL HL SH JS ZJ AH FJ JX SD HA HB HN GD GX HI "
             "CQ SC GZ YN XZ SN GS QH NX XJ").split()
NATIONAL = "CN"
XJ = "XJ"

# Calendar-month seasonality of trade (Jan … Dec): Spring Festival dip, year-end peak.
SEASON = [0.84, 0.76, 0.98, 1.00, 1.02, 1.03, 1.03, 1.05, 1.06, 1.05, 1.07, 1.11]


def bn(yuan_billions: str) -> int:
    """'322.39' billion yuan -> fen (exact)."""
    return int(Decimal(yuan_billions) * 100_000_000_000)


# --- Published targets (fen), Jan–Sep 2024, and the Jan–Sep 2023 values implied by the
# --- published growth rates (chosen so the growth rounds as published).
XJ_TOTAL_24 = bn("322.39")          # 322.39 bn, +29 %
XJ_TOTAL_23 = bn("249.91")          # 322.39 / 249.91 - 1 = 29.002 %
BRI_24, BRI_23 = bn("297.85"), bn("236.77")       # +25.797 %, share 92.388 %
PRIVATE_24, PRIVATE_23 = bn("298.35"), bn("232.72")  # +28.202 %, share 92.543 %
STATE_24, STATE_23 = bn("21.68"), bn("15.20")      # +42.632 %
FOREIGN_24, FOREIGN_23 = bn("1.87"), bn("1.56616")  # +19.400 %
CEE_24, CEE_23 = bn("5.371"), bn("1.00")           # +437.100 %
KHORGOS_24, KHORGOS_23 = 6269, 5799                # +8.105 %
KHORGOS_SEP_2023 = 588                             # at or below 600: streak starts Oct 2023
STREAK_THRESHOLD = 600
USD_YTD_TARGET = Decimal("44170000000.00")         # $44.17 bn


def money(fen: int) -> str:
    assert fen >= 0, fen
    return f"{fen // 100}.{fen % 100:02d}"


def split(total: int, weights: list[int]) -> list[int]:
    """Split integer `total` in proportion to integer `weights`, largest remainder, exact."""
    s = sum(weights)
    assert s > 0 and all(w >= 0 for w in weights)
    parts = [total * w // s for w in weights]
    rest = total - sum(parts)
    order = sorted(range(len(weights)), key=lambda i: (-(total * weights[i] % s), i))
    for i in order[:rest]:
        parts[i] += 1
    assert sum(parts) == total
    return parts


class Gen:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def jitter(self, spread: float) -> float:
        return 1.0 + spread * (2.0 * self.rng.random() - 1.0)

    def w(self, x: float) -> int:
        """A float weight as a positive integer (split() works on integers)."""
        return max(1, int(x * 1_000_000))


def month_of(period: str) -> int:
    return int(period[5:7])


# ---------------------------------------------------------------------------------------------
# Provinces other than Xinjiang: 2023 annual trade (bn yuan, rough real magnitudes) and the
# export share. Their Jan–Sep 2024 growth is drawn between -10 % and +20 %, always below XJ.
PROVINCE_BASE = {
    "BJ": (3650, 0.15), "TJ": (800, 0.45), "HE": (560, 0.60), "SX": (180, 0.65),
    "NM": (200, 0.35), "LN": (780, 0.45), "JL": (170, 0.30), "HL": (300, 0.25),
    "SH": (4210, 0.42), "JS": (5250, 0.64), "ZJ": (4900, 0.72), "AH": (810, 0.62),
    "FJ": (1990, 0.60), "JX": (570, 0.72), "SD": (3260, 0.58), "HA": (820, 0.60),
    "HB": (640, 0.68), "HN": (620, 0.70), "GD": (8330, 0.64), "GX": (690, 0.50),
    "HI": (230, 0.30), "CQ": (710, 0.66), "SC": (960, 0.60), "GZ": (80, 0.60),
    "YN": (260, 0.50), "XZ": (7, 0.85), "SN": (450, 0.55), "GS": (55, 0.30),
    "QH": (4.5, 0.50), "NX": (20, 0.70),
}
assert set(PROVINCE_BASE) | {XJ} == set(PROVINCES)


def gen_provinces(g: Gen) -> tuple[dict, dict]:
    """-> ({(region, period, flow): fen}, {region: drawn growth}) for every province but XJ."""
    cells: dict[tuple[str, str, str], int] = {}
    growth: dict[str, float] = {}
    for region in PROVINCES:
        if region == XJ:
            continue
        annual_bn, export_share = PROVINCE_BASE[region]
        g24 = -0.10 + 0.30 * g.rng.random()  # -10 % … +20 %
        growth[region] = g24
        monthly_fen = annual_bn * 100_000_000_000 / 12
        by_month_2023 = {}
        for p in PERIODS[:12]:
            v = monthly_fen * SEASON[month_of(p) - 1] * g.jitter(0.06)
            by_month_2023[month_of(p)] = v
        for p in PERIODS:
            if p.startswith("2023"):
                v = by_month_2023[month_of(p)]
            else:
                v = by_month_2023[month_of(p)] * (1 + g24) * g.jitter(0.04)
            total = int(round(v))
            share = export_share * g.jitter(0.04)
            exp = int(round(total * share))
            cells[(region, p, "export")] = exp
            cells[(region, p, "import")] = total - exp
    return cells, growth


# ---------------------------------------------------------------------------------------------
# Xinjiang


def gen_xj_totals(g: Gen) -> dict[str, tuple[int, int]]:
    """-> {period: (import_fen, export_fen)}; Jan–Sep sums hit the published totals exactly."""
    totals: dict[str, int] = {}
    for window, target in ((P23_YTD, XJ_TOTAL_23), (P24_YTD, XJ_TOTAL_24)):
        weights = [g.w(SEASON[month_of(p) - 1] * g.jitter(0.06)) for p in window]
        totals.update(zip(window, split(target, weights)))
    # Oct–Dec 2023: about 107 bn yuan (XJ's 2023 calendar year was about 357 bn).
    q4 = bn("107.36")
    weights = [g.w(SEASON[month_of(p) - 1] * g.jitter(0.05)) for p in P23_Q4]
    totals.update(zip(P23_Q4, split(q4, weights)))
    out = {}
    for p in PERIODS:
        share = (0.80 if p.startswith("2023") else 0.83) * g.jitter(0.03)
        exp = int(round(totals[p] * share))
        out[p] = (totals[p] - exp, exp)
    return out


def allocate(g: Gen, month_totals: dict[str, int], members: list[str], residual: str,
             ytd_targets: dict[tuple[str, str], int], shares: dict[str, float],
             spread: float = 0.15) -> dict[tuple[str, str], int]:
    """Spread a breakdown over months so each month sums to its total and, for each YTD
    window, each member sums to its target.

    month_totals: {period: fen}. ytd_targets: {(window_name, member): fen} for every member
    but `residual` and both windows ('2023', '2024'); the residual member takes what is left
    each month (it must be the dominant member so it never goes negative). Oct–Dec 2023 have
    no target: each month is split by `shares` with noise.
    -> {(period, member): fen}
    """
    out: dict[tuple[str, str], int] = {}
    for name, window in (("2023", P23_YTD), ("2024", P24_YTD)):
        others = [m for m in members if m != residual]
        taken = {p: 0 for p in window}
        for m in others:
            target = ytd_targets[(name, m)]
            weights = [g.w(month_totals[p] * g.jitter(spread)) for p in window]
            for p, v in zip(window, split(target, weights)):
                out[(p, m)] = v
                taken[p] += v
        for p in window:
            rest = month_totals[p] - taken[p]
            assert rest >= 0, (p, residual, rest)
            out[(p, residual)] = rest
    for p in P23_Q4:
        weights = [g.w(shares[m] * g.jitter(spread / 2)) for m in members]
        for m, v in zip(members, split(month_totals[p], weights)):
            out[(p, m)] = v
    return out


def share_targets(members: list[str], residual: str, shares23: dict[str, float],
                  shares24: dict[str, float], ytd23: int, ytd24: int,
                  fixed: dict[tuple[str, str], int] | None = None) -> dict[tuple[str, str], int]:
    """YTD targets for the non-residual members from their shares of the YTD totals, rounded
    to whole thousands of yuan; `fixed` entries override."""
    t = {}
    for m in members:
        if m == residual:
            continue
        t[("2023", m)] = int(round(ytd23 * shares23[m] / 100_000)) * 100_000
        t[("2024", m)] = int(round(ytd24 * shares24[m] / 100_000)) * 100_000
    t.update(fixed or {})
    return t


PARTNER_GROUP = ["belt_and_road", "other"]
PARTNER_REGION = ["central_asia", "russia", "central_eastern_europe", "european_union",
                  "middle_east", "asean", "africa", "latin_america", "other"]
ENTERPRISE_TYPE = ["private", "state_owned", "foreign_invested", "other"]
COMMODITY_EXPORT = ["labour_intensive", "electromechanical", "agricultural", "steel", "other"]
COMMODITY_IMPORT = ["bulk_commodities", "agricultural", "electromechanical", "other"]


def gen_xj_breakdowns(g: Gen, xj: dict[str, tuple[int, int]]) -> list[tuple[str, str, str, dict]]:
    """-> [(dimension, flow, member list, {(period, member): fen})]"""
    total = {p: i + e for p, (i, e) in xj.items()}
    imp = {p: i for p, (i, e) in xj.items()}
    exp = {p: e for p, (i, e) in xj.items()}
    out = []

    # partner_group: Belt and Road partners 297.85 bn (+25.8 %), the rest "other".
    targets = {("2023", "other"): XJ_TOTAL_23 - BRI_23, ("2024", "other"): XJ_TOTAL_24 - BRI_24}
    cells = allocate(g, total, PARTNER_GROUP, "belt_and_road", targets,
                     {"belt_and_road": 0.93, "other": 0.07})
    out.append(("partner_group", "total", PARTNER_GROUP, cells))

    # partner_region: Central Asia dominant; Central and Eastern Europe +437.1 %, the fastest.
    s23 = {"russia": 0.170, "central_eastern_europe": 0.0, "european_union": 0.060,
           "middle_east": 0.050, "asean": 0.030, "africa": 0.025, "latin_america": 0.020,
           "other": 0.050}
    s24 = {"russia": 0.160, "central_eastern_europe": 0.0, "european_union": 0.052,
           "middle_east": 0.056, "asean": 0.031, "africa": 0.030, "latin_america": 0.023,
           "other": 0.045}
    targets = share_targets(PARTNER_REGION, "central_asia", s23, s24, XJ_TOTAL_23, XJ_TOTAL_24,
                            {("2023", "central_eastern_europe"): CEE_23,
                             ("2024", "central_eastern_europe"): CEE_24})
    q4 = {"central_asia": 0.58, "russia": 0.165, "central_eastern_europe": 0.008,
          "european_union": 0.058, "middle_east": 0.052, "asean": 0.030, "africa": 0.027,
          "latin_america": 0.021, "other": 0.049}
    cells = allocate(g, total, PARTNER_REGION, "central_asia", targets, q4)
    out.append(("partner_region", "total", PARTNER_REGION, cells))

    # enterprise_type: private 298.35 bn, state-owned 21.68 bn, foreign-invested 1.87 bn.
    targets = {
        ("2023", "state_owned"): STATE_23, ("2024", "state_owned"): STATE_24,
        ("2023", "foreign_invested"): FOREIGN_23, ("2024", "foreign_invested"): FOREIGN_24,
        ("2023", "other"): XJ_TOTAL_23 - PRIVATE_23 - STATE_23 - FOREIGN_23,
        ("2024", "other"): XJ_TOTAL_24 - PRIVATE_24 - STATE_24 - FOREIGN_24,
    }
    cells = allocate(g, total, ENTERPRISE_TYPE, "private", targets,
                     {"private": 0.925, "state_owned": 0.064, "foreign_invested": 0.006,
                      "other": 0.005})
    out.append(("enterprise_type", "total", ENTERPRISE_TYPE, cells))

    # commodity, exports: labour-intensive first, electromechanical second.
    exp23 = sum(exp[p] for p in P23_YTD)
    exp24 = sum(exp[p] for p in P24_YTD)
    s23 = {"electromechanical": 0.330, "agricultural": 0.050, "steel": 0.090, "other": 0.080}
    s24 = {"electromechanical": 0.345, "agricultural": 0.045, "steel": 0.100, "other": 0.070}
    targets = share_targets(COMMODITY_EXPORT, "labour_intensive", s23, s24, exp23, exp24)
    cells = allocate(g, exp, COMMODITY_EXPORT, "labour_intensive", targets,
                     {"labour_intensive": 0.45, "electromechanical": 0.335, "agricultural": 0.05,
                      "steel": 0.09, "other": 0.075})
    out.append(("commodity", "export", COMMODITY_EXPORT, cells))

    # commodity, imports: bulk commodities (energy, ores, cotton …) dominate.
    imp23 = sum(imp[p] for p in P23_YTD)
    imp24 = sum(imp[p] for p in P24_YTD)
    s23 = {"agricultural": 0.180, "electromechanical": 0.160, "other": 0.150}
    s24 = {"agricultural": 0.170, "electromechanical": 0.175, "other": 0.140}
    targets = share_targets(COMMODITY_IMPORT, "bulk_commodities", s23, s24, imp23, imp24)
    cells = allocate(g, imp, COMMODITY_IMPORT, "bulk_commodities", targets,
                     {"bulk_commodities": 0.51, "agricultural": 0.175, "electromechanical": 0.165,
                      "other": 0.15})
    out.append(("commodity", "import", COMMODITY_IMPORT, cells))
    return out


# ---------------------------------------------------------------------------------------------
# Freight trains


def gen_freight(g: Gen) -> dict[tuple[str, str], int]:
    """-> {(port, period): trains}"""
    out: dict[tuple[str, str], int] = {}
    # Khorgos, Jan–Aug 2023: the rest of the 5,799 after September's 588; any value.
    rest = KHORGOS_23 - KHORGOS_SEP_2023
    weights = [g.w(SEASON[month_of(p) - 1] * g.jitter(0.05)) for p in P23_YTD[:8]]
    for p, v in zip(P23_YTD[:8], split(rest, weights)):
        out[("khorgos", p)] = v
    out[("khorgos", "2023-09")] = KHORGOS_SEP_2023
    # Oct–Dec 2023: above the threshold (the streak starts in October 2023).
    for p in P23_Q4:
        out[("khorgos", p)] = STREAK_THRESHOLD + 20 + int(70 * g.rng.random())
    # Jan–Sep 2024: 6,269 in all, every month above 600.
    floor = STREAK_THRESHOLD + 1
    weights = [g.w(SEASON[month_of(p) - 1] * g.jitter(0.30)) for p in P24_YTD]
    for p, v in zip(P24_YTD, split(KHORGOS_24 - floor * 9, weights)):
        out[("khorgos", p)] = floor + v
    # Alashankou: plausible, unconstrained.
    for p in PERIODS:
        base = 520 if p.startswith("2023") else 545
        out[("alashankou", p)] = int(round(base * SEASON[month_of(p) - 1] * g.jitter(0.05)))
    return out


# ---------------------------------------------------------------------------------------------
# Exchange rates

FX_BASE = {  # plausible monthly averages, CNY per USD; 2024 tuned below to the bulletin's 7.299
    "2023-01": "6.8012", "2023-02": "6.8645", "2023-03": "6.9120", "2023-04": "6.9380",
    "2023-05": "7.0150", "2023-06": "7.1470", "2023-07": "7.1810", "2023-08": "7.2240",
    "2023-09": "7.2630", "2023-10": "7.2790", "2023-11": "7.2840", "2023-12": "7.2910",
}


def xj_ytd_usd(xj: dict[str, tuple[int, int]], rates: dict[str, Decimal]) -> Decimal:
    """Contract §3 ytd_usd of trade/XJ/total/total at 2024-09: per month, total yuan / rate,
    rounded half-to-even to the cent, then summed."""
    s = Decimal(0)
    for p in P24_YTD:
        cny = Decimal(sum(xj[p])) / 100
        s += (cny / rates[p]).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    return s


def gen_fx(g: Gen, xj: dict[str, tuple[int, int]]) -> dict[str, Decimal]:
    rates = {p: Decimal(v) for p, v in FX_BASE.items()}
    for p in P24_YTD:
        rates[p] = Decimal(str(round(7.299 + 0.004 * (2 * g.rng.random() - 1), 4)))
    # One common scale factor so XJ's Jan–Sep USD total lands on $44.17 bn; rates keep four
    # decimals (one unit of the 4th decimal moves the total by under $0.1 million a month,
    # far inside the $44.165–44.175 bn that rounds to 44.17).
    k = xj_ytd_usd(xj, rates) / USD_YTD_TARGET
    for p in P24_YTD:
        rates[p] = (rates[p] * k).quantize(Decimal("0.0001"), rounding=ROUND_HALF_EVEN)
    usd = xj_ytd_usd(xj, rates)
    assert abs(usd - USD_YTD_TARGET) < Decimal("1000000"), usd
    return rates



# ---------------------------------------------------------------------------------------------
# The model: every figure of both data sets, before any shaping into events.

Cell = tuple[str, str, str, str | None]  # (region, flow, dimension, member)


class Model:
    """The reconstructed monthly figures (the final values, after every revision).

    trade: {period: [(cell, fen)]}, each period's cells in event order (CN's import, export and
    explicit total; each province's import and export; Xinjiang's breakdowns).
    freight: {(port, period): trains}. fx: {period: CNY per USD}. growth: {province: drawn
    Jan–Sep 2024 growth} (provinces other than Xinjiang).
    """

    def __init__(self, seed: int = SEED):
        g = Gen(seed)
        prov, self.growth = gen_provinces(g)
        xj = gen_xj_totals(g)
        for p, (i, e) in xj.items():
            prov[(XJ, p, "import")] = i
            prov[(XJ, p, "export")] = e
        self.breakdowns = gen_xj_breakdowns(g, xj)
        self.freight = gen_freight(g)
        self.fx = gen_fx(g, xj)

        # National: the provinces plus a small unattributed remainder (0.1–0.4 %).
        national = {}
        for p in PERIODS:
            for flow in ("import", "export"):
                s = sum(prov[(r, p, flow)] for r in PROVINCES)
                national[(p, flow)] = s + int(s * (0.001 + 0.003 * g.rng.random()))

        self.trade: dict[str, list[tuple[Cell, int]]] = {}
        for p in PERIODS:
            block: list[tuple[Cell, int]] = []
            for flow in ("import", "export", "total"):
                v = (national[(p, "import")] + national[(p, "export")] if flow == "total"
                     else national[(p, flow)])
                block.append(((NATIONAL, flow, "total", None), v))
            for r in PROVINCES:
                for flow in ("import", "export"):
                    block.append(((r, flow, "total", None), prov[(r, p, flow)]))
            for dimension, flow, members, cells in self.breakdowns:
                for m in members:
                    block.append(((XJ, flow, dimension, m), cells[(p, m)]))
            self.trade[p] = block

    PORTS = ("khorgos", "alashankou")


def trade_event(region, period, flow, dimension, member, fen, revision=None, *, basis=None,
                usd: Decimal | None = None) -> dict:
    """A contract §2 `customs_trade` event; `basis` and `value_usd` only when given."""
    ev = {"type": "customs_trade", "region": region, "period": period, "flow": flow,
          "dimension": dimension}
    if member is not None:
        ev["member"] = member
    ev["value_cny"] = money(fen)
    if usd is not None:
        ev["value_usd"] = f"{usd:.2f}"
    if basis is not None:
        ev["basis"] = basis
    if revision is not None:
        ev["revision"] = revision
    ev["source"] = SOURCE
    return ev


def write_jsonl(path: Path, events: list[dict]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for ev in events:
            f.write(json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n")
