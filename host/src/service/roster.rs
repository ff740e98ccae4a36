//! The mailboxes the service runs, by lower-cased address: the configured users at
//! start, grown by a live import ([`super::import`]). A mailbox is never removed
//! while the service runs (removing users needs a restart), so a task holding one
//! never finds it gone.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::state::Mailbox;
use crate::config::User;
use crate::lock;

#[derive(Default)]
pub(super) struct Roster {
    by_address: RwLock<BTreeMap<String, Arc<Mailbox>>>,
}

impl Roster {
    pub fn new(users: &[User]) -> Self {
        let roster = Roster::default();
        for user in users {
            roster.add(user);
        }
        roster
    }

    /// The mailbox of `address` (any case).
    pub fn get(&self, address: &str) -> Option<Arc<Mailbox>> {
        lock::read(&self.by_address)
            .get(&address.to_ascii_lowercase())
            .cloned()
    }

    pub fn contains(&self, address: &str) -> bool {
        lock::read(&self.by_address).contains_key(&address.to_ascii_lowercase())
    }

    /// Every mailbox, in address order (a copy: no lock is held while callers work).
    pub fn all(&self) -> Vec<Arc<Mailbox>> {
        lock::read(&self.by_address).values().cloned().collect()
    }

    /// A mailbox for `user`, or None when it has one already.
    pub fn add(&self, user: &User) -> Option<Arc<Mailbox>> {
        let key = user.address.to_ascii_lowercase();
        let mut by_address = lock::write(&self.by_address);
        if by_address.contains_key(&key) {
            return None;
        }
        let mailbox = Arc::new(Mailbox::new(user));
        by_address.insert(key, mailbox.clone());
        Some(mailbox)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(address: &str) -> User {
        User {
            address: address.into(),
            name: None,
            company: None,
            integration_id: Some("1".into()),
            telephony_id: address.into(),
            zone: "UTC".into(),
            enabled: true,
            exchange: None,
            telephony: None,
        }
    }

    #[test]
    fn found_in_any_case_added_once_listed_in_order() {
        let roster = Roster::new(&[user("Kim@x.se"), user("al@x.se")]);
        assert_eq!(roster.get("KIM@X.SE").unwrap().address, "Kim@x.se");
        assert!(roster.add(&user("kim@X.se")).is_none(), "already there");
        assert!(roster.add(&user("bo@x.se")).is_some());
        let order: Vec<String> = roster.all().iter().map(|m| m.address.clone()).collect();
        assert_eq!(order, ["al@x.se", "bo@x.se", "Kim@x.se"]);
        assert!(roster.contains("BO@x.se") && !roster.contains("nobody@x.se"));
    }
}
