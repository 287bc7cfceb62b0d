//! Reading stock's finished-job history: the `finished_jobs` table of `dbs/jobs.db`, written
//! when `jobstorage = scrapyd.jobstorage.SqliteJobStorage` (Scrapyd 1.3 and later).
//!
//! Columns: `id integer PRIMARY KEY`, `project`, `spider`, `job`, `start_time`, `end_time`. The
//! times are naive local times as text. Stock 1.5 and later always write six fractional digits
//! (`2026-11-24 23:50:42.193878`); earlier versions used Python's default SQLite adapter, which
//! drops a zero fraction (`2026-11-24 23:50:42`). Both are read and given six digits, as every
//! time in scrapyd-rs has. There is no exit status, pid, version or argument to carry over.
//!
//! Rows come out oldest first (by `end_time`, then `id`), the order of the finished log.

use super::fingerprint::Fingerprint;
use super::stock_db::{StockDb, StockRow, Unreadable};
use rusqlite::types::Value;

/// The stock table of finished jobs.
pub const TABLE: &str = "finished_jobs";

/// The stock file that holds it.
pub const FILE: &str = "jobs.db";

/// One row of stock's finished-job table.
pub type FinishedRow = StockRow<StockFinished>;

/// A finished job as stock recorded it.
#[derive(Debug, Clone, PartialEq)]
pub struct StockFinished {
    pub project: String,
    pub spider: String,
    pub id: String,
    /// `YYYY-MM-DD HH:MM:SS.ffffff`.
    pub start_time: String,
    pub end_time: String,
}

/// Reads every row, oldest first.
pub fn read(db: &StockDb) -> Result<Vec<FinishedRow>, Unreadable> {
    db.expect_columns(TABLE, &["id", "project", "spider", "job", "start_time", "end_time"])?;
    let sql = "SELECT id, project, spider, job, start_time, end_time FROM finished_jobs ORDER BY end_time ASC, id ASC";
    db.rows(sql, |row| {
        let values: [Value; 5] = [row.get(1)?, row.get(2)?, row.get(3)?, row.get(4)?, row.get(5)?];
        Ok(decode(row.get(0)?, values))
    })
}

/// Turns one row (`project, spider, job, start_time, end_time`) into a finished job.
pub fn decode(rowid: i64, values: [Value; 5]) -> FinishedRow {
    let mut fingerprint = Fingerprint::new(TABLE.as_bytes());
    fingerprint.add_i64(rowid);
    for value in &values {
        fingerprint.add_value(value);
    }
    FinishedRow { rowid, fingerprint: fingerprint.finish(), job: decode_job(values) }
}

fn decode_job([project, spider, job, start, end]: [Value; 5]) -> Result<StockFinished, String> {
    let text = |name: &str, value: Value| match value {
        Value::Text(text) if !text.is_empty() => Ok(text),
        Value::Blob(bytes) => String::from_utf8(bytes).map_err(|_| format!("its {name} is not UTF-8 text")),
        other => Err(format!("its {name} is {other:?}, not text")),
    };
    let project = text("project", project)?;
    let spider = text("spider", spider)?;
    let id = text("job", job)?;
    let start_time = time(&text("start_time", start)?).ok_or("its start_time is not a date and time")?;
    let end_time = time(&text("end_time", end)?).ok_or("its end_time is not a date and time")?;
    Ok(StockFinished { project, spider, id, start_time, end_time })
}

/// A stock time, with or without its fraction, written with six fractional digits.
fn time(text: &str) -> Option<String> {
    let parsed = chrono::NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S%.f").ok()?;
    Some(parsed.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(start: &str, end: &str) -> FinishedRow {
        let text = |s: &str| Value::Text(s.into());
        decode(1, [text("p"), text("s"), text("j"), text(start), text(end)])
    }

    #[test]
    fn times_with_and_without_a_fraction_get_six_digits() {
        let job = row("2024-01-01 10:00:00", "2024-01-01 10:00:01.5").job.unwrap();
        assert_eq!(job.start_time, "2024-01-01 10:00:00.000000");
        assert_eq!(job.end_time, "2024-01-01 10:00:01.500000");
        let job = row("2026-11-24 23:50:42.193878", "2026-11-24 23:50:43.000001").job.unwrap();
        assert_eq!(
            (job.start_time.as_str(), job.end_time.as_str()),
            ("2026-11-24 23:50:42.193878", "2026-11-24 23:50:43.000001")
        );
    }

    #[test]
    fn rows_that_are_not_finished_jobs_say_why() {
        assert!(row("yesterday", "2024-01-01 10:00:00").job.unwrap_err().contains("start_time"));
        let null_job = decode(
            2,
            [Value::Text("p".into()), Value::Text("s".into()), Value::Null, Value::Text("x".into()), Value::Null],
        );
        assert!(null_job.job.unwrap_err().contains("job"));
    }
}
