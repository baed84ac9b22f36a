//! The service as a subprocess, for the suites about what happens to the process itself (a
//! SIGKILL, a SIGTERM, a broker's security refusing it): the binary with a suite's topics in
//! its environment, its log in `target/`, and a kill when the test ends however it ends.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{Broker, Names};

/// A running `silkroute run`, SIGKILLed when dropped, so that a failing test (a panic between
/// spawn and stop) leaves no instance running against the broker.
pub struct ServiceProcess {
    child: std::process::Child,
    log: PathBuf,
}

impl ServiceProcess {
    /// The binary with `global` options before `run` (`--config FILE`), `names`' topics and
    /// group in its environment, and `env` after them.
    pub fn command<'a>(
        names: &Names,
        broker: &Broker,
        global: &[&str],
        env: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_silkroute"));
        c.args(global).arg("run").envs(names.env(broker)).envs(env);
        c
    }

    /// Starts `command` with its stderr appended to `log` (kept for a failing run).
    pub fn spawn(mut command: Command, log: impl Into<PathBuf>) -> ServiceProcess {
        let log = log.into();
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::from(file))
            .spawn()
            .unwrap();
        ServiceProcess { child, log }
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Whether it has not exited.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Its exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL, and the wait for it.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM, and the exit status within 60 s.
    pub fn stop(&mut self) -> ExitStatus {
        unsafe { kill(self.child.id() as i32, 15) };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "no exit 60 s after SIGTERM");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The log so far, without terminal colour codes.
    pub fn log_text(&self) -> String {
        let raw = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '\u{1b}' {
                // CSI: ESC [ parameters final-byte
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl ServiceProcess {
    pub fn log_lines(&self) -> usize {
        self.log_text().lines().count()
    }

    /// The HTTP address, from the "HTTP listening." line (for a service listening on port 0).
    pub async fn http(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(addr) = self
                .log_text()
                .lines()
                .filter(|l| l.contains("HTTP listening"))
                .find_map(|l| l.split("address=").nth(1))
                .and_then(|rest| rest.split_whitespace().next())
            {
                return format!("http://{addr}");
            }
            assert!(
                Instant::now() < deadline,
                "no HTTP address in {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

extern "C" {
    fn kill(pid: i32, sig: i32) -> i32;
}
