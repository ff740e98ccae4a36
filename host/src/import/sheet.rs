//! An uploaded spreadsheet as rows of text cells: CSV (comma, semicolon or tab, as
//! Excel saves it in each locale; UTF-8, a byte-order mark allowed) or XLSX (the
//! first worksheet, read by calamine cell by cell).
//!
//! Every read is capped: the upload's bytes, the workbook's unzipped size, the rows,
//! the columns and each cell's length. XLSX is streamed cell by cell because
//! calamine's whole-sheet read allocates the sheet's bounding rectangle, and one cell
//! placed at XFD1048576 would make that gigabytes. `.xls` is refused for the same
//! reason (its reader can only read whole sheets): save it as `.xlsx` or CSV.

use std::io::{Cursor, Read};

use calamine::{Data, Reader, Xlsx};

/// The largest upload read (a 60,000-user roster as CSV is about 5 MB).
pub const MAX_BYTES: usize = 16 << 20;
/// The most rows a sheet may have, the header included.
pub const MAX_ROWS: usize = 100_001;
/// The most columns a row may have.
pub const MAX_COLUMNS: usize = 32;
/// The longest cell, in characters.
pub const MAX_CELL_CHARS: usize = 512;
/// The most a workbook may unzip to.
const MAX_UNZIPPED: u64 = 256 << 20;

/// One row of the sheet: its number as the spreadsheet shows it (from 1) and its
/// cells, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetRow {
    pub number: usize,
    pub cells: Vec<String>,
}

/// Why an upload could not be read as a sheet.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SheetError {
    #[error("the file is {bytes} bytes; the most read is {MAX_BYTES}: split it into several files")]
    TooLarge { bytes: usize },
    #[error("the file is empty: it needs a header row and a row per user")]
    Empty,
    #[error("the sheet has more than {} rows: split it into several files", MAX_ROWS - 1)]
    TooManyRows,
    #[error(
        "row {row} has more than {MAX_COLUMNS} columns: remove the columns Calvert does not read"
    )]
    TooManyColumns { row: usize },
    #[error("row {row}, column {column} is longer than {MAX_CELL_CHARS} characters")]
    CellTooLong { row: usize, column: usize },
    #[error("line {line} is not UTF-8 text: save the sheet as \"CSV UTF-8\" (Excel) or as .xlsx")]
    NotUtf8 { line: u64 },
    #[error("the CSV cannot be read at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("the workbook cannot be read ({0}): save it again as .xlsx or CSV")]
    Xlsx(String),
    #[error(
        "the workbook unzips to more than {} MiB: save the sheet as CSV",
        MAX_UNZIPPED >> 20
    )]
    TooMuchUnzipped,
    #[error(
        "this is an old Excel (.xls) file, which Calvert does not read: save it as .xlsx or CSV"
    )]
    Xls,
}

/// The rows of `bytes`, whichever of the formats it is (told by its first bytes,
/// not by a file name).
pub fn read(bytes: &[u8]) -> Result<Vec<SheetRow>, SheetError> {
    if bytes.len() > MAX_BYTES {
        return Err(SheetError::TooLarge { bytes: bytes.len() });
    }
    let rows = if bytes.starts_with(b"PK\x03\x04") {
        xlsx(bytes)?
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(SheetError::Xls);
    } else {
        csv(bytes)?
    };
    if rows.is_empty() {
        return Err(SheetError::Empty);
    }
    Ok(rows)
}

/// A cell as Calvert reads it: trimmed, at most [`MAX_CELL_CHARS`] characters.
fn cell(text: &str, row: usize, column: usize) -> Result<String, SheetError> {
    let text = text.trim();
    if text.chars().count() > MAX_CELL_CHARS {
        return Err(SheetError::CellTooLong { row, column });
    }
    Ok(text.to_string())
}

/// The delimiter the header line uses most: `;` (Excel in Swedish or Finnish),
/// `,` or a tab.
fn delimiter(text: &[u8]) -> u8 {
    let line = text.split(|&b| b == b'\n').next().unwrap_or_default();
    let count = |d: u8| line.iter().filter(|&&b| b == d).count();
    [b';', b'\t'].into_iter().fold(
        b',',
        |best, d| if count(d) > count(best) { d } else { best },
    )
}

