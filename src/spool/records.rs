//! What the spool stores about a job at each stage, and how pending jobs are ordered.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// A job waiting for a slot: everything `schedule.json` accepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingJob {
    pub id: String,
    pub project: String,
    pub spider: String,
    /// `_version` as given (even blank), or `None` when absent.
    pub version: Option<String>,
    /// Scrapy settings, in request order.
    pub settings: IndexMap<String, String>,
    /// Spider arguments, in request order.
    pub args: IndexMap<String, String>,
    /// Stock parses `priority` as a float; NaN sorts last. JSON has no infinities or NaN, so
    /// those are stored as the strings `"inf"`, `"-inf"` and `"nan"`.
    #[serde(with = "any_float")]
    pub priority: f64,
    /// When it was scheduled, in nanoseconds since the Unix epoch: the tie-break after priority.
    pub enqueued_ns: u64,
    /// Who accepted it (`node_name`).
    pub node: String,
}

impl PendingJob {
    /// The dispatch order key: higher priority first, then older first.
    pub fn order(&self) -> PendingOrder {
        PendingOrder {
            priority: OrderedPriority(self.priority),
            enqueued_ns: self.enqueued_ns,
            project: self.project.clone(),
            id: self.id.clone(),
        }
    }
}

/// Orders pending jobs as they are dispatched: by priority (highest first, NaN last), then by age
/// (oldest first), then by project and id so the order is total.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PendingOrder {
    pub priority: OrderedPriority,
    pub enqueued_ns: u64,
    pub project: String,
    pub id: String,
}

/// A priority that sorts highest first, with NaN after every number.
#[derive(Debug, Clone, Copy)]
pub struct OrderedPriority(pub f64);

impl Ord for OrderedPriority {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.0.is_nan(), other.0.is_nan()) {
            (true, true) => Ordering::Equal,
            (true, false) => Ordering::Greater,
            (false, true) => Ordering::Less,
            (false, false) => other.0.total_cmp(&self.0),
        }
    }
}

impl PartialOrd for OrderedPriority {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for OrderedPriority {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for OrderedPriority {}

/// A claimed job: the pending record plus what its process is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunningJob {
    #[serde(flatten)]
    pub job: PendingJob,
    /// The node that claimed it and supervises its process. Empty in the moment between the
    /// claim (which moves the pending record into `running/` as it is) and the first write.
    #[serde(default)]
    pub owner: String,
    /// Local start time as the API shows it (`YYYY-MM-DD HH:MM:SS.ffffff`).
    #[serde(default)]
    pub start_time: String,
    /// `None` between the claim and the spawn.
    pub pid: Option<u32>,
    /// The process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so a
    /// reused pid is never mistaken for the crawl.
    pub pid_start_ticks: Option<u64>,
    /// How many cancel requests (`<job>.cancel` lines) the supervising instance has acted on,
    /// so an instance that re-adopts the crawl acts on exactly the ones nobody did.
    #[serde(default)]
    pub cancels_acted_on: usize,
}

/// How a job ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The crawl exited with status 0.
    Finished,
    /// The crawl exited with a non-zero status or died from a signal nobody asked for.
    Failed,
    /// The crawl ended after `cancel.json`.
    Cancelled,
    /// The crawl's process could not be started.
    FailedToStart,
    /// The daemon lost track of the crawl (it stopped while the crawl started, or the crawl ended
    /// while no daemon watched it and left no exit status).
    Lost,
}

/// A job that ended: stock's fields plus how it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinishedJob {
    pub id: String,
    pub project: String,
    pub spider: String,
    pub version: Option<String>,
    pub start_time: String,
    pub end_time: String,
    pub outcome: Outcome,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// Why the job failed to start or was lost, for people reading `listjobs`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The node that ran it.
    pub node: String,
    pub pid: Option<u32>,
    /// Scrapy's stats at spider close, as the runner recorded them. They are written whole, but
    /// read back with only the stats [`FinishedJob::summary`] reads ([`SUMMARY_STATS`]), so a
    /// long history costs neither the time nor the memory of all of them.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "summary_stats::deserialize")]
    pub stats: Option<serde_json::Value>,
}

