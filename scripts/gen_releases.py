#!/usr/bin/env python3
"""Generate silkroute's release-shaped sample data set (a RECONSTRUCTION, not published data).

Writes data/releases/{trade,freight,fx}.jsonl and data/releases/README.md: the SAME
reconstructed monthly figures as data/sample/ (scripts/sample_model.py), shaped as China's
customs release them (contract v2, `basis`):

- every trade series has cumulative January-to-month figures (`"basis": "ytd"`) from February
  on, January and February combined: no January figure of any basis, in either year;
- region totals (dimension `total`) also have the month's figure (`"basis": "month"`) from March
  on; a few of those are off by a few hundred yuan against their cumulative, as rounding does
  (GAPS below; the cumulative prevails, so every YTD still holds);
- breakdowns (partner group and region, enterprise type, commodity) are cumulative only;
- cumulative totals carry `value_usd`: per flow, the sum of the year's months in yuan / that
  month's USD rate, each rounded half-to-even to the cent (the dollars data/sample implies);
- flash figures followed by their formal revision (FLASHES below), one flash replayed late;
- freight: monthly trains every month (railway counts, January included), Khorgos also a few
  cumulative figures;
- fx: the monthly USD rates of data/sample.

Deterministic, standard library only: running it twice gives byte-identical files.
`scripts/check_releases.py` checks the set independently.

    python3 scripts/gen_releases.py            # writes data/releases/ next to scripts/
    python3 scripts/gen_releases.py --out DIR  # writes elsewhere
"""

from __future__ import annotations

import argparse
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from sample_model import PERIODS, SEED, SOURCE, XJ, Model, month_of, trade_event, write_jsonl

# Month figures that disagree with their cumulative: (period, region, flow, offset in yuan of
# the month figure). dimension `total`, months from March on. The release's ytd_gap_cny is
# c(M) - (Y(M-1) + m(M)) = -offset. None of them touches a figure of the bulletin: the
# cumulative prevails for Y, and Xinjiang's one (2024-06 export) only moves its month_cny.
GAPS = [
    ("2023-05", "GD", "export", 300),
    ("2023-11", "CN", "total", -420),
    ("2024-04", "SH", "import", 250),
    ("2024-06", XJ, "export", -380),
    ("2024-08", "HN", "import", 510),
]

# Flash figures: (period, region, flow, dimension, member, flash month figure in ppm of the
# formal one), the cells data/sample revises. The flash comes first in its release (revision
# 0, the cumulative computed with the flash month; for a total also the month figure), the
# formal figures (revision 1) at the end of the same period's block. Only the formal ones give
# the bulletin: the 2024-09 cells are in its cumulatives directly.
FLASHES = [
    ("2024-07", XJ, "import", "total", None, 1_021_500),
    ("2024-08", XJ, "total", "enterprise_type", "private", 987_300),
    ("2024-09", XJ, "export", "total", None, 985_000),
    ("2024-09", XJ, "total", "partner_group", "belt_and_road", 990_400),
]
# After its formal revision, this flash cumulative is delivered again (a replay): stale.
STALE_REPLAY = ("2024-07", XJ, "import", "total", None)

# Khorgos' cumulative trains (consistent with its months, so ytd_gap_trains is 0).
KHORGOS_YTD = ["2023-02", "2023-06", "2023-09", "2023-12", "2024-02", "2024-06", "2024-09"]

CENT = Decimal("0.01")


def usd(fen: int, rate: Decimal) -> Decimal:
    """Yuan (in fen) / CNY per USD, half-to-even to the cent."""
    return (Decimal(fen) / 100 / rate).quantize(CENT, rounding=ROUND_HALF_EVEN)


