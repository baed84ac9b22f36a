//! What the service does about a failure it meets, so that nothing ever spins.
//!
//! - Transient (a broker gone, a coordinator moving, a timeout, a fenced producer, an aborted
//!   transaction): tried again after an exponential [`Backoff`], from [`BACKOFF_INITIAL`] to
//!   [`BACKOFF_MAX`], reset once processing makes progress again.
//! - A message's fault (its dead letter refused as too large): that message's dead letter is
//!   sent again cut to nothing but its headers (see `pipeline`), and processing goes on.
//! - An operator's (a missing ACL, a deleted topic, an output topic whose `max.message.bytes`
//!   is too small): an [`OperatorError`] naming the cause and the resource, retried with the
//!   same backoff and reported on every attempt (one log line, `silkroute_operator_error`,
//!   `/readyz` 503) until it clears.

use std::time::{Duration, Instant};

use rdkafka::error::{KafkaError, RDKafkaErrorCode};

/// First wait after a failure.
pub const BACKOFF_INITIAL: Duration = Duration::from_millis(250);
/// Longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Exponential backoff: each [`Backoff::next_delay`] doubles the wait, up to [`BACKOFF_MAX`].
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
    attempt: u32,
}

impl Backoff {
    pub fn new() -> Backoff {
        Backoff {
            next: BACKOFF_INITIAL,
            attempt: 0,
        }
    }

    /// The wait before the next attempt (and counts the attempt).
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(BACKOFF_MAX);
        self.attempt += 1;
        delay
    }

    /// Attempts so far since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    pub fn reset(&mut self) {
        *self = Backoff::new();
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new()
    }
}

/// The pause after each transient error that librdkafka recovers from by itself (a broker
/// gone, a connection refused): a burst of them cannot spin a loop, and a queue of them is
/// served in well under a second.
pub const ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Reports of transient errors that need no retry of ours, spaced by a [`Backoff`] instead of
/// waited out. librdkafka queues such errors like messages: a backoff's wait per error served
/// an outage's queue one at a time, 30 s each, long after the broker was back.
#[derive(Debug, Default)]
pub struct ErrorReports {
    backoff: Backoff,
    seen: u64,
    next: Option<Instant>,
}

/// A report that is due: errors since the last one, the report's number, and the interval
/// before the next.
#[derive(Debug, PartialEq, Eq)]
pub struct Due {
    pub errors: u64,
    pub attempt: u32,
    pub next_in: Duration,
}

impl ErrorReports {
    /// Counts an error at `now`; the report to log, if one is due.
    pub fn note(&mut self, now: Instant) -> Option<Due> {
        self.seen += 1;
        if self.next.is_some_and(|next| now < next) {
            return None;
        }
        let next_in = self.backoff.next_delay();
        let due = Due {
            errors: self.seen,
            attempt: self.backoff.attempt(),
            next_in,
        };
        self.seen = 0;
        self.next = Some(now + next_in);
        Some(due)
    }

    /// Counts `error` and, when a report is due, logs it: `what` failed, with the errors since
    /// the last line and the interval before the next. The one log line of the shell's
    /// transient read errors (consumer, changelog catch-up, restore reader).
    pub fn warn(&mut self, what: &str, error: &dyn std::fmt::Display) {
        if let Some(due) = self.note(Instant::now()) {
            tracing::warn!(
                error = %error,
                errors = due.errors,
                attempt = due.attempt,
                next_report_in_ms = due.next_in.as_millis() as u64,
                "{what}; librdkafka recovers by itself, going on."
            );
        }
    }

    /// Processing progressed: the next error is reported at once.
    pub fn reset(&mut self) {
        *self = ErrorReports::default();
    }
}

