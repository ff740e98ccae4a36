//! Shutdown: one switch the service turns, and a [`Shutdown`] each task holds and
//! waits on (mini-redis's `shutdown.rs` is the model). A task checks
//! [`Shutdown::is_shutdown`] before it starts work and selects on
//! [`Shutdown::recv`] wherever it waits.

use tokio::sync::watch;

/// The service's side: turned once, seen by every [`Shutdown`].
pub struct ShutdownSwitch {
    sender: watch::Sender<bool>,
}

impl Default for ShutdownSwitch {
    fn default() -> Self {
        ShutdownSwitch {
            sender: watch::channel(false).0,
        }
    }
}

impl ShutdownSwitch {
    /// A new listener for a task.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown {
            receiver: self.sender.subscribe(),
        }
    }

    /// Tell every task to stop.
    pub fn turn(&self) {
        self.sender.send_replace(true);
    }
}

/// A task's side: has the service been told to stop?
#[derive(Clone)]
pub struct Shutdown {
    receiver: watch::Receiver<bool>,
}

impl Shutdown {
    /// True once the switch is turned.
    pub fn is_shutdown(&self) -> bool {
        *self.receiver.borrow()
    }

    /// Wait until the switch is turned (or the service is gone).
    pub async fn recv(&mut self) {
        // An error means the switch was dropped: the service is gone, so stop too.
        let _ = self.receiver.wait_for(|stop| *stop).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_listener_sees_the_turn_even_one_made_after_it() {
        let switch = ShutdownSwitch::default();
        let mut early = switch.subscribe();
        assert!(!early.is_shutdown());
        let waiting = tokio::spawn(async move {
            early.recv().await;
            early.is_shutdown()
        });
        switch.turn();
        assert!(waiting.await.unwrap());
        let mut late = switch.subscribe();
        assert!(late.is_shutdown());
        late.recv().await;
    }

    #[tokio::test]
    async fn a_dropped_switch_ends_the_wait() {
        let switch = ShutdownSwitch::default();
        let mut shutdown = switch.subscribe();
        drop(switch);
        shutdown.recv().await;
        assert!(!shutdown.is_shutdown());
    }
}
