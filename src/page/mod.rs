//! The page: what `GET /` shows live and `silkroute report` writes to a file.
//!
//! [`View::build`] turns indicator records (as [`crate::engine::Engine::select`] returns them,
//! on the service or offline) into a view model for one region and period: the headline, the
//! year to date against last year month by month, the composition of each breakdown, the
//! leaders lists, every province's growth ranked and each port's trains. [`html`] renders it,
//! charts drawn by plotters as inline SVG, each with a table of its figures. The view reads
//! only records, so it shows whatever the engine publishes.
//!
//! Which region and period: the ones asked for, else the region with the most series (trade
//! records) at its latest complete period, and that period. A period is *complete* for a
//! region when its `trade/{region}/total/total/-` record's year to date is known from January
//! (`ytd_basis` is `reported` or `derived`, not `partial`): a year still missing a month is
//! not yet a period to headline.

pub mod chart;
pub mod format;
pub mod html;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use crate::engine::record::{FreightRecord, LeadersRecord, Record, TradeRecord, YtdBasis};
use crate::money::Hundredths;
use crate::period::Period;

/// The region and period asked for; either may be left to the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Choice {
    pub region: Option<String>,
    pub period: Option<Period>,
}

/// One region's figures at one period, as the page shows them.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    pub region: Arc<str>,
    pub period: Period,
    /// Every region with a total record, for the chooser.
    pub regions: Vec<Arc<str>>,
    /// The chosen region's periods with a total record, latest first.
    pub periods: Vec<Period>,
    pub headline: Option<Headline>,
    pub ytd: Vec<YtdMonth>,
    pub breakdowns: Vec<Breakdown>,
    pub leaders: Vec<Leaders>,
    pub provinces: Vec<Province>,
    pub ports: Vec<Port>,
}

/// The region's whole trade at the period (`total` dimension), with its two flows.
#[derive(Clone, Debug, PartialEq)]
pub struct Headline {
    pub ytd_cny: Hundredths,
    pub months_in_ytd: u32,
    pub ytd_usd: Option<Hundredths>,
    pub ytd_yoy_pct: Option<f64>,
    /// Growth in dollar terms.
    pub ytd_usd_yoy_pct: Option<f64>,
    pub yoy_rank: Option<u32>,
    pub yoy_rank_of: Option<u32>,
    pub exports: Option<FlowFigure>,
    pub imports: Option<FlowFigure>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct FlowFigure {
    pub ytd_cny: Hundredths,
    pub ytd_yoy_pct: Option<f64>,
}

/// Year to date at one month of the period's year and of the year before.
#[derive(Clone, Debug, PartialEq)]
pub struct YtdMonth {
    pub month: u32,
    pub this_year: Option<Hundredths>,
    pub last_year: Option<Hundredths>,
    pub yoy_pct: Option<f64>,
}

/// One breakdown of one flow: every member's year to date, share and growth.
#[derive(Clone, Debug, PartialEq)]
pub struct Breakdown {
    pub flow: &'static str,
    pub dimension: Arc<str>,
    /// Largest first.
    pub members: Vec<Member>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Member {
    pub member: Arc<str>,
    pub ytd_cny: Hundredths,
    pub share_pct: Option<f64>,
    pub ytd_yoy_pct: Option<f64>,
}

/// A `trade_leaders` record as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct Leaders {
    pub flow: &'static str,
    pub dimension: Arc<str>,
    pub members_ranked: u32,
    pub by_share: Vec<(Arc<str>, Option<f64>)>,
    pub by_yoy: Vec<(Arc<str>, f64)>,
}

/// A ranked region's growth at the period.
#[derive(Clone, Debug, PartialEq)]
pub struct Province {
    pub region: Arc<str>,
    pub rank: u32,
    pub ytd_yoy_pct: f64,
    pub chosen: bool,
}

/// One port's service at the period, with its months up to it.
#[derive(Clone, Debug, PartialEq)]
pub struct Port {
    pub port: Arc<str>,
    pub service: Arc<str>,
    pub ytd_trains: u64,
    pub prior_ytd_trains: Option<u64>,
    pub ytd_yoy_pct: Option<f64>,
    pub streak_months: u32,
    pub streak_threshold: u32,
    /// The months shown (up to 24, ending at the period), oldest first.
    pub months: Vec<(Period, Option<i64>)>,
}

/// Months of trains shown per port.
const PORT_MONTHS: u32 = 24;

fn is_total(t: &TradeRecord) -> bool {
    &*t.dimension == "total" && t.member.is_none()
}

/// The region's `flow: total` whole-trade record at each period.
fn totals<'a>(trade: &'a [Record], region: &str) -> impl Iterator<Item = &'a TradeRecord> + 'a {
    let region = region.to_string();
    trade.iter().filter_map(move |r| match r {
        Record::Trade(t) if t.flow == "total" && is_total(t) && *t.region == *region => Some(t),
        _ => None,
    })
}