def build(seed: int = SEED):
    model = Model(seed)
    gap_by_key = {(p, r, f): yuan * 100 for (p, r, f, yuan) in GAPS}
    flash_by_key = {(p, r, f, d, m): ppm for (p, r, f, d, m, ppm) in FLASHES}

    trade: list[dict] = []
    gap_lines: list[tuple] = []    # (key, line, offset fen)
    flash_lines: list[tuple] = []  # (key, basis, line of flash, line of formal, flash, formal)
    cum: dict = {}                 # cell -> (yuan fen, usd) from January of the current year
    for p in PERIODS:
        m_of = month_of(p)
        rate = model.fx[p]
        if m_of == 1:
            cum = {}
        formals = []
        for cell, v in model.trade[p]:
            r, flow, d, m = cell
            c_prev, u_prev = cum.get(cell, (0, Decimal(0)))
            c, u = c_prev + v, u_prev + usd(v, rate)
            cum[cell] = (c, u)
            if m_of == 1:
                continue  # published with February, as one January–February figure
            total = d == "total"
            key = (p, r, flow, d, m)
            out = []  # (basis, fen, usd or None) of this cell's release, month first
            if total and m_of >= 3:
                off = gap_by_key.get((p, r, flow), 0)
                out.append(("month", v + off, None))
                if off:
                    gap_lines.append((key, len(trade) + 1, off))
            out.append(("ytd", c, u if total else None))
            ppm = flash_by_key.get(key)
            for basis, fen, dollars in out:
                if ppm is None:
                    trade.append(trade_event(r, p, flow, d, m, fen, basis=basis, usd=dollars))
                    continue
                flash_v = v * ppm // 1_000_000
                assert flash_v != v
                flash = fen - v + flash_v
                flash_usd = None if dollars is None else dollars - usd(v, rate) + usd(flash_v, rate)
                trade.append(trade_event(r, p, flow, d, m, flash, 0, basis=basis, usd=flash_usd))
                formals.append((key, basis, len(trade), fen, dollars, flash, flash_usd))
        for key, basis, line0, fen, dollars, flash, flash_usd in formals:
            pp, r, flow, d, m = key
            trade.append(trade_event(r, pp, flow, d, m, fen, 1, basis=basis, usd=dollars))
            flash_lines.append((key, basis, line0, len(trade), flash, fen))
            if key == STALE_REPLAY and basis == "ytd":
                trade.append(trade_event(r, pp, flow, d, m, flash, 0, basis=basis, usd=flash_usd))
                flash_lines.append((key, basis, len(trade), None, flash, None))
    assert len(gap_lines) == len(GAPS), gap_lines

    freight: list[dict] = []
    ytd_trains: dict[str, int] = {}
    for p in PERIODS:
        for port in Model.PORTS:
            t = model.freight[(port, p)]
            ytd_trains[port] = (0 if month_of(p) == 1 else ytd_trains[port]) + t
            freight.append({"type": "freight_trains", "port": port, "period": p, "trains": t,
                            "basis": "month", "source": SOURCE})
            if port == "khorgos" and p in KHORGOS_YTD:
                freight.append({"type": "freight_trains", "port": port, "period": p,
                                "trains": ytd_trains[port], "basis": "ytd", "source": SOURCE})
    fx = [{"type": "fx_rate", "currency": "USD", "period": p, "cny_per_unit": str(model.fx[p]),
           "source": SOURCE} for p in PERIODS]
    return trade, freight, fx, gap_lines, flash_lines


def cell_text(key) -> str:
    p, r, flow, d, m = key
    return f"`{r}` {p} flow `{flow}` dimension `{d}`" + (f" member `{m}`" if m else "")


def yuan(fen: int) -> str:
    sign = "-" if fen < 0 else ""
    fen = abs(fen)
    return f"{sign}{fen // 100}.{fen % 100:02d}"


def xj_usd(trade: list[dict], period: str) -> Decimal:
    """Xinjiang's import + export dollar cumulative at `period`, as released (formal)."""
    cur = {}
    for ev in trade:
        cell = (ev["region"], ev["period"], ev["dimension"], ev["basis"])
        if cell == (XJ, period, "total", "ytd"):
            if ev.get("revision", 0) >= cur.get(ev["flow"], (-1, None))[0]:
                cur[ev["flow"]] = (ev.get("revision", 0), Decimal(ev["value_usd"]))
    return cur["import"][1] + cur["export"][1]


