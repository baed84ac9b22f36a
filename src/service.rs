//! `silkroute run`: wires the processing loop, Kafka clients and HTTP together, and stops
//! them in order.
//!
//! Start: credentials checked (a refused SASL/TLS handshake stops here) → HTTP up (probes
//! answer 503) → output topics created → input and changelog topics awaited → state restored
//! from the changelog → subscribe → catch up → ready. Stop (SIGTERM/SIGINT or
//! [`ServiceHandle::stop`]): readiness off → fetching stops after the batch in hand → drain (the
//! changelog read to its end, this instance's last records published and committed) →
//! producer flushed → at least once, the stored offsets committed (exactly once, every batch's
//! transaction committed its own) → group left, all within `shutdown.timeout_ms`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::Producer;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, error, info, warn};

use crate::batch::HeadersOnly;
use crate::blocking;
use crate::changelog::{Table, Written};
use crate::config::Settings;
use crate::delivery::Deliveries;
use crate::engine::record::Record;
use crate::engine::Engine;
use crate::event::ParseRules;
use crate::http::{self, AppState};
use crate::kafka::{self, ServiceContext};
use crate::lifecycle::{Lifecycle, State};
use crate::metrics::Metrics;
use crate::output::OutputProducer;
use crate::ownership::SharedAssignment;
use crate::pipeline::{Parts, Processor};
use crate::query::{Filter, RecordQuery};
use crate::retry::{Backoff, OperatorError};
use crate::shutdown::{self, Shutdown, Stop};
use crate::timeouts;
use crate::{clock, restore};

pub struct ServiceHandle {
    pub lifecycle: Arc<Lifecycle>,
    pub metrics: Arc<Metrics>,
    pub http_addr: SocketAddr,
    queries: mpsc::Sender<RecordQuery>,
    stop: Stop,
    task: JoinHandle<anyhow::Result<()>>,
    http_stop: Stop,
    timeout: Duration,
}

impl ServiceHandle {
    /// Current records matching `filter`, from the processing loop.
    pub async fn records(&self, filter: Filter) -> anyhow::Result<Vec<Record>> {
        let (reply, answer) = oneshot::channel();
        self.queries
            .send(RecordQuery { filter, reply })
            .await
            .map_err(|_| anyhow::anyhow!("the processing loop is not running"))?;
        Ok(answer.await?)
    }

    /// Resolves when the service ends by itself (a fatal error).
    pub async fn stopped(&mut self) -> anyhow::Result<()> {
        (&mut self.task)
            .await
            .context("the processing task panicked")?
    }

    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Graceful stop under `shutdown.timeout_ms`; an error if it could not finish in time.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.lifecycle.set(State::Draining);
        info!("Shutting down: readiness off, draining.");
        self.stop.fire();
        let result = match tokio::time::timeout(self.timeout, &mut self.task).await {
            Ok(joined) => joined.context("the processing task panicked")?,
            Err(_) => {
                self.task.abort();
                Err(anyhow::anyhow!(
                    "shutdown did not finish within shutdown.timeout_ms = {} ms",
                    self.timeout.as_millis()
                ))
            }
        };
        self.http_stop.fire();
        result
    }
}

