//! The administration's edits of `[[user]]` entries, as edits of the TOML text (see
//! [`super::edit`]): the bulk activation's rows, and one user's row edited on its
//! page.

use std::collections::BTreeMap;

use toml_edit::{DocumentMut, Table};

use super::edit::{EditError, list, set_value};
use crate::import::rows::ImportedUser;

/// One user's cells as its form edits them. Empty texts remove their key (so an
/// empty zone means the service's zone, an empty phone the address).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserEdit {
    pub address: String,
    pub name: String,
    pub company: String,
    pub integration_id: String,
    pub telephony_id: String,
    pub zone: String,
}

impl UserEdit {
    pub fn describe(&self) -> String {
        let shown = |text: &str| {
            if text.is_empty() {
                "(none)".to_string()
            } else {
                text.to_string()
            }
        };
        format!(
            "edited {}: name {}, company {}, integration id {}, phone {}, zone {}",
            self.address,
            shown(&self.name),
            shown(&self.company),
            shown(&self.integration_id),
            shown(&self.telephony_id),
            shown(&self.zone)
        )
    }
}

/// The `[[user]]` table of `address` (any case), if listed.
fn listed<'a>(doc: &'a mut DocumentMut, address: &str) -> Result<Option<&'a mut Table>, EditError> {
    Ok(list(doc, "user")?.iter_mut().find(|u| {
        u.get("address")
            .and_then(|a| a.as_str())
            .is_some_and(|a| a.trim().eq_ignore_ascii_case(address))
    }))
}

pub(super) fn edit_user(doc: &mut DocumentMut, edit: &UserEdit) -> Result<(), EditError> {
    let table = listed(doc, edit.address.trim())?.ok_or_else(|| EditError::NoUser {
        address: edit.address.clone(),
    })?;
    for (key, text) in [
        ("name", &edit.name),
        ("company", &edit.company),
        ("integration_id", &edit.integration_id),
        ("telephony_id", &edit.telephony_id),
        ("zone", &edit.zone),
    ] {
        let text = text.trim();
        if text.is_empty() {
            table.remove(key);
        } else {
            set_value(table, key, text);
        }
    }
    Ok(())
}

/// Every imported user into `[[user]]`: the cells given set, the user enabled.
pub(super) fn import_users(
    doc: &mut DocumentMut,
    imported: &[ImportedUser],
) -> Result<(), EditError> {
    let users = list(doc, "user")?;
    let mut at: BTreeMap<String, usize> = users
        .iter()
        .enumerate()
        .filter_map(|(i, u)| {
            let address = u.get("address")?.as_str()?;
            Some((address.trim().to_ascii_lowercase(), i))
        })
        .collect();
    for user in imported {
        let key = user.address.to_ascii_lowercase();
        let index = match at.get(&key) {
            Some(&index) => index,
            None => {
                let mut table = Table::new();
                set_value(&mut table, "address", user.address.as_str());
                users.push(table);
                at.insert(key, users.len() - 1);
                users.len() - 1
            }
        };
        let Some(table) = users.get_mut(index) else {
            continue;
        };
        for (key, cell) in [
            ("name", &user.name),
            ("company", &user.company),
            ("integration_id", &user.integration_id),
            ("telephony_id", &user.telephony_id),
            ("zone", &user.zone),
        ] {
            if let Some(text) = cell {
                set_value(table, key, text.as_str());
            }
        }
        if table.contains_key("enabled") {
            set_value(table, "enabled", true);
        }
    }
    Ok(())
}
