//! `listjobs.json`: pending, running and finished jobs, of one project or all.

use super::{ApiError, ApiResult, fields, optional_text};
use crate::app::App;
use crate::http::params::Params;
use serde_json::json;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    if let Some(project) = optional_text(params, "project")?
        && !app.project_exists(&project).await
    {
        return Err(ApiError::project_not_found(&project));
    }
    // No job has been accepted yet: the spool and the supervisor come with the jobs issue.
    let mut out = fields();
    out.insert("pending".into(), json!([]));
    out.insert("running".into(), json!([]));
    out.insert("finished".into(), json!([]));
    Ok(out)
}
