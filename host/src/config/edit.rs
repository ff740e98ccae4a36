//! The administrators' edits of the configuration, as edits of its TOML text:
//! comments, order and everything not edited stay as written (toml_edit). The result
//! is checked by the same [`super::ConfigSource::check`] as the file, so an edit that
//! makes a tie, an empty trigger or an unknown server is refused with the problem
//! named by key.

use toml_edit::{ArrayOfTables, DocumentMut, Item, Table, value};

use super::server_edit::{self, ServerEdit, TargetEdit};
use super::user_edit::{self, UserEdit};
use crate::import::rows::ImportedUser;

/// Which rules: the Exchange ones (`[[rule]]`) or the telephony ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    Exchange,
    Telephony,
}

impl RuleKind {
    pub fn parse(text: &str) -> Option<RuleKind> {
        match text {
            "exchange" => Some(RuleKind::Exchange),
            "telephony" => Some(RuleKind::Telephony),
            _ => None,
        }
    }

    fn section(self) -> &'static str {
        match self {
            RuleKind::Exchange => "rule",
            RuleKind::Telephony => "telephony_rule",
        }
    }

    /// The key naming the destination (`server` or `target`).
    fn destination(self) -> &'static str {
        match self {
            RuleKind::Exchange => "server",
            RuleKind::Telephony => "target",
        }
    }
}

/// One change an administrator makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigEdit {
    AddTrigger {
        word: String,
        reason: String,
    },
    RemoveTrigger {
        word: String,
    },
    /// The `[policy]` the administration edits: the reason when no trigger matches,
    /// the out-of-office one, which free/busy states divert, whether a tentative
    /// response counts as accepted. The return time stays as written.
    SetPolicy {
        default_reason: String,
        oof_reason: Option<String>,
        divert_on: Vec<String>,
        count_tentative: bool,
    },
    AddRule {
        kind: RuleKind,
        destination: String,
        pattern: String,
        priority: i32,
    },
    /// The `index`-th rule of that kind, counted from 0 as listed.
    RemoveRule {
        kind: RuleKind,
        index: usize,
    },
    /// The two-way sync's default event type; None or blank removes it.
    SetDefaultEventType {
        event_type: Option<String>,
    },
    /// None or empty: remove it (the check then says an enabled user needs one).
    SetIntegrationId {
        address: String,
        integration_id: Option<String>,
    },
    /// Bulk activation: each user is added (at the end of `[[user]]`, in row order)
    /// or, when listed already, gets the cells given and is enabled.
    ImportUsers {
        users: Vec<ImportedUser>,
    },
    /// A user's cells changed from its row's form (its enabled flag stays).
    EditUser(UserEdit),
    /// An Exchange server added or changed (secrets write-only).
    SetServer(ServerEdit),
    /// Removed; the check refuses it while a rule still names it.
    RemoveServer {
        name: String,
    },
    /// A telephony target added or changed.
    SetTarget(TargetEdit),
    RemoveTarget {
        name: String,
    },
}

