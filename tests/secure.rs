//! silkroute on a locked-down broker: TLS, SASL/SCRAM-SHA-512 and KRaft's StandardAuthorizer
//! with `allow.everyone.if.no.acl.found=false` (`SILKROUTE_KAFKA_SECURE=1 scripts/kafka.sh
//! start`). The service runs as the SCRAM user `silkroute` with exactly the ACLs that
//! docs/operations.md lists ([`needed`]); the test's own clients (topics, input, reading the
//! output back, granting ACLs) are the super user `admin`.
//!
//! Needs SILKROUTE_TEST_BOOTSTRAP (the SASL_SSL listener), SILKROUTE_TEST_KAFKA_CONFIG (the
//! admin's librdkafka options, DATA_DIR/secure/admin.librdkafka) and SILKROUTE_TEST_SECURE_DIR
//! (DATA_DIR/secure: silkroute.password, ca.pem); scripts/ci/secure.sh sets all three. Run with
//! `--test-threads=1`.

// The blocking boundary (clippy.toml, src/blocking.rs) is the service's rule; tests and
// benchmarks drive it from outside, on threads of their own.
#![allow(clippy::disallowed_methods)]

mod common;

use std::ffi::{c_char, CStr, CString};
use std::fmt;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::admin::AdminClient;
use rdkafka::bindings as rd;
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// The secure broker and the service's credentials.
struct Secure {
    broker: Broker,
    password: String,
    ca: String,
}

fn secure() -> Secure {
    let dir = std::env::var("SILKROUTE_TEST_SECURE_DIR")
        .expect("needs SILKROUTE_TEST_SECURE_DIR (scripts/ci/secure.sh sets it)");
    assert!(
        std::env::var("SILKROUTE_TEST_KAFKA_CONFIG").is_ok_and(|c| !c.is_empty()),
        "needs SILKROUTE_TEST_KAFKA_CONFIG (the admin's librdkafka options)"
    );
    let broker = Broker::start();
    assert!(broker.is_real(), "needs SILKROUTE_TEST_BOOTSTRAP");
    let password = std::fs::read_to_string(format!("{dir}/silkroute.password"))
        .expect("silkroute.password")
        .trim()
        .to_string();
    assert!(password.len() >= 16, "a password worth grepping for");
    Secure {
        broker,
        password,
        ca: format!("{dir}/ca.pem"),
    }
}

// ---------------------------------------------------------------------------------------------
// ACLs

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Topic,
    Group,
    TransactionalId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Read,
    Write,
    Create,
}

/// One ALLOW ACL for `User:silkroute` from any host.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Acl {
    kind: Kind,
    name: String,
    prefixed: bool,
    op: Op,
}

impl fmt::Display for Acl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Topic => "topic",
            Kind::Group => "group",
            Kind::TransactionalId => "transactional-id",
        };
        let prefix = if self.prefixed { " prefix" } else { "" };
        write!(f, "{:?} on {kind}{prefix} {}", self.op, self.name)
    }
}

impl Acl {
    fn topic(name: &str, op: Op) -> Acl {
        Acl {
            kind: Kind::Topic,
            name: name.to_string(),
            prefixed: false,
            op,
        }
    }

    /// The cause the service names when this ACL is missing (the metric's label).
    fn cause(&self) -> &'static str {
        match self.kind {
            Kind::Topic => "topic_authorization",
            Kind::Group => "group_authorization",
            Kind::TransactionalId => "transactional_id_authorization",
        }
    }
}

fn changelog(names: &Names) -> String {
    format!("{}-cells-changelog", names.group)
}

/// Exactly the ACLs docs/operations.md lists for a service with these names: Read on the
/// inputs; Read and Write on the changelog (forwarded events, read back whole at start) and on
/// the indicators topic (published records, read back when partitions are taken over); Write
/// on the dead-letter topic; Read on the group (its readers, which only assign, use the same
/// group.id); Write on the transactional-id prefix under
/// exactly_once; Create on the three output topics when `topics.create` is on. No cluster ACL.
fn needed(names: &Names, create: bool, exactly_once: bool) -> Vec<Acl> {
    let changelog = changelog(names);
    let mut acls = vec![
        Acl::topic(&names.trade, Op::Read),
        Acl::topic(&names.freight, Op::Read),
        Acl::topic(&names.fx, Op::Read),
        Acl::topic(&changelog, Op::Read),
        Acl::topic(&changelog, Op::Write),
        Acl::topic(&names.indicators, Op::Read),
        Acl::topic(&names.indicators, Op::Write),
        Acl::topic(&names.dead_letter, Op::Write),
        Acl {
            kind: Kind::Group,
            name: names.group.clone(),
            prefixed: false,
            op: Op::Read,
        },
    ];
    if exactly_once {
        acls.push(Acl {
            kind: Kind::TransactionalId,
            name: format!("silkroute-{}-", names.group),
            prefixed: true,
            op: Op::Write,
        });
    }
    if create {
        for t in [&names.indicators, &names.dead_letter, &changelog] {
            acls.push(Acl::topic(t, Op::Create));
        }
    }
    acls
}

