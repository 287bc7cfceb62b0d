//! `status.json`: the state of one job (`pending`, `running`, `finished` or `null`).
//!
//! A finished job also answers, after stock's keys, how it ended and what the crawl did
//! (the same extra keys as its `listjobs.json` entry).

use super::{Answer, ApiError, ApiResult, Fields, fields, optional_text, required_text};
use crate::app::App;
use crate::http::params::Params;
use crate::spool::index::JobState;
use crate::spool::records::FinishedJob;
use serde_json::json;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let job = required_text(params, "job")?;
    let project = optional_text(params, "project")?;
    if let Some(project) = &project
        && !app.project_exists(project).await
    {
        return Err(ApiError::project_not_found(project));
    }
    app.catch_up();
    let state = app.index.state_of(project.as_deref(), &job);
    let mut out = fields();
    out.insert("currstate".into(), json!(state.map(|s| s.as_str())));
    if state == Some(JobState::Finished)
        && let Some(record) = app.index.finished(project.as_deref(), &job)
    {
        return Ok(Answer::Extended(out, end_of(&record)));
    }
    Ok(out.into())
}

/// `outcome`, `exit_code`, `signal`, then the crawl's `items_scraped`, `pages_crawled`, `errors`
/// and `finish_reason` (all `null` when the runner recorded no stats).
fn end_of(job: &FinishedJob) -> Fields {
    let summary = job.summary();
    let mut out = fields();
    out.insert("outcome".into(), json!(job.outcome));
    out.insert("exit_code".into(), json!(job.exit_code));
    out.insert("signal".into(), json!(job.signal));
    out.insert("items_scraped".into(), json!(summary.map(|s| s.items_scraped)));
    out.insert("pages_crawled".into(), json!(summary.map(|s| s.pages_crawled)));
    out.insert("errors".into(), json!(summary.map(|s| s.errors)));
    out.insert("finish_reason".into(), json!(summary.and_then(|s| s.finish_reason)));
    out
}
