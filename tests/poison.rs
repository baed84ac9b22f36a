//! The poison pill of issue 14: one valid-JSON message of 1.5 MB on the trade topic (which
//! accepts 4 MiB), then a good event on the same partition. The good event's indicators are
//! published, the dead letter is cut with the original's length and SHA-256, and the service
//! never aborts a transaction or restores. On librdkafka's mock cluster by default, on the real
//! broker when SILKROUTE_TEST_BOOTSTRAP names one (then in the mode SILKROUTE_TEST_GUARANTEE
//! names).

mod common;

use common::*;
use sha2::{Digest, Sha256};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_of_one_and_a_half_megabytes_is_dead_lettered_cut_and_the_next_event_is_applied()
{
    let broker = Broker::start();
    let names = Names::fresh();
    broker
        .create_topics_with(&[(&names.trade, 3)], &[("max.message.bytes", "4194304")])
        .await;
    broker
        .create_topics(&[(&names.freight, 3), (&names.fx, 1)])
        .await;
    if !broker.is_real() {
        broker
            .create_topics(&[
                (&names.indicators, 3),
                (&names.dead_letter, 1),
                (&format!("{}-cells-changelog", names.group), 3),
            ])
            .await;
    }
    let mut poison = br#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"import","dimension":"total","value_cny":"5.00","padding":""#.to_vec();
    poison.resize(1_500_000 - 2, b'x');
    poison.extend_from_slice(b"\"}");
    assert!(serde_json::from_slice::<serde_json::Value>(&poison).is_ok());
    let good = br#"{"type":"customs_trade","region":"XJ","period":"2024-01","flow":"export","dimension":"total","value_cny":"7.00"}"#;
    // One key: one partition, the good event behind the poison.
    broker
        .produce_raw(
            &names.trade,
            &[Raw::value(b"XJ", poison.clone()), Raw::value(b"XJ", *good)],
        )
        .await;

    let svc = TestService::start_on(broker, names, &[]).await;
    // Ready: the topics it created have leaders, and it caught up with the poison.
    eventually("ready", 90, || svc.handle.lifecycle.is_ready()).await;
    let mut published = Vec::new();
    eventually("the good event's indicators", 60, || {
        published = svc.indicators();
        compact(&published)
            .0
            .contains_key("trade/XJ/export/total/-/2024-01")
    })
    .await;
    let (records, _) = compact(&published);
    assert_eq!(
        records["trade/XJ/export/total/-/2024-01"]["ytd_cny"],
        "7.00"
    );
    assert!(
        !records.contains_key("trade/XJ/import/total/-/2024-01"),
        "the poison was never applied"
    );

    let dead = svc.broker.read_all(&svc.names.dead_letter);
    assert_eq!(dead.len(), 1, "one dead letter");
    let d = &dead[0];
    assert_eq!(d.header("silkroute.error.reason"), Some("too_large"));
    let value = d.value.as_deref().unwrap();
    assert_eq!(
        value.len(),
        1_000_000,
        "cut to limits.dead_letter_max_bytes"
    );
    assert_eq!(
        value,
        &poison[..1_000_000],
        "the first bytes of the original"
    );
    assert_eq!(d.key.as_deref(), Some(&b"XJ"[..]));
    assert_eq!(
        d.header("silkroute.error.original_bytes"),
        Some("1500000"),
        "the original's length"
    );
    let sha: String = Sha256::digest(&poison)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        d.header("silkroute.error.original_sha256"),
        Some(sha.as_str()),
        "the original's SHA-256"
    );
    assert_eq!(
        svc.handle
            .metrics
            .events_rejected
            .with_label_values(&["too_large"])
            .get(),
        1
    );
    assert_eq!(
        svc.handle
            .metrics
            .transactions
            .with_label_values(&["abort"])
            .get(),
        0,
        "no transaction aborted"
    );
    assert_eq!(svc.handle.metrics.restores.get(), 0, "never restored");
    svc.stop().await;
}