/// Grants (CreateAcls) or revokes (DeleteAcls) `acls` for User:silkroute, as the admin, through
/// librdkafka's admin API (milliseconds, where a JVM-based `scripts/kafka.sh acl` takes ~10 s).
fn change_acls(broker: &Broker, acls: &[Acl], grant: bool) {
    let admin: AdminClient<DefaultClientContext> = broker.config().create().expect("admin");
    let rk = admin.inner().native_ptr();
    let principal = CString::new("User:silkroute").unwrap();
    let host = CString::new("*").unwrap();
    let ok = rd::rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR;
    let names: Vec<CString> = acls
        .iter()
        .map(|a| CString::new(a.name.as_str()).unwrap())
        .collect();
    // SAFETY: every pointer handed to librdkafka lives until the call that uses it returns;
    // the bindings, event and queue are destroyed once, after the result is read.
    unsafe {
        let mut errstr = [0 as c_char; 512];
        let mut bindings: Vec<*mut rd::rd_kafka_AclBinding_t> = Vec::new();
        for (a, name) in acls.iter().zip(&names) {
            let restype = match a.kind {
                Kind::Topic => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TOPIC,
                Kind::Group => rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_GROUP,
                Kind::TransactionalId => {
                    rd::rd_kafka_ResourceType_t::RD_KAFKA_RESOURCE_TRANSACTIONAL_ID
                }
            };
            let pattern = if a.prefixed {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_PREFIXED
            } else {
                rd::rd_kafka_ResourcePatternType_t::RD_KAFKA_RESOURCE_PATTERN_LITERAL
            };
            let op = match a.op {
                Op::Read => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_READ,
                Op::Write => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_WRITE,
                Op::Create => rd::rd_kafka_AclOperation_t::RD_KAFKA_ACL_OPERATION_CREATE,
            };
            let allow = rd::rd_kafka_AclPermissionType_t::RD_KAFKA_ACL_PERMISSION_TYPE_ALLOW;
            let args = (name.as_ptr(), principal.as_ptr(), host.as_ptr());
            let b = if grant {
                rd::rd_kafka_AclBinding_new(
                    restype,
                    args.0,
                    pattern,
                    args.1,
                    args.2,
                    op,
                    allow,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                )
            } else {
                rd::rd_kafka_AclBindingFilter_new(
                    restype,
                    args.0,
                    pattern,
                    args.1,
                    args.2,
                    op,
                    allow,
                    errstr.as_mut_ptr(),
                    errstr.len(),
                )
            };
            assert!(
                !b.is_null(),
                "{a}: {}",
                CStr::from_ptr(errstr.as_ptr()).to_string_lossy()
            );
            bindings.push(b);
        }
        let queue = rd::rd_kafka_queue_new(rk);
        if grant {
            rd::rd_kafka_CreateAcls(
                rk,
                bindings.as_mut_ptr(),
                bindings.len(),
                std::ptr::null(),
                queue,
            );
        } else {
            rd::rd_kafka_DeleteAcls(
                rk,
                bindings.as_mut_ptr(),
                bindings.len(),
                std::ptr::null(),
                queue,
            );
        }
        let event = rd::rd_kafka_queue_poll(queue, 30_000);
        assert!(!event.is_null(), "no answer to the ACL request in 30 s");
        let err = rd::rd_kafka_event_error(event);
        assert!(
            err == ok,
            "ACL request: {}",
            CStr::from_ptr(rd::rd_kafka_event_error_string(event)).to_string_lossy()
        );
        let mut n = 0usize;
        let errors: Vec<*const rd::rd_kafka_error_t> = if grant {
            let result = rd::rd_kafka_event_CreateAcls_result(event);
            let items = rd::rd_kafka_CreateAcls_result_acls(result, &mut n);
            (0..n)
                .map(|i| rd::rd_kafka_acl_result_error(*items.add(i)))
                .collect()
        } else {
            let result = rd::rd_kafka_event_DeleteAcls_result(event);
            let items = rd::rd_kafka_DeleteAcls_result_responses(result, &mut n);
            (0..n)
                .map(|i| rd::rd_kafka_DeleteAcls_result_response_error(*items.add(i)))
                .collect()
        };
        for (e, a) in errors.iter().zip(acls) {
            if !e.is_null() && rd::rd_kafka_error_code(*e) != ok {
                panic!(
                    "{} {a}: {}",
                    if grant { "granting" } else { "revoking" },
                    CStr::from_ptr(rd::rd_kafka_error_string(*e)).to_string_lossy()
                );
            }
        }
        assert_eq!(n, acls.len(), "one result per ACL");
        rd::rd_kafka_event_destroy(event);
        rd::rd_kafka_queue_destroy(queue);
        rd::rd_kafka_AclBinding_destroy_array(bindings.as_mut_ptr(), bindings.len());
    }
    // The broker's authorizer learns of the change from the metadata log, right after.
    std::thread::sleep(Duration::from_millis(500));
}

