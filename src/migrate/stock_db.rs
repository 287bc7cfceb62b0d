//! Opening one of stock Scrapyd's SQLite files without changing it in any way.
//!
//! The file is opened read-only (`SQLITE_OPEN_READONLY`), so SQLite never writes it, never rolls
//! back a journal beside it and never creates a `-journal`, `-wal` or `-shm` file. Stock uses
//! SQLite's default rollback journal and commits every change at once, so a reader only ever
//! waits for the moment of a commit. What can still be in the way is said plainly
//! ([`Unreadable`]): a lock held by a process in the middle of writing, an unfinished transaction
//! left by a process that died while writing (a *hot journal*, which only a writer may roll
//! back), a database in write-ahead-log mode (whose readers need a `-shm` file beside it), or a
//! damaged file. `immutable=1` is deliberately not used: it would read a database whose hot
//! journal says its pages are half-written.

use rusqlite::{Connection, OpenFlags, ffi};
use std::io::Read;
use std::path::Path;
use std::time::Duration;

/// One row of a stock table, decoded: what the import needs to report it and to remember it.
#[derive(Debug, Clone, PartialEq)]
pub struct StockRow<T> {
    /// SQLite's rowid, for reports.
    pub rowid: i64,
    /// Names this exact row in the import ledger.
    pub fingerprint: u64,
    /// The job, or why the row cannot be one.
    pub job: Result<T, String>,
}

/// How long a read waits for a writer's lock before the file is reported as locked. Stock holds
/// its locks only for single-row transactions, so a live but idle stock never causes this.
const BUSY_WAIT: Duration = Duration::from_secs(2);

/// Why a stock file cannot be read at this start. Each message completes a sentence that starts
/// with the file's name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error(
        "is locked by a process that is writing to it (is a stock Scrapyd still running?); \
         skipped for this start, tried again at the next"
    )]
    Locked,
    #[error(
        "holds an unfinished transaction ({journal}), left by a process that stopped while writing; \
         only a writer may roll it back, so it is skipped: start stock Scrapyd on this directory once \
         (it rolls the transaction back), stop it, and start scrapyd-rs again"
    )]
    HotJournal { journal: String },
    #[error(
        "is in SQLite's write-ahead-log mode, which stock Scrapyd never turns on; reading it \
         would create files beside it, so it is skipped"
    )]
    WriteAheadLog,
    #[error("is not an SQLite database")]
    NotADatabase,
    #[error("is damaged ({0})")]
    Corrupt(String),
    #[error("is not one of Scrapyd's databases: {0}")]
    UnknownSchema(String),
    #[error("cannot be read: {0}")]
    Failed(String),
}

impl Unreadable {
    /// Maps an SQLite error to what it means for the import.
    pub fn from_sqlite(err: &rusqlite::Error, path: &Path) -> Unreadable {
        let Some(code) = err.sqlite_error() else { return Unreadable::Failed(err.to_string()) };
        match code.code {
            ffi::ErrorCode::DatabaseBusy | ffi::ErrorCode::DatabaseLocked => Unreadable::Locked,
            ffi::ErrorCode::NotADatabase => Unreadable::NotADatabase,
            ffi::ErrorCode::DatabaseCorrupt => Unreadable::Corrupt(err.to_string()),
            ffi::ErrorCode::ReadOnly if code.extended_code == ffi::SQLITE_READONLY_ROLLBACK => {
                let mut journal = path.file_name().unwrap_or_default().to_os_string();
                journal.push("-journal");
                Unreadable::HotJournal { journal: journal.to_string_lossy().into_owned() }
            }
            _ => Unreadable::Failed(err.to_string()),
        }
    }
}

/// A stock database open for reading, inside one read transaction, so everything read from it
/// is one consistent snapshot even while a stock Scrapyd commits to it.
pub struct StockDb {
    conn: Connection,
    path: std::path::PathBuf,
    tables: Vec<String>,
}

