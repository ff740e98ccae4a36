//! `[[user]]`: each mailbox Calvert follows, its zone and ids, and where the rules
//! route it.

use std::collections::BTreeSet;

use super::User;
use super::check::Check;
use super::file::UserSection;
use super::rules::routed;
use crate::component::wit::Rule;
use crate::component::{CoreError, CoreInstance};

impl Check<'_> {
    /// The users with a usable address, routed by `rules` (Exchange) and
    /// `telephony_rules`.
    pub(super) fn users(
        &mut self,
        core: &mut CoreInstance,
        sections: Vec<UserSection>,
        default_zone: &str,
        rules: &[Rule],
        telephony_rules: &[Rule],
    ) -> Result<Vec<User>, CoreError> {
        let mut users = Vec::new();
        let mut seen = BTreeSet::new();
        for (i, user) in sections.into_iter().enumerate() {
            let key = format!("user[{i}]");
            let address = user.address.trim().to_string();
            if !is_address(&address) {
                self.problem(
                    format!("{key}.address"),
                    format!("{address:?} is not an e-mail address"),
                );
                continue;
            }
            if !seen.insert(address.to_ascii_lowercase()) {
                self.problem(
                    format!("{key}.address"),
                    format!("{address} is listed twice"),
                );
            }
            let zone = match &user.zone {
                Some(zone) => self.zone(core, &format!("{key}.zone"), zone, default_zone)?,
                None => default_zone.to_string(),
            };
            if user.enabled && user.integration_id.as_deref().is_none_or(str::is_empty) {
                self.problem(
                    format!("{key}.integration_id"),
                    "an enabled user needs an integration id (semantics §8); add it or set enabled = false",
                );
            }
            users.push(User {
                exchange: routed(core.route(&address, rules))?,
                telephony: routed(core.route(&address, telephony_rules))?,
                telephony_id: user
                    .telephony_id
                    .filter(|t| !t.is_empty())
                    .unwrap_or_else(|| address.clone()),
                address,
                name: user.name.filter(|t| !t.trim().is_empty()),
                company: user.company.filter(|t| !t.trim().is_empty()),
                integration_id: user.integration_id.filter(|t| !t.is_empty()),
                zone,
                enabled: user.enabled,
            });
        }
        Ok(users)
    }
}

/// Whether `address` looks like an e-mail address (local part, `@`, a dotted domain,
/// no white space).
pub fn is_address(address: &str) -> bool {
    match address.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !address.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{MINIMAL, load};
    use super::is_address;

    #[test]
    fn an_unrouted_user_loads_without_a_server() {
        let config = load(
            &MINIMAL.replace("pattern = \"flexi.se\"", "pattern = \"@other.se\""),
            &[],
        )
        .unwrap();
        assert_eq!(config.users[0].exchange, None);
        assert_eq!(config.users[0].telephony.as_deref(), Some("log"));
    }

    #[test]
    fn an_address_has_a_local_part_and_a_dotted_domain() {
        assert!(is_address("kim@flexi.se"));
        for not in [
            "kim",
            "@flexi.se",
            "kim@flexi",
            "kim@.flexi.se",
            "kim@flexi.se.",
            "k im@flexi.se",
        ] {
            assert!(!is_address(not), "{not}");
        }
    }
}
