//! Every metric silkroute exports (§5), defined in one place.
//!
//! Labels are bounded sets (topics, partitions, reason codes, record kinds, and the series
//! present in the data), never raw error text. Business gauges follow each series' latest
//! period: a record for an older period (a restatement of last year) does not move them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus::core::Collector;
use prometheus::process_collector::ProcessCollector;
use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rustc_hash::FxHashMap;

use crate::engine::record::{Record, RecordKind, SeriesKey};
use crate::engine::SeriesSlot;
use crate::event::Reason;
use crate::period::Period;
use crate::retry::{Cause, OperatorError, BACKOFF_MAX};

/// How long an operator error stays reported after its last attempt failed: more than two
/// backoffs at the cap, so that one that persists never blinks off between attempts.
pub const OPERATOR_ERROR_HOLD: Duration = Duration::from_secs(2 * BACKOFF_MAX.as_secs() + 10);

/// With lag and no progress for this long, `/readyz` answers 503: a stuck loop must not hide
/// behind `/healthz` 200.
pub const STALLED_UNREADY_AFTER: Duration = Duration::from_secs(60);

pub struct Metrics {
    registry: Registry,
    pub events_consumed: IntCounterVec,
    pub events_rejected: IntCounterVec,
    pub events_ignored: IntCounterVec,
    pub indicators_published: IntCounterVec,
    pub consumer_lag: IntGaugeVec,
    pub processing_duration: Histogram,
    pub last_event_timestamp: Gauge,
    pub state_cells: IntGauge,
    pub rebalances: IntCounterVec,
    pub produce_errors: IntCounterVec,
    pub transactions: IntCounterVec,
    pub restore_in_progress: IntGauge,
    pub restore_records: IntCounterVec,
    /// State restores after the first: abort and rewind, or a failed session started again.
    pub restores: IntCounter,
    pub operator_error: IntGaugeVec,
    pub operator_errors: IntCounterVec,
    stalled_seconds: Gauge,
    /// Per operator cause, when it was last reported; cleared by progress or after
    /// [`OPERATOR_ERROR_HOLD`].
    operator_reported: Mutex<HashMap<Cause, Instant>>,
    /// When processing last moved input forward (or had nothing to move).
    progress: Mutex<Instant>,
    /// Batches with input committed: a session that failed after some did not fail at once.
    progress_batches: std::sync::atomic::AtomicU64,
    trade_ytd: GaugeVec,
    trade_yoy: GaugeVec,
    trade_share: GaugeVec,
    trade_rank: GaugeVec,
    trade_gap: GaugeVec,
    freight_month: GaugeVec,
    freight_ytd: GaugeVec,
    freight_yoy: GaugeVec,
    freight_streak: GaugeVec,
    freight_threshold: GaugeVec,
    /// Per business series this instance publishes: its latest record, and whether the gauges
    /// still have to be moved to it. Setting the gauges costs several label lookups; a
    /// backfill changes a series many times between two scrapes, so the scrape sets them.
    latest: Mutex<Series>,
    /// Held while gauges are set or removed, so that a scrape's update and the removal of a
    /// series that moved to another instance cannot interleave.
    gauges: Mutex<()>,
}

/// What a rebalance did to this instance's partitions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rebalanced {
    Assign,
    Revoke,
}

/// One business series' gauges as the scrape will set them. The labels are kept once, when
/// the series is first noted; a later record of the series moves only `period` and `values`
/// (a few numbers), where a clone of the whole record was 8 % of a backfill's processing
/// (issue 17).
struct Latest {
    labels: Labels,
    period: Period,
    values: Values,
    pending: bool,
}

enum Labels {
    Trade {
        region: Arc<str>,
        flow: &'static str,
        dimension: Arc<str>,
        member: Option<Arc<str>>,
    },
    Freight {
        port: Arc<str>,
        service: Arc<str>,
    },
}

impl Labels {
    fn of(record: &Record) -> Option<Labels> {
        match record {
            Record::Trade(r) => Some(Labels::Trade {
                region: r.region.clone(),
                flow: r.flow,
                dimension: r.dimension.clone(),
                member: r.member.clone(),
            }),
            Record::Freight(r) => Some(Labels::Freight {
                port: r.port.clone(),
                service: r.service.clone(),
            }),
            Record::Leaders(_) => None,
        }
    }