impl StockDb {
    /// Opens `path` read-only and lists its tables.
    pub fn open(path: &Path) -> Result<StockDb, Unreadable> {
        if uses_write_ahead_log(path).map_err(|err| Unreadable::Failed(err.to_string()))? {
            return Err(Unreadable::WriteAheadLog);
        }
        let sqlite = |err: rusqlite::Error| Unreadable::from_sqlite(&err, path);
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(sqlite)?;
        conn.busy_timeout(BUSY_WAIT).map_err(sqlite)?;
        // Sorting happens in memory: nothing is written anywhere, not even a temporary file.
        conn.execute_batch("PRAGMA temp_store = MEMORY; BEGIN").map_err(sqlite)?;
        let tables = {
            let mut statement =
                conn.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").map_err(sqlite)?;
            let names = statement.query_map([], |row| row.get::<_, String>(0)).map_err(sqlite)?;
            names.collect::<Result<Vec<_>, _>>().map_err(sqlite)?
        };
        Ok(StockDb { conn, path: path.to_path_buf(), tables })
    }

    /// The database's tables, by name.
    pub fn tables(&self) -> &[String] {
        &self.tables
    }

    pub fn has_table(&self, name: &str) -> bool {
        self.tables.iter().any(|table| table == name)
    }

    /// The columns of `table`, in order.
    pub fn columns(&self, table: &str) -> Result<Vec<String>, Unreadable> {
        let sqlite = |err: rusqlite::Error| Unreadable::from_sqlite(&err, &self.path);
        let mut statement = self.conn.prepare("SELECT name FROM pragma_table_info(?1)").map_err(sqlite)?;
        let names = statement.query_map([table], |row| row.get::<_, String>(0)).map_err(sqlite)?;
        names.collect::<Result<Vec<_>, _>>().map_err(sqlite)
    }

    /// Checks that `table` has at least `wanted` columns.
    pub fn expect_columns(&self, table: &str, wanted: &[&str]) -> Result<(), Unreadable> {
        let columns = self.columns(table)?;
        if wanted.iter().all(|want| columns.iter().any(|column| column == want)) {
            Ok(())
        } else {
            Err(Unreadable::UnknownSchema(format!(
                "its {table} table has the columns ({}), not ({})",
                columns.join(", "),
                wanted.join(", ")
            )))
        }
    }

    /// Runs `sql` and maps every row through `each`; SQLite errors become [`Unreadable`].
    pub fn rows<T>(
        &self,
        sql: &str,
        mut each: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, Unreadable> {
        let sqlite = |err: rusqlite::Error| Unreadable::from_sqlite(&err, &self.path);
        let mut statement = self.conn.prepare(sql).map_err(sqlite)?;
        let mut rows = statement.query([]).map_err(sqlite)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(sqlite)? {
            out.push(each(row).map_err(sqlite)?);
        }
        Ok(out)
    }
}

/// Whether the file's header says write-ahead-log mode (bytes 18 and 19 are 2). Anything that is
/// not an SQLite header is left for SQLite to judge.
fn uses_write_ahead_log(path: &Path) -> std::io::Result<bool> {
    let mut header = [0u8; 20];
    let mut file = std::fs::File::open(path)?;
    let mut read = 0;
    while read < header.len() {
        match file.read(&mut header[read..])? {
            0 => return Ok(false),
            n => read += n,
        }
    }
    Ok(header.starts_with(b"SQLite format 3\0") && (header[18] == 2 || header[19] == 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_that_is_not_a_database_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        std::fs::write(&path, vec![b'x'; 4096]).unwrap();
        assert_eq!(StockDb::open(&path).err(), Some(Unreadable::NotADatabase));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing created beside it");
    }

    #[test]
    fn write_ahead_log_databases_are_refused_before_sqlite_opens_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wal.db");
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (x); INSERT INTO t VALUES (1);").unwrap();
        drop(conn);
        let before: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(StockDb::open(&path).err(), Some(Unreadable::WriteAheadLog));
        let after: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(before, after);
    }
}
