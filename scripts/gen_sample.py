#!/usr/bin/env python3
"""Generate silkroute's bundled sample data set (a RECONSTRUCTION, not published data).

Writes data/sample/{trade,freight,fx}.jsonl and data/sample/README.md, one JSON event per
line, in the event formats of contract §2. The data cover every month 2023-01 … 2024-09.

What is published (Global Times, 24 Oct 2024, citing Urumqi Customs / CCTV News) are only the
January–September 2024 aggregates of the bulletin (13 statements, listed in the README this
script writes). Every monthly value
here is invented so that, after applying the contract's revision rules and computing the
indicators of contract §3 at period 2024-09, those published aggregates come out exactly as
published. `scripts/check_sample.py` verifies that independently.

The figures themselves come from scripts/sample_model.py, which scripts/gen_releases.py
shapes as customs release them (data/releases/); this script writes them month by month.

Deterministic: standard library only, one fixed seed, all money in integer fen (1 yuan =
100 fen) so YTD targets are hit exactly. Running it twice gives byte-identical files.

    python3 scripts/gen_sample.py            # writes data/sample/ next to scripts/
    python3 scripts/gen_sample.py --out DIR  # writes elsewhere
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sample_model import (COMMODITY_EXPORT, COMMODITY_IMPORT, ENTERPRISE_TYPE, PARTNER_GROUP,
                          PARTNER_REGION, PERIODS, PROVINCES, SEED, SOURCE, XJ, Model, money,
                          trade_event, write_jsonl)

# ---------------------------------------------------------------------------------------------
# Revision examples: (period, region, flow, dimension, member, preliminary factor in ppm).
# The preliminary value is sent first with "revision": 0 in the regular place of the cell;
# the final value follows at the end of that period's block with "revision": 1.
REVISIONS = [
    ("2024-07", XJ, "import", "total", None, 1_021_500),
    ("2024-08", XJ, "total", "enterprise_type", "private", 987_300),
    ("2024-09", XJ, "export", "total", None, 985_000),
    ("2024-09", XJ, "total", "partner_group", "belt_and_road", 990_400),
]
# After the revision 1 of this cell, the revision 0 is delivered again (a replay): it is
# stale and must be ignored. Highest revision wins, not the last in the file.
STALE_REPLAY = ("2024-07", XJ, "import", "total", None)

def build(seed: int = SEED):
    model = Model(seed)
    rev_by_key = {(p, r, f, d, m): ppm for (p, r, f, d, m, ppm) in REVISIONS}
    trade: list[dict] = []
    revision_lines: list[tuple[str, int, int]] = []  # (cell text, line of rev 0, line of rev 1)
    for p in PERIODS:
        finals = []
        for (r, flow, d, m), v in model.trade[p]:
            key = (p, r, flow, d, m)
            if key in rev_by_key:
                prelim = v * rev_by_key[key] // 1_000_000
                assert prelim != v
                trade.append(trade_event(r, p, flow, d, m, prelim, revision=0))
                finals.append((key, len(trade), v, prelim))
            else:
                trade.append(trade_event(r, p, flow, d, m, v))
        for key, line0, v, prelim in finals:
            (pp, r, flow, d, m) = key
            trade.append(trade_event(r, pp, flow, d, m, v, revision=1))
            revision_lines.append((key, line0, len(trade), prelim, v))
            if (pp, r, flow, d, m) == STALE_REPLAY:
                trade.append(trade_event(r, pp, flow, d, m, prelim, revision=0))
                revision_lines.append((key, len(trade), None, prelim, None))

    freight_events = []
    for p in PERIODS:
        for port in Model.PORTS:
            freight_events.append({"type": "freight_trains", "port": port, "period": p,
                                   "trains": model.freight[(port, p)], "source": SOURCE})
    fx_events = [{"type": "fx_rate", "currency": "USD", "period": p,
                  "cny_per_unit": str(model.fx[p]), "source": SOURCE} for p in PERIODS]
    return trade, freight_events, fx_events, revision_lines, model.growth


def readme(trade, freight, fx, revision_lines) -> str:
    def cell(key):
        p, r, flow, d, m = key
        return f"`{r}` {p} flow `{flow}` dimension `{d}`" + (f" member `{m}`" if m else "")

    rev_rows = []
    for key, line0, line1, prelim, final in revision_lines:
        if line1 is None:
            rev_rows.append(f"| {cell(key)} | {line0} | — | {money(prelim)} (revision 0 "
                            f"again, a stale replay: must be ignored) | |")
        else:
            rev_rows.append(f"| {cell(key)} | {line0} | {line1} | {money(prelim)} | "
                            f"{money(final)} |")
    rev_table = "\n".join(rev_rows)
    return f"""# Sample data — a RECONSTRUCTION, not published data

