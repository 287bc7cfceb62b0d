//! `delproject.json`: removes a project with all its versions.

use super::{ApiResult, fields, required_text};
use crate::app::App;
use crate::http::params::Params;
use crate::runtime::blocking;

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let (eggs, cache) = (app.eggs.clone(), app.spiders.clone());
    blocking(move || {
        eggs.delete_project(&project)?;
        cache.remove_project(&project);
        Ok::<_, crate::eggs::EggError>(())
    })
    .await?;
    Ok(fields().into())
}
