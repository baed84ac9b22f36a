//! Every metric silkroute exports (§5), defined in one place.
//!
//! Labels are bounded sets (topics, partitions, reason codes, record kinds, and the series
//! present in the data), never raw error text. Business gauges follow each series' latest
//! period: a record for an older period (a restatement of last year) does not move them.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::{
    Encoder, Gauge, GaugeVec, Histogram, HistogramOpts, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

use crate::engine::record::{Record, RecordKind, TradeRecord};
use crate::event::Reason;

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
    trade_ytd: GaugeVec,
    trade_yoy: GaugeVec,
    trade_share: GaugeVec,
    trade_rank: GaugeVec,
    freight_month: GaugeVec,
    freight_ytd: GaugeVec,
    freight_yoy: GaugeVec,
    freight_streak: GaugeVec,
    freight_threshold: GaugeVec,
    /// Per business series this instance publishes: its latest record, and whether the gauges
    /// still have to be moved to it. Setting the gauges costs several label lookups; a
    /// backfill changes a series many times between two scrapes, so the scrape sets them.
    latest: Mutex<HashMap<String, Latest>>,
    /// Held while gauges are set or removed, so that a scrape's update and the removal of a
    /// series that moved to another instance cannot interleave.
    gauges: Mutex<()>,
}

struct Latest {
    record: Record,
    pending: bool,
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(c.clone()))
        .expect("unique metric");
    c
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> GaugeVec {
    let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
    registry
        .register(Box::new(g.clone()))
        .expect("unique metric");
    g
}

