//! What only a real Apache Kafka can show: topic creation with configs, volume beyond the mock
//! cluster's retention, the group coordinator handing partitions from one member to another,
//! and a stock client (kcat) consuming our output. Needs SILKROUTE_TEST_BOOTSTRAP
//! (`scripts/kafka.sh start`, then `SILKROUTE_TEST_BOOTSTRAP=127.0.0.1:9092 cargo test
//! --features real-broker-tests --test real_broker`).

// The blocking boundary (clippy.toml, src/blocking.rs) is the service's rule; tests and
// benchmarks drive it from outside, on threads of their own.
#![allow(clippy::disallowed_methods)]

mod common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::*;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

fn real_broker() -> Broker {
    assert!(
        std::env::var("SILKROUTE_TEST_BOOTSTRAP").is_ok_and(|b| !b.is_empty()),
        "the real-broker suite needs SILKROUTE_TEST_BOOTSTRAP (run scripts/kafka.sh start)"
    );
    let b = Broker::start();
    assert!(b.is_real());
    b
}

/// The service on the real broker, on fresh topics holding `lines`.
async fn real_service(lines: &[String]) -> TestService {
    let broker = real_broker();
    let names = Names::fresh();
    names.create(&broker).await;
    publish_lines(&broker, &names, lines).await;
    TestService::start_on(broker, names, &[]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_creates_a_compacted_indicators_topic_and_a_dead_letter_topic() {
    let svc = real_service(&[]).await;
    eventually("ready", 60, || svc.handle.lifecycle.is_ready()).await;
    let names = &svc.names;
    let admin: AdminClient<DefaultClientContext> = svc.broker.config().create().unwrap();
    let configs = admin
        .describe_configs(
            [
                &ResourceSpecifier::Topic(&names.indicators),
                &ResourceSpecifier::Topic(&names.dead_letter),
            ],
            &AdminOptions::new(),
        )
        .await
        .unwrap();
    let policy = |i: usize| {
        configs[i]
            .as_ref()
            .unwrap()
            .get("cleanup.policy")
            .and_then(|e| e.value.clone())
    };
    assert_eq!(
        policy(0).as_deref(),
        Some("compact"),
        "indicators topic is compacted"
    );
    assert_eq!(
        policy(1).as_deref(),
        Some("delete"),
        "dead letters are kept as a log"
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backfill_beyond_the_mock_clusters_retention_gives_the_offline_engines_records() {
    let lines = volume_lines();
    let svc = real_service(&lines).await;
    svc.wait_ready_after("backfill processed", lines.len() as u64, 300)
        .await;
    let (records, repeats) = svc.compacted();
    assert!(
        repeats.is_empty(),
        "{} keys repeated with identical content",
        repeats.len()
    );
    assert_same_records(&records, &offline_records(&lines), "backfill through Kafka");
    println!(
        "real broker: {} events -> {} indicator keys",
        lines.len(),
        records.len()
    );
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_group_coordinator_hands_the_partitions_to_a_replacement_member_which_carries_on() {
    let lines = sample_lines();
    let (first, second) = lines.split_at(lines.len() / 2);
    let a = real_service(first).await;
    a.wait_ready_after("member A processed its half", first.len() as u64, 90)
        .await;
    let assigns = |svc: &TestService| {
        svc.handle
            .metrics
            .rebalances
            .with_label_values(&["assign"])
            .get()
    };
    assert!(
        assigns(&a) >= 1,
        "A was assigned partitions by the coordinator"
    );
    let (broker, names) = a.stop().await;

    publish_lines(&broker, &names, second).await;
    let b = TestService::start_on(broker, names, &[]).await;
    b.wait_ready_after("member B processed the rest", second.len() as u64, 90)
        .await;
    assert!(assigns(&b) >= 1);
    let (records, repeats) = b.compacted();
    assert!(repeats.is_empty(), "{repeats:?}");
    assert_same_records(
        &records,
        &offline_records(&lines),
        "A then B equals one run",
    );
    assert_bulletin(&records);
    b.stop().await;
}

/// A previous owner's last transaction, undecided when an instance starts (still open, or
/// committed with its markers not yet written: Kafka writes them after acknowledging the
/// commit): its changelog records belong to the state, its indicator records to what Kafka
/// holds. The instance waits for it. Read to the last stable offset instead, it restored the
/// state without those events and took the records for unpublished, publishing every record
/// again, some of them from the incomplete state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_previous_owners_undecided_transaction_is_waited_for_not_taken_as_absent() {
    let lines = sample_lines();
    let broker = real_broker();
    let names = Names::fresh();
    names.create(&broker).await;
    let changelog = format!("{}-cells-changelog", names.group);
    broker
        .create_topics_with(
            &[(&changelog, 3), (&names.indicators, 3)],
            &[("cleanup.policy", "compact")],
        )
        .await;
    let rules = parse_rules();
    let events: Vec<(String, Vec<u8>)> = lines
        .iter()
        .filter_map(|l| silkroute::event::parse(l.as_bytes(), &rules).ok())
        .enumerate()
        // Unique keys: compaction keeps every event.
        .map(|(i, e)| (format!("cell-{i}"), e.to_compact()))
        .collect();
    let (earlier, last) = events.split_at(events.len() * 2 / 3);
    let keyed: Vec<_> = earlier
        .iter()
        .map(|(k, v)| (Some(k.as_str()), v.as_slice()))
        .collect();
    broker.produce(&changelog, &keyed).await;

    // Its last transaction: the rest of the events and every record all of them derive.
    let owner: BaseProducer = broker
        .config()
        .set(
            "transactional.id",
            format!("previous-owner-{}", names.group),
        )
        .set("transaction.timeout.ms", "60000")
        .create()
        .expect("producer");
    let request = Duration::from_secs(30);
    owner.init_transactions(request).expect("init");
    owner.begin_transaction().expect("begin");
    let records = offline_record_bytes(&lines);
    let sends = last.iter().map(|(k, v)| (changelog.as_str(), k, v)).chain(
        records
            .iter()
            .map(|(k, v)| (names.indicators.as_str(), k, v)),
    );
    for (topic, key, value) in sends {
        owner
            .send(BaseRecord::to(topic).key(key).payload(value))
            .expect("queued");
    }
    owner.flush(request).expect("flushed");

    // The log's end, uncommitted records included: an instance that does not wait publishes
    // within seconds of its start.
    let log_end = {
        let client: BaseConsumer = broker
            .config()
            .set("isolation.level", "read_uncommitted")
            .create()
            .expect("client");
        let topic = names.indicators.clone();
        move || -> i64 {
            (0..3)
                .map(|p| client.fetch_watermarks(&topic, p, request).expect("ends").1)
                .sum()
        }
    };
    let written = log_end();
    let svc = TestService::start_on(broker, names, &[]).await;
    for _ in 0..80 {
        if log_end() > written {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    owner.commit_transaction(request).expect("committed");

    eventually("ready", 60, || svc.handle.lifecycle.is_ready()).await;
    let published = svc.indicators();
    let (compacted, repeats) = compact(&published);
    assert!(
        repeats.is_empty(),
        "{} records published again, first {:?}",
        repeats.len(),
        &repeats[..repeats.len().min(3)]
    );
    assert_eq!(
        published.len(),
        records.len(),
        "the previous owner's records, and none from this instance"
    );
    assert_same_records(
        &compacted,
        &offline_records(&lines),
        "every event's records",
    );
    assert_eq!(svc.processed(), 0, "nothing came from the inputs");
    svc.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kcat_in_a_consumer_group_reads_our_keys_and_json() {
    let svc = real_service(&sample_lines()).await;
    svc.wait_ready_after("sample processed", sample_lines().len() as u64, 90)
        .await;
    let (broker, names) = svc.stop().await;
    let ours = broker.read_all(&names.indicators);
    let (expected, _) = compact(&ours);

    let out = tokio::task::spawn_blocking({
        let (bootstrap, topic, group) = (
            broker.bootstrap.clone(),
            names.indicators.clone(),
            format!("kcat-{}", unique()),
        );
        let count = ours.len().to_string();
        move || {
            Command::new("timeout")
                .args([
                    "120",
                    "kcat",
                    "-b",
                    &bootstrap,
                    "-G",
                    &group,
                    "-X",
                    "auto.offset.reset=earliest",
                    "-c",
                    &count,
                    "-q",
                    "-f",
                    "%k\t%s\n",
                    &topic,
                ])
                .output()
                .expect("kcat is installed (apt-get install kcat)")
        }
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "kcat failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let mut seen: BTreeMap<String, serde_json::Value> = BTreeMap::new();
    for line in text.lines() {
        let (key, json) = line.split_once('\t').expect("key<TAB>value");
        let value: serde_json::Value = serde_json::from_str(json).expect("each value is JSON");
        assert_eq!(key, key_of(&value), "the key names the record it carries");
        seen.insert(key.to_string(), value);
    }
    assert_eq!(text.lines().count(), ours.len(), "kcat read every record");
    assert_same_records(&seen, &expected, "what kcat read");
    assert_eq!(
        seen["trade/XJ/total/total/-/2024-09"]["ytd_cny"],
        "322390000000.00"
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}