/// `Y(M)` is known: reported, or derived from January on.
fn complete(t: &TradeRecord) -> bool {
    t.ytd_basis != YtdBasis::Partial
}

/// The region and period to show for `choice`, from the trade records; `None` while there
/// is no total record at all.
pub fn resolve(trade: &[Record], choice: &Choice) -> Option<(Arc<str>, Period)> {
    // Per region: its latest complete period (else its latest), and the series there.
    let mut latest: BTreeMap<Arc<str>, (bool, Period)> = BTreeMap::new();
    for r in trade {
        if let Record::Trade(t) = r {
            if t.flow == "total" && is_total(t) {
                let candidate = (complete(t), t.period);
                let e = latest.entry(t.region.clone()).or_insert(candidate);
                *e = (*e).max(candidate);
            }
        }
    }
    let region = match choice.region.as_deref() {
        Some(asked) => latest.keys().find(|r| ***r == *asked)?.clone(),
        None => {
            let mut series: BTreeMap<(&str, Period), usize> = BTreeMap::new();
            for r in trade {
                if let Record::Trade(t) = r {
                    *series.entry((&*t.region, t.period)).or_default() += 1;
                }
            }
            // Most series; then the later period; then the first code.
            latest
                .iter()
                .max_by_key(|(region, (_, p))| {
                    let n = series.get(&(&***region, *p)).copied().unwrap_or(0);
                    (n, *p, std::cmp::Reverse(region.to_string()))
                })?
                .0
                .clone()
        }
    };
    let period = choice.period.unwrap_or(latest[&region].1);
    Some((region, period))
}