// ---------------------------------------------------------------------------------------------
// the service as a subprocess

/// The service as User:silkroute over SASL_SSL, with `password` and these settings.
fn spawn(s: &Secure, names: &Names, password: &str, extra: &[(&str, &str)]) -> ServiceProcess {
    let target = format!("{}/target", env!("CARGO_MANIFEST_DIR"));
    let config = format!("{target}/secure-{}.toml", names.group);
    std::fs::write(
        &config,
        format!(
            "[kafka.librdkafka]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.mechanism\" = \"SCRAM-SHA-512\"\n\"ssl.ca.location\" = \"{}\"\n",
            s.ca
        ),
    )
    .unwrap();
    let log = format!("{target}/secure-{}.log", names.group);
    // Truncated: a test reads this log and counts its lines.
    std::fs::File::create(&log).unwrap();
    let mut command = ServiceProcess::command(names, &s.broker, &["--config", &config], []);
    command
        .env("SILKROUTE__KAFKA__SASL_USERNAME", "silkroute")
        .env("SILKROUTE__KAFKA__SASL_PASSWORD", password)
        .env("SILKROUTE__KAFKA__INSTANCE_ID", "a")
        .env("SILKROUTE__KAFKA__SESSION_TIMEOUT_MS", "6000")
        .envs(extra.iter().copied());
    ServiceProcess::spawn(command, log)
}

async fn get(url: &str) -> Option<(u16, String)> {
    let r = reqwest::get(url).await.ok()?;
    let status = r.status().as_u16();
    Some((status, r.text().await.unwrap_or_default()))
}

/// The sample and one poison message (so that a dead letter is written), as the admin.
async fn publish_input(broker: &Broker, names: &Names) -> Vec<String> {
    let lines = sample_lines();
    publish_lines(broker, names, &lines).await;
    broker.produce(&names.trade, &[(None, b"not json")]).await;
    lines
}

/// Output topics made by the admin, for a service with `topics.create = false`.
async fn create_outputs(broker: &Broker, names: &Names) {
    broker
        .create_topics(&[
            (&names.indicators, 3),
            (&names.dead_letter, 1),
            (&changelog(names), 3),
        ])
        .await;
}

/// What a finished run must show: the bulletin's records, equal to the offline engine's, the
/// poison message dead-lettered (once under exactly_once), every input offset committed.
fn finished(s: &Secure, names: &Names, lines: &[String], exactly_once: bool) -> Result<(), String> {
    let msgs = s.broker.read_all(&names.indicators);
    let (records, repeats) = compact(&msgs);
    let expected = offline_records(lines);
    if records != expected {
        return Err(format!(
            "{} of {} records",
            records.len().min(expected.len()),
            expected.len()
        ));
    }
    let dead = s.broker.read_all(&names.dead_letter).len();
    if dead == 0 || (exactly_once && dead != 1) {
        return Err(format!("{dead} dead letters"));
    }
    if exactly_once && !repeats.is_empty() {
        return Err(format!("{} repeated records", repeats.len()));
    }
    if !all_committed(&s.broker, names) {
        return Err("input offsets not all committed".into());
    }
    Ok(())
}

