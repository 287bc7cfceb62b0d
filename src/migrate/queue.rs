//! Reading a stock spider queue: the `spider_queue` table of `dbs/<project>.db`.
//!
//! Every Scrapyd from 1.0 to 1.6 writes it the same way: `id integer PRIMARY KEY`, `priority`
//! (REAL affinity) and `message`, the pending job as a JSON object
//! (`{"settings": {...}, "_job": "<id>", "<arg>": "<value>", "_version": "<v>", "name": "<spider>"}`,
//! ASCII with `\uXXXX` escapes). 1.4 and later bind it as a BLOB; 1.0 to 1.3 on Python 2 bound a
//! `str`, which SQLite stores as TEXT; both are read. A queue written by a custom class with
//! pickle (stock shipped `PickleSqlitePriorityQueue` until 1.2 but never used it) is recognised
//! and reported, not guessed at.
//!
//! Rows come out in stock's pop order: highest priority first, then lowest `id` (stock has no
//! explicit tie-break, and SQLite returns equal priorities in rowid order), NULL (a NaN
//! priority) last.

use super::fingerprint::Fingerprint;
use super::python_text;
use super::stock_db::{StockDb, StockRow, Unreadable};
use indexmap::IndexMap;
use rusqlite::types::Value;

/// The stock table of a project's pending jobs.
pub const TABLE: &str = "spider_queue";

/// One row of a stock queue: its fingerprint covers rowid, priority and message.
pub type QueueRow = StockRow<StockJob>;

/// A pending job as stock stored it.
#[derive(Debug, Clone, PartialEq)]
pub struct StockJob {
    pub id: String,
    pub spider: String,
    /// `_version`, when the message has one (even blank).
    pub version: Option<String>,
    pub settings: IndexMap<String, String>,
    /// Every other key of the message, in its order: the spider arguments.
    pub args: IndexMap<String, String>,
    pub priority: f64,
}

/// Reads every row of the queue in pop order.
pub fn read(db: &StockDb) -> Result<Vec<QueueRow>, Unreadable> {
    db.expect_columns(TABLE, &["id", "priority", "message"])?;
    db.rows("SELECT id, priority, message FROM spider_queue ORDER BY priority DESC, id ASC", |row| {
        Ok(decode(row.get(0)?, row.get(1)?, row.get(2)?))
    })
}

/// Turns one row into a job, or says why it is not one.
pub fn decode(rowid: i64, priority: Value, message: Value) -> QueueRow {
    let mut fingerprint = Fingerprint::new(b"spider_queue");
    fingerprint.add_i64(rowid).add_value(&priority).add_value(&message);
    QueueRow { rowid, fingerprint: fingerprint.finish(), job: decode_job(priority, message) }
}

