//! `cancel.json`: removes a pending job, or signals a running one.
//!
//! As in stock, the pending removal happens first and stands even when the signal then turns out
//! to be invalid; the signal is only checked when a running job matches. A second cancel of a
//! running job (or `cancel_grace` after the first) kills its whole process group.

use super::{ApiError, ApiResult, fields, optional_text, required_text};
use crate::app::App;
use crate::http::params::Params;
use crate::runtime::blocking;
use crate::supervisor::process::parse_signal;
use serde_json::json;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let job = required_text(params, "job")?;
    let signal = optional_text(params, "signal")?.unwrap_or_else(|| "INT".into());
    if !app.project_exists(&project).await {
        return Err(ApiError::project_not_found(&project));
    }
    let mut prevstate = None;
    let index = app.index.clone();
    let (p, j) = (project.clone(), job.clone());
    if blocking(move || index.cancel_pending(&p, &j)).await? {
        prevstate = Some("pending");
    }
    if app.index.running(&project, &job).is_some() {
        let signal = parse_signal(&signal).map_err(|(class, text)| ApiError::exception(class, text))?;
        // The request goes to the spool, where the supervising instance (this one or another
        // sharing the directory) finds it; it also survives a restart of that instance.
        let index = app.index.clone();
        let (p, j) = (project.clone(), job.clone());
        if blocking(move || index.request_cancel(&p, &j, signal)).await? {
            app.supervisor.cancel_requested();
            prevstate = Some("running");
        }
    }
    let mut out = fields();
    out.insert("prevstate".into(), json!(prevstate));
    Ok(out.into())
}