/// Waits until the instance is ready and `finished` holds; the last reason it did not.
async fn until_finished(
    s: &Secure,
    inst: &ServiceProcess,
    names: &Names,
    lines: &[String],
    exactly_once: bool,
    secs: u64,
) -> Result<(), String> {
    let base = inst.http().await;
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut why = String::from("not ready");
    while Instant::now() < deadline {
        if get(&format!("{base}/readyz")).await.map(|r| r.0) == Some(200) {
            match finished(s, names, lines, exactly_once) {
                Ok(()) => return Ok(()),
                Err(e) => why = e,
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Err(format!("not finished after {secs} s: {why}"))
}

/// The password shows nowhere: not in the log, not in `texts` (metrics, error output).
fn assert_secret_kept(password: &str, inst: &ServiceProcess, texts: &[&str]) {
    let log = inst.log_text();
    assert!(
        !log.contains(password),
        "the password is in the log {}",
        inst.log_path().display()
    );
    for t in texts {
        assert!(!t.contains(password), "the password is in: {t}");
    }
}

// ---------------------------------------------------------------------------------------------

async fn end_to_end(guarantee: &str) {
    let s = secure();
    let names = Names::fresh();
    names.create(&s.broker).await;
    let exactly_once = guarantee == "exactly_once";
    let acls = needed(&names, true, exactly_once);
    change_acls(&s.broker, &acls, true);
    let lines = publish_input(&s.broker, &names).await;
    let started = Instant::now();
    let mut inst = spawn(
        &s,
        &names,
        &s.password,
        &[
            ("SILKROUTE__PROCESSING__GUARANTEE", guarantee),
            // The settings dump (Debug) and librdkafka's own lines are in the log too.
            ("RUST_LOG", "info,silkroute=debug"),
        ],
    );
    let result = until_finished(&s, &inst, &names, &lines, exactly_once, 180).await;
    let base = inst.http().await;
    let metrics = get(&format!("{base}/metrics")).await.unwrap().1;
    let log = inst.log_text();
    result.unwrap_or_else(|e| panic!("{guarantee}: {e} (log {})", inst.log_path().display()));
    assert_bulletin(&compact(&s.broker.read_all(&names.indicators)).0);
    println!(
        "{guarantee}: bulletin published with exactly these {} ACLs in {:.1} s:\n  {}",
        acls.len(),
        started.elapsed().as_secs_f64(),
        acls.iter()
            .map(|a| a.to_string())
            .collect::<Vec<_>>()
            .join("\n  ")
    );
    let denied: Vec<&str> = log
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("authoriz"))
        .collect();
    assert!(
        denied.is_empty(),
        "{guarantee}: no request was refused, yet: {denied:?}"
    );
    assert!(
        log.contains("Settings.") && log.contains("[redacted]"),
        "the settings dump ran (RUST_LOG=silkroute=debug)"
    );
    let status = inst.stop();
    assert!(status.success(), "{guarantee}: graceful stop, got {status}");
    assert_secret_kept(&s.password, &inst, &[&metrics]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_the_documented_acls_run_the_sample_end_to_end_exactly_once() {
    end_to_end("exactly_once").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_least_once_needs_no_transactional_id_acl() {
    end_to_end("at_least_once").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_stops_the_start_with_one_line_naming_authentication() {
    let s = secure();
    let names = Names::fresh();
    names.create(&s.broker).await;
    let wrong = format!("{}-not-it", s.password);
    for rust_log in ["info", "debug"] {
        let started = Instant::now();
        let mut inst = spawn(&s, &names, &wrong, &[("RUST_LOG", rust_log)]);
        let status = loop {
            if let Some(status) = inst.exited() {
                break status;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "RUST_LOG={rust_log}: still running 60 s after start with a wrong password"
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let log = inst.log_text();
        assert!(!status.success(), "a wrong password exits non-zero");
        assert!(
            !log.contains(&wrong) && !log.contains(&s.password),
            "RUST_LOG={rust_log}: the password is in the output {}",
            inst.log_path().display()
        );
        if rust_log == "info" {
            let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
            assert_eq!(lines.len(), 1, "one line on stderr: {lines:?}");
            let line = lines[0].to_ascii_lowercase();
            assert!(
                line.contains("authentication") && line.contains("silkroute"),
                "names authentication and the user: {}",
                lines[0]
            );
            println!(
                "wrong password: exit {status} after {:.1} s: {}",
                started.elapsed().as_secs_f64(),
                lines[0]
            );
        }
    }
}

/// One ACL missing: the service must name it, stay unready, not spin, publish nothing while
/// it is missing; and carry on once it is granted.
struct Case {
    missing: Acl,
    create: bool,
    names: Names,
    lines: Vec<String>,
    inst: ServiceProcess,
    failures: Vec<String>,
}

/// A key of the sample's records, published stale before the service starts.
const STALE_KEY: &str = "freight/khorgos/china_europe/2024-09";

/// The window over which a case must show a backoff, not a loop.
const WINDOW: Duration = Duration::from_secs(12);
/// Attempts (operator-error lines) the backoff allows in `WINDOW` at most: 250 ms doubling
/// gives attempts at 0, 0.25, 0.75, 1.75, 3.75 and 7.75 s even with sessions of no length.
const MAX_ATTEMPTS_IN_WINDOW: usize = 6;
/// Log lines one attempt may write: its operator-error line and, under exactly once, the
/// restore it takes (assignment, revocation, librdkafka's own lines for the refused
/// transaction: about 16 measured). A tight loop wrote 302 lines in the window.
const MAX_LINES_PER_ATTEMPT: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_missing_acl_is_named_and_nothing_is_published_until_it_is_granted() {
    let s = secure();
    // Every ACL of the topics.create = false list (outputs made by the admin), then each
    // Create of the topics.create = true list: all cases at once, one instance each.
    let mut plans: Vec<(Names, bool, Acl, Vec<Acl>)> = Vec::new();
    let count = needed(&Names::fresh(), false, true).len();
    for i in 0..count {
        let names = Names::fresh();
        let acls = needed(&names, false, true);
        plans.push((names, false, acls[i].clone(), acls));
    }
    for i in 0..3 {
        let names = Names::fresh();
        let acls = needed(&names, true, true);
        let creates: Vec<Acl> = acls
            .iter()
            .filter(|a| a.op == Op::Create)
            .cloned()
            .collect();
        plans.push((names, true, creates[i].clone(), acls));
    }
    let mut cases = Vec::new();
    for (names, create, missing, acls) in plans {
        names.create(&s.broker).await;
        if !create {
            create_outputs(&s.broker, &names).await;
            // A stale record, as after a restart: the takeover must read the topic back.
            s.broker
                .produce(
                    &names.indicators,
                    &[(Some(STALE_KEY), br#"{"kind":"freight","stale":true}"#)],
                )
                .await;
        }
        let granted: Vec<Acl> = acls.into_iter().filter(|a| *a != missing).collect();
        change_acls(&s.broker, &granted, true);
        let lines = publish_input(&s.broker, &names).await;
        let create_flag = if create { "true" } else { "false" };
        let inst = spawn(
            &s,
            &names,
            &s.password,
            &[("SILKROUTE__TOPICS__CREATE", create_flag)],
        );
        cases.push(Case {
            missing,
            create,
            names,
            lines,
            inst,
            failures: Vec::new(),
        });
    }
    // 1. Each names its missing permission: a log line with the cause and the resource.
    let deadline = Instant::now() + Duration::from_secs(90);
    let named = |c: &Case| {
        c.inst.log_text().lines().any(|l| {
            l.contains(c.missing.cause()) && l.contains(c.missing.name.trim_end_matches('-'))
        })
    };
    while Instant::now() < deadline && !cases.iter().all(named) {
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for c in &mut cases {
        if !named(c) {
            c.failures.push(format!(
                "no log line names {} and {}",
                c.missing.cause(),
                c.missing.name
            ));
        }
    }
    // 2. Over a window: unready all along, few log lines, nothing published, the gauge set.
    let mut before = Vec::new();
    for c in &cases {
        let base = if c.inst.log_text().contains("HTTP listening") {
            Some(c.inst.http().await)
        } else {
            None
        };
        let published = published_count(&s.broker, &c.names);
        before.push((base, c.inst.log_lines(), published));
    }
    let window_start = Instant::now();
    while window_start.elapsed() < WINDOW {
        for (c, (base, _, _)) in cases.iter_mut().zip(&before) {
            if let Some(base) = base {
                match get(&format!("{base}/readyz")).await {
                    Some((503, _)) => {}
                    Some((code, _)) => c.failures.push(format!("/readyz {code} while missing")),
                    None => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    for (c, (base, lines_before, published_before)) in cases.iter_mut().zip(&before) {
        let text = c.inst.log_text();
        let window: Vec<&str> = text.lines().skip(*lines_before).collect();
        let cause = format!("cause=\"{}\"", c.missing.cause());
        let attempts = window.iter().filter(|l| l.contains(&cause)).count();
        let lines = window.len();
        if attempts > MAX_ATTEMPTS_IN_WINDOW || lines > MAX_LINES_PER_ATTEMPT * (attempts + 1) {
            c.failures.push(format!(
                "{lines} log lines and {attempts} attempts in {} s (a loop, not a backoff)",
                WINDOW.as_secs()
            ));
        }
        let published = published_count(&s.broker, &c.names);
        if published != *published_before {
            c.failures.push(format!(
                "published while missing: {published_before:?} -> {published:?}"
            ));
        }
        if let Some(status) = c.inst.exited() {
            c.failures.push(format!(
                "exited ({status}) instead of waiting for the grant"
            ));
        }
        match base {
            None => c.failures.push("no HTTP".into()),
            Some(base) => {
                let metrics = get(&format!("{base}/metrics"))
                    .await
                    .map(|r| r.1)
                    .unwrap_or_default();
                let gauge = format!(
                    "silkroute_operator_error{{cause=\"{}\"}} 1",
                    c.missing.cause()
                );
                if !metrics.contains(&gauge) {
                    c.failures.push(format!("/metrics lacks {gauge}"));
                }
                if metrics.contains(&s.password) {
                    c.failures.push("the password is in /metrics".into());
                }
            }
        }
    }
    // 3. Granted: each carries on and publishes everything, the dead letter once.
    for c in &cases {
        change_acls(&s.broker, std::slice::from_ref(&c.missing), true);
    }
    for c in &mut cases {
        if c.inst.exited().is_some() {
            c.failures.push("not running when granted".into());
            continue;
        }
        if let Err(e) = until_finished(&s, &c.inst, &c.names, &c.lines, true, 150).await {
            c.failures.push(format!("after the grant: {e}"));
        }
    }
    let mut passed = 0;
    let mut failed = Vec::new();
    for c in &mut cases {
        if c.inst.exited().is_none() {
            let status = c.inst.stop();
            if !status.success() {
                c.failures.push(format!("stop: {status}"));
            }
        }
        if c.inst.log_text().contains(&s.password) {
            c.failures.push("the password is in the log".into());
        }
        let what = format!(
            "{}{}",
            c.missing,
            if c.create { " (topics.create)" } else { "" }
        );
        if c.failures.is_empty() {
            passed += 1;
            println!("ACL case PASS  missing {what}");
        } else {
            failed.push(role_of(&c.missing, &c.names, c.create));
            println!(
                "ACL case FAIL  missing {what}: {} (log {})",
                c.failures.join("; "),
                c.inst.log_path().display()
            );
        }
    }
    println!("ACL cases: {} run, {passed} passed", cases.len());
    assert!(failed.is_empty(), "missing-ACL cases that fail: {failed:?}");
}

/// A case's ACL named by the role of its resource, the same in every run.
fn role_of(acl: &Acl, names: &Names, create: bool) -> String {
    let resource = if acl.name == changelog(names) {
        "changelog"
    } else if acl.name == names.indicators {
        "indicators"
    } else if acl.name == names.dead_letter {
        "dlq"
    } else if acl.name == names.group {
        "group"
    } else if [&names.trade, &names.freight, &names.fx].contains(&&acl.name) {
        "input"
    } else {
        "transactional id"
    };
    let create = if create { " (topics.create)" } else { "" };
    format!("{:?} {resource}{create}", acl.op)
}

/// Messages on the indicators and dead-letter topics (read_committed).
fn published_count(broker: &Broker, names: &Names) -> (usize, usize) {
    let count = |t: &str| -> usize {
        let c: BaseConsumer = broker.config().create().unwrap();
        let exists = c
            .fetch_metadata(Some(t), Duration::from_secs(10))
            .is_ok_and(|md| md.topics().first().is_some_and(|t| t.error().is_none()));
        if exists {
            broker.read_all(t).len()
        } else {
            0
        }
    };
    (count(&names.indicators), count(&names.dead_letter))
}
