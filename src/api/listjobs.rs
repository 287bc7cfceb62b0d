//! `listjobs.json`: pending, running and finished jobs, of one project or all.
//!
//! The entries are copied out of the index (as `Arc`s) and written as JSON on a blocking thread,
//! straight from borrowed structs, so a history of 100,000 jobs neither holds the index's lock nor
//! stalls other requests, and costs no intermediate JSON values. Each entry has stock's keys in
//! stock's order; extra keys follow them (for finished jobs: how the job ended, then what the
//! crawl did, from Scrapy's stats).

use super::{Answer, ApiError, ApiResult, optional_text};
use crate::app::{App, blocking};
use crate::http::params::Params;
use crate::json::PythonFormatter;
use crate::links::Links;
use crate::spool::index::Snapshot;
use crate::spool::records::Outcome;
use indexmap::IndexMap;
use serde::Serialize;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = optional_text(params, "project")?;
    if let Some(project) = &project
        && !app.project_exists(project).await
    {
        return Err(ApiError::project_not_found(project));
    }
    app.catch_up().await;
    let snapshot = app.index.snapshot(project.as_deref());
    let links = Links::new(&app.config);
    Ok(Answer::Raw(blocking(move || write_lists(&snapshot, links)).await))
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

#[derive(Serialize)]
struct FinishedEntry<'a> {
    id: &'a str,
    project: &'a str,
    spider: &'a str,
    start_time: &'a str,
    end_time: &'a str,
    log_url: Option<String>,
    items_url: Option<String>,
    outcome: Outcome,
    exit_code: Option<i32>,
    signal: Option<i32>,
    node_name: &'a str,
    items_scraped: Option<u64>,
    pages_crawled: Option<u64>,
    errors: Option<u64>,
    finish_reason: Option<&'a str>,
}

/// `"pending": [...], "running": [...], "finished": [...]`, as Python's `json.dumps` writes it.
fn write_lists(snapshot: &Snapshot, mut links: Links) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 * (snapshot.pending.len() + snapshot.running.len() + snapshot.finished.len()));
    out.extend_from_slice(b"\"pending\": ");
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
    out.extend_from_slice(b", \"finished\": ");
    let finished: Vec<FinishedEntry<'_>> = snapshot
        .finished
        .iter()
        .map(|job| {
            let summary = job.summary();
            FinishedEntry {
                id: &job.id,
                project: &job.project,
                spider: &job.spider,
                start_time: &job.start_time,
                end_time: &job.end_time,
                log_url: links.log_url(&job.project, &job.spider, &job.id),
                items_url: links.items_url(&job.project, &job.spider, &job.id),
                outcome: job.outcome,
                exit_code: job.exit_code,
                signal: job.signal,
                node_name: &job.node,
                items_scraped: summary.map(|s| s.items_scraped),
                pages_crawled: summary.map(|s| s.pages_crawled),
                errors: summary.map(|s| s.errors),
                finish_reason: summary.and_then(|s| s.finish_reason),
            }
        })
        .collect();
    write_list(&mut out, finished.into_iter());
    out
}

fn write_list<T: Serialize>(out: &mut Vec<u8>, entries: impl Iterator<Item = T>) {
    use serde::Serializer as _;
    let mut serializer = serde_json::Serializer::with_formatter(&mut *out, PythonFormatter);
    // Writing plain data into memory cannot fail.
    (&mut serializer).collect_seq(entries).expect("JSON serialisation into memory");
}