/// Starts the service in the background; returns once HTTP is listening.
pub async fn start(settings: Settings) -> anyhow::Result<ServiceHandle> {
    debug!(?settings, "Settings.");
    kafka::check_credentials(&settings).await?;
    let metrics = Arc::new(Metrics::new());
    metrics.init_topics(
        &settings.topics.inputs(),
        &[&settings.topics.indicators, &settings.topics.dead_letter],
    );
    let lifecycle = Arc::new(Lifecycle::new());
    let (queries_tx, queries_rx) = mpsc::channel(16);
    let (stop, shutdown) = shutdown::channel();
    let listener = tokio::net::TcpListener::bind(settings.http.listen)
        .await
        .with_context(|| format!("cannot listen on http.listen = {}", settings.http.listen))?;
    let http_addr = listener.local_addr()?;
    let app = http::router(AppState {
        metrics: metrics.clone(),
        lifecycle: lifecycle.clone(),
        queries: queries_tx.clone(),
    });
    let (http_stop, mut http_stopped) = shutdown::channel();
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { http_stopped.recv().await });
        if let Err(e) = served.await {
            error!(error = %e, "HTTP server failed.");
        }
    });
    info!(address = %http_addr, "HTTP listening.");
    let timeout = settings.shutdown.timeout;
    let task = {
        let (metrics, lifecycle) = (metrics.clone(), lifecycle.clone());
        tokio::spawn(async move {
            let result =
                main_loop(settings, metrics, lifecycle.clone(), queries_rx, shutdown).await;
            match &result {
                Ok(()) => lifecycle.set(State::Stopped),
                Err(e) => {
                    error!(error = %format!("{e:#}"), "The service stopped on an error.");
                    lifecycle.set(State::Failed);
                }
            }
            result
        })
    };
    Ok(ServiceHandle {
        lifecycle,
        metrics,
        http_addr,
        queries: queries_tx,
        stop,
        task,
        http_stop,
        timeout,
    })
}

async fn main_loop(
    settings: Settings,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    mut queries: mpsc::Receiver<RecordQuery>,
    mut shutdown: Shutdown,
) -> anyhow::Result<()> {
    let mut retry = Retry {
        backoff: Backoff::new(),
        group: settings.kafka.group_id.clone(),
        transactional_id: kafka::transactional_id(&settings),
        metrics: metrics.clone(),
    };
    if settings.topics.create {
        while let Err(e) = kafka::create_output_topics(&settings).await {
            if !retry
                .wait(&e, "Creating the output topics", &mut shutdown)
                .await
            {
                return Ok(());
            }
        }
    }
    retry.backoff.reset();
    // The inputs and the changelog in one wait: a metadata client per wait cost a start 50 ms.
    let changelog = settings.changelog_topic();
    let [trade, freight, fx] = settings.topics.inputs();
    let mut inputs = kafka::wait_for_topics(
        &settings,
        &[trade, freight, fx, &changelog],
        &metrics,
        &shutdown,
    )
    .await?;
    let changelog_partitions = inputs.pop().expect("the changelog was waited for").1;
    let shared = Shared {
        settings,
        inputs,
        changelog_partitions,
        metrics: metrics.clone(),
        lifecycle: lifecycle.clone(),
        headers_only: HeadersOnly::default(),
    };
    for session in 0u64.. {
        if session > 0 {
            metrics.restores.inc();
        }
        let progress = metrics.progress_batches();
        let result = run_session(&shared, &mut queries, &mut shutdown).await;
        let e = match result {
            Err(e) if !shutdown.is_shutdown() => e,
            other => return other.map_err(|failure| failure.error),
        };
        // Abort and rewind, or any other failure of the session: the engine may be ahead of
        // what Kafka committed, so it is rebuilt from the changelog, with fresh clients,
        // without leaving the process, after a backoff that grows while sessions keep
        // failing without progress.
        lifecycle.set(State::Restoring);
        if metrics.progress_batches() != progress {
            retry.backoff.reset();
        }
        let what = if e.aborted {
            "Transaction aborted; restoring from the last committed batch"
        } else {
            "Processing failed; restoring from the last committed batch"
        };
        if !retry.wait(&e.error, what, &mut shutdown).await {
            return Ok(());
        }
    }
    unreachable!("sessions are counted by u64")
}

/// The backoff between failed attempts, and who hears of each failure.
struct Retry {
    backoff: Backoff,
    group: String,
    transactional_id: String,
    metrics: Arc<Metrics>,
}

impl Retry {
    /// Reports a failed attempt (an operator error by cause and resource, anything else as a
    /// transient failure) and waits out the backoff; false if a stop was asked meanwhile.
    async fn wait(&mut self, e: &anyhow::Error, what: &str, shutdown: &mut Shutdown) -> bool {
        let delay = self.backoff.next_delay();
        let attempt = self.backoff.attempt();
        match OperatorError::find(e, &self.group, &self.transactional_id) {
            Some(op) => self.metrics.operator_error(&op, attempt, delay),
            None => warn!(
                error = %format!("{e:#}"),
                attempt,
                retry_in_ms = delay.as_millis() as u64,
                "{what}; retrying."
            ),
        }
        if shutdown.is_shutdown() {
            return false;
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => !shutdown.is_shutdown(),
            _ = shutdown.recv() => false,
        }
    }
}

