//! `schedule.json`: validates a crawl request as stock does.

use super::{ApiError, ApiResult, fields, optional_text, required_text};
use crate::app::App;
use crate::config::py_float;
use crate::http::params::{Params, Value, python_bytes_repr};
use crate::spool::check_job_id;
use crate::spool::index::{EnqueueError, JobIndex};
use crate::spool::records::{PendingJob, now_ns};
use indexmap::IndexMap;
use serde_json::json;

/// A validated `schedule.json` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleRequest {
    pub project: String,
    pub spider: String,
    /// `_version` as given (even blank), or `None` when absent.
    pub version: Option<String>,
    pub jobid: String,
    pub priority: f64,
    /// Scrapy settings, name to value, in request order; a later duplicate name wins.
    pub settings: IndexMap<String, String>,
    /// Spider arguments in request order (first value of each).
    pub args: IndexMap<String, String>,
}

pub async fn handle(app: &App, params: &mut Params) -> ApiResult {
    let submitted = Submitted::take(params)?;
    let (project, version) = (submitted.project.clone(), submitted.version.clone());
    let (index, node) = (app.index.clone(), app.node_name().to_string());
    // The spider check, the remaining checks and the durable write: one step in place on the
    // async worker when the spider list is cached (see `crate::runtime`).
    let jobid = app
        .with_spiders(&project, version.as_deref(), move |spiders| -> Result<String, ApiError> {
            let request = submitted.validate(&spiders)?;
            enqueue(&index, request, node)
        })
        .await??;
    app.supervisor.job_added();
    let mut out = fields();
    out.insert("jobid".into(), json!(jobid));
    Ok(out.into())
}

/// Writes the job to the spool, durably (in place on the async worker; see `crate::runtime`);
/// returns its id.
fn enqueue(index: &JobIndex, request: ScheduleRequest, node: String) -> Result<String, ApiError> {
    // Stock accepts any job id and then loses the job when it builds the log path; we refuse a
    // job id that cannot name files, after all of stock's own checks.
    check_job_id(&request.jobid).map_err(|reason| ApiError::invalid("jobid", reason))?;
    let job = PendingJob {
        id: request.jobid,
        project: request.project,
        spider: request.spider,
        version: request.version,
        settings: request.settings,
        args: request.args,
        priority: request.priority,
        enqueued_ns: now_ns(),
        node,
    };
    let jobid = job.id.clone();
    index.enqueue(job).map_err(|err| match err {
        EnqueueError::Duplicate { .. } => ApiError::invalid("jobid", err),
        EnqueueError::Io(err) => ApiError::from(err),
    })?;
    Ok(jobid)
}

/// The parameters as taken from the request, checked as far as stock checks them before it looks
/// at the project's spiders.
struct Submitted {
    project: String,
    spider: String,
    version: Option<String>,
    jobid: String,
    priority: f64,
    raw_settings: Vec<String>,
    /// Every other parameter (spider arguments), not yet decoded.
    rest: Vec<(Vec<u8>, Value)>,
}

impl Submitted {
    /// Reads the parameters in stock's order.
    fn take(params: &mut Params) -> Result<Submitted, ApiError> {
        let project = required_text(params, "project")?;
        let spider = required_text(params, "spider")?;
        let version = optional_text(params, "_version")?;
        let jobid = optional_text(params, "jobid")?.unwrap_or_else(new_job_id);
        let priority = match params.take_first("priority") {
            None => 0.0,
            Some(value) => {
                let raw = super::small_bytes("priority", value)?;
                std::str::from_utf8(&raw).ok().and_then(py_float).ok_or_else(|| priority_invalid(&raw))?
            }
        };
        let raw_settings = match params.take_all("setting") {
            None => Vec::new(),
            Some(values) => {
                values.into_iter().map(|value| super::decode("setting", value)).collect::<Result<_, _>>()?
            }
        };
        let rest = params.drain_first();
        Ok(Submitted { project, spider, version, jobid, priority, raw_settings, rest })
    }

    /// The checks stock makes once it knows the project's spiders, in its order.
    fn validate(self, spiders: &[String]) -> Result<ScheduleRequest, ApiError> {
        let Submitted { project, spider, version, jobid, priority, raw_settings, rest } = self;
        if !spiders.contains(&spider) {
            return Err(ApiError::message(format!("spider '{spider}' not found")));
        }
        if spider.contains(['/', '\\', '\0']) || spider == ".." {
            // A spider name is a directory of the logs; stock would lose the job at launch.
            return Err(ApiError::exception("DirectoryTraversalError", format!("{project}/{spider}/{jobid}.log")));
        }

        let mut args = IndexMap::new();
        for (name, value) in rest {
            args.insert(decode_arg(name)?, decode_arg_value(value)?);
        }
        let mut settings = IndexMap::new();
        for (position, setting) in raw_settings.into_iter().enumerate() {
            let Some((name, value)) = setting.split_once('=') else {
                return Err(ApiError::exception(
                    "ValueError",
                    format!("dictionary update sequence element #{position} has length 1; 2 is required"),
                ));
            };
            settings.insert(name.to_string(), value.to_string());
        }
        for reserved in ["settings", "_job"] {
            if args.contains_key(reserved) {
                return Err(ApiError::exception(
                    "TypeError",
                    format!(
                        "scrapyd.scheduler.SpiderScheduler.schedule() got multiple values for keyword argument \
                         '{reserved}'"
                    ),
                ));
            }
        }
        if args.contains_key("name") {
            return Err(ApiError::exception(
                "TypeError",
                "SqliteSpiderQueue.add() got multiple values for argument 'name'",
            ));
        }
        Ok(ScheduleRequest { project, spider, version, jobid, priority, settings, args })
    }
}

/// A spider argument's name or value, decoded without stock's friendly wrapper.
fn decode_arg(bytes: Vec<u8>) -> Result<String, ApiError> {
    String::from_utf8(bytes).map_err(|err| {
        ApiError::exception(
            "UnicodeDecodeError",
            crate::http::params::python_utf8_error(err.as_bytes(), err.utf8_error()),
        )
    })
}

fn decode_arg_value(value: Value) -> Result<String, ApiError> {
    decode_arg(super::small_bytes("argument", value)?)
}

/// A new job id: a time-based UUID as 32 lowercase hex digits, like stock's `uuid1().hex`.
pub fn new_job_id() -> String {
    uuid::Uuid::now_v1(&node_id()).simple().to_string()
}

/// A random node id for UUIDv1, chosen once per process (multicast bit set, as RFC 4122 asks
/// for ids that are not MAC addresses).
fn node_id() -> [u8; 6] {
    static NODE: std::sync::OnceLock<[u8; 6]> = std::sync::OnceLock::new();
    *NODE.get_or_init(|| {
        let random = uuid::Uuid::new_v4();
        let mut node = [0u8; 6];
        node.copy_from_slice(&random.as_bytes()[..6]);
        node[0] |= 0x01;
        node
    })
}

/// The text stock reports for a priority that is not a float.
pub fn priority_invalid(raw: &[u8]) -> ApiError {
    ApiError::invalid("priority", format!("could not convert string to float: {}", python_bytes_repr(raw)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_ids_are_32_hex_digits_and_unique() {
        let a = new_job_id();
        let b = new_job_id();
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }
}
