//! `delproject.json`: removes a project with all its versions.

use super::{ApiResult, fields, required_text};
use crate::app::{App, blocking};
use crate::http::params::Params;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let eggs = app.eggs.clone();
    let name = project.clone();
    blocking(move || eggs.delete_project(&name)).await?;
    app.spiders.remove_project(&project);
    Ok(fields().into())
}