/// Why the service cannot go on until an operator acts: the `cause` label of
/// `silkroute_operator_error` and `silkroute_operator_errors_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cause {
    TopicAuthorization,
    GroupAuthorization,
    TransactionalIdAuthorization,
    ClusterAuthorization,
    UnknownTopic,
    /// An output record refused as too large: the topic's `max.message.bytes` is below what
    /// silkroute writes (see docs/operations.md).
    RecordTooLarge,
    /// SASL authentication failed (wrong credentials or mechanism).
    Authentication,
}

impl Cause {
    pub const ALL: [Cause; 7] = [
        Cause::TopicAuthorization,
        Cause::GroupAuthorization,
        Cause::TransactionalIdAuthorization,
        Cause::ClusterAuthorization,
        Cause::UnknownTopic,
        Cause::RecordTooLarge,
        Cause::Authentication,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::TopicAuthorization => "topic_authorization",
            Cause::GroupAuthorization => "group_authorization",
            Cause::TransactionalIdAuthorization => "transactional_id_authorization",
            Cause::ClusterAuthorization => "cluster_authorization",
            Cause::UnknownTopic => "unknown_topic",
            Cause::RecordTooLarge => "record_too_large",
            Cause::Authentication => "authentication",
        }
    }

    /// The operator's cause behind a Kafka error code, if it is one.
    pub fn of_code(code: RDKafkaErrorCode) -> Option<Cause> {
        use RDKafkaErrorCode as C;
        Some(match code {
            C::TopicAuthorizationFailed => Cause::TopicAuthorization,
            C::GroupAuthorizationFailed => Cause::GroupAuthorization,
            C::TransactionalIdAuthorizationFailed => Cause::TransactionalIdAuthorization,
            C::ClusterAuthorizationFailed => Cause::ClusterAuthorization,
            C::UnknownTopicOrPartition | C::UnknownTopic | C::UnknownPartition => {
                Cause::UnknownTopic
            }
            C::MessageSizeTooLarge | C::MessageBatchTooLarge => Cause::RecordTooLarge,
            C::SaslAuthenticationFailed | C::Authentication => Cause::Authentication,
            _ => return None,
        })
    }

    /// The resource a cause names when the failure did not say: the group, the
    /// transactional id, or the cluster.
    fn default_resource(self, group: &str, transactional_id: &str) -> String {
        match self {
            Cause::GroupAuthorization => group.to_string(),
            Cause::TransactionalIdAuthorization => transactional_id.to_string(),
            Cause::ClusterAuthorization => "cluster".to_string(),
            _ => String::new(),
        }
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A failure only an operator can cure, with the resource it concerns (a topic, the group,
/// the transactional id, `cluster`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{cause} on {resource}")]
pub struct OperatorError {
    pub cause: Cause,
    pub resource: String,
}

impl OperatorError {
    pub fn new(cause: Cause, resource: impl Into<String>) -> OperatorError {
        OperatorError {
            cause,
            resource: resource.into(),
        }
    }

    /// The operator error an error code means, naming `resource` (or, where that is empty,
    /// the group / transactional id / cluster the cause implies).
    pub fn of_code(code: RDKafkaErrorCode, resource: &str) -> Option<OperatorError> {
        Cause::of_code(code).map(|cause| OperatorError::new(cause, resource))
    }

    /// The operator error somewhere in `e`'s chain: one the code put there, or a Kafka
    /// error whose code is an operator's (naming the group, transactional id or cluster
    /// given, where the error itself names nothing).
    pub fn find(e: &anyhow::Error, group: &str, transactional_id: &str) -> Option<OperatorError> {
        // anyhow's own downcast, not the chain's: the code attaches an operator error as
        // context (`.context(op)`), and a context layer in `chain()` is a wrapper type that
        // no `downcast_ref::<OperatorError>` of its items matches.
        if let Some(op) = e.downcast_ref::<OperatorError>() {
            return Some(op.clone());
        }
        for cause in e.chain() {
            let code = match cause.downcast_ref::<KafkaError>() {
                Some(k) => k.rdkafka_error_code(),
                None => cause.downcast_ref::<RDKafkaErrorCode>().copied(),
            };
            if let Some(c) = code.and_then(Cause::of_code) {
                // A record refused as too large names its topic; without one it is no
                // operator's matter that can be named.
                if c == Cause::RecordTooLarge {
                    continue;
                }
                return Some(OperatorError::new(
                    c,
                    c.default_resource(group, transactional_id),
                ));
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_its_cap_and_starts_again_after_a_reset() {
        let mut b = Backoff::new();
        let delays: Vec<Duration> = (0..12).map(|_| b.next_delay()).collect();
        assert_eq!(delays[0], BACKOFF_INITIAL);
        assert_eq!(delays[1], BACKOFF_INITIAL * 2);
        assert!(delays.windows(2).all(|w| w[1] >= w[0]));
        assert_eq!(*delays.last().unwrap(), BACKOFF_MAX);
        assert_eq!(b.attempt(), 12);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_INITIAL);
    }

    #[test]
    fn error_reports_are_spaced_by_the_backoff_and_count_what_they_skipped() {
        let mut r = ErrorReports::default();
        let t0 = Instant::now();
        let first = r.note(t0).expect("the first error is reported");
        assert_eq!((first.errors, first.attempt), (1, 1));
        assert_eq!(first.next_in, BACKOFF_INITIAL);
        for i in 1..10 {
            assert_eq!(r.note(t0 + Duration::from_millis(i * 10)), None);
        }
        let second = r
            .note(t0 + BACKOFF_INITIAL)
            .expect("due after the interval");
        assert_eq!((second.errors, second.attempt), (10, 2));
        assert_eq!(second.next_in, BACKOFF_INITIAL * 2);
        r.reset();
        assert_eq!(r.note(t0 + BACKOFF_INITIAL).map(|d| d.attempt), Some(1));
    }

    #[test]
    fn authorization_codes_are_operator_errors_naming_their_resource() {
        let e = anyhow::Error::new(KafkaError::MessageConsumption(
            RDKafkaErrorCode::GroupAuthorizationFailed,
        ))
        .context("consuming");
        assert_eq!(
            OperatorError::find(&e, "g", "silkroute-g-1"),
            Some(OperatorError::new(Cause::GroupAuthorization, "g"))
        );
        let e = anyhow::Error::new(KafkaError::Global(
            RDKafkaErrorCode::TransactionalIdAuthorizationFailed,
        ));
        assert_eq!(
            OperatorError::find(&e, "g", "silkroute-g-1").map(|o| o.resource),
            Some("silkroute-g-1".to_string())
        );
        let named = anyhow::Error::new(OperatorError::new(Cause::TopicAuthorization, "t"))
            .context("producing");
        assert_eq!(
            OperatorError::find(&named, "g", "x").map(|o| o.resource),
            Some("t".to_string())
        );
        // As the code attaches it: the Kafka error, the operator error as context, more
        // context on top. The named resource wins over the code's default.
        let attached = anyhow::Error::new(KafkaError::MessageConsumption(
            RDKafkaErrorCode::TopicAuthorizationFailed,
        ))
        .context(OperatorError::new(
            Cause::TopicAuthorization,
            "silkroute-changelog",
        ))
        .context("reading the changelog");
        assert_eq!(
            OperatorError::find(&attached, "g", "x"),
            Some(OperatorError::new(
                Cause::TopicAuthorization,
                "silkroute-changelog"
            ))
        );
        let refused = anyhow::anyhow!("cannot create topic t: Broker: Topic authorization failed")
            .context(OperatorError::new(Cause::TopicAuthorization, "t"));
        assert_eq!(
            OperatorError::find(&refused, "g", "x").map(|o| o.resource),
            Some("t".to_string())
        );
        let transient = anyhow::Error::new(KafkaError::MessageConsumption(
            RDKafkaErrorCode::AllBrokersDown,
        ));
        assert_eq!(OperatorError::find(&transient, "g", "x"), None);
    }
}