/// What every session shares: found once at start, kept across restores.
struct Shared {
    settings: Settings,
    /// Input topics and their partition counts.
    inputs: Vec<(String, i32)>,
    changelog_partitions: i32,
    metrics: Arc<Metrics>,
    lifecycle: Arc<Lifecycle>,
    /// Dead letters that must go with their headers only, remembered across sessions.
    headers_only: HeadersOnly,
}

/// How a session failed: the error, and whether a transaction was aborted (the message the
/// restore is announced with), told by the output rather than found in the error's chain.
struct SessionFailure {
    error: anyhow::Error,
    aborted: bool,
}

impl From<anyhow::Error> for SessionFailure {
    fn from(error: anyhow::Error) -> SessionFailure {
        SessionFailure {
            error,
            aborted: false,
        }
    }
}

/// One life of the Kafka clients and the engine: restore from the changelog, join the group,
/// consume until shutdown or an error, drain.
async fn run_session(
    shared: &Shared,
    queries: &mut mpsc::Receiver<RecordQuery>,
    shutdown: &mut Shutdown,
) -> Result<(), SessionFailure> {
    let (settings, metrics) = (shared.settings.clone(), shared.metrics.clone());
    let (inputs, changelog_partitions, lifecycle, headers_only) = (
        &shared.inputs,
        shared.changelog_partitions,
        &shared.lifecycle,
        &shared.headers_only,
    );
    let input_names = settings.topics.inputs().map(String::from);
    lifecycle.set(State::Restoring);
    metrics.restore_in_progress.set(1);
    let engine = Engine::new(settings.engine());
    let assignment = SharedAssignment::default();
    let context = ServiceContext {
        metrics: metrics.clone(),
        input_topics: input_names.to_vec(),
        assignment: assignment.clone(),
        leaving: Default::default(),
        group: settings.kafka.group_id.clone(),
    };
    let consumer: StreamConsumer<ServiceContext> = kafka::consumer_config(&settings)
        .create_with_context(context)
        .context("creating the Kafka consumer")?;
    // Filled by the producer's reports, read by the changelog's reader: this session's own
    // changelog records, known by their offsets.
    let written = Arc::new(Written::default());
    let producer: OutputProducer = kafka::producer_config(&settings)
        .create_with_context(Deliveries::new(&metrics, written.clone()))
        .context("creating the Kafka producer")?;
    let rules = ParseRules {
        max_message_bytes: settings.limits.max_message_bytes,
        current_month: clock::current_utc_month(),
    };
    let exactly_once = settings.processing.guarantee == crate::config::Guarantee::ExactlyOnce;
    // Exactly once, the producer's transactions are initialised while the changelog is
    // restored: neither needs the other, and the coordinator's round trips held every start
    // back by 100-130 ms (issue 17). A transaction this id left open (the instance this one
    // replaces) holds the read_committed restore at its first record until the
    // initialisation has aborted it, as the restore would otherwise have found it.
    let initialised = async move {
        if !exactly_once {
            return anyhow::Ok(producer);
        }
        blocking::on_pool(move |_| {
            producer
                .init_transactions(timeouts::KAFKA_REQUEST)
                .context("initialising Kafka transactions (processing.guarantee = exactly_once)")?;
            info!("Transactions initialised; processing exactly once.");
            anyhow::Ok(producer)
        })
        .await?
    };
    let restore = async {
        let (table, ends, started) = blocking::run(|b| {
            // The restore's reported time starts with the changelog's reader.
            let started = std::time::Instant::now();
            let (table, ends) = Table::open(b, &settings, changelog_partitions, rules, written)?;
            anyhow::Ok((table, ends, started))
        })?;
        let prefetch = restore::Prefetch::start(&settings, &metrics, &table.log_ends)?;
        let (engine, restored) = table.restore(engine, &ends, &metrics).await?;
        anyhow::Ok((table, prefetch, engine, restored, started))
    };
    let (producer, restore) = tokio::join!(initialised, restore);
    let (producer, (table, prefetch, mut engine, restored, started)) = (producer?, restore?);
    // What these cells derive was published already, or is compared with what Kafka holds
    // when the group assigns this instance its partitions.
    let read_ms = started.elapsed().as_millis() as u64;
    engine.discard_changes();
    metrics.restore_in_progress.set(0);
    info!(
        records = restored,
        cells = engine.cells(),
        read_ms,
        total_ms = started.elapsed().as_millis() as u64,
        "Restored from the changelog."
    );

    lifecycle.set(State::CatchingUp);
    consumer
        .subscribe(&settings.topics.inputs())
        .context("subscribing to the input topics")?;
    let stop_budget = settings.shutdown.timeout;
    let mut processor = Processor::new(Parts {
        settings,
        engine,
        producer,
        metrics,
        lifecycle: lifecycle.clone(),
        assignment,
        inputs: inputs.to_vec(),
        changelog_partitions,
        session: table.session,
        headers_only: headers_only.clone(),
        prefetch,
    });
    let result = processor.run(&consumer, &table, queries, shutdown).await;
    if result.is_ok() {
        // A stop was asked for. (After an aborted transaction the caller restores instead, so
        // readiness must not be locked in Draining.)
        lifecycle.set(State::Draining);
    }
    // The drain took at most half of shutdown.timeout_ms; the flush gets a quarter, so that the
    // stop (drain, flush, commit, leave) fits the budget the handle waits for.
    let flush_budget = (stop_budget / 4).min(timeouts::STOP_STEP_MAX);
    blocking::run(|b| processor.wind_down(b, &consumer, flush_budget));
    if result.is_err() {
        // Replaced by the next session's consumer: the lag stays in sight meanwhile.
        consumer
            .context()
            .leaving
            .store(true, std::sync::atomic::Ordering::SeqCst);
    }
    consumer.unsubscribe();
    let close_budget = (stop_budget / 5).clamp(timeouts::CLOSE_MIN, timeouts::STOP_STEP_MAX);
    if close_off_runtime("the group consumer", consumer, close_budget).await {
        info!("Left the consumer group.");
    }
    close_off_runtime("the changelog reader", table, close_budget).await;
    result.map_err(|error| SessionFailure {
        error,
        aborted: processor.aborted(),
    })
}

