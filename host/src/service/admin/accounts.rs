//! Administrator accounts: names, passwords (argon2id hashes only), the first account.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use super::sessions::random_token;
use crate::store::{Account, Role, Store, StoreError};

/// A password shorter than this is refused.
pub const MIN_PASSWORD: usize = 12;
/// A longer one too (argon2 would take it, but nobody types this much).
pub const MAX_PASSWORD: usize = 1024;
/// The account the first start makes.
pub const FIRST_ACCOUNT: &str = "admin";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AccountError {
    #[error(
        "{name:?} cannot be an account name: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
    )]
    BadName { name: String },
    #[error(
        "the password is too short: use at least {MIN_PASSWORD} characters (a phrase of a few words will do)"
    )]
    ShortPassword,
    #[error("the password is longer than {MAX_PASSWORD} characters")]
    LongPassword,
    #[error("{role:?} is not a role: use administrator or viewer")]
    BadRole { role: String },
    #[error("there is already an account {name}: tick \"replace\" to give it a new password")]
    Exists { name: String },
    #[error("the password could not be hashed: {0}")]
    Hash(String),
    #[error("{0}")]
    Store(String),
}

impl From<StoreError> for AccountError {
    fn from(error: StoreError) -> Self {
        AccountError::Store(error.to_string())
    }
}

/// A new account, checked and with its password hashed.
pub fn make(name: &str, role: Role, password: &str, now: i64) -> Result<Account, AccountError> {
    let usable = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.chars().count() > 64 || !name.chars().all(usable) {
        return Err(AccountError::BadName {
            name: name.to_string(),
        });
    }
    if password.chars().count() < MIN_PASSWORD {
        return Err(AccountError::ShortPassword);
    }
    if password.len() > MAX_PASSWORD {
        return Err(AccountError::LongPassword);
    }
    let hash = Argon2::default()
        .hash_password(password.as_bytes())
        .map_err(|e| AccountError::Hash(e.to_string()))?;
    Ok(Account {
        name: name.to_string(),
        role,
        password_hash: hash.to_string(),
        created: now,
    })
}

/// Whether `password` is the account's. Slow on purpose (argon2): call it off the
/// async workers.
pub fn verify(account: &Account, password: &str) -> bool {
    password.len() <= MAX_PASSWORD
        && Argon2::default()
            .verify_password(password.as_bytes(), account.password_hash.as_str())
            .is_ok()
}

/// Spend the time a check takes when there is no account of that name, so the
/// answer's delay does not tell which names exist.
pub fn verify_nobody(password: &str) {
    static NOBODY: std::sync::OnceLock<Option<Account>> = std::sync::OnceLock::new();
    let nobody = NOBODY.get_or_init(|| make("nobody", Role::Viewer, &generated_password(), 0).ok());
    if let Some(account) = nobody {
        let _ = verify(account, password);
    }
}

/// A password nobody chose: 32 random bytes, base64url.
pub fn generated_password() -> String {
    random_token()
}

/// The first start of a store with no account makes [`FIRST_ACCOUNT`] with a
/// generated password, and returns (name, password) to show once. Later starts
/// return None.
pub fn ensure_first_account(
    store: &dyn Store,
    now: i64,
) -> Result<Option<(String, String)>, AccountError> {
    if !store.accounts()?.is_empty() {
        return Ok(None);
    }
    let password = generated_password();
    let account = make(FIRST_ACCOUNT, Role::Administrator, &password, now)?;
    store.put_account(&account)?;
    store.audit(
        now,
        "calvert",
        "made the first account admin (administrator) with a one-time password",
    )?;
    Ok(Some((account.name, password)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    #[test]
    fn a_password_is_kept_only_as_its_hash_and_checks_out() {
        let account = make("ada", Role::Viewer, "correct horse battery", 5).unwrap();
        assert!(account.password_hash.starts_with("$argon2id$"));
        assert!(!account.password_hash.contains("correct horse"));
        assert!(verify(&account, "correct horse battery"));
        assert!(!verify(&account, "correct horse batterY"));
        assert!(!verify(&account, ""));
        let broken = Account {
            password_hash: "not a hash".into(),
            ..account
        };
        assert!(!verify(&broken, "correct horse battery"));
    }

    #[test]
    fn names_and_passwords_are_checked() {
        for name in ["", "a b", "ada;drop", &"x".repeat(65)] {
            assert!(
                matches!(
                    make(name, Role::Viewer, "long enough pass", 0),
                    Err(AccountError::BadName { .. })
                ),
                "{name:?}"
            );
        }
        assert_eq!(
            make("ada", Role::Viewer, "short", 0),
            Err(AccountError::ShortPassword)
        );
        assert_eq!(
            make("ada", Role::Viewer, &"x".repeat(MAX_PASSWORD + 1), 0),
            Err(AccountError::LongPassword)
        );
        assert!(make("åsa.berg@flexi.se", Role::Viewer, "long enough pass", 0).is_ok());
    }

    #[test]
    fn the_first_start_makes_one_administrator_and_later_starts_none() {
        let store = MemoryStore::default();
        let (name, password) = ensure_first_account(&store, 9).unwrap().unwrap();
        assert_eq!(name, FIRST_ACCOUNT);
        let account = store.account(&name).unwrap().unwrap();
        assert_eq!(account.role, Role::Administrator);
        assert!(verify(&account, &password));
        assert_eq!(ensure_first_account(&store, 10).unwrap(), None);
        assert_eq!(store.accounts().unwrap().len(), 1);
        let log = store.audit_log(5).unwrap();
        assert_eq!(log.len(), 1);
        assert!(!log[0].what.contains(&password));
    }
}
