//! `daemonstatus.json`: the job counts of this node.

use super::{ApiResult, fields};
use crate::app::App;
use crate::http::params::Params;
use serde_json::json;

pub async fn handle(_app: &App, _params: &mut Params) -> ApiResult {
    // No job has been accepted yet: the spool and the supervisor come with the jobs issue.
    let mut out = fields();
    out.insert("pending".into(), json!(0));
    out.insert("running".into(), json!(0));
    out.insert("finished".into(), json!(0));
    Ok(out)
}
