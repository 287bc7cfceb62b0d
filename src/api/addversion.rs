//! `addversion.json`: stores an egg after checking that Scrapy can list its spiders.
//!
//! Unlike stock, a broken egg stores nothing: the egg is staged in a temporary file, `scrapy list`
//! runs against it there, and only an egg that lists is renamed into `eggs/<project>/`. The
//! previous latest version therefore stays the latest when a deploy fails.

use super::{ApiError, ApiResult, fields, required_text};
use crate::app::App;
use crate::eggs::spiders::EggIdentity;
use crate::eggs::{check_project_name, looks_like_zip};
use crate::http::params::{Params, Value};
use crate::runtime::blocking;
use serde_json::json;
use std::io::Write;
use std::path::Path;
use tempfile::TempPath;

const NOT_A_ZIP: &str = "egg is not a ZIP file (if using curl, use egg=@path not egg=path)";

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let project = required_text(params, "project")?;
    let version = required_text(params, "version")?;
    let egg = params.take_first("egg").ok_or_else(|| ApiError::required("egg"))?;

    let upload_dir = app.upload_dir.clone();
    let (staged, is_zip) = blocking(move || -> std::io::Result<(TempPath, bool)> {
        let staged = stage(egg, &upload_dir)?;
        let is_zip = looks_like_zip(std::fs::File::open(&staged)?)?;
        Ok((staged, is_zip))
    })
    .await?;
    if !is_zip {
        return Err(ApiError::message(NOT_A_ZIP));
    }
    check_project_name(&project)?;

    let spiders = app.runner.list_spiders(&project, Some(&staged), Some(&version)).await?;

    let (eggs, cache) = (app.eggs.clone(), app.spiders.clone());
    let (name, requested, listed) = (project.clone(), version.clone(), spiders.clone());
    blocking(move || {
        let stored = eggs.put(&name, &requested, &staged)?;
        // The file now lives under its final name; the temporary path must not delete it.
        let _ = staged.keep();
        let identity = EggIdentity::of(&stored.path)?;
        if let Err(err) = cache.put(&name, &stored.version, identity, &listed) {
            tracing::warn!(project = name, version = requested, "could not cache the spider list: {err}");
        }
        Ok::<_, crate::eggs::EggError>(())
    })
    .await?;
    tracing::info!(project, version, spiders = spiders.len(), "added a version");

    let mut out = fields();
    out.insert("project".into(), json!(project));
    out.insert("version".into(), json!(version));
    out.insert("spiders".into(), json!(spiders.len()));
    Ok(out.into())
}

/// Puts the uploaded egg in a file of its own in `upload_dir`: a value already spilled to disk is
/// used as it is, a small one is written out.
fn stage(egg: Value, upload_dir: &Path) -> std::io::Result<TempPath> {
    match egg {
        Value::Spooled(spooled) => Ok(spooled.file.into_temp_path()),
        Value::Inline(bytes) => {
            std::fs::create_dir_all(upload_dir)?;
            let mut file = tempfile::Builder::new().prefix(".upload-").tempfile_in(upload_dir)?;
            file.write_all(&bytes)?;
            Ok(file.into_temp_path())
        }
    }
}
