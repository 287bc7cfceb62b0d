//! `delversion.json`: removes one version; the project goes with its last version.

use super::{ApiResult, fields, required_text};
use crate::app::App;
use crate::eggs::version::sanitize;
use crate::http::params::Params;
use crate::runtime::blocking;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let version = required_text(params, "version")?;
    let (eggs, cache) = (app.eggs.clone(), app.spiders.clone());
    blocking(move || {
        eggs.delete_version(&project, &version)?;
        if eggs.has_project(&project) {
            cache.remove_version(&project, &sanitize(&version));
        } else {
            cache.remove_project(&project);
        }
        Ok::<_, crate::eggs::EggError>(())
    })
    .await?;
    Ok(fields().into())
}
