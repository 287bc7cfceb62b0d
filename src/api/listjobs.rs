//! `listjobs.json`: pending, running and finished jobs, of one project or all.
//!
//! The entries are copied out of the index (as `Arc`s) and written as JSON on a blocking thread,
//! straight from borrowed structs (finished ones, nearly all of a long history, as text with fixed
//! keys), so a history of 100,000 jobs neither holds the index's lock nor stalls other requests,
//! and costs no intermediate JSON values. Each entry has stock's keys in stock's order; extra keys
//! follow them (for finished jobs: how the job ended, then what the crawl did, from Scrapy's
//! stats).

use super::{Answer, ApiError, ApiResult, optional_text};
use crate::app::App;
use crate::http::params::Params;
use crate::json::{JsonText, PythonFormatter};
use crate::links::Links;
use crate::runtime::blocking;
use crate::spool::index::Snapshot;
use crate::spool::records::FinishedJob;
use indexmap::IndexMap;
use serde::Serialize;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = optional_text(params, "project")?;
    if let Some(project) = &project
        && !app.project_exists(project).await
    {
        return Err(ApiError::project_not_found(project));
    }
    app.catch_up();
    let (index, links) = (app.index.clone(), Links::new(&app.config));
    // The copy of 100,000 entries out of the index, their JSON and letting go of the copy each
    // take milliseconds: none of it on the async worker.
    let (lists, snapshot) = blocking(move || {
        let snapshot = index.snapshot(project.as_deref());
        (write_lists(&snapshot, links), snapshot)
    })
    .await;
    tokio::task::spawn_blocking(move || drop(snapshot));
    Ok(Answer::Raw(lists))
}

#[derive(Serialize)]
struct PendingEntry<'a> {
    id: &'a str,
    project: &'a str,
    spider: &'a str,
    version: Option<&'a str>,
    settings: &'a IndexMap<String, String>,
    args: &'a IndexMap<String, String>,
}

#[derive(Serialize)]
struct RunningEntry<'a> {
    id: &'a str,
    project: &'a str,
    spider: &'a str,
    pid: Option<u32>,
    start_time: &'a str,
    log_url: Option<String>,
    items_url: Option<String>,
    node_name: &'a str,
}

/// `{"pending": [...], "running": [...], "finished": [...]` (left open for the envelope), as
/// Python's `json.dumps` writes it.
fn write_lists(snapshot: &Snapshot, mut links: Links) -> Vec<u8> {
    // Room for the longest usual entries (a finished one with both links is about 350 bytes):
    // growing a buffer of tens of megabytes means copying it. Reserved pages never written cost
    // nothing.
    let entries = snapshot.pending.len() + snapshot.running.len() + snapshot.finished.len();
    let mut out = Vec::with_capacity(512 * entries);
    out.extend_from_slice(b"{\"pending\": ");
    write_list(
        &mut out,
        snapshot.pending.iter().map(|job| PendingEntry {
            id: &job.id,
            project: &job.project,
            spider: &job.spider,
            version: job.version.as_deref(),
            settings: &job.settings,
            args: &job.args,
        }),
    );
    out.extend_from_slice(b", \"running\": ");
    let running: Vec<RunningEntry<'_>> = snapshot
        .running
        .iter()
        .map(|record| {
            let job = &record.job;
            RunningEntry {
                id: &job.id,
                project: &job.project,
                spider: &job.spider,
                pid: record.pid,
                start_time: &record.start_time,
                log_url: links.log_url(&job.project, &job.spider, &job.id),
                items_url: links.items_url(&job.project, &job.spider, &job.id),
                node_name: &record.owner,
            }
        })
        .collect();
    write_list(&mut out, running.into_iter());
    out.extend_from_slice(b", \"finished\": [");
    for (position, job) in snapshot.finished.iter().enumerate() {
        if position > 0 {
            out.extend_from_slice(b", ");
        }
        write_finished(&mut out, job, &mut links);
    }
    out.push(b']');
    // The envelope's keys are appended on the async worker: with room left for them here, that
    // append never copies the whole answer.
    out.reserve(ENVELOPE_ROOM);
    out
}

/// Room for `, "status": "ok", "node_name": ...}` and a newline, with a long node name.
const ENVELOPE_ROOM: usize = 512;

/// A finished entry: stock's keys, then how the job ended, then what the crawl did.
fn write_finished(out: &mut Vec<u8>, job: &FinishedJob, links: &mut Links) {
    let summary = job.summary();
    JsonText(out)
        .raw("{\"id\": ")
        .str(&job.id)
        .raw(", \"project\": ")
        .str(&job.project)
        .raw(", \"spider\": ")
        .str(&job.spider)
        .raw(", \"start_time\": ")
        .str(&job.start_time)
        .raw(", \"end_time\": ")
        .str(&job.end_time)
        .raw(", \"log_url\": ")
        .value(&links.log_url(&job.project, &job.spider, &job.id))
        .raw(", \"items_url\": ")
        .value(&links.items_url(&job.project, &job.spider, &job.id))
        .raw(", \"outcome\": ")
        .value(&job.outcome)
        .raw(", \"exit_code\": ")
        .value(&job.exit_code)
        .raw(", \"signal\": ")
        .value(&job.signal)
        .raw(", \"node_name\": ")
        .str(&job.node)
        .raw(", \"items_scraped\": ")
        .value(&summary.map(|s| s.items_scraped))
        .raw(", \"pages_crawled\": ")
        .value(&summary.map(|s| s.pages_crawled))
        .raw(", \"errors\": ")
        .value(&summary.map(|s| s.errors))
        .raw(", \"finish_reason\": ")
        .value(&summary.and_then(|s| s.finish_reason))
        .raw("}");
}

fn write_list<T: Serialize>(out: &mut Vec<u8>, entries: impl Iterator<Item = T>) {
    use serde::Serializer as _;
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, PythonFormatter);
    // Writing plain data into memory cannot fail.
    (&mut serializer).collect_seq(entries).expect("JSON serialisation into memory");
}
