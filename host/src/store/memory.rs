//! [`MemoryStore`]: the store for tests, benchmarks and the demo.

use std::collections::BTreeMap;
use std::sync::Mutex;

use super::{
    Account, AuditEntry, DiversionCall, OutboxEntry, Snapshot, Store, StoreError, StoredConfig,
    UserRecord, account_key, user_key,
};
use crate::lock::lock;

/// A store that forgets everything when dropped.
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

#[derive(Default)]
struct MemoryState {
    users: BTreeMap<String, UserRecord>,
    outbox: BTreeMap<(String, u64), OutboxEntry>,
    accounts: BTreeMap<String, Account>,
    audit: Vec<AuditEntry>,
    config: Option<StoredConfig>,
}

impl MemoryStore {
    fn state(&self) -> std::sync::MutexGuard<'_, MemoryState> {
        // A panic while holding the lock leaves consistent data (every change is
        // one insert or remove), so a poisoned lock is still usable.
        lock(&self.state)
    }
}

impl Store for MemoryStore {
    fn user(&self, address: &str) -> Result<Option<UserRecord>, StoreError> {
        Ok(self.state().users.get(&user_key(address)).cloned())
    }

    fn update_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<UserRecord, StoreError> {
        let mut state = self.state();
        let record = state.users.entry(user_key(address)).or_default();
        let next_seq = record.next_seq;
        change(record);
        record.next_seq = record.next_seq.max(next_seq);
        Ok(record.clone())
    }

    fn note_user(
        &self,
        address: &str,
        change: &mut dyn FnMut(&mut UserRecord),
    ) -> Result<(), StoreError> {
        self.update_user(address, change).map(|_| ())
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>, StoreError> {
        Ok(self
            .state()
            .users
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn enqueue(
        &self,
        address: &str,
        call: DiversionCall,
        decided_at: i64,
    ) -> Result<OutboxEntry, StoreError> {
        let mut state = self.state();
        let key = user_key(address);
        let record = state.users.entry(key.clone()).or_default();
        let seq = record.next_seq;
        record.next_seq += 1;
        let entry = OutboxEntry {
            address: key.clone(),
            seq,
            call,
            decided_at,
        };
        state.outbox.insert((key, seq), entry.clone());
        Ok(entry)
    }

    fn outbox(&self, address: &str) -> Result<Vec<OutboxEntry>, StoreError> {
        let key = user_key(address);
        Ok(self
            .state()
            .outbox
            .range((key.clone(), 0)..=(key, u64::MAX))
            .map(|(_, e)| e.clone())
            .collect())
    }

    fn snapshot(&self, address: &str) -> Result<Snapshot, StoreError> {
        let state = self.state();
        let key = user_key(address);
        Ok(Snapshot {
            record: state.users.get(&key).cloned().unwrap_or_default(),
            pending: state
                .outbox
                .range((key.clone(), 0)..=(key, u64::MAX))
                .map(|(_, e)| e.clone())
                .collect(),
        })
    }

    fn complete(&self, entry: &OutboxEntry) -> Result<(), StoreError> {
        let mut state = self.state();
        let key = user_key(&entry.address);
        if state.outbox.remove(&(key.clone(), entry.seq)).is_some() {
            let record = state.users.entry(key).or_default();
            record.last_applied = entry.call.applied();
            record.last_applied_seq = Some(entry.seq);
        }
        Ok(())
    }

    fn pending_users(&self) -> Result<Vec<String>, StoreError> {
        let mut users: Vec<String> = self.state().outbox.keys().map(|(a, _)| a.clone()).collect();
        users.dedup();
        Ok(users)
    }

    fn outbox_depth(&self) -> Result<usize, StoreError> {
        Ok(self.state().outbox.len())
    }

    fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        Ok(self.state().accounts.get(&account_key(name)).cloned())
    }

    fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        Ok(self.state().accounts.values().cloned().collect())
    }

    fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        self.state()
            .accounts
            .insert(account_key(&account.name), account.clone());
        Ok(())
    }

    fn audit(&self, at: i64, who: &str, what: &str) -> Result<AuditEntry, StoreError> {
        let mut state = self.state();
        let entry = AuditEntry {
            seq: state.audit.len() as u64 + 1,
            at,
            who: who.to_string(),
            what: what.to_string(),
        };
        state.audit.push(entry.clone());
        Ok(entry)
    }

    fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(self
            .state()
            .audit
            .iter()
            .rev()
            .take(limit)
            .cloned()
            .collect())
    }

    fn stored_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        Ok(self.state().config.clone())
    }

    fn put_config(&self, config: &StoredConfig) -> Result<(), StoreError> {
        self.state().config = Some(config.clone());
        Ok(())
    }
}