impl ConfigEdit {
    /// The edit as the audit log says it (no secret is ever in an edit).
    pub fn describe(&self) -> String {
        match self {
            ConfigEdit::AddTrigger { word, reason } => {
                format!("added the trigger {word:?} → {reason}")
            }
            ConfigEdit::RemoveTrigger { word } => format!("removed the trigger {word:?}"),
            ConfigEdit::SetPolicy {
                default_reason,
                oof_reason,
                divert_on,
                count_tentative,
            } => format!(
                "set the policy: default reason {default_reason}, out-of-office reason {}, divert on {}, tentative {}",
                oof_reason.as_deref().unwrap_or("(none)"),
                divert_on.join(", "),
                if *count_tentative {
                    "counts"
                } else {
                    "does not count"
                }
            ),
            ConfigEdit::AddRule {
                kind,
                destination,
                pattern,
                priority,
            } => format!(
                "added the {} rule {pattern} → {destination} (priority {priority})",
                kind.section().replace('_', " ")
            ),
            ConfigEdit::RemoveRule { kind, index } => {
                format!("removed {}[{index}]", kind.section())
            }
            ConfigEdit::SetDefaultEventType { event_type } => format!(
                "set the default event type to {}",
                event_type.as_deref().unwrap_or("(none)")
            ),
            ConfigEdit::SetIntegrationId {
                address,
                integration_id,
            } => format!(
                "set the integration id of {address} to {}",
                integration_id.as_deref().unwrap_or("(none)")
            ),
            ConfigEdit::EditUser(user) => user.describe(),
            ConfigEdit::SetServer(server) => server.describe(),
            ConfigEdit::RemoveServer { name } => format!("removed the Exchange server {name}"),
            ConfigEdit::SetTarget(target) => target.describe(),
            ConfigEdit::RemoveTarget { name } => format!("removed the telephony target {name}"),
            ConfigEdit::ImportUsers { users } => {
                const NAMED: usize = 5;
                let named: Vec<&str> = users
                    .iter()
                    .take(NAMED)
                    .map(|u| u.address.as_str())
                    .collect();
                let more = users.len().saturating_sub(NAMED);
                format!(
                    "imported {} user(s) from a spreadsheet: {}{}",
                    users.len(),
                    named.join(", "),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                )
            }
        }
    }
}

/// Why an edit could not even be written into the text.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EditError {
    #[error("the stored configuration is not TOML any more ({0}): restore it with calvert.toml")]
    Unreadable(String),
    #[error("there is no trigger {word:?}")]
    NoTrigger { word: String },
    #[error("there is no {section}[{index}]")]
    NoRule { section: &'static str, index: usize },
    #[error("there is no user {address}")]
    NoUser { address: String },
    #[error("there is no [[{section}]] named {name:?}")]
    NoNamed { section: &'static str, name: String },
    #[error("[[{section}]] is not a list of tables in the stored configuration")]
    NotAList { section: &'static str },
}

/// `text` with `edit` made.
pub fn apply(text: &str, edit: &ConfigEdit) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Unreadable(e.message().to_string()))?;
    match edit {
        ConfigEdit::AddTrigger { word, reason } => {
            let mut table = Table::new();
            table["word"] = value(word.as_str());
            table["reason"] = value(reason.as_str());
            list(&mut doc, "trigger")?.push(table);
        }
        ConfigEdit::RemoveTrigger { word } => {
            let triggers = list(&mut doc, "trigger")?;
            let at = (0..triggers.len()).find(|&i| {
                triggers
                    .get(i)
                    .and_then(|t| t.get("word"))
                    .and_then(|w| w.as_str())
                    .is_some_and(|w| w == word)
            });
            match at {
                Some(i) => {
                    triggers.remove(i);
                }
                None => return Err(EditError::NoTrigger { word: word.clone() }),
            }
        }
        ConfigEdit::SetPolicy {
            default_reason,
            oof_reason,
            divert_on,
            count_tentative,
        } => {
            let policy = doc
                .entry("policy")
                .or_insert_with(|| Item::Table(Table::new()));
            policy["default_reason"] = value(default_reason.as_str());
            policy["divert_on"] = value(
                divert_on
                    .iter()
                    .map(String::as_str)
                    .collect::<toml_edit::Array>(),
            );
            policy["count_tentative"] = value(*count_tentative);
            match oof_reason {
                Some(reason) => policy["oof_reason"] = value(reason.as_str()),
                None => {
                    if let Some(table) = policy.as_table_like_mut() {
                        table.remove("oof_reason");
                    }
                }
            }
        }
        ConfigEdit::AddRule {
            kind,
            destination,
            pattern,
            priority,
        } => {
            let mut table = Table::new();
            table[kind.destination()] = value(destination.as_str());
            table["pattern"] = value(pattern.as_str());
            table["priority"] = value(i64::from(*priority));
            list(&mut doc, kind.section())?.push(table);
        }
        ConfigEdit::RemoveRule { kind, index } => {
            let rules = list(&mut doc, kind.section())?;
            if *index >= rules.len() {
                return Err(EditError::NoRule {
                    section: kind.section(),
                    index: *index,
                });
            }
            rules.remove(*index);
        }
        ConfigEdit::SetDefaultEventType { event_type } => {
            let sync = doc
                .entry("sync")
                .or_insert_with(|| Item::Table(Table::new()));
            match event_type.as_deref().map(str::trim) {
                Some(kind) if !kind.is_empty() => sync["default_event_type"] = value(kind),
                _ => {
                    if let Some(table) = sync.as_table_like_mut() {
                        table.remove("default_event_type");
                    }
                }
            }
        }
        ConfigEdit::SetIntegrationId {
            address,
            integration_id,
        } => {
            let users = list(&mut doc, "user")?;
            let user = users
                .iter_mut()
                .find(|u| {
                    u.get("address")
                        .and_then(|a| a.as_str())
                        .is_some_and(|a| a.trim().eq_ignore_ascii_case(address))
                })
                .ok_or_else(|| EditError::NoUser {
                    address: address.clone(),
                })?;
            match integration_id.as_deref().map(str::trim) {
                Some(id) if !id.is_empty() => user["integration_id"] = value(id),
                _ => {
                    user.remove("integration_id");
                }
            }
        }
        ConfigEdit::ImportUsers { users } => user_edit::import_users(&mut doc, users)?,
        ConfigEdit::EditUser(user) => user_edit::edit_user(&mut doc, user)?,
        ConfigEdit::SetServer(server) => server_edit::set_server(&mut doc, server)?,
        ConfigEdit::RemoveServer { name } => server_edit::remove_named(&mut doc, "exchange", name)?,
        ConfigEdit::SetTarget(target) => server_edit::set_target(&mut doc, target)?,
        ConfigEdit::RemoveTarget { name } => {
            server_edit::remove_named(&mut doc, "telephony", name)?
        }
    }
    Ok(doc.to_string())
}

