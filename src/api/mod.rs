//! The eleven JSON endpoints, one module each.
//!
//! A handler takes the parsed parameters, consumes the ones it declares in stock's order (so the
//! first missing or invalid one is the one reported), reads state or records intent, and returns
//! its own keys; [`crate::http`] wraps them in the envelope with `status` and `node_name`.
//! Handlers never spawn or wait on crawl processes.

mod addversion;
mod cancel;
mod daemonstatus;
mod delproject;
mod delversion;
mod listjobs;
mod listprojects;
mod listspiders;
mod listversions;
mod schedule;
mod status;

use crate::app::App;
use crate::eggs::EggError;
use crate::http::params::{Params, Value, python_utf8_error};
use crate::runner::RunnerError;
use serde_json::{Map, Value as Json};

/// A handler's own keys, in order.
pub type Fields = Map<String, Json>;

/// What a successful handler answers, before `status` and `node_name` are added.
#[derive(Debug)]
pub enum Answer {
    /// Keys and values, serialised by the envelope.
    Fields(Fields),
    /// An object opened and its keys already written as JSON text (`{"a": 1, "b": []`), for
    /// answers too large to build as values first (`listjobs` with a long history); the
    /// envelope's keys are appended to it in place, and it is closed.
    Raw(Vec<u8>),
    /// Stock's keys, then (after the envelope's `status` and `node_name`) keys of our own, so
    /// every stock key keeps its place.
    Extended(Fields, Fields),
}

impl From<Fields> for Answer {
    fn from(fields: Fields) -> Self {
        Answer::Fields(fields)
    }
}

/// The result of a handler.
pub type ApiResult = Result<Answer, ApiError>;

/// An error answered in Scrapyd's envelope: `{"status": "error", "message": ..., "node_name": ...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    message: String,
    /// Stock raises deliberate errors as `twisted.web.error.Error`; other exceptions keep their
    /// class name in the message. Only debug mode's traceback text tells them apart.
    deliberate: bool,
}

impl ApiError {
    /// A deliberate error, sent with no prefix (`project 'p' not found`).
    pub fn message(message: impl Into<String>) -> Self {
        ApiError { message: message.into(), deliberate: true }
    }

    /// Any other failure, sent as `<ClassName>: <text>` as stock renders exceptions.
    pub fn exception(class: &str, text: impl std::fmt::Display) -> Self {
        ApiError { message: format!("{class}: {text}"), deliberate: false }
    }

    /// `'<name>' parameter is required`.
    pub fn required(name: &str) -> Self {
        Self::message(format!("'{name}' parameter is required"))
    }

    /// `<name> is invalid: <detail>`.
    pub fn invalid(name: &str, detail: impl std::fmt::Display) -> Self {
        Self::message(format!("{name} is invalid: {detail}"))
    }

    pub fn project_not_found(project: &str) -> Self {
        Self::message(format!("project '{project}' not found"))
    }

    pub fn version_not_found(version: &str) -> Self {
        Self::message(format!("version '{version}' not found"))
    }

    /// The message text of the envelope.
    pub fn text(&self) -> &str {
        &self.message
    }

    /// The traceback-like text stock's debug mode answers with instead of the envelope.
    pub fn traceback(&self, endpoint: &str) -> String {
        let last_line = if self.deliberate {
            format!("twisted.web.error.Error: 200 {}", self.message)
        } else {
            // Python names exceptions that are not builtins with their module.
            let class = self.message.split(':').next().unwrap_or_default();
            let module = match class {
                "DirectoryTraversalError" | "RunnerError" => "scrapyd.exceptions.",
                "UnsupportedMethod" => "twisted.web.error.",
                _ => "",
            };
            format!("{module}{}", self.message)
        };
        format!("Traceback (most recent call last):\n  File \"scrapyd-rs\", in {endpoint}\n{last_line}\n")
    }
}

impl From<EggError> for ApiError {
    fn from(error: EggError) -> Self {
        match error {
            EggError::ProjectNotFound(project) => Self::project_not_found(&project),
            EggError::VersionNotFound(version) => Self::version_not_found(&version),
            other => ApiError { message: other.to_string(), deliberate: false },
        }
    }
}

impl From<RunnerError> for ApiError {
    fn from(error: RunnerError) -> Self {
        ApiError { message: error.to_string(), deliberate: false }
    }
}

impl From<std::io::Error> for ApiError {
    fn from(error: std::io::Error) -> Self {
        Self::exception("OSError", error)
    }
}

/// The bytes of a parameter that is not an egg. A value large enough to have been spilled to
/// disk (over 256 KiB) is refused rather than read back into memory.
fn small_bytes(name: &str, value: Value) -> Result<Vec<u8>, ApiError> {
    match value {
        Value::Inline(bytes) => Ok(bytes),
        Value::Spooled(spooled) => Err(ApiError::invalid(
            name,
            format!("the value is {} bytes long; parameters other than egg are limited to 256 KiB", spooled.len),
        )),
    }
}

