//! `listspiders.json`: the spiders of a project's latest (or given) version, from the on-disk
//! spider-list cache.

use super::{ApiResult, fields, optional_text, required_text};
use crate::app::App;
use crate::http::params::Params;
use serde_json::json;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let version = optional_text(params, "_version")?;
    let spiders = app.project_spiders(&project, version.as_deref()).await?;
    let mut out = fields();
    out.insert("spiders".into(), json!(spiders));
    Ok(out.into())
}