/// The few of Scrapy's stats that answers show, read from a finished job's recorded stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrawlSummary<'a> {
    /// `item_scraped_count` (absent from Scrapy's stats when no item was scraped: 0).
    pub items_scraped: u64,
    /// `response_received_count`: pages downloaded, what LogParser calls `pages`.
    pub pages_crawled: u64,
    /// `log_count/ERROR`: how many errors the crawl logged.
    pub errors: u64,
    /// `finish_reason` (`finished`, `shutdown`, `closespider_timeout`, ...), if Scrapy set one.
    pub finish_reason: Option<&'a str>,
}

/// The stats keys [`CrawlSummary`] reads, which are all the index keeps in memory.
pub const SUMMARY_STATS: [&str; 4] =
    ["item_scraped_count", "response_received_count", "log_count/ERROR", "finish_reason"];

impl FinishedJob {
    /// What the crawl did, if the runner recorded its stats (a crawl that never started, or
    /// whose process was killed outright, has none).
    pub fn summary(&self) -> Option<CrawlSummary<'_>> {
        let stats = self.stats.as_ref()?.as_object()?;
        let count = |key: &str| stats.get(key).and_then(serde_json::Value::as_u64).unwrap_or(0);
        Some(CrawlSummary {
            items_scraped: count(SUMMARY_STATS[0]),
            pages_crawled: count(SUMMARY_STATS[1]),
            errors: count(SUMMARY_STATS[2]),
            finish_reason: stats.get(SUMMARY_STATS[3]).and_then(serde_json::Value::as_str),
        })
    }
}

/// Reads recorded stats keeping only [`SUMMARY_STATS`]; the others are skipped unparsed.
mod summary_stats {
    use super::SUMMARY_STATS;
    use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
    use serde_json::{Map, Value};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
        deserializer.deserialize_option(OptionalStats)
    }

    struct OptionalStats;

    impl<'de> Visitor<'de> for OptionalStats {
        type Value = Option<Value>;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("Scrapy's stats (an object) or null")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
            deserializer.deserialize_map(Stats).map(Some)
        }
    }

    struct Stats;

    impl<'de> Visitor<'de> for Stats {
        type Value = Value;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("Scrapy's stats, an object")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
            let mut kept = Map::new();
            while let Some(key) = map.next_key::<String>()? {
                if SUMMARY_STATS.contains(&key.as_str()) {
                    kept.insert(key, map.next_value()?);
                } else {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(Value::Object(kept))
        }
    }
}

/// A float that may be infinite or NaN, which JSON cannot write as a number.
mod any_float {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(value: &f64, serializer: S) -> Result<S::Ok, S::Error> {
        match *value {
            v if v.is_finite() => serializer.serialize_f64(v),
            v if v.is_nan() => serializer.serialize_str("nan"),
            v if v > 0.0 => serializer.serialize_str("inf"),
            _ => serializer.serialize_str("-inf"),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Number(f64),
            Text(String),
        }
        match Stored::deserialize(deserializer)? {
            Stored::Number(number) => Ok(number),
            Stored::Text(text) => text.parse().map_err(serde::de::Error::custom),
        }
    }
}

/// Local time as the API shows it: `YYYY-MM-DD HH:MM:SS.ffffff`, always with microseconds (stock
/// drops the fraction when it is zero, which breaks clients that parse it with `%f`).
pub fn local_time(time: chrono::DateTime<chrono::Local>) -> String {
    time.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
}

/// A duration as Python's `str(timedelta)` writes whole seconds: `0:00:07`, `1 day, 2:03:04`.
pub fn python_timedelta(duration: chrono::TimeDelta) -> String {
    let total = duration.num_seconds().max(0);
    let (days, rest) = (total / 86_400, total % 86_400);
    let clock = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => clock,
        1 => format!("1 day, {clock}"),
        n => format!("{n} days, {clock}"),
    }
}

/// Nanoseconds since the Unix epoch (a `u64` lasts until 2554).
pub fn now_ns() -> u64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
impl FinishedJob {
    /// A job of spider `s` in project `p` that finished with exit code 0, for unit tests.
    pub fn for_tests(id: &str, start_time: &str, end_time: &str) -> FinishedJob {
        FinishedJob {
            id: id.into(),
            project: "p".into(),
            spider: "s".into(),
            version: None,
            start_time: start_time.into(),
            end_time: end_time.into(),
            outcome: Outcome::Finished,
            exit_code: Some(0),
            signal: None,
            reason: None,
            node: "n".into(),
            pid: Some(1),
            stats: None,
        }
    }
}

