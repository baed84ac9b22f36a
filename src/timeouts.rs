//! The shell's fixed waits on Kafka calls and loops, named, with why each is what it is.
//! Elsewhere, by design: waits that follow the configuration (`shutdown.timeout_ms`, the
//! batch wait) are derived where they are used; backoffs and the error pause are
//! [`crate::retry`]'s; the liveness and alarm thresholds are their owners'
//! (`Lifecycle::STALL`, `metrics::STALLED_UNREADY_AFTER`, `metrics::OPERATOR_ERROR_HOLD`); the
//! librdkafka client settings (`message.timeout.ms`, `transaction.timeout.ms`, fetch waits)
//! are set, with their reasons, in `kafka`'s client configs.

use std::time::Duration;

/// One request to the brokers that a client answers from metadata or a coordinator: metadata,
/// watermarks, committed offsets, topic creation, `init_transactions`, a blocking produce of
/// the `publish` command. Long enough for a broker that is busy electing leaders after a
/// restart; a broker that is gone fails it and the caller's backoff takes over.
pub const KAFKA_REQUEST: Duration = Duration::from_secs(30);

/// [`crate::kafka::watermarks`] in all, unless its caller has less time (a drain).
pub const WATERMARKS: Duration = KAFKA_REQUEST;

/// Between two tries of a watermark query whose partition has no leader yet (just after the
/// topic was created).
pub const LEADER_WAIT: Duration = Duration::from_millis(250);

/// One metadata query while waiting for the input and changelog topics; the wait repeats.
pub const TOPIC_METADATA: Duration = Duration::from_secs(10);

/// Between two looks for a topic that does not exist yet (not refused: missing).
pub const TOPIC_POLL: Duration = Duration::from_secs(1);

/// The start-up credential check in all: a refused SASL or TLS handshake shows within a few
/// seconds; a broker that merely does not answer is not refused, and start-up goes on.
pub const CREDENTIAL_CHECK: Duration = Duration::from_secs(15);

/// One metadata query of the credential check.
pub const CREDENTIAL_PROBE: Duration = Duration::from_secs(3);

/// One poll for the credential check's events (its error callback) between queries.
pub const CREDENTIAL_POLL: Duration = Duration::from_millis(100);

/// One exactly-once transaction's offsets handed to the group coordinator, and its commit:
/// twice a request, as a commit may have to wait for the coordinator of a slow broker.
pub const TRANSACTION: Duration = Duration::from_secs(60);

/// Every delivery report of a batch. Each delivery ends within `message.timeout.ms` (or the
/// transaction timeout), far below this: reaching it means librdkafka is stuck.
pub const ACKNOWLEDGED: Duration = Duration::from_secs(120);

/// librdkafka drops the last delivered records from its in-flight count just after serving
/// their reports; the transaction's commit (a flush) would otherwise poll for 100 ms.
pub const IN_FLIGHT_SETTLE: Duration = Duration::from_secs(1);

/// One look at that count: it settles within microseconds.
pub const IN_FLIGHT_SPIN: Duration = Duration::from_micros(50);

/// One look at a partition's last stable offset, when a read has stood still short of its
/// log end (see `kafka::Undecided`): an answer that takes longer means a broker in trouble,
/// which the read waits for anyway.
pub const LSO_CHECK: Duration = Duration::from_secs(5);

/// One wait for the changelog's next record while catching up: short, so that progress is
/// logged and the end is checked. Exactly once, each partition's last offset is a commit
/// marker, which no message reveals: the read sees its end only at this look at the reader's
/// positions, and at 200 ms it held the restore of the 443k backfill 0.1-0.2 s longer than at
/// least once (issue 17). A busy read does not pay for it: messages come first in its select.
pub const CATCH_UP_POLL: Duration = Duration::from_millis(10);

/// One poll of the restore reader of the indicators topic.
pub const RESTORE_POLL: Duration = Duration::from_millis(500);

/// Between two progress lines of a restore.
pub const PROGRESS_LOG: Duration = Duration::from_secs(5);

/// The processing loop's tick: rebalances and readiness are acted on while the inputs are idle.
pub const IDLE_TICK: Duration = Duration::from_secs(1);

/// Before refused records are sent again, times the attempt (200, 400, … ms): a refusal
/// Kafka may cure by itself (a leader election) usually has by then.
pub const RESEND_PAUSE: Duration = Duration::from_millis(200);

/// Before a produce that found librdkafka's queue full is tried again.
pub const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(1);

/// The producer's flush and the consumer's close at a stop never take longer than this,
/// whatever `shutdown.timeout_ms` allows: past it the broker is not answering.
pub const STOP_STEP_MAX: Duration = Duration::from_secs(10);

/// The consumer's close at a stop gets at least this, however short `shutdown.timeout_ms` is.
pub const CLOSE_MIN: Duration = Duration::from_millis(200);