    /// `area`, `flow`, `dimension`, `member` of a trade series, `port`, `service` of a
    /// freight series.
    fn names(&self) -> Vec<&str> {
        match self {
            Labels::Trade {
                region,
                flow,
                dimension,
                member,
            } => vec![region, flow, dimension, member.as_deref().unwrap_or("")],
            Labels::Freight { port, service } => vec![port, service],
        }
    }
}

/// What a series' gauges show; `None` is an absent series, never 0.
#[derive(Clone, Copy)]
enum Values {
    Trade {
        ytd: f64,
        yoy: Option<f64>,
        share: Option<f64>,
        gap: Option<f64>,
        /// Shown for a region's total only (its labels have no member).
        rank: Option<f64>,
    },
    Freight {
        month: Option<f64>,
        ytd: f64,
        yoy: Option<f64>,
        streak: f64,
        threshold: f64,
    },
}

impl Values {
    fn of(record: &Record) -> Option<Values> {
        match record {
            Record::Trade(r) => Some(Values::Trade {
                ytd: r.ytd_cny.0 as f64 / 100.0,
                yoy: r.ytd_yoy_pct.map(|p| p / 100.0),
                share: r.share_pct.map(|p| p / 100.0),
                gap: r.ytd_gap_cny.map(|g| g.0 as f64 / 100.0),
                rank: r.yoy_rank.map(f64::from),
            }),
            Record::Freight(r) => Some(Values::Freight {
                month: r.month_trains.map(|t| t as f64),
                ytd: r.ytd_trains as f64,
                yoy: r.ytd_yoy_pct.map(|p| p / 100.0),
                streak: f64::from(r.streak_months),
                threshold: f64::from(r.streak_threshold),
            }),
            Record::Leaders(_) => None,
        }
    }
}

/// The business series noted: each one's [`Latest`], found by its key or, faster, by the
/// engine's [`SeriesSlot`]. A flush visits an engine's series in about the order the engine
/// first held them, so the slots read `latest` almost in order; the key's map was a cache
/// miss per record (perf annotate: 74 % of the notes' samples on its bucket's first load).
#[derive(Default)]
struct Series {
    latest: Vec<Latest>,
    by_key: FxHashMap<SeriesKey, u32>,
    /// The engine whose slots `slots` maps; another engine's restart them.
    engine: Option<u64>,
    /// Per [`SeriesSlot::Trade`] and per [`SeriesSlot::Freight`] of `engine` (see
    /// [`Series::place`]): its place in `latest` plus one, 0 while the slot has not been noted.
    slots: [Vec<u32>; 2],
}

impl Series {
    /// Where `slot` (of the current engine) points in `latest`, if it was noted.
    fn by_slot(&self, slot: SeriesSlot) -> Option<usize> {
        let (map, i) = Series::place(slot);
        match self.slots[map].get(i) {
            Some(&at) if at > 0 => Some(at as usize - 1),
            _ => None,
        }
    }

    fn remember(&mut self, slot: SeriesSlot, at: usize) {
        let (map, i) = Series::place(slot);
        let map = &mut self.slots[map];
        if map.len() <= i {
            map.resize(i + 1, 0);
        }
        map[i] = at as u32 + 1;
    }

    /// Which of `slots` maps `slot`, and where in it.
    fn place(slot: SeriesSlot) -> (usize, usize) {
        match slot {
            SeriesSlot::Trade(i) => (0, i as usize),
            SeriesSlot::Freight(i) => (1, i as usize),
        }
    }

    /// Forgets every slot: they belong to another engine, or `latest` moved.
    fn forget_slots(&mut self) {
        self.slots.iter_mut().for_each(Vec::clear);
    }
}

/// See [`Metrics::observer`].
pub struct Observer<'a>(std::sync::MutexGuard<'a, Series>);

