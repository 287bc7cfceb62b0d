//! `delversion.json`: removes one version; the project goes with its last version.

use super::{ApiResult, fields, required_text};
use crate::app::{App, blocking};
use crate::eggs::version::sanitize;
use crate::http::params::Params;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let version = required_text(params, "version")?;
    let eggs = app.eggs.clone();
    let (name, requested) = (project.clone(), version.clone());
    let project_left =
        blocking(move || eggs.delete_version(&name, &requested).map(|()| eggs.has_project(&name))).await?;
    if project_left {
        app.spiders.remove_version(&project, &sanitize(&version));
    } else {
        app.spiders.remove_project(&project);
    }
    Ok(fields().into())
}
