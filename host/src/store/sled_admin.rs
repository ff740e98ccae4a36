//! The administration's records in sled: accounts (tree `accounts`, by lower-cased
//! name) and the audit log (tree `audit`, by big-endian sequence number, so the
//! newest is last), and the configuration's TOML text (tree `settings`, keys
//! `config`, the text in force, and `config_file`, calvert.toml's text it began as).

use std::sync::Mutex;

use super::sled::{decode, encode};
use super::{Account, AuditEntry, StoreError, StoredConfig, account_key};
use crate::lock::lock;

pub(super) struct AdminTrees {
    accounts: sled::Tree,
    audit: sled::Tree,
    settings: sled::Tree,
    /// Two appends never take the same number.
    appending: Mutex<()>,
}

impl AdminTrees {
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(AdminTrees {
            accounts: db.open_tree("accounts")?,
            audit: db.open_tree("audit")?,
            settings: db.open_tree("settings")?,
            appending: Mutex::new(()),
        })
    }

    pub fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        let key = account_key(name);
        match self.accounts.get(key.as_bytes())? {
            Some(bytes) => Ok(Some(decode(key.as_bytes(), &bytes)?)),
            None => Ok(None),
        }
    }

    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        self.accounts
            .iter()
            .map(|entry| {
                let (key, bytes) = entry?;
                decode(&key, &bytes)
            })
            .collect()
    }

    /// Written, not flushed: the caller flushes.
    pub fn put_account(&self, account: &Account) -> Result<(), StoreError> {
        let key = account_key(&account.name);
        self.accounts.insert(key.as_bytes(), encode(account))?;
        Ok(())
    }

    /// Written, not flushed: the caller flushes.
    pub fn append(&self, at: i64, who: &str, what: &str) -> Result<AuditEntry, StoreError> {
        let _one_at_a_time = lock(&self.appending);
        let last = match self.audit.last()? {
            Some((key, _)) => key
                .as_ref()
                .try_into()
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    key: format!("audit/{key:?}"),
                    detail: "not a sequence number".into(),
                })?,
            None => 0,
        };
        let entry = AuditEntry {
            seq: last + 1,
            at,
            who: who.to_string(),
            what: what.to_string(),
        };
        self.audit.insert(entry.seq.to_be_bytes(), encode(&entry))?;
        Ok(entry)
    }

    pub fn newest(&self, limit: usize) -> Result<Vec<AuditEntry>, StoreError> {
        self.audit
            .iter()
            .rev()
            .take(limit)
            .map(|entry| {
                let (key, bytes) = entry?;
                decode(&key, &bytes)
            })
            .collect()
    }

    pub fn stored_config(&self) -> Result<Option<StoredConfig>, StoreError> {
        let text =
            |key: &str| -> Result<Option<String>, StoreError> {
                match self.settings.get(key.as_bytes())? {
                    Some(bytes) => String::from_utf8(bytes.to_vec()).map(Some).map_err(|e| {
                        StoreError::Corrupt {
                            key: format!("settings/{key}"),
                            detail: e.to_string(),
                        }
                    }),
                    None => Ok(None),
                }
            };
        match (text("config")?, text("config_file")?) {
            (Some(text), Some(file_text)) => Ok(Some(StoredConfig { text, file_text })),
            (None, None) => Ok(None),
            _ => Err(StoreError::Corrupt {
                key: "settings/config".into(),
                detail: "one of the two configuration texts is missing".into(),
            }),
        }
    }

    /// Both texts in one batch (never one without the other); not flushed: the
    /// caller flushes.
    pub fn put_config(&self, config: &StoredConfig) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        batch.insert(b"config".as_slice(), config.text.as_bytes());
        batch.insert(b"config_file".as_slice(), config.file_text.as_bytes());
        self.settings.apply_batch(batch)?;
        Ok(())
    }
}
