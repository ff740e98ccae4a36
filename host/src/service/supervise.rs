//! Supervision of the per-mailbox tasks. A task that panics (a bug, never an
//! expected failure: those are typed errors) must not stop its mailbox silently: the
//! panic is logged, the user goes to Error with the reason, `/health` shows the task as
//! restarting, and the task is started again after a back-off. The restarted task
//! finds the user in Error and waits for an administrator's restart, as after any
//! other failure.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Backoff;
use super::state::{Mailbox, Service};

/// The two tasks each mailbox has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Job {
    Mailbox,
    Delivery,
}

impl Job {
    fn name(self) -> &'static str {
        match self {
            Job::Mailbox => "mailbox",
            Job::Delivery => "delivery",
        }
    }
}

/// Waits between restarts of a task that keeps panicking: 1 s doubling to 5 minutes.
const RESTART: Backoff = Backoff {
    base: Duration::from_secs(1),
    max: Duration::from_secs(300),
};

impl Service {
    /// Start `mailbox`'s two tasks (at start, or when an import adds a user), kept in
    /// [`Service::mailbox_tasks`] for the shutdown to wait on.
    pub(super) fn start_mailbox(self: &Arc<Self>, mailbox: &Arc<Mailbox>) {
        let mut tasks = crate::lock::lock(&self.mailbox_tasks);
        // Checked under the lock the shutdown takes the tasks with: none starts after.
        if self.shutdown.subscribe().is_shutdown() {
            return;
        }
        for job in [Job::Mailbox, Job::Delivery] {
            tasks.spawn(self.clone().supervise(mailbox.clone(), job));
        }
    }

    /// Run `job` for `mailbox` until the shutdown, restarting it after a panic.
    pub(super) async fn supervise(self: Arc<Self>, mailbox: Arc<Mailbox>, job: Job) {
        let mut shutdown = self.shutdown.subscribe();
        let mut panics = 0u32;
        loop {
            let task = match job {
                Job::Mailbox => tokio::spawn(self.clone().run_mailbox(mailbox.clone())),
                Job::Delivery => tokio::spawn(self.clone().run_delivery(mailbox.clone())),
            };
            // Should the service's grace run out and the supervisor be aborted, the
            // task goes with it.
            let _abort = AbortOnDrop(task.abort_handle());
            // The task ends by itself at the shutdown, after the call it is making.
            let ended = task.await;
            let Err(error) = ended else { return };
            if !error.is_panic() {
                return;
            }
            let reason = panic_text(error.into_panic());
            mailbox.restarting.store(true, Ordering::Relaxed);
            mailbox.panics.fetch_add(1, Ordering::Relaxed);
            tracing::error!(mailbox = %mailbox.address, task = job.name(), panic = %reason, "a task panicked; restarting it");
            self.fail(
                &mailbox.address,
                format!(
                    "Calvert's {} task for this user failed ({reason}); it was restarted: report this to Calvert's developers, then restart the user",
                    job.name()
                ),
            );
            let wait = RESTART.wait(panics);
            panics = panics.saturating_add(1);
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.recv() => return,
            }
            mailbox.restarting.store(false, Ordering::Relaxed);
        }
    }
}

struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// The message a panic carried, cut to a sentence's length on a char boundary.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(text) => (*text).to_string(),
            Err(_) => "a panic without a message".to_string(),
        },
    };
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_message_is_kept_and_cut_on_a_char_boundary() {
        assert_eq!(panic_text(Box::new("boom")), "boom");
        assert_eq!(panic_text(Box::new(String::from("möte"))), "möte");
        assert_eq!(panic_text(Box::new(7u8)), "a panic without a message");
        let long = "ö".repeat(400);
        let cut = panic_text(Box::new(long));
        assert_eq!(cut.chars().count(), 300);
        assert!(cut.chars().all(|c| c == 'ö'));
    }
}