/// Drops a Kafka client on a thread of its own ([`kafka::close_detached`]) and waits for it at
/// most `budget`; true if it closed in time.
///
/// rdkafka's consumer drop polls until librdkafka reports the consumer closed, without a bound
/// (fede1024/rust-rdkafka#509). Dropped on a runtime worker, a close that never ends holds that
/// worker, and the runtime's own drop waits for its workers: the process (or a test) would never
/// end. Past the budget the close is left to finish, or not, on its thread, which does not keep
/// the process alive.
async fn close_off_runtime<T: Send + 'static>(
    what: &'static str,
    client: T,
    budget: Duration,
) -> bool {
    let Some(on_closed) = kafka::close_detached(client) else {
        warn!(
            client = what,
            "No thread to close a Kafka client on; it was closed on the runtime."
        );
        return false;
    };
    match tokio::time::timeout(budget, on_closed).await {
        Ok(_) => true,
        Err(_) => {
            warn!(
                client = what,
                budget_ms = budget.as_millis() as u64,
                "The Kafka client did not close within its budget; it is left to close on its own."
            );
            false
        }
    }
}

/// `silkroute run` in the foreground until SIGTERM or SIGINT.
pub async fn run_until_signal(settings: Settings) -> anyhow::Result<()> {
    let mut handle = start(settings).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = term.recv() => info!("SIGTERM received."),
        _ = tokio::signal::ctrl_c() => info!("SIGINT received."),
        result = handle.stopped() => return result,
    }
    handle.stop().await
}
