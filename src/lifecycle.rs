//! The service's lifecycle, shared between the processing loop and the HTTP probes.
//!
//! `Starting → Restoring → CatchingUp → Ready → Draining → Stopped` (or `Failed`). Readiness
//! is true only in `Ready`; liveness while the loop keeps beating and has not ended.

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Starting = 0,
    Restoring = 1,
    CatchingUp = 2,
    Ready = 3,
    Draining = 4,
    Stopped = 5,
    Failed = 6,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            0 => State::Starting,
            1 => State::Restoring,
            2 => State::CatchingUp,
            3 => State::Ready,
            4 => State::Draining,
            5 => State::Stopped,
            _ => State::Failed,
        }
    }
}

pub struct Lifecycle {
    state: AtomicU8,
    born: Instant,
    /// Milliseconds since `born` of the loop's last beat; a loop stuck longer than
    /// [`Lifecycle::STALL`] is reported dead so Kubernetes restarts it.
    beat_ms: AtomicU64,
}

impl Lifecycle {
    pub const STALL: Duration = Duration::from_secs(120);

    pub fn new() -> Lifecycle {
        Lifecycle {
            state: AtomicU8::new(State::Starting as u8),
            born: Instant::now(),
            beat_ms: AtomicU64::new(0),
        }
    }

    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::SeqCst))
    }

    /// Moves to `next`, except out of a final state or back from draining.
    pub fn set(&self, next: State) {
        let _ = self
            .state
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |cur| {
                let cur = State::from_u8(cur);
                let allowed = match cur {
                    State::Stopped | State::Failed => false,
                    State::Draining => matches!(next, State::Stopped | State::Failed),
                    _ => true,
                };
                allowed.then_some(next as u8)
            });
        self.beat();
    }

    pub fn beat(&self) {
        self.beat_ms
            .store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    pub fn is_ready(&self) -> bool {
        self.state() == State::Ready
    }

    /// Alive while not ended and beating; a restore (one long blocking read) counts as alive.
    pub fn is_alive(&self) -> bool {
        if self.state() == State::Restoring {
            return true;
        }
        let since = self.born.elapsed().as_millis() as u64 - self.beat_ms.load(Ordering::Relaxed);
        !matches!(self.state(), State::Stopped | State::Failed)
            && since < Self::STALL.as_millis() as u64
    }
}

impl Default for Lifecycle {
    fn default() -> Self {
        Lifecycle::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draining_never_turns_ready_again() {
        let l = Lifecycle::new();
        l.set(State::Ready);
        assert!(l.is_ready() && l.is_alive());
        l.set(State::Draining);
        l.set(State::Ready);
        assert!(!l.is_ready());
        l.set(State::Stopped);
        assert!(!l.is_alive());
    }
}
