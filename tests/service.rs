//! The service end to end through Kafka: librdkafka's mock cluster by default, the real
//! broker when SILKROUTE_TEST_BOOTSTRAP names one (`.ci/run` does both).

// The blocking boundary (clippy.toml, src/blocking.rs) is the service's rule; tests and
// benchmarks drive it from outside, on threads of their own.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeSet;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::FutureRecord;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use silkroute::service;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_sample_reproduces_the_bulletin_and_a_restatement_updates_exactly_what_it_affects()
{
    // Restate Xinjiang's September exports (revision 2).
    let restatement = r#"{"type":"customs_trade","region":"XJ","period":"2024-09","flow":"export","dimension":"total","value_cny":"30000000000.00","revision":2}"#;
    bulletin_through_kafka(
        sample_lines(),
        7,
        restatement,
        &[
            "trade/XJ/total/total/-/2024-09",
            "trade/XJ/export/total/-/2024-09",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_releases_reproduce_the_bulletin_and_a_restated_cumulative_updates_exactly_what_it_affects(
) {
    // Restate Xinjiang's January–August cumulative exports: the reported cumulative prevails,
    // so August's and September's derived months and the gap move with it.
    let restatement = r#"{"type":"customs_trade","region":"XJ","period":"2024-08","flow":"export","dimension":"total","basis":"ytd","value_cny":"150000000000.00","value_usd":"21000000000.00","revision":9}"#;
    bulletin_through_kafka(
        release_lines(),
        11,
        restatement,
        &[
            "trade/XJ/export/total/-/2024-08",
            "trade/XJ/export/total/-/2024-09",
        ],
    )
    .await;
}

/// `lines` shuffled through Kafka reproduce the bulletin and the offline engine's records;
/// then `restatement` publishes exactly the records whose content it changes (`must_change`
/// among them).
async fn bulletin_through_kafka(
    lines: Vec<String>,
    seed: u64,
    restatement: &str,
    must_change: &[&str],
) {
    let svc = TestService::start(&shuffled(&lines, seed), &[]).await;
    svc.wait_ready_after("sample processed", lines.len() as u64, 90)
        .await;

    let first = svc.indicators();
    let (records, repeats) = compact(&first);
    assert!(
        repeats.is_empty(),
        "keys published twice with identical content: {repeats:?}"
    );
    assert_bulletin(&records);
    assert_same_records(
        &records,
        &offline_records(&lines),
        "the service's records equal the offline engine's",
    );
    for m in &first {
        assert_eq!(
            m.key_str(),
            key_of(&m.json()),
            "key matches the record's fields"
        );
    }

    // Exactly the records whose content changes are published, nothing else.
    let restatement = restatement.to_string();
    let mut after_lines = lines.clone();
    after_lines.push(restatement.clone());
    let expected_after = offline_records(&after_lines);
    let changed: BTreeSet<String> = expected_after
        .iter()
        .filter(|(k, v)| records.get(*k) != Some(*v))
        .map(|(k, _)| k.clone())
        .collect();
    for key in must_change {
        assert!(changed.contains(*key), "{key} changes: {changed:?}");
    }
    svc.publish(&[restatement]).await;
    svc.wait_processed("restatement processed", lines.len() as u64 + 1, 60)
        .await;
    let update = svc.broker.read_after(&svc.names.indicators, &first);
    let published: BTreeSet<String> = update.iter().map(Msg::key_str).collect();
    assert_eq!(
        published, changed,
        "a restatement publishes exactly the affected records"
    );
    assert_eq!(update.len(), changed.len(), "each affected record once");
    for m in &update {
        assert_eq!(Some(&m.json()), expected_after.get(&m.key_str()));
    }
    svc.stop().await;
}

/// More instances than input partitions: the extra ones hold nothing, yet are ready, answer
/// queries from every cell, and publish nothing; together the group publishes each record once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_beyond_the_partition_count_sit_idle_ready_and_answer_queries() {
    let broker = Broker::start();
    let names = Names::fresh();
    // Three input partitions in all, four instances.
    names.create_sized(&broker, [1, 1, 1]).await;
    let lines = sample_lines();
    publish_lines(&broker, &names, &shuffled(&lines, 5)).await;
    let mut handles = Vec::new();
    for id in ["a", "b", "c", "d"] {
        let settings = names.settings(&broker, &[("SILKROUTE__KAFKA__INSTANCE_ID", id)]);
        handles.push(service::start(settings).await.unwrap());
    }
    let total = |hs: &[service::ServiceHandle]| hs.iter().map(processed).sum::<u64>();
    eventually(
        "the group processed the sample, every instance ready",
        120,
        || total(&handles) == lines.len() as u64 && handles.iter().all(|h| h.lifecycle.is_ready()),
    )
    .await;
    // Whatever rebalancing happened on the way, the group published every record, and only
    // changed ones.
    let expected = offline_records(&lines);
    eventually("every record published", 60, || {
        compact(&broker.read_all(&names.indicators)).0 == expected
    })
    .await;
    let (records, repeats) = compact(&broker.read_all(&names.indicators));
    assert_same_records(&records, &expected, "four instances on three partitions");
    assert!(repeats.is_empty(), "{repeats:?}");

    let published = |h: &service::ServiceHandle| {
        silkroute::engine::record::RecordKind::ALL
            .iter()
            .map(|k| {
                h.metrics
                    .indicators_published
                    .with_label_values(&[k.as_str()])
                    .get()
            })
            .sum::<u64>()
    };
    let idle: Vec<&service::ServiceHandle> = handles.iter().filter(|h| published(h) == 0).collect();
    assert!(
        !idle.is_empty(),
        "with three partitions one of four instances holds none"
    );
    for h in &idle {
        // Idle, yet it holds every cell: /v1/indicators answers with all records.
        let held: std::collections::BTreeMap<String, serde_json::Value> = h
            .records(Default::default())
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let v = serde_json::to_value(r).unwrap();
                (key_of(&v), v)
            })
            .collect();
        assert_same_records(&held, &expected, "an idle instance's /v1/indicators");
        let text = String::from_utf8(h.metrics.render()).unwrap();
        assert!(
            !text.contains("silkroute_trade_ytd_yuan{"),
            "an idle instance exports no business gauges"
        );
    }
    for h in handles {
        h.stop().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_event_is_dead_lettered_unchanged_with_its_reason_and_processing_goes_on() {
    let (broker, names) = TestService::topics().await;
    let big = format!(
        r#"{{"type":"fx_rate","currency":"USD","period":"2024-01","cny_per_unit":"7.1","source":"{}"}}"#,
        "x".repeat(3000)
    );
    let bad: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_utf8", b"{\"type\":\"fx_rate\xff\"}".to_vec()),
        ("malformed_json", b"{\"type\": ".to_vec()),
        ("not_an_object", b"[1,2,3]".to_vec()),
        ("too_large", big.into_bytes()),
        (
            "unknown_type",
            br#"{"type":"weather","region":"XJ"}"#.to_vec(),
        ),
        (
            "missing_field",
            br#"{"type":"freight_trains","period":"2024-01","trains":5}"#.to_vec(),
        ),
        (
            "invalid_field",
            br#"{"type":"freight_trains","port":"khorgos","period":"2024-13","trains":5}"#.to_vec(),
        ),
    ];
    let msgs: Vec<(Option<&str>, &[u8])> =
        bad.iter().map(|(r, v)| (Some(*r), v.as_slice())).collect();
    broker.produce(&names.trade, &msgs).await;
    broker
        .produce(
            &names.freight,
            &[(
                Some("khorgos"),
                br#"{"type":"freight_trains","port":"khorgos","period":"2024-01","trains":650}"#,
            )],
        )
        .await;
    let svc = TestService::start_on(
        broker,
        names,
        &[("SILKROUTE__LIMITS__MAX_MESSAGE_BYTES", "2048")],
    )
    .await;
    svc.wait_processed("all processed", 8, 60).await;

    let dead = svc.broker.read_all(&svc.names.dead_letter);
    assert_eq!(dead.len(), bad.len());
    for (reason, bytes) in &bad {
        let d = dead
            .iter()
            .find(|d| d.key_str() == *reason)
            .unwrap_or_else(|| panic!("no dead letter keyed {reason}"));
        assert_eq!(
            d.value.as_deref(),
            Some(bytes.as_slice()),
            "{reason}: original bytes"
        );
        assert_eq!(d.header("silkroute.error.reason"), Some(*reason));
        assert!(!d
            .header("silkroute.error.detail")
            .unwrap_or_default()
            .is_empty());
        assert_eq!(
            d.header("silkroute.source.topic"),
            Some(svc.names.trade.as_str())
        );
        let (p, o): (i32, i64) = (
            d.header("silkroute.source.partition")
                .unwrap()
                .parse()
                .unwrap(),
            d.header("silkroute.source.offset")
                .unwrap()
                .parse()
                .unwrap(),
        );
        assert!(p >= 0 && o >= 0);
    }
    let detail = dead
        .iter()
        .find(|d| d.key_str() == "invalid_field")
        .unwrap()
        .header("silkroute.error.detail")
        .unwrap()
        .to_string();
    assert!(
        detail.contains("period"),
        "detail names the field: {detail}"
    );
    let (records, _) = svc.compacted();
    assert_eq!(
        records["freight/khorgos/china_europe/2024-01"]["month_trains"], 650,
        "the good event after the bad ones was applied"
    );
    let rejected: u64 = silkroute::event::Reason::ALL
        .iter()
        .map(|r| {
            svc.handle
                .metrics
                .events_rejected
                .with_label_values(&[r.as_str()])
                .get()
        })
        .sum();
    assert_eq!(rejected, 7);
    svc.stop().await;
}

/// The trade and freight series' gauge lines of a scrape, sorted.
fn business_gauges(scrape: &str) -> Vec<String> {
    let mut lines: Vec<String> = scrape
        .lines()
        .filter(|l| l.starts_with("silkroute_trade_") || l.starts_with("silkroute_freight_"))
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republished_events_and_a_restart_publish_no_new_record() {
    let lines = sample_lines();
    let svc = TestService::start(&lines, &[]).await;
    svc.wait_ready_after("sample processed", lines.len() as u64, 90)
        .await;
    let published = svc.indicators().len();

    svc.publish(&shuffled(&lines, 3)).await;
    svc.wait_processed("replay processed", 2 * lines.len() as u64, 90)
        .await;
    assert_eq!(
        svc.indicators().len(),
        published,
        "re-published events publish nothing"
    );
    let duplicates = svc
        .handle
        .metrics
        .events_ignored
        .with_label_values(&["duplicate"])
        .get();
    assert!(duplicates > 0);
    let gauges = business_gauges(&svc.scrape());
    assert!(gauges.len() > 10, "{gauges:?}");
    let (broker, names) = svc.stop().await;

    // Restart: state rebuilt from the inputs, nothing republished.
    let svc = TestService::start_on(broker, names, &[]).await;
    eventually("ready after restart", 60, || {
        svc.handle.lifecycle.is_ready()
    })
    .await;
    // Ready means taken over: publishing nothing, it already exports every series it owns,
    // as the first instance did.
    assert_eq!(business_gauges(&svc.scrape()), gauges);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = svc.indicators();
    assert_eq!(
        after.len(),
        published,
        "a restart publishes no repeated record"
    );

    // ...and it continues correctly from its restored state.
    let next =
        r#"{"type":"freight_trains","port":"khorgos","period":"2024-10","trains":640}"#.to_string();
    svc.publish(std::slice::from_ref(&next)).await;
    svc.wait_processed("new event processed", 1, 60).await;
    let (records, repeats) = svc.compacted();
    assert!(repeats.is_empty(), "{repeats:?}");
    let r = &records["freight/khorgos/china_europe/2024-10"];
    assert_eq!(r["ytd_trains"], 6269 + 640);
    assert_eq!(r["streak_months"], 13);
    svc.stop().await;
}

/// Versions before the compact changelog form wrote each event's canonical JSON there: an
/// instance of this version restores from such a changelog and publishes every record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changelog_of_canonical_json_written_by_an_earlier_version_restores() {
    let lines = sample_lines();
    let (broker, names) = TestService::topics().await;
    let changelog = format!("{}-cells-changelog", names.group);
    if broker.is_real() {
        // As the earlier version created it (the mock has it already).
        broker
            .create_topics_with(&[(&changelog, 3)], &[("cleanup.policy", "compact")])
            .await;
    }
    let producer = broker.producer();
    // A restore reads every partition and goes by the values; unique keys keep compaction
    // from dropping any.
    for (i, line) in lines.iter().enumerate() {
        let event = silkroute::event::parse(line.as_bytes(), &parse_rules()).expect("valid");
        let key = format!("cell-{i}");
        let json = event.to_json();
        let record = FutureRecord::to(&changelog).key(&key).payload(&json);
        producer
            .send(record, Duration::from_secs(30))
            .await
            .map_err(|(e, _)| e)
            .expect("produced");
    }

    let svc = TestService::start_on(broker, names, &[]).await;
    let expected = offline_records(&lines);
    eventually("the restored state's records published", 90, || {
        svc.compacted().0 == expected
    })
    .await;
    assert_eq!(svc.processed(), 0, "nothing came from the inputs");
    svc.stop().await;
}

/// The first roll of a rolling upgrade from a version before the compact changelog sets
/// `processing.changelog_format = "json"`: an instance so set writes values the earlier
/// version's parser takes, and an instance with the default, restoring from a changelog that
/// then holds both forms, publishes the records of every event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_written_for_a_rolling_upgrade_is_read_by_both_versions() {
    let lines = sample_lines();
    let (first, second) = lines.split_at(lines.len() / 2);
    let json = [("SILKROUTE__PROCESSING__CHANGELOG_FORMAT", "json")];
    let svc = TestService::start(first, &json).await;
    svc.wait_ready_after("the first half processed", first.len() as u64, 90)
        .await;
    let changelog = format!("{}-cells-changelog", svc.names.group);
    let written = svc.broker.read_all(&changelog);
    assert!(!written.is_empty());
    for m in &written {
        let value = m.value.as_deref().expect("a value");
        // The earlier version read each value with the input parser.
        silkroute::event::parse(value, &parse_rules()).unwrap_or_else(|r| {
            panic!("{}: {r}", String::from_utf8_lossy(value));
        });
    }
    let (broker, names) = svc.stop().await;

    // Restored from the JSON values, it derives the second half's records from both halves.
    let svc = TestService::start_on(broker, names, &[]).await;
    svc.publish(second).await;
    svc.wait_ready_after("the second half processed", second.len() as u64, 90)
        .await;
    let expected = offline_records(&lines);
    assert_same_records(&svc.compacted().0, &expected, "after the second half");
    let (broker, names) = svc.stop().await;
    let all = broker.read_all(&changelog);
    let json_values = all
        .iter()
        .filter(|m| m.value.as_deref().is_some_and(|v| v.starts_with(b"{")))
        .count();
    assert_eq!(
        json_values,
        written.len(),
        "the default instance wrote no JSON"
    );
    assert!(
        all.len() > written.len(),
        "the default instance wrote its own"
    );

    // A third instance holds every cell, restored from both forms.
    let svc = TestService::start_on(broker, names, &[]).await;
    eventually("ready after a restore from both forms", 90, || {
        svc.handle.lifecycle.is_ready()
    })
    .await;
    assert_eq!(svc.handle.metrics.state_cells.get(), offline_cells(&lines));
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_until_ready_and_from_the_start_of_shutdown() {
    // Input topics do not exist yet: the service waits, not ready.
    let svc = TestService::start_on(Broker::start(), Names::fresh(), &[]).await;
    let url = |p: &str| format!("http://{}{p}", svc.handle.http_addr);
    let client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        client.get(url("/readyz")).send().await.unwrap().status(),
        503
    );
    assert_eq!(
        client.get(url("/healthz")).send().await.unwrap().status(),
        200
    );
    svc.names.create(&svc.broker).await;
    svc.publish(&sample_lines()).await;
    eventually("ready", 90, || svc.handle.lifecycle.is_ready()).await;
    assert_eq!(
        client.get(url("/readyz")).send().await.unwrap().status(),
        200
    );
    let body: serde_json::Value = client
        .get(url(
            "/v1/indicators?kind=freight&port=khorgos&period=2024-09",
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["ytd_trains"], 6269);
    assert_eq!(
        client
            .get(url("/v1/indicators?period=2024-13"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        client
            .get(url("/v1/indicators?kind=weather"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let metrics = client
        .get(url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"silkroute_freight_streak_months{port="khorgos",service="china_europe"} 12"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"silkroute_trade_yoy_rank{area="XJ",flow="total"} 1"#));
    // The first step of a stop is readiness off, while HTTP still answers.
    svc.handle
        .lifecycle
        .set(silkroute::lifecycle::State::Draining);
    assert_eq!(
        client.get(url("/readyz")).send().await.unwrap().status(),
        503
    );
    svc.stop().await;
}

fn committed(broker: &Broker, group: &str, topics: &[(&str, i32)]) -> Vec<(String, i32, i64, i64)> {
    let c: BaseConsumer = broker.config().set("group.id", group).create().unwrap();
    let mut tpl = TopicPartitionList::new();
    for (t, n) in topics {
        for p in 0..*n {
            tpl.add_partition(t, p);
        }
    }
    let done = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
    done.elements()
        .iter()
        .map(|e| {
            let (_, hi) = c
                .fetch_watermarks(e.topic(), e.partition(), Duration::from_secs(10))
                .unwrap();
            let o = match e.offset() {
                Offset::Offset(o) => o,
                _ => 0,
            };
            (e.topic().to_string(), e.partition(), o, hi)
        })
        .collect()
}

/// At least once, a batch is settled (acknowledged, offsets stored) when the next one ends,
/// or at once when no message waits: the last batch before the input goes idle is committed
/// without more input or a stop, and each event's latency is observed once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_batch_is_committed_while_the_input_stays_idle() {
    let lines = sample_lines();
    let svc = TestService::start(&lines, &[]).await;
    svc.wait_ready_after("sample processed", lines.len() as u64, 90)
        .await;
    let topics = [
        (svc.names.trade.as_str(), 3),
        (svc.names.freight.as_str(), 3),
        (svc.names.fx.as_str(), 1),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let behind: Vec<_> = committed(&svc.broker, &svc.names.group, &topics)
            .into_iter()
            .filter(|(_, _, offset, end)| offset.max(&0) != end)
            .collect();
        if behind.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "committed offsets short of the end after 30 s: {behind:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        svc.processed(),
        lines.len() as u64,
        "every event's latency observed once"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_commits_offsets_and_exits_cleanly_within_the_timeout() {
    let broker = Broker::start();
    let names = Names::fresh();
    names.create(&broker).await;
    publish_lines(&broker, &names, &sample_lines()).await;
    // Its stderr goes to a file, not a pipe: a pipe nobody reads until the exit can fill and
    // stop the service mid-start. Port 0, read back from the log: no fixed port to clash.
    let log = format!(
        "{}/target/service-sigterm-{}.log",
        env!("CARGO_MANIFEST_DIR"),
        names.group
    );
    let mut child = ServiceProcess::spawn(
        ServiceProcess::command(
            &names,
            &broker,
            &[],
            [("SILKROUTE__HTTP__LISTEN", "127.0.0.1:0")],
        ),
        &log,
    );
    let client = reqwest::Client::new();
    let ready = format!("{}/readyz", child.http().await);
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Ok(r) = client.get(&ready).send().await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(
            Instant::now() < deadline && child.is_running(),
            "never ready ({:?}); its log:\n{}",
            child.exited(),
            child.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Ready means caught up; give the auto-commit a moment to be irrelevant: SIGTERM must commit.
    let sent = Instant::now();
    let status = tokio::task::spawn_blocking(move || (child.stop(), child.log_text()))
        .await
        .unwrap();
    assert!(
        status.0.success(),
        "exit status {:?}; log:\n{}",
        status.0,
        status.1
    );
    assert!(
        sent.elapsed() < Duration::from_secs(15),
        "exited within shutdown.timeout_ms"
    );
    assert!(status.1.contains("Left the consumer group"), "{}", status.1);
    for (topic, p, offset, end) in committed(
        &broker,
        &names.group,
        &[(&names.trade, 3), (&names.freight, 3), (&names.fx, 1)],
    ) {
        assert_eq!(
            offset.max(0),
            end,
            "{topic}/{p}: committed offset reaches the end"
        );
    }
}

#[test]
fn a_bad_config_exits_2_naming_the_key_before_connecting() {
    for (var, value, key) in [
        ("SILKROUTE__RANKING__TOP_N", "0", "ranking.top_n"),
        (
            "SILKROUTE__KAFKA__BOOTSTRAP_SERVERS",
            "",
            "kafka.bootstrap_servers",
        ),
        (
            "SILKROUTE__KAFKA__BOOTSTRAPSERVERS",
            "x:1",
            "kafka.bootstrapservers",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_silkroute"))
            .arg("run")
            .env(var, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{var}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(key), "{err}");
    }
}