#[cfg(test)]
impl PendingJob {
    /// A job of spider `s` in project `p`, for unit tests.
    pub fn for_tests(id: &str, priority: f64, enqueued_ns: u64) -> PendingJob {
        PendingJob {
            id: id.into(),
            project: "p".into(),
            spider: "s".into(),
            version: None,
            settings: IndexMap::new(),
            args: IndexMap::new(),
            priority,
            enqueued_ns,
            node: "n".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(priority: f64, enqueued_ns: u64, id: &str) -> PendingJob {
        PendingJob::for_tests(id, priority, enqueued_ns)
    }

    #[test]
    fn pending_jobs_sort_by_priority_then_age() {
        let mut jobs = [
            job(0.0, 3, "c"),
            job(f64::NAN, 0, "nan"),
            job(5.0, 9, "high"),
            job(0.0, 1, "a"),
            job(-1.0, 0, "low"),
            job(f64::INFINITY, 10, "inf"),
        ];
        jobs.sort_by_key(PendingJob::order);
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.as_str()).collect();
        assert_eq!(ids, ["inf", "high", "a", "c", "low", "nan"]);
    }

    #[test]
    fn infinite_and_nan_priorities_survive_a_round_trip() {
        for priority in [f64::INFINITY, f64::NEG_INFINITY, 2.5, -0.0] {
            let job = PendingJob::for_tests("j", priority, 1);
            let back: PendingJob = serde_json::from_slice(&serde_json::to_vec(&job).unwrap()).unwrap();
            assert_eq!(back.priority.to_bits(), priority.to_bits());
            let running = RunningJob {
                job,
                owner: "n".into(),
                start_time: String::new(),
                pid: None,
                pid_start_ticks: None,
                cancels_acted_on: 0,
            };
            let back: RunningJob = serde_json::from_slice(&serde_json::to_vec(&running).unwrap()).unwrap();
            assert_eq!(back.job.priority.to_bits(), priority.to_bits(), "through the flattened running record");
        }
        let nan = PendingJob::for_tests("n", f64::NAN, 1);
        let back: PendingJob = serde_json::from_slice(&serde_json::to_vec(&nan).unwrap()).unwrap();
        assert!(back.priority.is_nan());
    }

    #[test]
    fn timedeltas_read_like_python() {
        assert_eq!(python_timedelta(chrono::TimeDelta::seconds(7)), "0:00:07");
        assert_eq!(python_timedelta(chrono::TimeDelta::milliseconds(1500)), "0:00:01");
        assert_eq!(python_timedelta(chrono::TimeDelta::seconds(86_400 + 3784)), "1 day, 1:03:04");
        assert_eq!(python_timedelta(chrono::TimeDelta::seconds(2 * 86_400)), "2 days, 0:00:00");
    }

    #[test]
    fn recorded_stats_are_read_back_as_their_summary() {
        let line = r#"{"id": "j", "project": "p", "spider": "s", "version": null, "start_time": "a", "end_time": "b",
            "outcome": "finished", "exit_code": 0, "signal": null, "node": "n", "pid": 1,
            "stats": {"item_scraped_count": 5, "memusage/max": 1, "nested": {"x": [1, 2]}, "finish_reason": "finished",
                      "response_received_count": 7}}"#;
        let job: FinishedJob = serde_json::from_str(line).unwrap();
        assert_eq!(job.stats.as_ref().unwrap().as_object().unwrap().len(), 3);
        let summary = job.summary().unwrap();
        assert_eq!((summary.items_scraped, summary.pages_crawled, summary.errors), (5, 7, 0));
        assert_eq!(summary.finish_reason, Some("finished"));
        for no_stats in
            [line.replace(r#""stats": {"#, r#""old": {"#), line.replace(r#""stats": {"#, r#""stats": null, "x": {"#)]
        {
            let job: FinishedJob = serde_json::from_str(&no_stats).unwrap();
            assert_eq!((&job.stats, job.summary()), (&None, None));
        }
    }

    #[test]
    fn times_always_carry_microseconds() {
        use chrono::TimeZone;
        let time = chrono::Local.with_ymd_and_hms(2026, 11, 24, 10, 14, 3).unwrap();
        assert_eq!(local_time(time), "2026-11-24 10:14:03.000000");
    }
}
