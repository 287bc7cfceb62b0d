//! `cancel.json`: cancels a pending or running job.

use super::{ApiError, ApiResult, fields, optional_text, required_text};
use crate::app::App;
use crate::http::params::Params;
use serde_json::Value;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let _job = required_text(params, "job")?;
    let _signal = optional_text(params, "signal")?;
    if !app.project_exists(&project).await {
        return Err(ApiError::project_not_found(&project));
    }
    // No job has been accepted yet: the spool and the supervisor come with the jobs issue.
    let mut out = fields();
    out.insert("prevstate".into(), Value::Null);
    Ok(out)
}
