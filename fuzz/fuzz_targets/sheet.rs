//! An uploaded spreadsheet (any bytes: CSV text or a zip that may be an XLSX) through
//! `import::sheet::read` and `import::rows::users`, as bulk activation reads it.
//!
//! Oracles: no panic; a sheet read is within the caps (rows, columns, cell length)
//! with rows numbered upwards; every user has a valid, unique address, and every
//! problem names a row that exists in the sheet.
#![no_main]

use std::collections::BTreeSet;

use calvert::import::rows;
use calvert::import::sheet::{self, MAX_CELL_CHARS, MAX_COLUMNS, MAX_ROWS};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let Ok(sheet) = sheet::read(bytes) else { return };
    assert!(!sheet.is_empty() && sheet.len() <= MAX_ROWS);
    let mut last = 0;
    for row in &sheet {
        assert!(row.number > last, "rows numbered upwards: {} after {last}", row.number);
        last = row.number;
        assert!(row.cells.len() <= MAX_COLUMNS);
        assert!(row.cells.iter().all(|c| c.chars().count() <= MAX_CELL_CHARS && c.trim() == c));
    }
    let numbers: BTreeSet<usize> = sheet.iter().map(|r| r.number).collect();
    let (users, problems) = rows::users(&sheet);
    let mut seen = BTreeSet::new();
    for user in &users {
        assert!(calvert::config::is_address(&user.address), "{:?}", user.address);
        assert!(seen.insert(user.address.to_ascii_lowercase()), "{:?} twice", user.address);
        assert!(numbers.contains(&user.row));
    }
    for problem in &problems {
        assert!(numbers.contains(&problem.row), "{problem:?}");
        assert!(!problem.message.is_empty());
    }
});
