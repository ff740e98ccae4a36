//! What the administration keeps: administrator accounts (a name, a role, an argon2
//! hash; never a password) and the audit log of every administrative change.

use serde::{Deserialize, Serialize};

/// What an account may do in the administration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Changes anything.
    Administrator,
    /// Looks, never changes (switchboard staff).
    Viewer,
}

impl Role {
    pub fn name(self) -> &'static str {
        match self {
            Role::Administrator => "administrator",
            Role::Viewer => "viewer",
        }
    }

    pub fn may_change(self) -> bool {
        self == Role::Administrator
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "administrator" | "admin" => Ok(Role::Administrator),
            "viewer" => Ok(Role::Viewer),
            other => Err(format!(
                "{other:?} is not a role: use administrator or viewer"
            )),
        }
    }
}

/// One administrator account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The login name, as typed (looked up lower-cased).
    pub name: String,
    pub role: Role,
    /// The password's argon2id hash as a PHC string (salt and parameters included).
    pub password_hash: String,
    /// When it was made (seconds since the epoch).
    pub created: i64,
}

/// One administrative change, as the audit log keeps it. `what` never holds a secret:
/// the caller masks passwords and tokens before it is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Its place in the log (given by the store, from 1, never reused).
    pub seq: u64,
    /// Seconds since the epoch.
    pub at: i64,
    /// The account name, or "token" for the admin token, or "calvert" for the service.
    pub who: String,
    /// What was changed, in a sentence ("passivated kim@flexi.se").
    pub what: String,
}

/// Accounts are looked up by their lower-cased name.
pub(super) fn account_key(name: &str) -> String {
    name.to_lowercase()
}