**The monthly values in these files are invented.** What was published (Global Times,
24 October 2024, citing Urumqi Customs and CCTV News) are only the January–September 2024
aggregates for Xinjiang and the Khorgos freight trains listed below (the 13 statements of
the project's bulletin). Customs did not publish the monthly splits, the partner-region,
commodity or province figures used here, nor these exchange rates. This data set was
generated so that, after applying the contract's revision rules and computing the indicators
of contract §3 at period `2024-09`, the published figures come out exactly as published
(322.39 bn yuan, $44.17 bn, +29 %, rank 1, …). Every other number — other provinces,
other months, other members, Alashankou — is plausible filler, not a statistic. Do not cite
any of it as data.

All events carry `"source": "reconstruction"`.

## What is published (period 2024-09, January–September 2024)

| # | statement | indicator (contract §3) |
|---|---|---|
| 1 | Xinjiang's imports and exports: 322.39 billion yuan | `trade/XJ/total/total/-/2024-09` `ytd_cny` |
| 2 | …which is $44.17 billion | same record, `ytd_usd` |
| 3 | up 29 % year on year | same record, `ytd_yoy_pct` |
| 4 | first nationwide in cumulative growth | same record, `yoy_rank` = 1 (CN excluded) |
| 5 | Belt and Road partners: 297.85 bn yuan, +25.8 %, 92.4 % of the total | `partner_group` / `belt_and_road` |
| 6 | Central and Eastern Europe led partner growth at +437.1 % | `trade_leaders` `partner_region`, first of `by_yoy`: `central_eastern_europe` |
| 7 | private enterprises: 298.35 bn yuan, +28.2 %, 92.5 % of the total | `enterprise_type` / `private` |
| 8 | state-owned enterprises: 21.68 bn yuan, +42.6 % | `enterprise_type` / `state_owned` |
| 9 | foreign-invested enterprises: 1.87 bn yuan, +19.4 % | `enterprise_type` / `foreign_invested` |
| 10 | exports led by labour-intensive and electromechanical products | export `commodity` `by_share`: `labour_intensive`, `electromechanical` |
| 11 | imports dominated by bulk commodities | import `commodity` `by_share` first: `bulk_commodities` |
| 12 | 6,269 China–Europe trains through Khorgos, +8.1 % | `freight/khorgos/china_europe/2024-09` |
| 13 | above 600 trains a month for 12 consecutive months | same record, `streak_months` = 12 |

The January–September 2023 values follow from the published growth rates (XJ total
249.91 bn yuan, Belt and Road 236.77 bn, private 232.72 bn, state-owned 15.20 bn,
foreign-invested 1.56616 bn, Central and Eastern Europe 1.00 bn against 5.371 bn in 2024,
Khorgos 5,799 trains); everything else is chosen freely.

## Files

One JSON event per line (contract §2), ordered chronologically by `period`
(2023-01 … 2024-09, 21 months).

| file | events | content |
|---|---|---|
| `trade.jsonl` | {len(trade)} | `customs_trade` |
| `freight.jsonl` | {len(freight)} | `freight_trains` |
| `fx.jsonl` | {len(fx)} | `fx_rate` |

### `trade.jsonl` — `customs_trade`

Every month 2023-01 … 2024-09. Money is `value_cny`, a decimal string with exactly two
decimals; there are no `value_usd` fields.

- Regions: the 31 provinces `{' '.join(PROVINCES)}` and the national `CN`.
- Every region: dimension `total`, flows `import` and `export` (the `total` flow is derived as
  import + export). `CN` also has an explicit `flow: "total"` cell each month equal to its
  import + export; `CN` is the sum of the provinces plus a small unattributed remainder.
  Every province other than `XJ` grows between about −10 % and +20 % (Jan–Sep 2024 on
  Jan–Sep 2023), so Xinjiang's +29 % ranks first; `CN` is left out of the ranking
  (`ranking.exclude_regions`).
- Xinjiang (`XJ`) breakdowns, explicit `flow: "total"` cells that add up each month exactly
  to XJ's import + export:
  - dimension `partner_group`: `{'`, `'.join(PARTNER_GROUP)}`
  - dimension `partner_region`: `{'`, `'.join(PARTNER_REGION)}`
  - dimension `enterprise_type`: `{'`, `'.join(ENTERPRISE_TYPE)}`
- Xinjiang dimension `commodity`:
  - flow `export` (adds up each month to XJ's export): `{'`, `'.join(COMMODITY_EXPORT)}`
  - flow `import` (adds up each month to XJ's import): `{'`, `'.join(COMMODITY_IMPORT)}`

### `freight.jsonl` — `freight_trains`

Ports `khorgos` and `alashankou`, no `service` field (so `china_europe`), every month.
Khorgos: 6,269 trains in Jan–Sep 2024 against 5,799 in Jan–Sep 2023 (+8.1 %); every month
from October 2023 to September 2024 above 600, September 2023 not (so the streak at 2024-09
is exactly 12). Alashankou is filler.

### `fx.jsonl` — `fx_rate`

`USD`, `cny_per_unit` as a decimal string with 4 decimals, every month. The 2024 rates are
set near 7.299, the rate the bulletin implies (322.39 bn yuan = $44.17 bn), so that XJ's
`ytd_usd` at 2024-09 (each month's yuan total / that month's rate, rounded half-to-even to the
cent, summed) rounds to $44.17 bn. They are not official rates.

## Revision examples (in `trade.jsonl`)

Each cell below is first sent with `"revision": 0` and a preliminary value in its regular
place, then again with `"revision": 1` and the final value at the end of the same period's
block. Only the final values give the published figures. One preliminary event is then
replayed after its revision 1: it is stale, and a consumer that simply kept the last event
would get the wrong figure.

| cell | line of revision 0 | line of revision 1 | preliminary value_cny | final value_cny |
|---|---|---|---|---|
{rev_table}

## Regenerate and check

    python3 scripts/gen_sample.py     # rewrites these files, byte-identical (fixed seed {SEED})
    python3 scripts/check_sample.py   # recomputes the 13 statements independently

Both use the Python 3.11 standard library only. `check_sample.py` applies the revision rules,
computes the indicators as contract §3 defines them with exact decimals, prints each statement
with the published and the computed figure, and exits non-zero if any does not match.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "data" / "sample")
    args = ap.parse_args()
    trade, freight, fx, revision_lines, _ = build()
    args.out.mkdir(parents=True, exist_ok=True)
    write_jsonl(args.out / "trade.jsonl", trade)
    write_jsonl(args.out / "freight.jsonl", freight)
    write_jsonl(args.out / "fx.jsonl", fx)
    (args.out / "README.md").write_text(readme(trade, freight, fx, revision_lines),
                                        encoding="utf-8", newline="\n")
    print(f"wrote {args.out}: trade.jsonl={len(trade)} freight.jsonl={len(freight)} "
          f"fx.jsonl={len(fx)} events")


if __name__ == "__main__":
    main()
