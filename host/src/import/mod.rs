//! Bulk activation from a spreadsheet: [`sheet`] reads the upload (CSV or XLSX,
//! capped), [`rows`] turns its rows into users and names each row's problem. The
//! service checks the rest against the configuration and applies all rows or none
//! (`service/import.rs`).

pub mod rows;
pub mod sheet;
