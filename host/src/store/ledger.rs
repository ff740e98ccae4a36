//! The key ledger: a small file beside the database (`key-ledger` in the state
//! directory) that counts the sequence numbers handed out, made durable before any
//! key is sent. sled recovers a damaged log by cutting it at the first bad record,
//! silently dropping the writes after it; the ledger lets open see that keys were
//! handed out which the database no longer knows, so none is handed out again
//! (`keys.rs`).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::StoreError;
use crate::lock::lock;

/// The ledger file's name in the state directory.
pub const LEDGER_FILE: &str = "key-ledger";

/// The open ledger; [`KeyLedger::record`] writes a new count durably.
pub struct KeyLedger {
    path: PathBuf,
    file: Mutex<LedgerFile>,
}

struct LedgerFile {
    file: File,
    /// The count last written.
    written: u64,
}

/// What the ledger said at open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LedgerRead {
    /// No ledger yet (a new state directory, or one from before the ledger).
    Missing,
    /// Numbers handed out so far.
    Issued(u64),
    /// The file holds something else (what, for the log).
    Unreadable(String),
}

impl KeyLedger {
    /// Open (or create) the ledger in `dir`, and what it holds.
    pub fn open(dir: &Path) -> Result<(KeyLedger, LedgerRead), StoreError> {
        let path = dir.join(LEDGER_FILE);
        let error = |source| StoreError::Ledger {
            path: path.display().to_string(),
            source,
        };
        let existed = path.exists();
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(error)?;
        let mut text = String::new();
        let read = match (&mut file).take(64).read_to_string(&mut text) {
            _ if !existed => LedgerRead::Missing,
            Ok(_) => parse(&text),
            Err(e) => LedgerRead::Unreadable(e.to_string()),
        };
        let written = match read {
            LedgerRead::Issued(issued) => issued,
            _ => 0,
        };
        let ledger = KeyLedger {
            path,
            file: Mutex::new(LedgerFile { file, written }),
        };
        Ok((ledger, read))
    }

    /// Make `issued` the ledger's count, durably, unless it already says as much.
    pub fn record(&self, issued: u64) -> Result<(), StoreError> {
        let mut ledger = lock(&self.file);
        if issued <= ledger.written {
            return Ok(());
        }
        self.write(&mut ledger, issued)
    }

    /// Make `issued` the ledger's count, durably, even when it is lower (at open,
    /// after the check has accounted for what the old count said).
    pub fn reset(&self, issued: u64) -> Result<(), StoreError> {
        let mut ledger = lock(&self.file);
        self.write(&mut ledger, issued)
    }

    fn write(&self, ledger: &mut LedgerFile, issued: u64) -> Result<(), StoreError> {
        // Fixed width: each write replaces the whole count in place.
        let line = format!("{issued:020}\n");
        let file = &mut ledger.file;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(line.as_bytes()))
            .and_then(|_| file.set_len(line.len() as u64))
            .and_then(|_| file.sync_data())
            .map_err(|source| StoreError::Ledger {
                path: self.path.display().to_string(),
                source,
            })?;
        ledger.written = issued;
        Ok(())
    }
}

fn parse(text: &str) -> LedgerRead {
    match text.trim().parse::<u64>() {
        Ok(issued) => LedgerRead::Issued(issued),
        Err(_) if text.trim().is_empty() => LedgerRead::Missing,
        Err(e) => LedgerRead::Unreadable(format!("{e} in {:?}", text.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::suite::{TempDir, temp_dir};

    #[test]
    fn the_ledger_keeps_the_highest_count_across_a_reopen() {
        let dir = TempDir(temp_dir("ledger"));
        std::fs::create_dir_all(&dir.0).unwrap();
        let (ledger, read) = KeyLedger::open(&dir.0).unwrap();
        assert_eq!(read, LedgerRead::Missing);
        ledger.record(7).unwrap();
        ledger.record(3).unwrap();
        drop(ledger);
        let (ledger, read) = KeyLedger::open(&dir.0).unwrap();
        assert_eq!(read, LedgerRead::Issued(7));
        ledger.reset(2).unwrap();
        drop(ledger);
        assert_eq!(KeyLedger::open(&dir.0).unwrap().1, LedgerRead::Issued(2));
    }

    #[test]
    fn a_damaged_ledger_is_reported_not_trusted() {
        assert_eq!(parse("00000000000000000012\n"), LedgerRead::Issued(12));
        assert_eq!(parse(""), LedgerRead::Missing);
        assert!(matches!(parse("0000x0012"), LedgerRead::Unreadable(_)));
    }
}
