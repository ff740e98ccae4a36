//! Bulk activation from a spreadsheet: every row checked first (a dry run lists each
//! row's problem and changes nothing), then all rows applied as one live edit, or
//! none. A row names a user by address: a new one is added to the configuration (and
//! its mailbox starts at once), a listed one gets the cells given; both end enabled,
//! and a passive one is activated. The edit goes through the same check as
//! calvert.toml ([`Service::prepare_config`]), whose problems are put back on their rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::reconfigure::ReconfigureError;
use super::state::Service;
use crate::component::wit::StatusEvent;
use crate::config::edit::ConfigEdit;
use crate::config::{ConfigError, ServiceConfig};
use crate::import::rows::{self, ImportedUser, RowProblem};
use crate::import::sheet::{self, SheetError};
use crate::store::Status;

/// What an import does to a row's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RowAction {
    /// Not configured yet: added, and activated by its mailbox at once.
    Add,
    /// Configured and not active: its cells set, enabled and activated.
    Activate,
    /// Active already: its cells set.
    Update,
    /// In error: its cells set; it stays in error until restarted.
    StaysInError,
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ReportRow {
    pub row: usize,
    pub address: String,
    pub action: RowAction,
}

/// What an import found and did. `applied` only when there was no problem.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ImportReport {
    pub rows: Vec<ReportRow>,
    pub problems: Vec<RowProblem>,
    pub applied: bool,
}

/// Why an import could not even be checked. Nothing changed.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Sheet(#[from] SheetError),
    #[error(transparent)]
    Edit(#[from] ReconfigureError),
}

impl Service {
    /// Check the sheet `bytes`; when `apply` and no row has a problem, apply it for
    /// `who` (one audited edit).
    pub async fn import(
        self: &Arc<Self>,
        bytes: &[u8],
        apply: bool,
        who: &str,
    ) -> Result<ImportReport, ImportError> {
        let (users, mut problems) = rows::users(&sheet::read(bytes)?);
        if users.is_empty() && problems.is_empty() {
            problems.push(RowProblem {
                row: 1,
                message: "the sheet has a header and no users: add a row per user".into(),
            });
        }
        let _one_at_a_time = self.reconfiguring.lock().await;
        let old = self.config();
        let report_rows = self.actions(&old, &users);
        let edit = ConfigEdit::ImportUsers {
            users: users.clone(),
        };
        let checked = match self.prepare_config(&old, &edit) {
            Ok(checked) => Some(checked),
            Err(ReconfigureError::Invalid(ConfigError::Invalid {
                problems: found, ..
            })) => {
                problems.extend(on_rows(&old, &users, &found));
                None
            }
            Err(other) => return Err(other.into()),
        };
        problems.extend(self.unrouted(&old, &users)?);
        problems.sort_by_key(|p| p.row);
        let mut report = ImportReport {
            rows: report_rows,
            problems,
            applied: false,
        };
        let Some((text, new)) = checked.filter(|_| apply && report.problems.is_empty()) else {
            return Ok(report);
        };
        let new = self.commit_config(text, new, &edit, who).await?;
        report.applied = true;
        self.activate(&new, &report.rows, &mut report.problems);
        Ok(report)
    }

    /// What the import does to each row's user, from the store's statuses.
    fn actions(&self, config: &ServiceConfig, users: &[ImportedUser]) -> Vec<ReportRow> {
        users
            .iter()
            .map(|user| {
                let action = match config.user(&user.address) {
                    None => RowAction::Add,
                    Some(_) => match self.adapters.store.user(&user.address) {
                        Ok(Some(record)) => match record.status {
                            Status::Active => RowAction::Update,
                            Status::Error(_) => RowAction::StaysInError,
                            Status::Passive | Status::NotInUse => RowAction::Activate,
                        },
                        _ => RowAction::Activate,
                    },
                };
                ReportRow {
                    row: user.row,
                    address: user.address.clone(),
                    action,
                }
            })
            .collect()
    }

    /// Rows whose user no rule routes (by the rules in force): imported, they would
    /// only go to Error.
    fn unrouted(
        &self,
        config: &ServiceConfig,
        users: &[ImportedUser],
    ) -> Result<Vec<RowProblem>, ImportError> {
        let core_failed = |e: crate::component::CoreError| ReconfigureError::Core(e.to_string());
        let mut problems = Vec::new();
        for user in users {
            for (rules, kind) in [
                (&config.rules, "an Exchange rule"),
                (&config.telephony_rules, "a telephony rule"),
            ] {
                let route = self
                    .with_core(|core| core.route(&user.address, rules))
                    .map_err(core_failed)?;
                if route.is_none() {
                    problems.push(RowProblem {
                        row: user.row,
                        message: format!(
                            "row {}: no rule routes {} to a server: add {kind} on the Rules page, then import again",
                            user.row, user.address
                        ),
                    });
                }
            }
        }
        Ok(problems)
    }

    /// Activate the listed users the import enabled (new ones activate themselves).
    fn activate(&self, config: &ServiceConfig, rows: &[ReportRow], problems: &mut Vec<RowProblem>) {
        for row in rows.iter().filter(|r| r.action == RowAction::Activate) {
            let id = config
                .user(&row.address)
                .and_then(|u| u.integration_id.clone());
            let activated = self.status_event(&row.address, StatusEvent::Activate(id));
            match activated {
                Ok(_) => {
                    if let Some(mailbox) = self.mailboxes.get(&row.address) {
                        mailbox.wake.notify_one();
                    }
                }
                Err(error) => problems.push(RowProblem {
                    row: row.row,
                    message: format!(
                        "row {}: {} was imported but not activated ({error}): activate it on its page",
                        row.row, row.address
                    ),
                }),
            }
        }
    }
}

/// The configuration's problems about `user[i]`, on the rows they came from: the
/// listed users keep their places, the new ones follow in row order.
fn on_rows(
    old: &ServiceConfig,
    users: &[ImportedUser],
    found: &[crate::config::ConfigProblem],
) -> Vec<RowProblem> {
    let by_address: BTreeMap<String, usize> = users
        .iter()
        .map(|u| (u.address.to_ascii_lowercase(), u.row))
        .collect();
    let added: Vec<usize> = users
        .iter()
        .filter(|u| old.user(&u.address).is_none())
        .map(|u| u.row)
        .collect();
    let row_of = |index: usize| match old.users.get(index) {
        Some(listed) => by_address
            .get(&listed.address.to_ascii_lowercase())
            .copied(),
        None => added.get(index.checked_sub(old.users.len())?).copied(),
    };
    found
        .iter()
        .filter_map(|problem| {
            let (index, field) = user_key(&problem.key)?;
            let row = row_of(index)?;
            Some(RowProblem {
                row,
                message: format!("row {row}, {field}: {}", problem.message),
            })
        })
        .collect()
}

/// `user[12].zone` → (12, "zone").
fn user_key(key: &str) -> Option<(usize, &str)> {
    let rest = key.strip_prefix("user[")?;
    let (index, field) = rest.split_once(']')?;
    Some((index.parse().ok()?, field.trim_start_matches('.')))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_keys_name_the_index_and_the_field() {
        assert_eq!(user_key("user[12].zone"), Some((12, "zone")));
        assert_eq!(
            user_key("user[0].integration_id"),
            Some((0, "integration_id"))
        );
        assert_eq!(user_key("rule[0].server"), None);
        assert_eq!(user_key("user[x].zone"), None);
    }
}
