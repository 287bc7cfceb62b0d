//! `daemonstatus.json`: pending, running and finished job counts, from the in-memory index once
//! it has caught up with the other instances sharing the spool.

use super::{ApiResult, fields};
use crate::app::App;
use crate::http::params::Params;
use serde_json::json;

pub async fn handle(app: &App, _params: &mut Params) -> ApiResult {
    app.catch_up();
    let (pending, running, finished) = app.index.counts();
    let mut out = fields();
    out.insert("pending".into(), json!(pending));
    out.insert("running".into(), json!(running));
    out.insert("finished".into(), json!(finished));
    Ok(out.into())
}