fn csv(bytes: &[u8]) -> Result<Vec<SheetRow>, SheetError> {
    let text = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter(text))
        .from_reader(text);
    let mut rows = Vec::new();
    // The line a record starts on, from its byte offset: the reader's offset (and its
    // own line count) is where it began looking, before the blank lines it skipped.
    let (mut counted_to, mut line) = (0usize, 1usize);
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        let mut byte = record
            .position()
            .and_then(|p| usize::try_from(p.byte()).ok())
            .unwrap_or(counted_to);
        while text.get(byte).is_some_and(|b| matches!(b, b'\r' | b'\n')) {
            byte += 1;
        }
        line += line_breaks(text, counted_to, byte);
        counted_to = counted_to.max(byte);
        let number = line;
        if rows.len() == MAX_ROWS {
            return Err(SheetError::TooManyRows);
        }
        if record.len() > MAX_COLUMNS {
            return Err(SheetError::TooManyColumns { row: number });
        }
        let cells = record
            .iter()
            .enumerate()
            .map(|(i, text)| cell(text, number, i + 1))
            .collect::<Result<Vec<_>, _>>()?;
        rows.push(SheetRow { number, cells });
    }
    Ok(rows)
}

/// The line breaks in `text[from..to]`: LF, CRLF, or a lone CR (as the reader
/// takes them).
fn line_breaks(text: &[u8], from: usize, to: usize) -> usize {
    let Some(part) = text.get(from..to) else {
        return 0;
    };
    part.iter()
        .enumerate()
        .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && text.get(from + i + 1) != Some(&b'\n')))
        .count()
}

fn csv_error(error: csv::Error) -> SheetError {
    let line = error.position().map_or(0, |p| p.line());
    match error.kind() {
        csv::ErrorKind::Utf8 { .. } => SheetError::NotUtf8 { line },
        _ => SheetError::Csv {
            line,
            message: error.to_string(),
        },
    }
}

/// Unzip every part to nowhere, counting: the sizes a zip declares can lie, and
/// calamine keeps the shared strings in memory.
fn check_unzipped(bytes: &[u8]) -> Result<(), SheetError> {
    let xlsx = |e: &dyn std::fmt::Display| SheetError::Xlsx(e.to_string());
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| xlsx(&e))?;
    let mut left = MAX_UNZIPPED;
    for i in 0..archive.len() {
        let part = archive.by_index(i).map_err(|e| xlsx(&e))?;
        let read =
            std::io::copy(&mut part.take(left + 1), &mut std::io::sink()).map_err(|e| xlsx(&e))?;
        left = left.checked_sub(read).ok_or(SheetError::TooMuchUnzipped)?;
    }
    Ok(())
}