const TRADE_LABELS: [&str; 4] = ["area", "flow", "dimension", "member"];
const FREIGHT_LABELS: [&str; 2] = ["port", "service"];

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        let events_consumed = counter(
            &registry,
            "silkroute_events_consumed_total",
            "Input messages consumed, by input topic.",
            &["topic"],
        );
        let events_rejected = counter(
            &registry,
            "silkroute_events_rejected_total",
            "Input messages dead-lettered, by reason.",
            &["reason"],
        );
        for r in Reason::ALL {
            events_rejected.with_label_values(&[r.as_str()]);
        }
        let events_ignored = counter(
            &registry,
            "silkroute_events_ignored_total",
            "Valid events ignored as stale or duplicate.",
            &["reason"],
        );
        for r in ["stale", "duplicate"] {
            events_ignored.with_label_values(&[r]);
        }
        let indicators_published = counter(
            &registry,
            "silkroute_indicators_published_total",
            "Indicator records acknowledged by Kafka, by kind.",
            &["kind"],
        );
        for k in RecordKind::ALL {
            indicators_published.with_label_values(&[k.as_str()]);
        }
        let consumer_lag = IntGaugeVec::new(
            Opts::new("silkroute_consumer_lag_messages", "Messages between the consumer's position and the partition end (librdkafka statistics)."),
            &["topic", "partition"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(consumer_lag.clone()))
            .expect("unique metric");
        let processing_duration = Histogram::with_opts(
            HistogramOpts::new(
                "silkroute_processing_duration_seconds",
                "From a message received to its indicators acknowledged by Kafka.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric");
        registry
            .register(Box::new(processing_duration.clone()))
            .expect("unique metric");
        let last_event_timestamp = Gauge::new(
            "silkroute_last_event_timestamp_seconds",
            "Kafka timestamp of the last event consumed.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(last_event_timestamp.clone()))
            .expect("unique metric");
        let state_cells =
            IntGauge::new("silkroute_state_cells", "Cells held in the engine's state.")
                .expect("valid metric");
        registry
            .register(Box::new(state_cells.clone()))
            .expect("unique metric");
        let build_info = IntGaugeVec::new(
            Opts::new(
                "silkroute_build_info",
                "Build information; the value is always 1.",
            ),
            &["version"],
        )
        .expect("valid metric");
        registry
            .register(Box::new(build_info.clone()))
            .expect("unique metric");
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        let rebalances = counter(
            &registry,
            "silkroute_rebalances_total",
            "Consumer group rebalances seen, by event.",
            &["event"],
        );
        for e in ["assign", "revoke"] {
            rebalances.with_label_values(&[e]);
        }
        let produce_errors = counter(
            &registry,
            "silkroute_produce_errors_total",
            "Records Kafka refused or timed out, by target topic.",
            &["topic"],
        );
        let transactions = counter(
            &registry,
            "silkroute_transactions_total",
            "Kafka transactions ended, by outcome (always 0 in at_least_once mode).",
            &["outcome"],
        );
        for o in ["commit", "abort"] {
            transactions.with_label_values(&[o]);
        }
        let restore_in_progress = IntGauge::new(
            "silkroute_restore_in_progress",
            "1 while state is being restored at start.",
        )
        .expect("valid metric");
        registry
            .register(Box::new(restore_in_progress.clone()))
            .expect("unique metric");
        let restore_records = counter(
            &registry,
            "silkroute_restore_records_total",
            "Records read while restoring state, by source.",
            &["source"],
        );
        let process = prometheus::process_collector::ProcessCollector::for_self();
        let _ = registry.register(Box::new(process));
        Metrics {
            trade_ytd: gauge(
                &registry,
                "silkroute_trade_ytd_yuan",
                "Year-to-date trade in yuan at the series' latest period.",
                &TRADE_LABELS,
            ),
            trade_yoy: gauge(
                &registry,
                "silkroute_trade_ytd_yoy_ratio",
                "Year-to-date growth on the prior year (0.29 = 29 %).",
                &TRADE_LABELS,
            ),
            trade_share: gauge(
                &registry,
                "silkroute_trade_share_ratio",
                "Year-to-date share of the region's total trade (0–1).",
                &TRADE_LABELS,
            ),
            trade_rank: gauge(
                &registry,
                "silkroute_trade_yoy_rank",
                "National rank by year-to-date growth (1 = highest).",
                &["area", "flow"],
            ),
            freight_month: gauge(
                &registry,
                "silkroute_freight_trains_month",
                "Trains in the series' latest month.",
                &FREIGHT_LABELS,
            ),
            freight_ytd: gauge(
                &registry,
                "silkroute_freight_trains_ytd",
                "Trains year to date.",
                &FREIGHT_LABELS,
            ),
            freight_yoy: gauge(
                &registry,
                "silkroute_freight_trains_ytd_yoy_ratio",
                "Year-to-date train growth on the prior year.",
                &FREIGHT_LABELS,
            ),
            freight_streak: gauge(
                &registry,
                "silkroute_freight_streak_months",
                "Consecutive months above the streak threshold.",
                &FREIGHT_LABELS,
            ),
            freight_threshold: gauge(
                &registry,
                "silkroute_freight_streak_threshold",
                "The streak threshold in trains.",
                &FREIGHT_LABELS,
            ),
            registry,
            events_consumed,
            events_rejected,
            events_ignored,
            indicators_published,
            consumer_lag,
            processing_duration,
            last_event_timestamp,
            state_cells,
            rebalances,
            produce_errors,
            transactions,
            restore_in_progress,
            restore_records,
            latest: Mutex::new(HashMap::new()),
            gauges: Mutex::new(()),
        }
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

    /// The text exposition for `/metrics`.
    pub fn render(&self) -> Vec<u8> {
        self.apply_observed();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding cannot fail");
        buf
    }

    /// Notes `record` for the business gauges if it is its series' latest period; the next
    /// [`Metrics::render`] moves them.
    pub fn observe(&self, record: &Record) {
        let series = match record {
            Record::Trade(r) => format!(
                "t/{}/{}/{}/{}",
                r.region,
                r.flow,
                r.dimension,
                r.member.as_deref().unwrap_or("")
            ),
            Record::Freight(r) => format!("f/{}/{}", r.port, r.service),
            Record::Leaders(_) => return,
        };
        let mut latest = self.latest.lock().expect("metrics lock");
        match latest.get_mut(&series) {
            Some(l) if record.period() < l.record.period() => {}
            Some(l) => {
                l.record = record.clone();
                l.pending = true;
            }
            None => {
                latest.insert(
                    series,
                    Latest {
                        record: record.clone(),
                        pending: true,
                    },
                );
            }
        }
    }

    /// Drops the business series whose records `publishes` no longer admits (their region or
    /// port moved to another instance with its partition): the new owner exports them, and a
    /// `sum` across instances must count each series once.
    pub fn retain_series(&self, publishes: impl Fn(&Record) -> bool) {
        let _gauges = self.gauges.lock().expect("metrics lock");
        let mut latest = self.latest.lock().expect("metrics lock");
        latest.retain(|_, l| {
            let keep = publishes(&l.record);
            if !keep {
                self.remove_gauges(&l.record);
            }
            keep
        });
    }

    /// Moves the business gauges to the records observed since the last call.
    fn apply_observed(&self) {
        let _gauges = self.gauges.lock().expect("metrics lock");
        let pending: Vec<Record> = {
            let mut latest = self.latest.lock().expect("metrics lock");
            latest
                .values_mut()
                .filter(|l| l.pending)
                .map(|l| {
                    l.pending = false;
                    l.record.clone()
                })
                .collect()
        };
        for record in &pending {
            self.set_gauges(record);
        }
    }

    fn remove_gauges(&self, record: &Record) {
        // A label set that was never set (a null ratio) is simply not there.
        match record {
            Record::Trade(r) => {
                let labels = trade_labels(r);
                for g in [&self.trade_ytd, &self.trade_yoy, &self.trade_share] {
                    let _ = g.remove_label_values(&labels);
                }
                if r.member.is_none() {
                    let _ = self.trade_rank.remove_label_values(&[&*r.region, r.flow]);
                }
            }
            Record::Freight(r) => {
                let labels = [&*r.port, &*r.service];
                for g in [
                    &self.freight_month,
                    &self.freight_ytd,
                    &self.freight_yoy,
                    &self.freight_streak,
                    &self.freight_threshold,
                ] {
                    let _ = g.remove_label_values(&labels);
                }
            }
            Record::Leaders(_) => {}
        }
    }

    fn set_gauges(&self, record: &Record) {
        fn set(g: &GaugeVec, labels: &[&str], value: Option<f64>) {
            match value {
                Some(v) => g.with_label_values(labels).set(v),
                // A null indicator is an absent series, never 0.
                None => {
                    let _ = g.remove_label_values(labels);
                }
            }
        }
        match record {
            Record::Trade(r) => {
                let labels = trade_labels(r);
                set(&self.trade_ytd, &labels, Some(r.ytd_cny.0 as f64 / 100.0));
                set(&self.trade_yoy, &labels, r.ytd_yoy_pct.map(|p| p / 100.0));
                set(&self.trade_share, &labels, r.share_pct.map(|p| p / 100.0));
                if r.member.is_none() {
                    set(
                        &self.trade_rank,
                        &[&*r.region, r.flow],
                        r.yoy_rank.map(f64::from),
                    );
                }
            }
            Record::Freight(r) => {
                let labels = [&*r.port, &*r.service];
                set(
                    &self.freight_month,
                    &labels,
                    r.month_trains.map(|t| t as f64),
                );
                set(&self.freight_ytd, &labels, Some(r.ytd_trains as f64));
                set(&self.freight_yoy, &labels, r.ytd_yoy_pct.map(|p| p / 100.0));
                set(
                    &self.freight_streak,
                    &labels,
                    Some(f64::from(r.streak_months)),
                );
                set(
                    &self.freight_threshold,
                    &labels,
                    Some(f64::from(r.streak_threshold)),
                );
            }
            Record::Leaders(_) => {}
        }
    }
}

/// `area`, `flow`, `dimension`, `member` of a trade series.
fn trade_labels(r: &TradeRecord) -> [&str; 4] {
    [
        &r.region,
        r.flow,
        &r.dimension,
        r.member.as_deref().unwrap_or(""),
    ]
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
        m.observe(&freight("2024-09", 650));
        m.observe(&freight("2024-08", 610));
        assert!(scrape_shows(&m, 650));
        m.observe(&freight("2024-09", 655));
        assert!(scrape_shows(&m, 655));
    }

    #[test]
    fn series_that_moved_to_another_instance_leave_the_scrape_and_come_back_with_their_port() {
        let m = Metrics::new();
        m.observe(&freight("2024-09", 650));
        m.observe(&freight_at("alashankou", "2024-09", 480));
        let alashankou =
            r#"silkroute_freight_trains_month{port="alashankou",service="china_europe"} 480"#;
        assert!(String::from_utf8(m.render()).unwrap().contains(alashankou));
        // Khorgos's partition was revoked: only Alashankou is still published here.
        m.retain_series(|r| matches!(r, Record::Freight(f) if &*f.port == "alashankou"));
        let text = String::from_utf8(m.render()).unwrap();
        assert!(!text.contains(r#"port="khorgos""#), "{text}");
        assert!(text.contains(alashankou));
        // Given back, it shows its latest month again.
        m.observe(&freight("2024-09", 650));
        assert!(scrape_shows(&m, 650));
    }
}
