//! The bare transaction cycle (issue 17, the exactly-once latency target): how long one Kafka
//! transaction takes on this broker with silkroute's producer settings and none of its code.
//! Each cycle begins a transaction, writes one small record to each of the partitions the
//! service's batches touch at 5,000 events/s (its changelog's and its indicators topic's, six
//! each in the benchmark), waits for the acknowledgements, adds a consumer group's offsets and
//! commits, back to back. An event waits for the cycle in progress to end before its own
//! batch starts, then for its batch's cycle: at the 99th percentile its end-to-end time
//! includes one slow cycle and part of another (about 45 ms here, docs/performance.md),
//! whatever the service's own code costs.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use serde_json::{json, Value};

use silkroute::config::Settings;

use super::{create_topics, delete_topics, percentile, unique};

/// Transactions per partition count.
const CYCLES: usize = 200;

/// The first cycles connect and warm the broker's paths; not counted.
const WARM_UP: usize = 20;

/// One cycle's steps, in milliseconds.
struct Cycle {
    produce: f64,
    offsets: f64,
    commit: f64,
    total: f64,
}

/// Cycles with `partitions` partitions written per transaction (half on each of two topics),
/// then with 2, on topics of their own: percentiles of each step, as JSON.
pub async fn measure(bootstrap: &str, partitions: i32) -> anyhow::Result<Value> {
    let prefix = format!("bench-txn-{}", unique());
    let (a, b, input) = (
        format!("{prefix}-a"),
        format!("{prefix}-b"),
        format!("{prefix}-in"),
    );
    let half = (partitions / 2).max(1);
    create_topics(bootstrap, &[(&a, half), (&b, half), (&input, 1)], false).await?;
    let result = tokio::task::block_in_place(|| {
        let settings = settings(bootstrap, &prefix)?;
        let mut out = serde_json::Map::new();
        for n in [half, 1] {
            let cycles = cycles(&settings, &[(&a, n), (&b, n)], &input)?;
            out.insert(format!("partitions_{}", 2 * n), summary(&cycles));
        }
        anyhow::Ok(Value::Object(out))
    });
    delete_topics(bootstrap, &prefix).await;
    result
}

/// silkroute's settings for exactly once on `bootstrap`, a group and transactional id of the
/// probe's own.
fn settings(bootstrap: &str, prefix: &str) -> anyhow::Result<Settings> {
    let env = [
        ("SILKROUTE__KAFKA__BOOTSTRAP_SERVERS", bootstrap.to_string()),
        ("SILKROUTE__KAFKA__GROUP_ID", prefix.to_string()),
        ("SILKROUTE__PROCESSING__GUARANTEE", "exactly_once".into()),
    ]
    .map(|(k, v)| (k.to_string(), v));
    Settings::load_from(None, env).map_err(|e| anyhow::anyhow!("{e}"))
}

fn cycles(settings: &Settings, topics: &[(&str, i32)], input: &str) -> anyhow::Result<Vec<Cycle>> {
    let producer: ThreadedProducer<_> = silkroute::producer_config(settings)
        .set(
            "transactional.id",
            format!("{}-{}", settings.kafka.group_id, unique()),
        )
        .create()
        .context("creating the transactional producer")?;
    let consumer: BaseConsumer = silkroute::consumer_config(settings)
        .create()
        .context("creating the consumer whose offsets each transaction commits")?;
    let group = consumer
        .group_metadata()
        .context("the consumer has no group metadata")?;
    let timeout = Duration::from_secs(30);
    producer.init_transactions(timeout)?;
    let payload = vec![b'x'; 300];
    let mut out = Vec::with_capacity(CYCLES);
    for i in 0..WARM_UP + CYCLES {
        let t0 = Instant::now();
        producer.begin_transaction()?;
        for &(topic, partitions) in topics {
            for p in 0..partitions {
                let record = BaseRecord::<[u8], [u8]>::to(topic)
                    .partition(p)
                    .key(b"k")
                    .payload(&payload);
                if let Err((e, _)) = producer.send(record) {
                    bail!("queueing a record: {e}");
                }
            }
        }
        // Waited for as the service waits (its delivery reports), not with `flush`, which
        // polls every 100 ms once records are in flight.
        while producer.in_flight_count() > 0 {
            if t0.elapsed() > timeout {
                bail!("records not acknowledged within {timeout:?}");
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let t1 = Instant::now();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(input, 0, Offset::Offset(i as i64 + 1))?;
        producer.send_offsets_to_transaction(&tpl, &group, timeout)?;
        let t2 = Instant::now();
        producer.commit_transaction(timeout)?;
        let t3 = Instant::now();
        if i >= WARM_UP {
            let ms = |a: Instant, b: Instant| (b - a).as_secs_f64() * 1e3;
            out.push(Cycle {
                produce: ms(t0, t1),
                offsets: ms(t1, t2),
                commit: ms(t2, t3),
                total: ms(t0, t3),
            });
        }
    }
    Ok(out)
}

fn summary(cycles: &[Cycle]) -> Value {
    let stats = |f: fn(&Cycle) -> f64| {
        let mut v: Vec<f64> = cycles.iter().map(f).collect();
        v.sort_by(f64::total_cmp);
        json!({ "p50_ms": percentile(&v, 0.5), "p99_ms": percentile(&v, 0.99) })
    };
    json!({
        "cycles": cycles.len(),
        "total": stats(|c| c.total),
        "produce_and_acks": stats(|c| c.produce),
        "offsets": stats(|c| c.offsets),
        "commit": stats(|c| c.commit),
    })
}