/// What stands in for a secret in [`redacted`].
pub const REDACTED: &str = "(secret: kept in calvert.toml or the store, never shown)";

/// `text` with every secret written in it replaced by [`REDACTED`]: the Exchange
/// servers' `password` and `client_secret`, the telephony targets' header values.
/// What the administration shows and exports; names of variables and files stay.
pub fn redacted(text: &str) -> Result<String, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e: toml_edit::TomlError| EditError::Unreadable(e.message().to_string()))?;
    if let Some(servers) = doc
        .get_mut("exchange")
        .and_then(Item::as_array_of_tables_mut)
    {
        for server in servers.iter_mut() {
            for key in ["password", "client_secret"] {
                if server.contains_key(key) {
                    server[key] = value(REDACTED);
                }
            }
        }
    }
    if let Some(targets) = doc
        .get_mut("telephony")
        .and_then(Item::as_array_of_tables_mut)
    {
        for target in targets.iter_mut() {
            if let Some(headers) = target.get_mut("headers").and_then(Item::as_table_like_mut) {
                let names: Vec<String> = headers.iter().map(|(k, _)| k.to_string()).collect();
                for name in names {
                    headers.insert(&name, value(REDACTED));
                }
            }
        }
    }
    Ok(doc.to_string())
}

/// Set `key` in `table` to `new`, keeping the comment and spacing the old value had
/// (`enabled = false # on leave` stays commented).
pub(super) fn set_value(table: &mut Table, key: &str, new: impl Into<toml_edit::Value>) {
    let mut new: toml_edit::Value = new.into();
    if let Some(old) = table.get(key).and_then(Item::as_value) {
        *new.decor_mut() = old.decor().clone();
    }
    table[key] = Item::Value(new);
}

/// The `[[section]]` list, made when absent.
pub(super) fn list<'a>(
    doc: &'a mut DocumentMut,
    section: &'static str,
) -> Result<&'a mut ArrayOfTables, EditError> {
    doc.entry(section)
        .or_insert_with(|| Item::ArrayOfTables(ArrayOfTables::new()))
        .as_array_of_tables_mut()
        .ok_or(EditError::NotAList { section })
}

#[cfg(test)]
#[path = "edit_tests.rs"]
mod tests;
