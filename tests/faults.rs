//! Faults against the real broker, one at a time (run with `--test-threads=1`; the broker test
//! stops the broker every other test would use): the service SIGKILLed during a backfill, and
//! the broker SIGKILLed and restarted mid-stream. Each ends with the indicators topic equal,
//! key by key, to the offline engine over the same input, every input offset committed, and
//! every poison message dead-lettered. Runs in the mode SILKROUTE_TEST_GUARANTEE names
//! (default exactly_once: no repeats, each dead letter once); in at_least_once repeats are
//! allowed and counted in the output.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};
use xxhash_rust::xxh3::xxh3_64;

fn real_broker() -> Broker {
    assert!(
        std::env::var("SILKROUTE_TEST_BOOTSTRAP").is_ok_and(|b| !b.is_empty()),
        "needs SILKROUTE_TEST_BOOTSTRAP"
    );
    Broker::start()
}

/// A 58k-event backfill and the sample, shuffled together, restatements at revision 7, and
/// poison mixed in: several seconds of work for a debug build.
fn stream_with_poison() -> (Vec<String>, usize) {
    let mut lines = volume_lines();
    lines.extend(sample_lines());
    let mut lines = shuffled(&lines, 11);
    for m in 1..=9 {
        lines.push(format!(r#"{{"type":"customs_trade","region":"XJ","period":"2024-{m:02}","flow":"export","dimension":"commodity","member":"other","value_cny":"{}.00","revision":7}}"#, 1_000_000_000 + m));
    }
    let poison = [
        r#"{"type":"customs_trade","region":"XJ"}"#,
        "not json",
        "[1]",
        r#"{"type":"weather"}"#,
    ];
    let mut with_poison = Vec::new();
    for (i, l) in lines.into_iter().enumerate() {
        if i % 997 == 0 {
            with_poison.push(poison[(i / 997) % poison.len()].to_string());
        }
        with_poison.push(l);
    }
    let n = with_poison
        .iter()
        .filter(|l| poison.contains(&l.as_str()))
        .count();
    (with_poison, n)
}

/// The real broker, fresh input topics, and the stream to load (with its poison count).
async fn fresh_backfill() -> (Broker, Names, Vec<String>, usize) {
    let broker = real_broker();
    let names = Names::fresh();
    names.create(&broker).await;
    let (lines, poison) = stream_with_poison();
    (broker, names, lines, poison)
}

async fn publish_mixed(broker: &Broker, names: &Names, lines: &[String]) {
    let mut good = Vec::new();
    for l in lines {
        match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v)
                if v.get("region").is_some()
                    || v.get("port").is_some()
                    || v.get("currency").is_some() =>
            {
                good.push(l.clone())
            }
            _ => broker.produce(&names.trade, &[(None, l.as_bytes())]).await,
        }
    }
    publish_lines(broker, names, &good).await;
}

/// An instance named `instance`: a restarted instance keeps its name (as a pod does), which
/// fences the open transaction of the one it replaces.
fn spawn(names: &Names, broker: &Broker, port: u16, instance: &str) -> ServiceProcess {
    spawn_with(names, broker, port, instance, &[])
}

fn spawn_with(
    names: &Names,
    broker: &Broker,
    port: u16,
    instance: &str,
    extra: &[(&str, &str)],
) -> ServiceProcess {
    let listen = format!("127.0.0.1:{port}");
    let mut command = ServiceProcess::command(names, broker, &[], extra.iter().copied());
    command
        .env("SILKROUTE__KAFKA__INSTANCE_ID", instance)
        .env("SILKROUTE__HTTP__LISTEN", listen)
        .env("SILKROUTE__PROCESSING__BATCH_MAX_MESSAGES", "500")
        // A SIGKILLed member holds its partitions until its session expires.
        .env("SILKROUTE__KAFKA__SESSION_TIMEOUT_MS", "6000");
    // Kept for a failing run: target/faults-GROUP.log.
    let log = format!(
        "{}/target/faults-{}.log",
        env!("CARGO_MANIFEST_DIR"),
        names.group
    );
    ServiceProcess::spawn(command, log)
}

/// A port that stays the same across a test's restarts of the service, different per test
/// process, and below Linux's ephemeral range (32768 on), where an outgoing connection could
/// hold it.
fn fixed_port(base: u16) -> u16 {
    base + (std::process::id() % 8000) as u16
}

