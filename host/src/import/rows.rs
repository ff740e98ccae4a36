//! A sheet's rows as the users to activate: the header names the columns (in English,
//! Swedish or Finnish, any case), each row after it is one user. Every problem the
//! rows alone show is reported, by row and column: an unknown column, a missing or
//! bad address, an address listed twice. What needs the configuration (routes, zones,
//! integration ids) is checked by the service ([`crate::service`]'s import).

use std::collections::BTreeMap;

use super::sheet::SheetRow;
use crate::config::is_address;

/// A column Calvert reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Column {
    Address,
    Name,
    Company,
    IntegrationId,
    TelephonyId,
    Zone,
}

impl Column {
    /// The names a header may use (after lower-casing and `-`/space → `_`).
    const NAMES: [(&'static str, Column); 17] = [
        ("address", Column::Address),
        ("email", Column::Address),
        ("e_mail", Column::Address),
        ("e_post", Column::Address),
        ("sähköposti", Column::Address),
        ("name", Column::Name),
        ("namn", Column::Name),
        ("nimi", Column::Name),
        ("company", Column::Company),
        ("företag", Column::Company),
        ("yritys", Column::Company),
        ("integration_id", Column::IntegrationId),
        ("telephony_id", Column::TelephonyId),
        ("zone", Column::Zone),
        ("time_zone", Column::Zone),
        ("tidszon", Column::Zone),
        ("aikavyöhyke", Column::Zone),
    ];

    fn parse(header: &str) -> Option<Column> {
        let key: String = header
            .trim()
            .to_lowercase()
            .chars()
            .map(|c| if c == ' ' || c == '-' { '_' } else { c })
            .collect();
        Column::NAMES
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, column)| *column)
    }
}

/// One user from the sheet. Empty cells are `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ImportedUser {
    /// The row's number in the sheet (the header is row 1).
    pub row: usize,
    pub address: String,
    pub name: Option<String>,
    pub company: Option<String>,
    pub integration_id: Option<String>,
    pub telephony_id: Option<String>,
    pub zone: Option<String>,
}

/// A problem with a row (row 1 is the header).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    pub row: usize,
    pub message: String,
}

/// The users of `rows` (the first is the header), and every problem found.
pub fn users(rows: &[SheetRow]) -> (Vec<ImportedUser>, Vec<RowProblem>) {
    let mut problems = Vec::new();
    let Some((header, body)) = rows.split_first() else {
        return (Vec::new(), problems);
    };
    let columns = columns(header, &mut problems);
    if !columns.iter().flatten().any(|c| *c == Column::Address) {
        problems.push(RowProblem {
            row: header.number,
            message: "no address column: name one \"address\" (or \"e-mail\", \"e-post\", \"sähköposti\")".into(),
        });
        return (Vec::new(), problems);
    }
    let mut first_row_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut users = Vec::new();
    for row in body {
        if row.cells.iter().all(String::is_empty) {
            continue;
        }
        let user = user(row, &columns);
        if user.address.is_empty() {
            problems.push(problem(row, "has no address"));
            continue;
        }
        if !is_address(&user.address) {
            problems.push(problem(
                row,
                &format!("{:?} is not an e-mail address", user.address),
            ));
            continue;
        }
        let key = user.address.to_ascii_lowercase();
        if let Some(first) = first_row_of.get(&key) {
            problems.push(problem(
                row,
                &format!(
                    "{} is already on row {first}: keep one of them",
                    user.address
                ),
            ));
            continue;
        }
        first_row_of.insert(key, row.number);
        users.push(user);
    }
    (users, problems)
}

fn problem(row: &SheetRow, what: &str) -> RowProblem {
    RowProblem {
        row: row.number,
        message: format!("row {} {what}", row.number),
    }
}