def readme(trade, freight, fx, gap_lines, flash_lines) -> str:
    gap_rows = "\n".join(
        f"| {cell_text(key)} | {line} | {yuan(off)} | {yuan(-off)} |"
        for key, line, off in gap_lines)
    flash_rows = []
    for key, basis, line0, line1, flash, formal in flash_lines:
        if line1 is None:
            flash_rows.append(f"| {cell_text(key)} | `{basis}` | {line0} | — | {yuan(flash)} "
                              f"(the flash again, a stale replay: must be ignored) | |")
        else:
            flash_rows.append(f"| {cell_text(key)} | `{basis}` | {line0} | {line1} | "
                              f"{yuan(flash)} | {yuan(formal)} |")
    flash_rows = "\n".join(flash_rows)
    n_month = sum(1 for ev in trade if ev["basis"] == "month")
    n_ytd = len(trade) - n_month
    n_usd = sum(1 for ev in trade if "value_usd" in ev)
    khorgos_ytd = ", ".join(KHORGOS_YTD)
    usd24, usd23 = xj_usd(trade, "2024-09"), xj_usd(trade, "2023-09")
    usd_yoy = ((usd24 / usd23 - 1) * 100).quantize(Decimal("0.01"))
    return f"""# Release-shaped sample data — a RECONSTRUCTION, not published data

**The figures in these files are invented**, except the January–September 2024 aggregates of
the project's bulletin, which they reproduce. They are the very figures of `data/sample/` (the
same reconstruction: `scripts/sample_model.py`, same seed), reshaped the way China's customs
*publish* such figures. Customs did not publish these monthly or cumulative splits, the
partner-region, commodity or province figures, the dollar figures, the flash figures, nor
these exchange rates. Do not cite any of it as data. All events carry
`"source": "reconstruction"`.

What was published (Global Times, 24 October 2024, citing Urumqi Customs and CCTV News): Xinjiang's
imports and exports of January–September 2024, 322.39 bn yuan ($44.17 bn), up 29 %, first
nationwide; Belt and Road partners 297.85 bn (+25.8 %, 92.4 %); Central and Eastern Europe
+437.1 %; private enterprises 298.35 bn (+28.2 %, 92.5 %), state-owned 21.68 bn (+42.6 %),
foreign-invested 1.87 bn (+19.4 %); exports led by labour-intensive and electromechanical
products, imports by bulk commodities; 6,269 China–Europe trains through Khorgos (+8.1 %),
above 600 a month for 12 months. See `data/sample/README.md` for the 13 statements and the
indicators of contract §3 that carry them; computed from this set at period `2024-09` they
come out exactly as from `data/sample/`.

## Why this shape

Each month customs release the month's figure *and* the January-to-month cumulative figure;
since 2020 January and February come out together, as one January–February cumulative release
(there is no January figure at all, and no separate February month); many breakdowns are
published only cumulatively; a quick flash figure is later superseded by the formal one; and
growth is quoted in yuan and in dollars. An engine fed this must derive months from
cumulatives (contract v2, §3 "Deriving months and year-to-date"), and must not sum a
cumulative again.

## Files

One JSON event per line (contract §2, v2), ordered chronologically by `period`
(2023-02 … 2024-09 for trade; 2023-01 … 2024-09 for freight and fx). Every `customs_trade`
and `freight_trains` event states its `basis` explicitly.

| file | events | content |
|---|---|---|
| `trade.jsonl` | {len(trade)} | `customs_trade`: {n_ytd} `"basis":"ytd"`, {n_month} `"basis":"month"`, {n_usd} with `value_usd` |
| `freight.jsonl` | {len(freight)} | `freight_trains` |
| `fx.jsonl` | {len(fx)} | `fx_rate` (the rates of `data/sample/`) |

### `trade.jsonl`

The cells of `data/sample/trade.jsonl` (31 provinces and `CN`, flows `import` and `export`,
`CN` also an explicit `flow: "total"`; Xinjiang's breakdowns `partner_group`,
`partner_region`, `enterprise_type` (flow `total`) and `commodity` (flows `export` and
`import`)), each released as customs do:

- **Cumulative** (`"basis":"ytd"`, January through `period`): every series, every month from
  February (the combined January–February figure) to December 2023, and February to
  September 2024. No January figure of any basis, in either year.
- **Month** (`"basis":"month"`): region totals only (dimension `total`, every region and flow),
  March to December 2023 and March to September 2024. February has no month figure of its
  own (it is inside the January–February cumulative).
- **Breakdowns** are cumulative only: their months are not published, so an engine derives them
  (`v(M) = Y(M) − Y(M−1)`) and has none for January or February.
- **Dollars**: every cumulative figure of dimension `total` (including the January–February
  ones, and the flash ones) carries `value_usd`: the sum over the year's months of that cell's
  month in yuan divided by the month's USD rate of `fx.jsonl`, each rounded half-to-even to the
  cent. Month figures and breakdowns carry none. So Xinjiang's dollar cumulative at 2024-09 is
  its reported import + export `value_usd` (it rounds to $44.17 bn), and 2023's give the prior
  year for growth in dollar terms. A breakdown has no dollar year-to-date: its combined
  January–February figure has no `value_usd`, and a two-month step has no single rate.
  Xinjiang's import + export `value_usd` at 2024-09: {usd24:,.2f} ($44.17 bn); at 2023-09:
  {usd23:,.2f}; growth in dollar terms {usd_yoy} % (in yuan: 29.0 %; the yuan weakened
  against the dollar between the two periods).
- Cumulatives are exact sums of `data/sample`'s months, so `Y(M)`, the TTM, shares, growth and
  ranks are those of `data/sample` wherever both are defined.

### Month figures off against their cumulative (`ytd_gap_cny`)

A release's month figure and its cumulative are rounded separately; in these cells the month
figure is off by a few hundred yuan. The cumulative prevails (`Y(M) = c(M)`), so every
cumulative and the bulletin hold; `month_cny` is the month figure as published, and the
record shows `ytd_gap_cny = c(M) − (Y(M−1) + m(M))`. The derived `total` flow of the same
region (import + export) shows the same gap; for `CN` the explicit total is its own cell. No
gap is in Xinjiang's 2024-09 release. Xinjiang's one (2024-06 export) moves only that
month's `month_cny`; every cumulative still holds.

| cell (`"basis":"month"`) | line | month figure − true month (yuan) | `ytd_gap_cny` |
|---|---|---|---|
{gap_rows}

All other month figures agree with their cumulatives (`ytd_gap_cny` = 0.00).

### Flash and formal figures

Each cell below is first sent as a flash figure (`"revision": 0`) in its regular place, then
as the formal figure (`"revision": 1`) at the end of the same period's block. For a region
total both the month and the cumulative are flashed and revised (two cells: basis is part of
the cell identity); a flash cumulative is computed with the flash month. Only the formal
figures give the bulletin (Xinjiang's 2024-09 export and Belt and Road figures are in its
cumulatives directly; the earlier ones are superseded in `Y` by the next cumulative anyway).
One flash is then replayed after its formal figure: it is stale, and a consumer that simply
kept the last event would get Xinjiang's wrong import cumulative at 2024-07 (and every
indicator of that record).

| cell | basis | line of flash (rev. 0) | line of formal (rev. 1) | flash value_cny | formal value_cny |
|---|---|---|---|---|---|
{flash_rows}

### `freight.jsonl`

Ports `khorgos` and `alashankou` (service `china_europe`), a month figure
(`"basis":"month"`) every month 2023-01 … 2024-09, as in `data/sample/` (train counts come
monthly from the railway, January included). Khorgos also has cumulative figures
(`"basis":"ytd"`, consistent with its months, `ytd_gap_trains` 0) at {khorgos_ytd}.
Khorgos: 6,269 trains in January–September 2024 against 5,799 (+8.1 %); every month from
October 2023 to September 2024 above 600, September 2023 not: `streak_months` 12 at 2024-09.

### `fx.jsonl`

`USD`, the monthly `cny_per_unit` of `data/sample/fx.jsonl`. Not official rates.

## Notes on the contract

Where contract v2 leaves room, this set (and its checker) reads it so:

- **January for freight.** "No January figure" is customs practice for trade. Train counts
  keep their January month: by the contract a month whose `v` is unknown ends a streak, so
  without January 2024 Khorgos' streak at 2024-09 would be 8, not the published 12.
- **Dollars of a derived `total` flow.** `value_usd` of import + export exists only when both
  carry one (§3); here both always do, so Xinjiang's `Yusd(9)` is the sum of its two reported
  cumulatives' `value_usd`, not a conversion of yuan.
- **Which dollars a cumulative carries.** The contract takes `value_usd` as given; this set
  derives it, per cell, as the year's months each converted at its month's rate and rounded to
  the cent (half-to-even), which is also how the contract derives a month's dollars. The
  `value_usd` of Xinjiang's total at 2024-09 therefore differs from `data/sample`'s `ytd_usd`
  by a cent or a few (two roundings per month instead of one); both round to $44.17 bn.
- **`ytd_basis` of a derived `total` flow.** When `Y(M)` of import + export is the sum of
  the two reported cumulatives, it is `c(M)` of the derived total (per basis, §3), so
  `"reported"`; its `ytd_gap_cny` is likewise computed on the derived month and cumulative.
- **Flash of a region total.** A flash release flashes the month and the cumulative; they are two
  cells and each is revised on its own (a revised cumulative does not replace a month, §2).

## Regenerate and check

    python3 scripts/gen_releases.py      # rewrites these files, byte-identical (seed {SEED})
    python3 scripts/check_releases.py    # derives the 13 statements independently (contract v2)
    python3 scripts/check_releases.py --records FILE   # … and writes every record it derives
    scripts/ci/releases.sh               # both, plus data/sample, as CI runs them

Standard library only (Python 3.11). `check_releases.py` applies the revision rules (cell
identity includes `basis`), derives `Y`, `v`, the TTM and the dollar chain as contract v2 §3
defines them with exact decimals, prints each statement with the published and the computed
figure, checks the shape described here (no January, breakdowns cumulative only, month
figures from March, the gaps above, the flash/formal pairs) and that this set and
`data/sample/` give the same headline figures; it exits non-zero on any failure. With
`--records FILE` it also writes every `trade`, `trade_leaders` and `freight` record it
derives (JSON lines `{"key", "record"}`, money as exact strings, percentages as JSON numbers),
to compare an engine's output with.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "data" / "releases")
    args = ap.parse_args()
    trade, freight, fx, gap_lines, flash_lines = build()
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "trade.jsonl", trade)
    write_jsonl(args.out / "freight.jsonl", freight)
    write_jsonl(args.out / "fx.jsonl", fx)
    (args.out / "README.md").write_text(readme(trade, freight, fx, gap_lines, flash_lines),
                                        encoding="utf-8", newline="\n")
    print(f"wrote {args.out}: trade.jsonl={len(trade)} freight.jsonl={len(freight)} "
          f"fx.jsonl={len(fx)} events")


if __name__ == "__main__":
    main()
