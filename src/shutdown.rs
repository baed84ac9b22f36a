//! The one stop signal (as mini-redis's `Shutdown`): whoever owns a [`Stop`] fires it once;
//! every task holding a [`Shutdown`] sees it at its next check, or wakes from its wait.
//!
//! The service uses two: one stops processing (SIGTERM, [`crate::service::ServiceHandle::stop`]),
//! a later one stops HTTP, so that probes and metrics answer while the service drains.

use tokio::sync::watch;

/// Fires the signal. Dropping it fires it too: nobody could fire it any more.
#[derive(Debug)]
pub struct Stop(watch::Sender<bool>);

/// Listens for the signal; clones listen to the same one.
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// A new signal, not fired.
pub fn channel() -> (Stop, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (Stop(tx), Shutdown(rx))
}

impl Stop {
    pub fn fire(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Whether the signal was fired (or its [`Stop`] dropped).
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow() || self.0.has_changed().is_err()
    }

    /// Resolves once the signal is fired (at once if it already was). Cancel-safe: a
    /// `select!` may drop it and call it again.
    pub async fn recv(&mut self) {
        // An error means the `Stop` was dropped, which counts as fired.
        let _ = self.0.wait_for(|fired| *fired).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_wakes_once_fired_and_stays_stopped() {
        let (stop, mut a) = channel();
        let mut b = a.clone();
        assert!(!a.is_shutdown());
        let waiting = tokio::spawn(async move {
            b.recv().await;
            b.is_shutdown()
        });
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "woke before the signal");
        stop.fire();
        assert!(waiting.await.unwrap());
        a.recv().await;
        a.recv().await;
        assert!(a.is_shutdown());
    }

    #[tokio::test]
    async fn a_dropped_stop_counts_as_fired() {
        let (stop, mut s) = channel();
        drop(stop);
        assert!(s.is_shutdown());
        tokio::time::timeout(std::time::Duration::from_secs(5), s.recv())
            .await
            .expect("recv returns when the Stop is gone");
    }
}