impl View {
    /// The view of `region` at `period` from trade records (every region, every period:
    /// what the chooser, the year-to-date chart and the provinces need), the region's leaders
    /// records at the period, and freight records (every port, every period).
    pub fn build(
        trade: &[Record],
        leaders: &[Record],
        freight: &[Record],
        region: Arc<str>,
        period: Period,
    ) -> View {
        let mut regions: Vec<Arc<str>> = trade
            .iter()
            .filter_map(|r| match r {
                Record::Trade(t) if is_total(t) => Some(t.region.clone()),
                _ => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        regions.sort_by_key(|r| format::region(r));
        let mut periods: Vec<Period> = totals(trade, &region).map(|t| t.period).collect();
        periods.sort_unstable_by(|a, b| b.cmp(a));
        periods.dedup();

        let whole = |flow: &str, p: Period| {
            trade.iter().find_map(|r| match r {
                Record::Trade(t)
                    if *t.region == *region && t.flow == flow && is_total(t) && t.period == p =>
                {
                    Some(t)
                }
                _ => None,
            })
        };
        let flow_figure = |flow| {
            whole(flow, period).map(|t: &TradeRecord| FlowFigure {
                ytd_cny: t.ytd_cny,
                ytd_yoy_pct: t.ytd_yoy_pct,
            })
        };
        let headline = whole("total", period).map(|t| Headline {
            ytd_cny: t.ytd_cny,
            months_in_ytd: t.months_in_ytd,
            ytd_usd: t.ytd_usd,
            ytd_yoy_pct: t.ytd_yoy_pct,
            ytd_usd_yoy_pct: t.ytd_usd_yoy_pct,
            yoy_rank: t.yoy_rank,
            yoy_rank_of: t.yoy_rank_of,
            exports: flow_figure("export"),
            imports: flow_figure("import"),
        });

        // This year's months up to the period; last year's all twelve.
        let ytd = (1..=12)
            .map(|month| {
                let this = (month <= period.month())
                    .then(|| whole("total", Period::new(period.year(), month)))
                    .flatten()
                    .filter(|t| complete(t));
                let last = period
                    .year()
                    .checked_sub(1)
                    .and_then(|y| whole("total", Period::new(y, month)))
                    .filter(|t| complete(t));
                YtdMonth {
                    month,
                    this_year: this.map(|t| t.ytd_cny),
                    last_year: last.map(|t| t.ytd_cny),
                    yoy_pct: this.and_then(|t| t.ytd_yoy_pct),
                }
            })
            .collect();

        let mut groups: BTreeMap<(usize, Arc<str>, usize), Breakdown> = BTreeMap::new();
        for r in trade {
            let Record::Trade(t) = r else { continue };
            let Some(member) = &t.member else { continue };
            if *t.region != *region || t.period != period || &*t.dimension == "total" {
                continue;
            }
            groups
                .entry((
                    dimension_order(&t.dimension),
                    t.dimension.clone(),
                    flow_order(t.flow),
                ))
                .or_insert_with(|| Breakdown {
                    flow: t.flow,
                    dimension: t.dimension.clone(),
                    members: Vec::new(),
                })
                .members
                .push(Member {
                    member: member.clone(),
                    ytd_cny: t.ytd_cny,
                    share_pct: t.share_pct,
                    ytd_yoy_pct: t.ytd_yoy_pct,
                });
        }
        let breakdowns = groups
            .into_values()
            .map(|mut b| {
                b.members
                    .sort_by(|x, y| y.ytd_cny.0.cmp(&x.ytd_cny.0).then(x.member.cmp(&y.member)));
                b
            })
            .collect();

        let mut leaders: Vec<(usize, usize, Leaders)> = leaders
            .iter()
            .filter_map(|r| match r {
                Record::Leaders(l) if *l.region == *region && l.period == period => Some(l),
                _ => None,
            })
            .map(|l: &LeadersRecord| {
                (
                    dimension_order(&l.dimension),
                    flow_order(l.flow),
                    Leaders {
                        flow: l.flow,
                        dimension: l.dimension.clone(),
                        members_ranked: l.members_ranked,
                        by_share: l
                            .by_share
                            .iter()
                            .map(|m| (m.member.clone(), m.share_pct))
                            .collect(),
                        by_yoy: l
                            .by_yoy
                            .iter()
                            .map(|m| (m.member.clone(), m.ytd_yoy_pct))
                            .collect(),
                    },
                )
            })
            .collect();
        leaders.sort_by(|a, b| (a.0, &a.2.dimension, a.1).cmp(&(b.0, &b.2.dimension, b.1)));

        let mut provinces: Vec<Province> = trade
            .iter()
            .filter_map(|r| match r {
                Record::Trade(t) if t.flow == "total" && is_total(t) && t.period == period => {
                    Some(Province {
                        region: t.region.clone(),
                        rank: t.yoy_rank?,
                        ytd_yoy_pct: t.ytd_yoy_pct?,
                        chosen: t.region == region,
                    })
                }
                _ => None,
            })
            .collect();
        provinces.sort_by(|a, b| (a.rank, &a.region).cmp(&(b.rank, &b.region)));

        let ports = ports(freight, period);
        View {
            region,
            period,
            regions,
            periods,
            headline,
            ytd,
            breakdowns,
            leaders: leaders.into_iter().map(|(_, _, l)| l).collect(),
            provinces,
            ports,
        }
    }
}

/// One port service's records by month.
type Months<'a> = BTreeMap<Period, &'a FreightRecord>;

fn ports(freight: &[Record], period: Period) -> Vec<Port> {
    let mut series: BTreeMap<(Arc<str>, Arc<str>), Months<'_>> = BTreeMap::new();
    for r in freight {
        if let Record::Freight(f) = r {
            if f.period <= period {
                series
                    .entry((f.port.clone(), f.service.clone()))
                    .or_default()
                    .insert(f.period, f);
            }
        }
    }
    series
        .into_iter()
        .filter_map(|((port, service), months)| {
            let now = months.get(&period)?;
            let first = period.minus(PORT_MONTHS - 1).unwrap_or(Period(0));
            let first = months.keys().next().map_or(first, |p| (*p).max(first));
            let shown = (first.0..=period.0)
                .map(Period)
                .map(|p| (p, months.get(&p).and_then(|f| f.month_trains)))
                .collect();
            Some(Port {
                port,
                service,
                ytd_trains: now.ytd_trains,
                prior_ytd_trains: now.prior_ytd_trains,
                ytd_yoy_pct: now.ytd_yoy_pct,
                streak_months: now.streak_months,
                streak_threshold: now.streak_threshold,
                months: shown,
            })
        })
        .collect()
}

/// The breakdowns in the order a trade bulletin gives them; others after, by name.
fn dimension_order(dimension: &str) -> usize {
    match dimension {
        "partner_group" => 0,
        "partner_region" => 1,
        "enterprise_type" => 2,
        "commodity" => 3,
        _ => 4,
    }
}

fn flow_order(flow: &str) -> usize {
    match flow {
        "total" => 0,
        "export" => 1,
        _ => 2,
    }
}