impl Observer<'_> {
    /// One record, published under `key` (or equal to what Kafka holds for it), with its
    /// series' slot in the engine the observer was made for, if it has one.
    pub fn note(&mut self, key: &str, record: &Record, slot: Option<SeriesSlot>) {
        let Some(values) = Values::of(record) else {
            return;
        };
        let period = record.period();
        let series = &mut *self.0;
        let at = match slot.and_then(|s| series.by_slot(s)) {
            Some(at) => at,
            None => {
                // The series sliced from the key: no allocation unless the series is new here.
                let at = match series.by_key.get(SeriesKey::of_key(key)) {
                    Some(&at) => at as usize,
                    None => {
                        let Some(labels) = Labels::of(record) else {
                            return;
                        };
                        series
                            .by_key
                            .insert(record.series(), series.latest.len() as u32);
                        series.latest.push(Latest {
                            labels,
                            period,
                            values,
                            pending: true,
                        });
                        series.latest.len() - 1
                    }
                };
                if let Some(s) = slot {
                    series.remember(s, at);
                }
                at
            }
        };
        let l = &mut series.latest[at];
        if l.period <= period {
            l.period = period;
            l.values = values;
            l.pending = true;
        }
    }
}

/// Registers `metric` and hands it back, so that each metric below is one entry.
fn registered<M: Collector + Clone + 'static>(
    registry: &Registry,
    metric: prometheus::Result<M>,
) -> M {
    let metric = metric.expect("valid metric");
    registry
        .register(Box::new(metric.clone()))
        .expect("unique metric");
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(registry, IntCounterVec::new(Opts::new(name, help), labels))
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    registered(registry, GaugeVec::new(Opts::new(name, help), labels))
}

const TRADE_LABELS: [&str; 4] = ["area", "flow", "dimension", "member"];
const FREIGHT_LABELS: [&str; 2] = ["port", "service"];

