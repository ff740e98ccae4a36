//! The watchers: one per Exchange server, watching the enabled mailboxes the rules
//! route to it. They run as a *generation*: a live edit that re-routes mailboxes
//! stops the generation (and waits for it, so an old watcher's last word cannot land
//! after the new one's first) and starts the next with the new routes.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use super::shutdown::ShutdownSwitch;
use super::state::Service;

/// The watchers running now.
#[derive(Default)]
pub(super) struct Watchers {
    switch: ShutdownSwitch,
    running: Vec<tokio::task::JoinHandle<()>>,
}

/// How long a stopping watcher may take to end before it is abandoned.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Which mailboxes each server watches: the enabled users with a route, by server.
pub(super) fn by_server(service: &Service) -> BTreeMap<String, Vec<String>> {
    let mut by_server: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mailbox in service.mailboxes.all() {
        let user = mailbox.user();
        if let (true, Some(server)) = (user.enabled, user.exchange) {
            by_server
                .entry(server)
                .or_default()
                .push(mailbox.address.clone());
        }
    }
    by_server
}

impl Service {
    /// Stop the watchers running (if any) and start a generation on today's routes.
    pub(super) async fn restart_watchers(self: &Arc<Self>) {
        let mut watchers = self.watchers.lock().await;
        stop(&mut watchers).await;
        if self.shutdown.subscribe().is_shutdown() {
            return;
        }
        for (server, addresses) in by_server(self) {
            if let Some(source) = self.adapters.sources.get(&server) {
                let changes = self.changes.clone();
                let stop = watchers.switch.subscribe();
                watchers.running.push(tokio::spawn(async move {
                    source.watch(addresses, changes, stop).await
                }));
            }
        }
    }

    /// Stop every watcher (the service is shutting down).
    pub(super) async fn stop_watchers(&self) {
        stop(&mut *self.watchers.lock().await).await;
    }
}

async fn stop(watchers: &mut Watchers) {
    watchers.switch.turn();
    for task in watchers.running.drain(..) {
        let abort = task.abort_handle();
        if tokio::time::timeout(STOP_GRACE, task).await.is_err() {
            tracing::warn!("a watcher did not stop in time; abandoning it");
            abort.abort();
        }
    }
    watchers.switch = ShutdownSwitch::default();
}
