//! The demo's telephony system: the diversion target the service calls.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::local;
use crate::diversion::{DiversionTarget, Phone, TargetError};
use crate::lock::lock;
use crate::service::Clock;
use crate::store::{Applied, DiversionCall, OutboxEntry};

/// The demo's telephony system: prints calls, keeps phones, can be down.
pub(super) struct Switchboard {
    pub(super) clock: Arc<dyn Clock>,
    pub(super) shown: Mutex<HashMap<String, Applied>>,
    pub(super) down: AtomicBool,
    /// Keys already reported as waiting, so an outage prints one line per call.
    pub(super) waiting: Mutex<Vec<String>>,
    pub(super) timeline: Arc<Mutex<String>>,
}

impl Switchboard {
    /// Print a timeline line at the clock's time and keep it.
    pub(super) fn print(&self, line: String) {
        let line = format!("{}  {line}", local(self.clock.now()));
        println!("{line}");
        let mut timeline = lock(&self.timeline);
        let _ = writeln!(timeline, "{line}");
    }
}

#[async_trait]
impl DiversionTarget for Switchboard {
    fn name(&self) -> &str {
        "switchboard"
    }

    async fn apply(&self, phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError> {
        if self.down.load(Ordering::SeqCst) {
            let key = entry.idempotency_key();
            let mut waiting = lock(&self.waiting);
            if !waiting.contains(&key) {
                waiting.push(key);
                drop(waiting);
                self.print(format!(
                    "{:<14} telephony down: the call waits in the outbox",
                    phone.address
                ));
            }
            return Err(TargetError::Unavailable {
                target: "switchboard".into(),
                detail: "outage".into(),
            });
        }
        let mut shown = lock(&self.shown);
        match &entry.call {
            DiversionCall::Set { reason, until, .. } => {
                shown.insert(
                    phone.telephony_id.clone(),
                    Applied {
                        reason: reason.clone(),
                        until: *until,
                    },
                );
                drop(shown);
                self.print(format!(
                    "{:<14} SET    {reason:<8} until {}",
                    phone.address,
                    local(*until)
                ));
            }
            DiversionCall::Clear => {
                shown.remove(&phone.telephony_id);
                drop(shown);
                self.print(format!("{:<14} CLEAR", phone.address));
            }
        }
        Ok(())
    }

    async fn observe(&self, phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(TargetError::Unavailable {
                target: "switchboard".into(),
                detail: "outage".into(),
            });
        }
        let shown = lock(&self.shown);
        Ok(Some(shown.get(&phone.telephony_id).cloned()))
    }
}
