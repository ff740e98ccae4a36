//! [`Exchange`]: the handle on the simulator's state that the server and the test
//! share, and the test's control API (mailboxes, accounts, items, faults, and what
//! arrived).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crate::directory::{Account, App, Directory, Offered, SimItem};
use crate::faults::Fault;

/// The simulator's state, shared with the server; the test's control API.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    inner: Arc<Mutex<Directory>>,
}

impl Exchange {
    /// The directory, even if a thread panicked while holding it (the simulator's one
    /// way to take its lock).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Directory> {
        // A panicking test thread must not take the simulator down with it.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// An empty mailbox (addresses are case-insensitive).
    pub fn add_mailbox(&self, address: &str) {
        self.lock()
            .mailboxes
            .entry(address.to_ascii_lowercase())
            .or_default();
    }

    /// A service account; `may_impersonate` `None` means every mailbox.
    pub fn add_account(&self, user: &str, password: &str, may_impersonate: Option<&[&str]>) {
        let may = may_impersonate.map(|list| list.iter().map(|a| a.to_ascii_lowercase()).collect());
        self.lock().accounts.insert(
            user.to_string(),
            Account {
                password: password.to_string(),
                may_impersonate: may,
            },
        );
    }

    /// Create or replace an item (every change gives it a change key never given out
    /// before), and tell the subscriptions to its folder. An empty folder is the
    /// calendar. The item's id is never made up for another item afterwards.
    pub fn put_item(&self, mailbox: &str, item: SimItem) {
        self.lock().put(&mailbox.to_ascii_lowercase(), item);
    }

    /// Delete an item, and tell the subscriptions to its folder (an unknown item is no
    /// change).
    pub fn delete_item(&self, mailbox: &str, id: &str) {
        self.lock().remove(&mailbox.to_ascii_lowercase(), id);
    }

    /// The item `id` of `mailbox` as the simulator holds it.
    pub fn item(&self, mailbox: &str, id: &str) -> Option<SimItem> {
        self.lock()
            .mailboxes
            .get(&mailbox.to_ascii_lowercase())
            .and_then(|m| m.items.get(id))
            .cloned()
    }

    /// Make every subscription of `mailbox` expire (the next GetEvents says so).
    pub fn expire_subscriptions(&self, mailbox: &str) {
        let mailbox = mailbox.to_ascii_lowercase();
        for subscription in self
            .lock()
            .subscriptions
            .values_mut()
            .filter(|s| s.mailbox == mailbox)
        {
            subscription.expired = true;
        }
    }

    /// An app for OAuth client credentials (`POST /oauth2/token`), whose tokens live
    /// `token_lifetime`.
    pub fn add_app(
        &self,
        client_id: &str,
        secret: &str,
        may_impersonate: Option<&[&str]>,
        token_lifetime: Duration,
    ) {
        let may = may_impersonate.map(|list| list.iter().map(|a| a.to_ascii_lowercase()).collect());
        self.lock().apps.insert(
            client_id.to_string(),
            App {
                secret: secret.to_string(),
                may_impersonate: may,
                token_lifetime,
            },
        );
    }

    /// Autodiscover answers `from` with a RedirectAddress to `to`.
    pub fn redirect_address(&self, from: &str, to: &str) {
        self.lock()
            .redirects
            .insert(from.to_ascii_lowercase(), to.to_ascii_lowercase());
    }

    /// How many Autodiscover requests arrived.
    pub fn autodiscover_requests(&self) -> usize {
        self.lock().autodiscover_requests
    }

    /// Revoke every issued token (the next EWS call with one gets 401).
    pub fn revoke_tokens(&self) {
        self.lock().tokens.clear();
    }

    /// How many tokens the token endpoint has issued.
    pub fn tokens_issued(&self) -> usize {
        self.lock().tokens_issued
    }

    /// The token endpoint's URL.
    pub fn token_path() -> &'static str {
        "/oauth2/token"
    }

    /// How long streaming connections stay open before the server closes them.
    pub fn set_stream_lifetime(&self, lifetime: Duration) {
        self.lock().stream_timing.lifetime = lifetime;
    }

    /// Keep-alive interval of idle streaming connections (default
    /// [`DEFAULT_HEARTBEAT`](crate::DEFAULT_HEARTBEAT)); a very long one makes a silent stream.
    /// (Also the StatusFrequency of push subscriptions: a StatusEvent is posted when
    /// nothing else was for this long.)
    pub fn set_heartbeat(&self, interval: Duration) {
        self.lock().stream_timing.heartbeat = interval;
    }

    /// Which sign-in schemes the server offers (both by default); OAuth bearer
    /// tokens are always taken.
    pub fn offer_auth(&self, basic: bool, ntlm: bool) {
        self.lock().offered = Offered { basic, ntlm };
    }

    /// How many NTLM handshakes (Negotiate messages) arrived.
    pub fn ntlm_handshakes(&self) -> usize {
        self.lock().ntlm_handshakes
    }

    /// Why NTLM sign-ins were refused, oldest first.
    pub fn ntlm_refusals(&self) -> Vec<String> {
        self.lock().ntlm_refusals.clone()
    }

    /// Queue a fault for the next request.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Per request: the operation and the X-BackEndOverrideCookie it carried.
    pub fn affinity(&self) -> Vec<(String, Option<String>)> {
        self.lock().affinity.clone()
    }

    /// The operation names received so far, in order.
    pub fn requests(&self) -> Vec<String> {
        self.lock().requests.clone()
    }

    /// Whether a subscription still exists (push subscriptions end when the listener
    /// answers Unsubscribe).
    pub fn has_subscription(&self, id: &str) -> bool {
        self.lock().subscriptions.contains_key(id)
    }
}
