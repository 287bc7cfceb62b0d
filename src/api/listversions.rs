//! `listversions.json`: the stored (sanitized) versions of a project, oldest first.

use super::{ApiResult, fields, required_text};
use crate::app::App;
use crate::http::params::Params;
use crate::runtime::blocking;
use serde_json::json;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let eggs = app.eggs.clone();
    let versions = blocking(move || eggs.versions(&project)).await?;
    let mut out = fields();
    out.insert("versions".into(), json!(versions));
    Ok(out.into())
}
