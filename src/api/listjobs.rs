//! `listjobs.json`: pending, running and finished jobs, of one project or all.
//!
//! The entries are copied out of the index and serialised on a blocking thread, so a history of
//! 100,000 jobs neither holds the index's lock nor stalls other requests while it is written.
//! Each entry has stock's keys in stock's order; extra keys follow them.

use super::{ApiError, ApiResult, fields, optional_text};
use crate::app::{App, blocking};
use crate::http::params::Params;
use crate::links::Links;
use crate::spool::index::Snapshot;
use serde_json::{Map, Value, json};
use std::sync::Arc;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = optional_text(params, "project")?;
    if let Some(project) = &project
        && !app.project_exists(project).await
    {
        return Err(ApiError::project_not_found(project));
    }
    let snapshot = app.index.snapshot(project.as_deref());
    let links = Links::new(&app.config);
    let (pending, running, finished) = blocking(move || entries(snapshot, links)).await;
    let mut out = fields();
    out.insert("pending".into(), Value::Array(pending));
    out.insert("running".into(), Value::Array(running));
    out.insert("finished".into(), Value::Array(finished));
    Ok(out)
}

fn entries(snapshot: Snapshot, mut links: Links) -> (Vec<Value>, Vec<Value>, Vec<Value>) {
    let pending = snapshot
        .pending
        .iter()
        .map(|job| {
            object([
                ("id", json!(job.id)),
                ("project", json!(job.project)),
                ("spider", json!(job.spider)),
                ("version", json!(job.version)),
                ("settings", json!(job.settings)),
                ("args", json!(job.args)),
            ])
        })
        .collect();
    let running = snapshot
        .running
        .iter()
        .map(|record| {
            let job = &record.job;
            object([
                ("id", json!(job.id)),
                ("project", json!(job.project)),
                ("spider", json!(job.spider)),
                ("pid", json!(record.pid)),
                ("start_time", json!(record.start_time)),
                ("log_url", json!(links.log_url(&job.project, &job.spider, &job.id))),
                ("items_url", json!(links.items_url(&job.project, &job.spider, &job.id))),
                ("node_name", json!(record.owner)),
            ])
        })
        .collect();
    let finished = snapshot.finished.iter().map(Arc::as_ref).map(|job| {
        object([
            ("id", json!(job.id)),
            ("project", json!(job.project)),
            ("spider", json!(job.spider)),
            ("start_time", json!(job.start_time)),
            ("end_time", json!(job.end_time)),
            ("log_url", json!(links.log_url(&job.project, &job.spider, &job.id))),
            ("items_url", json!(links.items_url(&job.project, &job.spider, &job.id))),
            ("outcome", json!(job.outcome)),
            ("exit_code", json!(job.exit_code)),
            ("signal", json!(job.signal)),
            ("node_name", json!(job.node)),
        ])
    });
    (pending, running, finished.collect())
}

fn object<const N: usize>(pairs: [(&str, Value); N]) -> Value {
    let mut map = Map::with_capacity(N);
    for (key, value) in pairs {
        map.insert(key.to_string(), value);
    }
    Value::Object(map)
}