/// Decodes a parameter value as strict UTF-8, reporting failures as stock does.
fn decode(name: &str, value: Value) -> Result<String, ApiError> {
    let bytes = small_bytes(name, value)?;
    String::from_utf8(bytes).map_err(|err| {
        let detail = python_utf8_error(err.as_bytes(), err.utf8_error());
        ApiError::invalid(name, detail)
    })
}

/// An optional text parameter: its first value, decoded.
pub(crate) fn optional_text(params: &mut Params, name: &str) -> Result<Option<String>, ApiError> {
    params.take_first(name).map(|value| decode(name, value)).transpose()
}

/// A required text parameter.
pub(crate) fn required_text(params: &mut Params, name: &str) -> Result<String, ApiError> {
    optional_text(params, name)?.ok_or_else(|| ApiError::required(name))
}

/// Starts a handler's answer.
pub(crate) fn fields() -> Fields {
    Map::new()
}

/// Whether an endpoint answers GET or POST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
}

/// One of stock's eleven webservice classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Schedule,
    Cancel,
    Status,
    AddVersion,
    ListProjects,
    ListVersions,
    ListSpiders,
    DeleteProject,
    DeleteVersion,
    ListJobs,
    DaemonStatus,
}

impl Endpoint {
    /// Every endpoint. (Their default paths are stock's `[services]` section, in the config.)
    pub const ALL: [Endpoint; 11] = [
        Endpoint::Schedule,
        Endpoint::Cancel,
        Endpoint::Status,
        Endpoint::AddVersion,
        Endpoint::ListProjects,
        Endpoint::ListVersions,
        Endpoint::ListSpiders,
        Endpoint::DeleteProject,
        Endpoint::DeleteVersion,
        Endpoint::ListJobs,
        Endpoint::DaemonStatus,
    ];

    /// The Python class name, as stock's error texts spell it.
    pub fn class_name(self) -> &'static str {
        match self {
            Endpoint::Schedule => "Schedule",
            Endpoint::Cancel => "Cancel",
            Endpoint::Status => "Status",
            Endpoint::AddVersion => "AddVersion",
            Endpoint::ListProjects => "ListProjects",
            Endpoint::ListVersions => "ListVersions",
            Endpoint::ListSpiders => "ListSpiders",
            Endpoint::DeleteProject => "DeleteProject",
            Endpoint::DeleteVersion => "DeleteVersion",
            Endpoint::ListJobs => "ListJobs",
            Endpoint::DaemonStatus => "DaemonStatus",
        }
    }

    /// The endpoint a `[services]` class path names (`scrapyd.webservice.Schedule`), if any.
    pub fn from_class_path(class_path: &str) -> Option<Endpoint> {
        let class = class_path.strip_prefix("scrapyd.webservice.")?;
        Self::ALL.into_iter().find(|endpoint| endpoint.class_name() == class)
    }

    /// The method the endpoint answers.
    pub fn method(self) -> Method {
        match self {
            Endpoint::Schedule
            | Endpoint::Cancel
            | Endpoint::AddVersion
            | Endpoint::DeleteProject
            | Endpoint::DeleteVersion => Method::Post,
            _ => Method::Get,
        }
    }

    /// Runs the endpoint's handler.
    pub async fn handle(self, app: &App, params: &mut Params) -> ApiResult {
        match self {
            Endpoint::Schedule => schedule::handle(app, params).await,
            Endpoint::Cancel => cancel::handle(app, params).await,
            Endpoint::Status => status::handle(app, params).await,
            Endpoint::AddVersion => addversion::handle(app, params).await,
            Endpoint::ListProjects => listprojects::handle(app, params).await,
            Endpoint::ListVersions => listversions::handle(app, params).await,
            Endpoint::ListSpiders => listspiders::handle(app, params).await,
            Endpoint::DeleteProject => delproject::handle(app, params).await,
            Endpoint::DeleteVersion => delversion::handle(app, params).await,
            Endpoint::ListJobs => listjobs::handle(app, params).await,
            Endpoint::DaemonStatus => daemonstatus::handle(app, params).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_stock_service_is_an_endpoint_with_its_method() {
        for (path, class) in crate::config::STOCK_SERVICES {
            let endpoint = Endpoint::from_class_path(class).unwrap_or_else(|| panic!("{class}"));
            let posted = ["schedule.json", "cancel.json", "addversion.json", "delproject.json", "delversion.json"];
            let expected = if posted.contains(&path) { Method::Post } else { Method::Get };
            assert_eq!(endpoint.method(), expected, "{path}");
        }
        assert_eq!(Endpoint::from_class_path("scrapyd.webservice.Nope"), None);
        assert_eq!(Endpoint::from_class_path("my.module.Schedule"), None);
    }
}