fn xlsx(bytes: &[u8]) -> Result<Vec<SheetRow>, SheetError> {
    check_unzipped(bytes)?;
    let mut book: Xlsx<_> = calamine::open_workbook_from_rs(Cursor::new(bytes))
        .map_err(|e: calamine::XlsxError| SheetError::Xlsx(e.to_string()))?;
    let Some(first) = book.sheet_names().first().cloned() else {
        return Err(SheetError::Empty);
    };
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(|e| SheetError::Xlsx(e.to_string()))?;
    // (row, column) from 0, as calamine counts; rows come in order in a sheet.
    let mut rows: std::collections::BTreeMap<u32, Vec<(u32, String)>> = Default::default();
    while let Some(found) = cells
        .next_cell()
        .map_err(|e| SheetError::Xlsx(e.to_string()))?
    {
        let (row, column) = found.get_position();
        let number = row as usize + 1;
        let text = Data::from(found.get_value().clone()).to_string();
        if text.trim().is_empty() {
            continue;
        }
        if number > MAX_ROWS {
            return Err(SheetError::TooManyRows);
        }
        if column as usize >= MAX_COLUMNS {
            return Err(SheetError::TooManyColumns { row: number });
        }
        let text = cell(&text, number, column as usize + 1)?;
        rows.entry(row).or_default().push((column, text));
    }
    Ok(rows
        .into_iter()
        .map(|(row, found)| {
            let width = found
                .iter()
                .map(|(c, _)| *c as usize + 1)
                .max()
                .unwrap_or(0);
            let mut cells = vec![String::new(); width];
            for (column, text) in found {
                if let Some(slot) = cells.get_mut(column as usize) {
                    *slot = text;
                }
            }
            SheetRow {
                number: row as usize + 1,
                cells,
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(rows: &[SheetRow]) -> Vec<Vec<&str>> {
        rows.iter()
            .map(|r| r.cells.iter().map(String::as_str).collect())
            .collect()
    }

    #[test]
    fn csv_with_commas_semicolons_or_tabs_and_a_byte_order_mark() {
        for text in [
            "address,integration_id\nkim@x.se, 1001 \n",
            "\u{feff}address;integration_id\r\nkim@x.se;1001\r\n",
            "address\tintegration_id\nkim@x.se\t1001\n",
        ] {
            let rows = read(text.as_bytes()).unwrap();
            assert_eq!(
                cells(&rows),
                [vec!["address", "integration_id"], vec!["kim@x.se", "1001"]],
                "{text:?}"
            );
            assert_eq!(rows[1].number, 2);
        }
    }

    #[test]
    fn quoted_cells_keep_their_delimiters_and_rows_keep_their_numbers() {
        let rows = read(b"address,name\n\"kim@x.se\",\"Berg, Kim\"\n\nal@x.se,Al\n").unwrap();
        assert_eq!(cells(&rows)[1], ["kim@x.se", "Berg, Kim"]);
        // The blank line is skipped, and the next row is still line 4.
        assert_eq!(rows[2].number, 4);
    }

    #[test]
    fn a_lone_carriage_return_ends_a_line_too() {
        // Found by the fuzzer: old Mac line ends numbered two rows alike.
        let rows = read(b"address,name\r\nkim@x.se,K\ral@x.se,A\n").unwrap();
        let numbers: Vec<usize> = rows.iter().map(|r| r.number).collect();
        assert_eq!(numbers, [1, 2, 3]);
    }

    #[test]
    fn text_that_is_not_utf8_says_how_to_save_it() {
        let err = read(b"address,name\nkim@x.se,K\xe4ll\n").unwrap_err();
        assert_eq!(err, SheetError::NotUtf8 { line: 2 });
        assert!(err.to_string().contains("CSV UTF-8"));
    }

    #[test]
    fn old_excel_files_are_refused_with_what_to_do() {
        let err = read(&[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]).unwrap_err();
        assert_eq!(err, SheetError::Xls);
    }

    #[test]
    fn caps_on_size_columns_and_cells() {
        assert_eq!(read(b""), Err(SheetError::Empty));
        let wide = format!("{}\n", vec!["a"; MAX_COLUMNS + 1].join(","));
        assert_eq!(
            read(wide.as_bytes()),
            Err(SheetError::TooManyColumns { row: 1 })
        );
        let long = format!("address\n{}\n", "x".repeat(MAX_CELL_CHARS + 1));
        assert_eq!(
            read(long.as_bytes()),
            Err(SheetError::CellTooLong { row: 2, column: 1 })
        );
        let big = vec![b'a'; MAX_BYTES + 1];
        assert_eq!(
            read(&big),
            Err(SheetError::TooLarge {
                bytes: MAX_BYTES + 1
            })
        );
    }

    /// An XLSX as Excel would save it, with `cells` as (row, column, text or number).
    fn workbook(cells: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        for &(row, column, text) in cells {
            match text.parse::<f64>() {
                Ok(number) => sheet.write_number(row, column, number).map(|_| ()),
                Err(_) => sheet.write_string(row, column, text).map(|_| ()),
            }
            .unwrap();
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn xlsx_cells_are_read_as_text_numbers_without_a_decimal_point() {
        let bytes = workbook(&[
            (0, 0, "address"),
            (0, 1, "integration_id"),
            (1, 0, " kim@x.se "),
            (1, 1, "1001"),
            (3, 1, "7"),
        ]);
        let rows = read(&bytes).unwrap();
        assert_eq!(
            cells(&rows),
            [
                vec!["address", "integration_id"],
                vec!["kim@x.se", "1001"],
                vec!["", "7"]
            ]
        );
        assert_eq!(rows[2].number, 4, "the row number Excel shows");
    }

    #[test]
    fn one_far_away_xlsx_cell_is_refused_not_allocated() {
        let bytes = workbook(&[(0, 0, "address"), (1_048_575, 16_383, "x")]);
        assert_eq!(read(&bytes), Err(SheetError::TooManyRows));
        let bytes = workbook(&[(0, 0, "address"), (1, 200, "x")]);
        assert_eq!(read(&bytes), Err(SheetError::TooManyColumns { row: 2 }));
    }

    #[test]
    fn a_zip_that_is_not_a_workbook_is_an_xlsx_problem() {
        assert!(matches!(
            read(b"PK\x03\x04 not really"),
            Err(SheetError::Xlsx(_))
        ));
    }
}