/// The column of each header cell; an unknown one is a problem (a typo would
/// otherwise drop a column silently), a blank one is ignored.
fn columns(header: &SheetRow, problems: &mut Vec<RowProblem>) -> Vec<Option<Column>> {
    let mut seen = BTreeMap::new();
    header
        .cells
        .iter()
        .enumerate()
        .map(|(i, text)| {
            if text.is_empty() {
                return None;
            }
            let Some(column) = Column::parse(text) else {
                problems.push(RowProblem {
                    row: header.number,
                    message: format!(
                        "unknown column {text:?} (column {}): use address, name, company, integration_id, telephony_id or zone",
                        i + 1
                    ),
                });
                return None;
            };
            if let Some(first) = seen.insert(column, i + 1) {
                problems.push(RowProblem {
                    row: header.number,
                    message: format!("columns {first} and {} are the same column {text:?}", i + 1),
                });
                return None;
            }
            Some(column)
        })
        .collect()
}

fn user(row: &SheetRow, columns: &[Option<Column>]) -> ImportedUser {
    let mut user = ImportedUser {
        row: row.number,
        ..ImportedUser::default()
    };
    for (text, column) in row.cells.iter().zip(columns) {
        let value = Some(text.clone()).filter(|t| !t.is_empty());
        match column {
            Some(Column::Address) => user.address = text.clone(),
            Some(Column::Name) => user.name = value,
            Some(Column::Company) => user.company = value,
            Some(Column::IntegrationId) => user.integration_id = value,
            Some(Column::TelephonyId) => user.telephony_id = value,
            Some(Column::Zone) => user.zone = value,
            None => {}
        }
    }
    user
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sheet(lines: &[&[&str]]) -> Vec<SheetRow> {
        lines
            .iter()
            .enumerate()
            .map(|(i, cells)| SheetRow {
                number: i + 1,
                cells: cells.iter().map(|c| c.to_string()).collect(),
            })
            .collect()
    }

    #[test]
    fn headers_in_any_language_and_case_name_the_columns() {
        let (users, problems) = users(&sheet(&[
            &["E-post", "Namn", "Företag", "Integration ID", "Tidszon"],
            &["kim@x.se", "Kim Berg", "Flexi", "1001", "Europe/Stockholm"],
        ]));
        assert_eq!(problems, []);
        assert_eq!(
            users,
            [ImportedUser {
                row: 2,
                address: "kim@x.se".into(),
                name: Some("Kim Berg".into()),
                company: Some("Flexi".into()),
                integration_id: Some("1001".into()),
                telephony_id: None,
                zone: Some("Europe/Stockholm".into()),
            }]
        );
    }

    #[test]
    fn every_problem_is_named_by_row() {
        let (users, problems) = users(&sheet(&[
            &["address", "integration_id", "department"],
            &["kim@x.se", "1"],
            &["not-an-address", "2"],
            &["", "3"],
            &["KIM@x.se", "4"],
            &["", ""],
            &["al@x.se", "5"],
        ]));
        assert_eq!(
            users.iter().map(|u| u.row).collect::<Vec<_>>(),
            [2, 7],
            "the good rows"
        );
        let rows: Vec<usize> = problems.iter().map(|p| p.row).collect();
        assert_eq!(rows, [1, 3, 4, 5]);
        assert!(
            problems[0]
                .message
                .contains("unknown column \"department\"")
        );
        assert!(problems[1].message.contains("not an e-mail address"));
        assert!(problems[2].message.contains("has no address"));
        assert!(problems[3].message.contains("already on row 2"));
    }

    #[test]
    fn a_sheet_without_an_address_column_says_which_names_count() {
        let (users, problems) = users(&sheet(&[&["mail address"], &["kim@x.se"]]));
        assert!(users.is_empty());
        assert_eq!(problems.len(), 2);
        assert!(problems[1].message.contains("no address column"));
    }

    #[test]
    fn a_column_given_twice_is_a_problem() {
        let (_, problems) = users(&sheet(&[&["address", "email"], &["kim@x.se", "k@x.se"]]));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.contains("columns 1 and 2"));
    }
}