impl Metrics {
    /// Every metric, one entry each: name, help, labels (§5 lists them for users).
    // Kept as a table, one metric a line, rather than rustfmt's six lines a call.
    #[rustfmt::skip]
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let r = &registry;
        registered(
            r,
            IntGaugeVec::new(
                Opts::new("silkroute_build_info", "Build information; the value is always 1."),
                &["version"],
            ),
        )
        .with_label_values(&[env!("CARGO_PKG_VERSION")])
        .set(1);
        let _ = registry.register(Box::new(ProcessCollector::for_self()));
        let m = Metrics {
            events_consumed: counter(r, "silkroute_events_consumed_total", "Input messages consumed, by input topic.", &["topic"]),
            events_rejected: counter(r, "silkroute_events_rejected_total", "Input messages dead-lettered, by reason.", &["reason"]),
            events_ignored: counter(r, "silkroute_events_ignored_total", "Valid events ignored as stale or duplicate.", &["reason"]),
            indicators_published: counter(r, "silkroute_indicators_published_total", "Indicator records acknowledged by Kafka, by kind.", &["kind"]),
            consumer_lag: registered(r, IntGaugeVec::new(
                Opts::new("silkroute_consumer_lag_messages", "Messages between the consumer's position and the partition end (librdkafka statistics)."),
                &["topic", "partition"],
            )),
            processing_duration: registered(r, Histogram::with_opts(
                HistogramOpts::new("silkroute_processing_duration_seconds", "From a message received to its indicators acknowledged by Kafka.")
                    .buckets(vec![0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]),
            )),
            last_event_timestamp: registered(r, Gauge::new("silkroute_last_event_timestamp_seconds", "Kafka timestamp of the last event consumed.")),
            state_cells: registered(r, IntGauge::new("silkroute_state_cells", "Cells held in the engine's state.")),
            rebalances: counter(r, "silkroute_rebalances_total", "Consumer group rebalances seen, by event.", &["event"]),
            produce_errors: counter(r, "silkroute_produce_errors_total", "Records Kafka refused or timed out, by target topic.", &["topic"]),
            transactions: counter(r, "silkroute_transactions_total", "Kafka transactions ended, by outcome (always 0 in at_least_once mode).", &["outcome"]),
            restore_in_progress: registered(r, IntGauge::new("silkroute_restore_in_progress", "1 while state is being restored at start.")),
            restore_records: counter(r, "silkroute_restore_records_total", "Records read while restoring state, by source.", &["source"]),
            restores: registered(r, IntCounter::new("silkroute_restores_total", "State restores after the first (abort and rewind, or a failed session started again).")),
            operator_error: registered(r, IntGaugeVec::new(
                Opts::new("silkroute_operator_error", "1 while a failure only an operator can cure persists (missing ACL, deleted topic), by cause."),
                &["cause"],
            )),
            operator_errors: counter(r, "silkroute_operator_errors_total", "Attempts that failed on an operator error, by cause.", &["cause"]),
            stalled_seconds: registered(r, Gauge::new("silkroute_progress_stalled_seconds", "Seconds since processing last moved forward while this instance has consumer lag (0 without lag).")),
            trade_ytd: gauge(r, "silkroute_trade_ytd_yuan", "Year-to-date trade in yuan at the series' latest period.", &TRADE_LABELS),
            trade_yoy: gauge(r, "silkroute_trade_ytd_yoy_ratio", "Year-to-date growth on the prior year (0.29 = 29 %).", &TRADE_LABELS),
            trade_share: gauge(r, "silkroute_trade_share_ratio", "Year-to-date share of the region's total trade (0–1).", &TRADE_LABELS),
            trade_rank: gauge(r, "silkroute_trade_yoy_rank", "National rank by year-to-date growth (1 = highest).", &["area", "flow"]),
            trade_gap: gauge(r, "silkroute_trade_ytd_gap_yuan", "A release's cumulative figure against the previous cumulative plus its month, in yuan (ytd_gap_cny; 0 when consistent).", &TRADE_LABELS),
            freight_month: gauge(r, "silkroute_freight_trains_month", "Trains in the series' latest month.", &FREIGHT_LABELS),
            freight_ytd: gauge(r, "silkroute_freight_trains_ytd", "Trains year to date.", &FREIGHT_LABELS),
            freight_yoy: gauge(r, "silkroute_freight_trains_ytd_yoy_ratio", "Year-to-date train growth on the prior year.", &FREIGHT_LABELS),
            freight_streak: gauge(r, "silkroute_freight_streak_months", "Consecutive months above the streak threshold.", &FREIGHT_LABELS),
            freight_threshold: gauge(r, "silkroute_freight_streak_threshold", "The streak threshold in trains.", &FREIGHT_LABELS),
            operator_reported: Mutex::new(HashMap::new()),
            progress: Mutex::new(Instant::now()),
            progress_batches: Default::default(),
            latest: Mutex::new(Series::default()),
            gauges: Mutex::new(()),
            registry,
        };
        // The series known in advance start at zero, so that dashboards and alerts (rates,
        // absent()) see them from the start.
        for reason in Reason::ALL {
            m.events_rejected.with_label_values(&[reason.as_str()]);
        }
        for reason in ["stale", "duplicate"] {
            m.events_ignored.with_label_values(&[reason]);
        }
        for kind in RecordKind::ALL {
            m.indicators_published.with_label_values(&[kind.as_str()]);
        }
        for event in ["assign", "revoke"] {
            // As `rebalanced` counts them.
            m.rebalances.with_label_values(&[event]);
        }
        for outcome in ["commit", "abort"] {
            m.transactions.with_label_values(&[outcome]);
        }
        for cause in Cause::ALL {
            m.operator_error.with_label_values(&[cause.as_str()]);
            m.operator_errors.with_label_values(&[cause.as_str()]);
        }
        m
    }

    /// Creates the per-topic series at zero, so dashboards and alerts see them from the start.
    pub fn init_topics(&self, inputs: &[&str], outputs: &[&str]) {
        for t in inputs {
            self.events_consumed.with_label_values(&[t]);
        }
        for t in outputs {
            self.produce_errors.with_label_values(&[t]);
        }
    }

    /// An event went to the dead-letter topic: its counter and its log line, in one place.
    pub fn dead_lettered(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        reason: Reason,
        detail: &str,
    ) {
        self.events_rejected
            .with_label_values(&[reason.as_str()])
            .inc();
        tracing::warn!(topic, partition, offset, reason = %reason, detail, "Event dead-lettered.");
    }

    /// The group assigned or revoked partitions (`partitions` spelled for the log): its
    /// counter and its log line.
    pub fn rebalanced(&self, event: Rebalanced, partitions: &str) {
        let (label, message) = match event {
            Rebalanced::Assign => ("assign", "Partitions assigned."),
            Rebalanced::Revoke => ("revoke", "Partitions revoked."),
        };
        self.rebalances.with_label_values(&[label]).inc();
        tracing::info!(partitions, "{message}");
    }

    /// An attempt failed on an operator error: one log line naming the cause and the
    /// resource, and the cause's gauge and counter.
    pub fn operator_error(&self, e: &OperatorError, attempt: u32, retry_in: Duration) {
        tracing::error!(
            cause = e.cause.as_str(),
            resource = %e.resource,
            attempt,
            retry_in_ms = retry_in.as_millis() as u64,
            "Kafka refuses silkroute on {} of {}; an operator must act (see docs/operations.md). Retrying.",
            e.cause,
            e.resource
        );
        self.operator_errors
            .with_label_values(&[e.cause.as_str()])
            .inc();
        self.operator_error
            .with_label_values(&[e.cause.as_str()])
            .set(1);
        self.operator_reported
            .lock()
            .expect("metrics lock")
            .insert(e.cause, Instant::now());
    }

    /// True while any operator error persists (reported within [`OPERATOR_ERROR_HOLD`] and not
    /// cleared by progress since).
    pub fn operator_error_active(&self) -> bool {
        let mut reported = self.operator_reported.lock().expect("metrics lock");
        reported.retain(|cause, at| {
            let keep = at.elapsed() < OPERATOR_ERROR_HOLD;
            if !keep {
                self.operator_error
                    .with_label_values(&[cause.as_str()])
                    .set(0);
            }
            keep
        });
        !reported.is_empty()
    }

    /// Processing moved input forward: operator errors are over, and the loop is not stalled.
    pub fn progressed(&self) {
        self.progress_batches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        *self.progress.lock().expect("metrics lock") = Instant::now();
        let mut reported = self.operator_reported.lock().expect("metrics lock");
        for cause in reported.drain().map(|(c, _)| c) {
            self.operator_error
                .with_label_values(&[cause.as_str()])
                .set(0);
        }
    }

    /// Batches with input committed so far.
    pub fn progress_batches(&self) -> u64 {
        self.progress_batches
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// How long processing has not moved while this instance has consumer lag (zero
    /// without lag).
    pub fn stalled_for(&self) -> Duration {
        use prometheus::core::Collector;
        let lag: i64 = self
            .consumer_lag
            .collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|m| m.get_gauge().value() as i64)
            .sum();
        let mut progress = self.progress.lock().expect("metrics lock");
        if lag <= 0 {
            *progress = Instant::now();
        }
        progress.elapsed()
    }

    /// True while processing has been stalled with lag for [`STALLED_UNREADY_AFTER`].
    pub fn stalled(&self) -> bool {
        self.stalled_for() >= STALLED_UNREADY_AFTER
    }

    /// Drops the lag series of the partitions `held` does not admit.
    pub fn retain_lag(&self, held: impl Fn(&str, i32) -> bool) {
        use prometheus::core::Collector;
        let mut gone = Vec::new();
        for family in self.consumer_lag.collect() {
            for m in family.get_metric() {
                let label = |name: &str| {
                    m.get_label()
                        .iter()
                        .find(|l| l.name() == name)
                        .map(|l| l.value().to_string())
                        .unwrap_or_default()
                };
                let (topic, partition) = (label("topic"), label("partition"));
                if !held(&topic, partition.parse().unwrap_or(-1)) {
                    gone.push((topic, partition));
                }
            }
        }
        for (topic, partition) in gone {
            let _ = self.consumer_lag.remove_label_values(&[&topic, &partition]);
        }
    }

    /// The text exposition for `/metrics`.
    pub fn render(&self) -> Vec<u8> {
        self.apply_observed();
        self.operator_error_active();
        self.stalled_seconds
            .set(self.stalled_for().as_secs_f64().floor());
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        buf
    }

    /// Notes records for the business gauges, under one lock for as long as the observer
    /// lives (a batch's flush): each record that is its series' latest period is kept, and
    /// the next [`Metrics::render`] moves the gauges to it. A batch map of its own, filled
    /// first and moved in after, cost a second lookup and a clone per record: about 3 % of a
    /// backfill's drain, on top of this map's 6 %.
    /// `engine` is the [`Engine::generation`](crate::engine::Engine::generation) whose
    /// slots the notes give.
    pub fn observer(&self, engine: u64) -> Observer<'_> {
        let mut series = self.latest.lock().expect("metrics lock");
        if series.engine != Some(engine) {
            series.forget_slots();
            series.engine = Some(engine);
        }
        Observer(series)
    }

    /// Drops the business series this instance no longer publishes (their region or port
    /// moved to another instance with its partition; `region` and `port` say which it still
    /// publishes): the new owner exports them, and a `sum` across instances must count each
    /// series once.
    pub fn retain_series(&self, region: impl Fn(&str) -> bool, port: impl Fn(&str) -> bool) {
        let _gauges = self.gauges.lock().expect("metrics lock");
        let mut series = self.latest.lock().expect("metrics lock");
        let series = &mut *series;
        // Each series' new place in `latest`, by its old one; none for those dropped.
        let old = std::mem::take(&mut series.latest);
        let mut kept = vec![None; old.len()];
        for (i, l) in old.into_iter().enumerate() {
            let keep = match &l.labels {
                Labels::Trade { region: r, .. } => region(r),
                Labels::Freight { port: p, .. } => port(p),
            };
            if keep {
                kept[i] = Some(series.latest.len() as u32);
                series.latest.push(l);
            } else {
                self.remove_gauges(&l.labels);
            }
        }
        series.by_key.retain(|_, at| match kept[*at as usize] {
            Some(now) => {
                *at = now;
                true
            }
            None => false,
        });
        // The slots pointed into `latest` as it was; the next notes find them again by key.
        series.forget_slots();
    }

    /// Moves the business gauges to the records observed since the last call.
    fn apply_observed(&self) {
        let _gauges = self.gauges.lock().expect("metrics lock");
        let mut series = self.latest.lock().expect("metrics lock");
        for l in series.latest.iter_mut().filter(|l| l.pending) {
            l.pending = false;
            self.set_gauges(&l.labels, l.values);
        }
    }

    fn remove_gauges(&self, labels: &Labels) {
        // A label set that was never set (a null ratio) is simply not there.
        let names = labels.names();
        match labels {
            Labels::Trade {
                region,
                flow,
                member,
                ..
            } => {
                for g in [
                    &self.trade_ytd,
                    &self.trade_yoy,
                    &self.trade_share,
                    &self.trade_gap,
                ] {
                    let _ = g.remove_label_values(&names);
                }
                if member.is_none() {
                    let _ = self.trade_rank.remove_label_values(&[&**region, flow]);
                }
            }
            Labels::Freight { .. } => {
                for g in [
                    &self.freight_month,
                    &self.freight_ytd,
                    &self.freight_yoy,
                    &self.freight_streak,
                    &self.freight_threshold,
                ] {
                    let _ = g.remove_label_values(&names);
                }
            }
        }
    }

    fn set_gauges(&self, labels: &Labels, values: Values) {
        fn set(g: &GaugeVec, labels: &[&str], value: Option<f64>) {
            match value {
                Some(v) => g.with_label_values(labels).set(v),
                // A null indicator is an absent series, never 0.
                None => {
                    let _ = g.remove_label_values(labels);
                }
            }
        }
        let names = labels.names();
        match (labels, values) {
            (
                Labels::Trade {
                    region,
                    flow,
                    member,
                    ..
                },
                Values::Trade {
                    ytd,
                    yoy,
                    share,
                    gap,
                    rank,
                },
            ) => {
                set(&self.trade_ytd, &names, Some(ytd));
                set(&self.trade_yoy, &names, yoy);
                set(&self.trade_share, &names, share);
                set(&self.trade_gap, &names, gap);
                if member.is_none() {
                    set(&self.trade_rank, &[&**region, flow], rank);
                }
            }
            (
                Labels::Freight { .. },
                Values::Freight {
                    month,
                    ytd,
                    yoy,
                    streak,
                    threshold,
                },
            ) => {
                set(&self.freight_month, &names, month);
                set(&self.freight_ytd, &names, Some(ytd));
                set(&self.freight_yoy, &names, yoy);
                set(&self.freight_streak, &names, Some(streak));
                set(&self.freight_threshold, &names, Some(threshold));
            }
            // A series' key says its kind: its labels and values are of the same kind.
            _ => {}
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::record::FreightRecord;
    use crate::period::Period;

    fn freight(period: &str, month_trains: u64) -> Record {
        freight_at("khorgos", period, month_trains)
    }

    fn freight_at(port: &str, period: &str, month_trains: u64) -> Record {
        Record::Freight(FreightRecord {
            kind: "freight",
            port: port.into(),
            service: "china_europe".into(),
            period: Period::parse(period).unwrap(),
            month_trains: Some(month_trains as i64),
            ytd_trains: month_trains,
            months_in_ytd: 1,
            ytd_basis: crate::engine::record::YtdBasis::Reported,
            ytd_gap_trains: None,
            prior_ytd_trains: None,
            ytd_yoy_pct: None,
            ttm_trains: None,
            streak_months: 1,
            streak_threshold: 600,
        })
    }

    /// One record observed on its own.
    fn observe(m: &Metrics, record: &Record) {
        m.observer(0).note(&record.key(), record, None);
    }

    /// Whether a scrape of `m` shows Khorgos at `trains` for its latest month.
    fn scrape_shows(m: &Metrics, trains: u64) -> bool {
        let text = String::from_utf8(m.render()).unwrap();
        text.contains(&format!(
            r#"silkroute_freight_trains_month{{port="khorgos",service="china_europe"}} {trains}"#
        ))
    }

    #[test]
    fn a_scrape_shows_each_series_latest_period_whatever_the_order_observed() {
        let m = Metrics::new();
        observe(&m, &freight("2024-09", 650));
        observe(&m, &freight("2024-08", 610));
        assert!(scrape_shows(&m, 650));
        observe(&m, &freight("2024-09", 655));
        assert!(scrape_shows(&m, 655));
    }

    /// Notes `record` as a flush of engine `engine` hands it over, with its series' slot.
    fn observe_at(m: &Metrics, engine: u64, slot: SeriesSlot, record: &Record) {
        m.observer(engine).note(&record.key(), record, Some(slot));
    }

    fn scrape_shows_port(m: &Metrics, port: &str, trains: u64) -> bool {
        let text = String::from_utf8(m.render()).unwrap();
        text.contains(&format!(
            r#"silkroute_freight_trains_month{{port="{port}",service="china_europe"}} {trains}"#
        ))
    }

    #[test]
    fn a_slot_finds_its_series_only_in_the_engine_and_the_series_list_that_gave_it() {
        let m = Metrics::new();
        // Engine 7 holds Khorgos in slot 0 and Alashankou in slot 1.
        observe_at(&m, 7, SeriesSlot::Freight(0), &freight("2024-09", 650));
        observe_at(
            &m,
            7,
            SeriesSlot::Freight(1),
            &freight_at("alashankou", "2024-09", 480),
        );
        observe_at(&m, 7, SeriesSlot::Freight(0), &freight("2024-09", 655));
        assert!(scrape_shows_port(&m, "khorgos", 655));
        assert!(scrape_shows_port(&m, "alashankou", 480));
        // A restore's engine 8 gave slot 0 to Alashankou: Khorgos keeps its trains.
        observe_at(
            &m,
            8,
            SeriesSlot::Freight(0),
            &freight_at("alashankou", "2024-09", 490),
        );
        assert!(scrape_shows_port(&m, "khorgos", 655));
        assert!(scrape_shows_port(&m, "alashankou", 490));
        // Khorgos moved to another instance: Alashankou's place in the list moved with it,
        // and its slot still finds Alashankou.
        m.retain_series(|_| true, |port| port == "alashankou");
        observe_at(
            &m,
            8,
            SeriesSlot::Freight(0),
            &freight_at("alashankou", "2024-09", 500),
        );
        assert!(scrape_shows_port(&m, "alashankou", 500));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(!text.contains(r#"port="khorgos""#), "{text}");
        // Given back in engine 8's slot 1, Khorgos shows again.
        observe_at(&m, 8, SeriesSlot::Freight(1), &freight("2024-09", 660));
        assert!(scrape_shows_port(&m, "khorgos", 660));
        assert!(scrape_shows_port(&m, "alashankou", 500));
    }

    #[test]
    fn series_that_moved_to_another_instance_leave_the_scrape_and_come_back_with_their_port() {
        let m = Metrics::new();
        observe(&m, &freight("2024-09", 650));
        observe(&m, &freight_at("alashankou", "2024-09", 480));
        let alashankou =
            r#"silkroute_freight_trains_month{port="alashankou",service="china_europe"} 480"#;
        assert!(String::from_utf8(m.render()).unwrap().contains(alashankou));
        // Khorgos's partition was revoked: only Alashankou is still published here.
        m.retain_series(|_| true, |port| port == "alashankou");
        let text = String::from_utf8(m.render()).unwrap();
        assert!(!text.contains(r#"port="khorgos""#), "{text}");
        assert!(text.contains(alashankou));
        // Given back, it shows its latest month again.
        observe(&m, &freight("2024-09", 650));
        assert!(scrape_shows(&m, 650));
    }

    #[test]
    fn a_release_whose_month_disagrees_with_its_cumulative_shows_its_gap_in_yuan() {
        use crate::engine::{Engine, EngineSettings};
        use crate::event::{parse, ParseRules};
        let rules = ParseRules {
            max_message_bytes: 4096,
            current_month: Period::new(2024, 12),
        };
        let mut engine = Engine::new(EngineSettings::default());
        for line in [
            r#"{"type":"customs_trade","region":"XJ","period":"2024-02","flow":"export","dimension":"total","value_cny":"1000.00","basis":"ytd"}"#,
            r#"{"type":"customs_trade","region":"XJ","period":"2024-03","flow":"export","dimension":"total","value_cny":"1500.00","basis":"ytd"}"#,
            // The month says 503.80: 3.80 yuan more than the cumulatives' 500.
            r#"{"type":"customs_trade","region":"XJ","period":"2024-03","flow":"export","dimension":"total","value_cny":"503.80"}"#,
        ] {
            engine.apply(&parse(line.as_bytes(), &rules).unwrap());
        }
        let m = Metrics::new();
        let mut observer = m.observer(engine.generation());
        for o in engine.flush() {
            observer.note(&o.key, &o.record, None);
        }
        drop(observer);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains(r#"silkroute_trade_ytd_gap_yuan{area="XJ",dimension="total",flow="export",member=""} -3.8"#),
            "{text}"
        );
        assert!(text.contains(
            r#"silkroute_trade_ytd_yuan{area="XJ",dimension="total",flow="export",member=""} 1500"#
        ));
    }

    #[test]
    fn an_operator_error_shows_by_cause_until_processing_progresses() {
        let m = Metrics::new();
        assert!(!m.operator_error_active());
        let op = OperatorError::new(Cause::GroupAuthorization, "silkroute");
        m.operator_error(&op, 1, Duration::from_millis(250));
        m.operator_error(&op, 2, Duration::from_millis(500));
        assert!(m.operator_error_active());
        let text = String::from_utf8(m.render()).unwrap();
        assert!(
            text.contains(r#"silkroute_operator_error{cause="group_authorization"} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"silkroute_operator_errors_total{cause="group_authorization"} 2"#));
        assert!(text.contains(r#"silkroute_operator_error{cause="topic_authorization"} 0"#));
        m.progressed();
        assert!(!m.operator_error_active());
        let text = String::from_utf8(m.render()).unwrap();
        assert!(text.contains(r#"silkroute_operator_error{cause="group_authorization"} 0"#));
    }

    #[test]
    fn without_lag_nothing_is_stalled_and_the_lag_of_partitions_given_up_goes() {
        let m = Metrics::new();
        assert_eq!(m.stalled_for().as_secs(), 0);
        assert!(!m.stalled());
        m.consumer_lag.with_label_values(&["t", "0"]).set(5);
        m.consumer_lag.with_label_values(&["t", "1"]).set(7);
        m.retain_lag(|t, p| t == "t" && p == 1);
        let text = String::from_utf8(m.render()).unwrap();
        assert!(!text.contains(r#"partition="0""#), "{text}");
        assert!(text.contains(r#"silkroute_consumer_lag_messages{partition="1",topic="t"} 7"#));
        assert!(text.contains("silkroute_progress_stalled_seconds 0"));
    }
}