/// After a broker restart its partitions come back one by one: until each has a leader a
/// producer is told the topic does not exist.
async fn wait_for_leaders(broker: &Broker, topics: &[&str]) {
    let client: BaseConsumer = broker.config().create().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    for topic in topics {
        loop {
            let ready = client
                .fetch_metadata(Some(topic), Duration::from_secs(5))
                .is_ok_and(|md| {
                    md.topics().first().is_some_and(|t| {
                        t.error().is_none()
                            && !t.partitions().is_empty()
                            && t.partitions()
                                .iter()
                                .all(|p| p.leader() >= 0 && p.error().is_none())
                    })
                });
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{topic} has no leader after the broker restart"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

async fn ready(port: u16) -> bool {
    reqwest::get(format!("http://127.0.0.1:{port}/readyz"))
        .await
        .is_ok_and(|r| r.status() == 200)
}

fn check_outcome(broker: &Broker, names: &Names, lines: &[String], poison: usize, what: &str) {
    let msgs = broker.read_all(&names.indicators);
    let (records, repeats) = compact(&msgs);
    let good: Vec<String> = lines
        .iter()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .is_ok_and(|v| v.is_object() && v.get("type") != Some(&"weather".into()))
        })
        .cloned()
        .collect();
    assert_same_records(&records, &offline_records(&good), what);
    let dead = broker.read_all(&names.dead_letter);
    let mut sources: Vec<(String, String)> = dead
        .iter()
        .map(|d| {
            (
                d.header("silkroute.source.partition").unwrap().to_string(),
                d.header("silkroute.source.offset").unwrap().to_string(),
            )
        })
        .collect();
    sources.sort();
    sources.dedup();
    assert_eq!(
        sources.len(),
        poison,
        "{what}: every poison message dead-lettered"
    );
    let mode = guarantee(broker);
    if mode == "exactly_once" {
        assert!(
            repeats.is_empty(),
            "{what}: exactly once publishes no record twice in a row: {:?}",
            &repeats[..repeats.len().min(5)]
        );
        assert_eq!(
            dead.len(),
            poison,
            "{what}: exactly once dead-letters each poison message once"
        );
    }
    println!(
        "{what} [{mode}]: {} records, {} keys, repeated identical records: {}, dead letters: {} ({} distinct)",
        msgs.len(),
        records.len(),
        repeats.len(),
        dead.len(),
        sources.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_killed_three_times_during_a_backfill_still_ends_with_the_right_indicators() {
    let (broker, names, lines, poison) = fresh_backfill().await;
    publish_mixed(&broker, &names, &lines).await;
    let port = fixed_port(21000);
    for (round, after_ms) in [4000u64, 6500, 9000].into_iter().enumerate() {
        let mut child = spawn(&names, &broker, port, "a");
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        child.kill(); // SIGKILL
        println!("kill {} after {after_ms} ms", round + 1);
    }
    let mut child = spawn(&names, &broker, port, "a");
    let deadline = Instant::now() + Duration::from_secs(180);
    while !(ready(port).await && all_committed(&broker, &names)) {
        assert!(Instant::now() < deadline, "never caught up after the kills");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(child.stop().success());
    check_outcome(&broker, &names, &lines, poison, "SIGKILL x3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_killed_and_restarted_mid_stream_loses_nothing() {
    let (broker, names, lines, poison) = fresh_backfill().await;
    let (first, second) = lines.split_at(lines.len() / 2);
    publish_mixed(&broker, &names, first).await;
    let port = fixed_port(22000);
    let mut child = spawn(&names, &broker, port, "a");
    tokio::time::sleep(Duration::from_millis(5000)).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
    assert!(
        Command::new(script).arg("kill").status().unwrap().success(),
        "broker SIGKILL"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        Command::new(script)
            .arg("start")
            .status()
            .unwrap()
            .success(),
        "broker restart"
    );
    wait_for_leaders(&broker, &[&names.trade, &names.freight, &names.fx]).await;
    publish_mixed(&broker, &names, second).await;
    let deadline = Instant::now() + Duration::from_secs(240);
    while !(ready(port).await && all_committed(&broker, &names)) {
        assert!(
            Instant::now() < deadline,
            "never caught up after the broker restart"
        );
        assert!(child.is_running(), "the service died with the broker");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(child.stop().success());
    check_outcome(&broker, &names, &lines, poison, "broker SIGKILL + restart");
}

/// Publishes like a careless producer: no key, so librdkafka spreads a region's events over
/// every partition.
async fn publish_unkeyed(broker: &Broker, names: &Names, lines: &[String]) {
    let mut by_topic: std::collections::BTreeMap<String, Vec<&[u8]>> = Default::default();
    for l in lines {
        let topic = match serde_json::from_str::<serde_json::Value>(l) {
            Ok(v) if v.is_object() => names.topic_for(&v).to_string(),
            _ => names.trade.clone(),
        };
        by_topic.entry(topic).or_default().push(l.as_bytes());
    }
    for (topic, values) in by_topic {
        let msgs: Vec<(Option<&str>, &[u8])> = values.into_iter().map(|v| (None, v)).collect();
        broker.produce(&topic, &msgs).await;
    }
}

/// Waits until nothing more is published to `topic` for a few seconds.
async fn settled(broker: &Broker, topic: &str) {
    let client: BaseConsumer = broker.config().create().unwrap();
    let end = || {
        (0..3)
            .map(|p| {
                client
                    .fetch_watermarks(topic, p, Duration::from_secs(10))
                    .map(|w| w.1)
                    .unwrap_or(-1)
            })
            .sum::<i64>()
    };
    let (mut last, mut since) = (end(), Instant::now());
    while since.elapsed() < Duration::from_secs(4) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = end();
        if now != last {
            (last, since) = (now, Instant::now());
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_one_to_three_to_two_during_a_backfill_gives_the_records_of_one_instance() {
    let (broker, names, lines, poison) = fresh_backfill().await;
    let (first, second) = lines.split_at(lines.len() / 2);
    publish_mixed(&broker, &names, first).await;
    let base = fixed_port(23000);
    let ports = [base, base + 1, base + 2, base + 3];
    let mut a = spawn(&names, &broker, ports[0], "a");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    println!("1 instance");
    let mut b = spawn(&names, &broker, ports[1], "b");
    let mut c = spawn(&names, &broker, ports[2], "c");
    // The second half arrives unkeyed while the group grows: a region's events land on
    // partitions (and instances) that do not own its records.
    publish_unkeyed(&broker, &names, second).await;
    tokio::time::sleep(Duration::from_millis(5000)).await;
    println!("3 instances");
    c.kill(); // SIGKILL
    println!("2 instances (one SIGKILLed)");
    tokio::time::sleep(Duration::from_millis(3000)).await;
    assert!(b.stop().success(), "graceful stop of an instance");
    let mut d = spawn(&names, &broker, ports[3], "d");
    println!("2 instances (one stopped gracefully, one started)");
    let deadline = Instant::now() + Duration::from_secs(240);
    while !(ready(ports[0]).await && ready(ports[3]).await && all_committed(&broker, &names)) {
        assert!(Instant::now() < deadline, "never caught up after scaling");
        assert!(a.is_running(), "instance a died");
        assert!(d.is_running(), "instance d died");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Judged while both instances run: each publishes its own regions' records, the ranks
    // among them included.
    settled(&broker, &names.indicators).await;
    check_outcome(&broker, &names, &lines, poison, "scaling 1-3-2");
    check_gauges_split(&broker, &names, [ports[0], ports[3]]).await;
    for mut child in [a, d] {
        assert!(child.stop().success());
    }
}

/// Each instance exports the gauges of exactly the series it publishes: those of the regions
/// and ports whose input partition it holds (`xxh3(entity) mod n`, as the README documents).
/// An instance drops the series whose partition it gave up, and a new owner exports the series
/// it took over even where Kafka already held their records; so a dashboard's `sum` across
/// pods counts each series once.
async fn check_gauges_split(broker: &Broker, names: &Names, ports: [u16; 2]) {
    // Every series as the record keys name it (the key without its period), with its entity.
    let mut series: BTreeSet<(String, String)> = BTreeSet::new();
    for m in broker.read_all(&names.indicators) {
        let key = m.key_str();
        let mut parts = key.split('/');
        let (kind, entity) = (parts.next().unwrap(), parts.next().unwrap());
        if kind == "trade" || kind == "freight" {
            let (s, _period) = key.rsplit_once('/').unwrap();
            series.insert((s.to_string(), entity.to_string()));
        }
    }
    let mut exported_total = 0;
    let mut held_total = 0;
    for port in ports {
        let text = scrape(port).await.expect("a scrape of /metrics");
        // The partitions an instance holds are those it reports a lag for.
        let held: BTreeSet<(String, i32)> = samples(&text, "silkroute_consumer_lag_messages")
            .map(|l| (l["topic"].clone(), l["partition"].parse().unwrap()))
            .collect();
        held_total += held.len();
        let holds = |topic: &str, entity: &str| {
            let p = (xxh3_64(entity.as_bytes()) % 3) as i32;
            held.contains(&(topic.to_string(), p))
        };
        let mut exported: BTreeSet<String> = samples(&text, "silkroute_trade_ytd_yuan")
            .map(|l| {
                let member = match l["member"].as_str() {
                    "" => "-",
                    m => m,
                };
                format!(
                    "trade/{}/{}/{}/{member}",
                    l["area"], l["flow"], l["dimension"]
                )
            })
            .collect();
        exported.extend(
            samples(&text, "silkroute_freight_trains_ytd")
                .map(|l| format!("freight/{}/{}", l["port"], l["service"])),
        );
        let publishes: BTreeSet<String> = series
            .iter()
            .filter(|(s, entity)| {
                let topic = if s.starts_with("trade/") {
                    &names.trade
                } else {
                    &names.freight
                };
                holds(topic, entity)
            })
            .map(|(s, _)| s.clone())
            .collect();
        let stale: Vec<_> = exported.difference(&publishes).take(5).collect();
        let missing: Vec<_> = publishes.difference(&exported).take(5).collect();
        assert!(
            stale.is_empty() && missing.is_empty(),
            "instance on :{port} (holding {held:?}) exports series it does not publish: \
             {stale:?}; lacks series it publishes: {missing:?}"
        );
        exported_total += exported.len();
        println!(
            "scaling 1-3-2: instance on :{port} holds {} partitions and exports the gauges of its {} series",
            held.len(),
            exported.len()
        );
    }
    assert_eq!(
        held_total, 7,
        "the two instances hold every input partition once"
    );
    assert_eq!(exported_total, series.len(), "every series exported once");
}

/// The label sets of `metric`'s samples in a text exposition.
fn samples<'a>(
    text: &'a str,
    metric: &'a str,
) -> impl Iterator<Item = BTreeMap<String, String>> + 'a {
    text.lines().filter_map(move |l| {
        let labels = l
            .strip_prefix(metric)?
            .strip_prefix('{')?
            .split_once('}')?
            .0;
        Some(
            labels
                .split("\",")
                .filter_map(|kv| {
                    let (k, v) = kv.split_once("=\"")?;
                    Some((k.to_string(), v.trim_end_matches('"').to_string()))
                })
                .collect(),
        )
    })
}

/// Resident memory of a process, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// The text of an instance's /metrics.
async fn scrape(port: u16) -> Option<String> {
    reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()
}

/// The value of a counter sample on /metrics, e.g. `silkroute_rebalances_total{event="assign"}`.
async fn metric(port: u16, sample: &str) -> Option<f64> {
    scrape(port)
        .await?
        .lines()
        .find_map(|l| l.strip_prefix(sample)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_broker_slows_the_service_without_growing_its_memory_or_losing_its_group() {
    let (broker, names, lines, poison) = fresh_backfill().await;
    publish_mixed(&broker, &names, &lines).await;
    // Every client of the service shares its client.id, and so this broker quota: writes are
    // slowed to 1 MiB/s (the records of the backfill are tens of MiB), reads to 4 MiB/s.
    let client_id = format!("throttled-{}", names.group);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/kafka.sh");
    let quota = Command::new(script)
        .args([
            "tool",
            "org.apache.kafka.tools.ConfigCommand",
            "--bootstrap-server",
            &broker.bootstrap,
            "--alter",
            "--add-config",
            "producer_byte_rate=1048576,consumer_byte_rate=4194304",
            "--entity-type",
            "clients",
            "--entity-name",
            &client_id,
        ])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(quota.success(), "setting the client quota");
    let port = fixed_port(24000);
    let mut child = spawn_with(
        &names,
        &broker,
        port,
        "a",
        &[("SILKROUTE__KAFKA__CLIENT_ID", &client_id)],
    );
    let started = Instant::now();
    let deadline = started + Duration::from_secs(300);
    let mut peak = 0u64;
    while !(ready(port).await && all_committed(&broker, &names)) {
        assert!(Instant::now() < deadline, "never caught up under the quota");
        assert!(child.is_running(), "the service died");
        peak = peak.max(rss(child.id()));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let assigned = metric(port, r#"silkroute_rebalances_total{event="assign"}"#).await;
    let elapsed = started.elapsed();
    assert!(child.stop().success());
    check_outcome(&broker, &names, &lines, poison, "throttled broker");
    println!(
        "throttled broker: caught up in {:.1} s, peak RSS {} MiB, group assignments {:?}",
        elapsed.as_secs_f64(),
        peak >> 20,
        assigned
    );
    // Batches wait for the broker instead of piling up: memory stays near what the cells and
    // the bounded read-ahead take, and the loop keeps polling, so the group never drops it.
    assert!(
        peak < 256 << 20,
        "peak RSS {} MiB under the quota",
        peak >> 20
    );
    assert_eq!(
        assigned,
        Some(1.0),
        "one assignment: never kicked out of the group"
    );
}