fn decode_job(priority: Value, message: Value) -> Result<StockJob, String> {
    let priority = match priority {
        Value::Real(value) => value,
        Value::Integer(value) => value as f64,
        // Stock stores a NaN priority as NULL; it sorts last, as NaN does here.
        Value::Null => f64::NAN,
        Value::Text(text) => text.trim().parse().map_err(|_| format!("the priority {text:?} is not a number"))?,
        Value::Blob(_) => return Err("the priority is a blob, not a number".into()),
    };
    let bytes = match message {
        Value::Blob(bytes) => bytes,
        Value::Text(text) => text.into_bytes(),
        Value::Null => return Err("the message is empty (NULL)".into()),
        Value::Integer(_) | Value::Real(_) => return Err("the message is a number, not a job".into()),
    };
    if bytes.first() == Some(&0x80) {
        return Err("the message is pickled (a custom pickle queue), not JSON; it cannot be read safely".into());
    }
    let message: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|err| format!("the message is not JSON ({err})"))?;
    let serde_json::Value::Object(mut message) = message else {
        return Err("the message is not a JSON object".into());
    };
    let text_field =
        |message: &mut serde_json::Map<String, serde_json::Value>, key: &str| match message.shift_remove(key) {
            Some(serde_json::Value::String(text)) => Ok(text),
            Some(other) => Err(format!("its {key:?} is not text: {other}")),
            None => Err(format!("the message has no {key:?}")),
        };
    let spider = text_field(&mut message, "name")?;
    let id = text_field(&mut message, "_job")?;
    crate::spool::check_job_id(&id).map_err(|reason| format!("job {id:?} cannot be stored: {reason}"))?;
    let version = message.shift_remove("_version").map(|value| python_text(&value));
    let settings = match message.shift_remove("settings") {
        None | Some(serde_json::Value::Null) => IndexMap::new(),
        Some(serde_json::Value::Object(settings)) => {
            settings.iter().map(|(name, value)| (name.clone(), python_text(value))).collect()
        }
        Some(other) => return Err(format!("job {id:?}: its settings are not a dictionary: {other}")),
    };
    let args = message.iter().map(|(name, value)| (name.clone(), python_text(value))).collect();
    Ok(StockJob { id, spider, version, settings, args, priority })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(message: &str) -> Result<StockJob, String> {
        decode(1, Value::Real(0.0), Value::Blob(message.as_bytes().to_vec())).job
    }

    #[test]
    fn a_stock_message_becomes_a_job_with_its_arguments_in_order() {
        let message = r#"{"settings": {"DOWNLOAD_DELAY": "2"}, "_job": "job-a", "arg1": "val1", "b": "caf\u00e9", "_version": "r1", "name": "spider2"}"#;
        let job = job(message).unwrap();
        assert_eq!((job.id.as_str(), job.spider.as_str(), job.version.as_deref()), ("job-a", "spider2", Some("r1")));
        assert_eq!(job.settings, IndexMap::from([("DOWNLOAD_DELAY".to_string(), "2".to_string())]));
        assert_eq!(
            job.args.iter().collect::<Vec<_>>(),
            [(&"arg1".into(), &"val1".into()), (&"b".into(), &"café".into())]
        );
    }

    #[test]
    fn text_messages_of_old_versions_and_null_priorities_are_read() {
        let row = decode(3, Value::Null, Value::Text(r#"{"name": "s", "_job": "j", "settings": {}}"#.into()));
        let job = row.job.unwrap();
        assert!(job.priority.is_nan());
        assert!(job.version.is_none() && job.args.is_empty());
    }

    #[test]
    fn rows_that_are_not_jobs_say_why() {
        let cases = [
            ("{\"name\": \"s\"", "not JSON"),
            ("[1, 2]", "not a JSON object"),
            ("{\"_job\": \"j\"}", "no \"name\""),
            ("{\"name\": \"s\"}", "no \"_job\""),
            ("{\"name\": \"s\", \"_job\": \"../x\"}", "cannot be stored"),
            ("{\"name\": 5, \"_job\": \"j\"}", "not text"),
            ("{\"name\": \"s\", \"_job\": \"j\", \"settings\": [1]}", "not a dictionary"),
        ];
        for (message, reason) in cases {
            let err = job(message).unwrap_err();
            assert!(err.contains(reason), "{message}: {err}");
        }
        let pickled = decode(1, Value::Real(0.0), Value::Blob(vec![0x80, 2, b'}', b'q']));
        assert!(pickled.job.unwrap_err().contains("pickled"));
        let text_priority = decode(1, Value::Text("high".into()), Value::Blob(b"{}".to_vec()));
        assert!(text_priority.job.unwrap_err().contains("priority"));
    }

    #[test]
    fn the_fingerprint_names_the_exact_row() {
        let message = || Value::Blob(br#"{"name": "s", "_job": "j"}"#.to_vec());
        let a = decode(1, Value::Real(0.0), message()).fingerprint;
        assert_eq!(a, decode(1, Value::Real(0.0), message()).fingerprint);
        assert_ne!(a, decode(2, Value::Real(0.0), message()).fingerprint);
        assert_ne!(a, decode(1, Value::Real(1.0), message()).fingerprint);
        assert_ne!(a, decode(1, Value::Real(0.0), Value::Blob(br#"{"name": "t", "_job": "j"}"#.to_vec())).fingerprint);
    }
}
