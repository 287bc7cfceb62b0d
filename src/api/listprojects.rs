//! `listprojects.json`: egg projects in directory order, then `[settings]` projects.

use super::{ApiResult, fields};
use crate::app::App;
use crate::http::params::Params;
use serde_json::json;

pub async fn handle(app: &App, _params: &mut Params) -> ApiResult {
    let mut out = fields();
    out.insert("projects".into(), json!(app.projects().await?));
    Ok(out.into())
}
