//! `status.json`: the state of one job (`pending`, `running`, `finished` or `null`).

use super::{ApiError, ApiResult, fields, optional_text, required_text};
use crate::app::App;
use crate::http::params::Params;
use serde_json::json;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let job = required_text(params, "job")?;
    let project = optional_text(params, "project")?;
    if let Some(project) = &project
        && !app.project_exists(project).await
    {
        return Err(ApiError::project_not_found(project));
    }
    let state = app.index.state_of(project.as_deref(), &job);
    let mut out = fields();
    out.insert("currstate".into(), json!(state.map(|s| s.as_str())));
    Ok(out.into())
}
