//! The Python side of every job: our runner module, and how the daemon invokes it.
//!
//! Stock Scrapyd runs `python -m scrapyd.runner`, which activates the egg through
//! `pkg_resources` (and so pins old setuptools). Ours, `scrapyd_rs_runner`, is shipped inside the
//! binary and written out at start into a directory named after its content hash, so instances
//! of different versions sharing a data directory never overwrite each other's runner. It puts
//! the egg on `sys.path` and reads the settings module from `EGG-INFO/entry_points.txt`.
//!
//! A `runner` option other than stock's default `scrapyd.runner` is honoured: that module is run
//! with `python -m <runner>` instead, with the same arguments and environment.

use crate::fsutil;
use std::ffi::OsString;
use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use tokio::process::Command;

/// The runner's source, embedded at build time.
pub const RUNNER_SOURCE: &str = include_str!("scrapyd_rs_runner.py");

/// The module name of our runner.
pub const RUNNER_MODULE: &str = "scrapyd_rs_runner";

/// Stock's default `runner` value, which means "our runner".
pub const STOCK_RUNNER: &str = "scrapyd.runner";

/// How to start the runner: the interpreter, the module, and where our module lives.
#[derive(Debug, Clone)]
pub struct Runner {
    python: String,
    module: String,
    /// The directory holding our runner module; `None` when a custom `runner` module is used.
    module_dir: Option<PathBuf>,
    /// The working directory of every Python process: the daemon's base directory, as in stock.
    cwd: PathBuf,
}

/// A failed `scrapy list`: stock reports it as `RunnerError: <stderr, or stdout if empty>`.
#[derive(Debug, thiserror::Error)]
#[error("RunnerError: {0}")]
pub struct RunnerError(pub String);

impl Runner {
    /// Writes our runner module under `runner_root` (unless `runner` names another module) and
    /// returns how to invoke it.
    pub fn install(python: &str, runner: &str, runner_root: &Path, cwd: &Path) -> io::Result<Runner> {
        let module_dir = if runner == STOCK_RUNNER || runner == RUNNER_MODULE {
            Some(write_runner_module(runner_root)?)
        } else {
            None
        };
        let module = if module_dir.is_some() { RUNNER_MODULE } else { runner };
        Ok(Runner { python: python.to_string(), module: module.to_string(), module_dir, cwd: cwd.to_path_buf() })
    }

    /// The interpreter that runs the runner.
    pub fn python(&self) -> &str {
        &self.python
    }

    /// A command running `<python> -m <runner> <args>` with the runner's environment for
    /// `project`, the egg to activate, and (as stock) `SCRAPYD_EGG_VERSION` when a version was
    /// requested.
    pub fn command(&self, project: &str, egg: Option<&Path>, version: Option<&str>) -> Command {
        let mut command = Command::new(&self.python);
        command.arg("-m").arg(&self.module).current_dir(&self.cwd).env("SCRAPY_PROJECT", project);
        if let Some(dir) = &self.module_dir {
            command.env("PYTHONPATH", prepend_path(dir, std::env::var_os("PYTHONPATH")));
            command.env("SCRAPYD_RS_RUNNER_DIR", dir);
        }
        if let Some(egg) = egg {
            command.env("SCRAPYD_RS_EGG", egg);
        }
        if let Some(version) = version {
            command.env("SCRAPYD_EGG_VERSION", version);
        }
        command
    }

    /// Runs `scrapy list` for an egg and returns the spider names, as stock's `get_spider_list`
    /// does: stdout split into lines on success, stderr (or stdout) as the error otherwise.
    ///
    /// This awaits the child without blocking the runtime, so the server keeps answering; if the
    /// request is dropped the child is killed.
    /// Without an egg (a `[settings]` project), Scrapy finds the project through `scrapy.cfg`.
    pub async fn list_spiders(
        &self,
        project: &str,
        egg: Option<&Path>,
        version: Option<&str>,
    ) -> Result<Vec<String>, RunnerError> {
        let mut command = self.command(project, egg, version.filter(|v| !v.is_empty()));
        command
            .args(["list", "-s", "LOG_STDOUT=0"])
            .env("PYTHONIOENCODING", "UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let output = command
            .output()
            .await
            .map_err(|err| RunnerError(format!("could not start the Python interpreter `{}`: {err}", self.python)))?;
        if output.status.success() {
            Ok(python_splitlines(&String::from_utf8_lossy(&output.stdout)))
        } else {
            let text = if output.stderr.is_empty() { &output.stdout } else { &output.stderr };
            Err(RunnerError(String::from_utf8_lossy(text).into_owned()))
        }
    }
}

/// Writes the runner into `<runner_root>/<content hash>/`, once per content.
fn write_runner_module(runner_root: &Path) -> io::Result<PathBuf> {
    let dir = runner_root.join(format!("{:016x}", fnv1a(RUNNER_SOURCE.as_bytes())));
    let file = dir.join(format!("{RUNNER_MODULE}.py"));
    let up_to_date = std::fs::read(&file).is_ok_and(|bytes| bytes == RUNNER_SOURCE.as_bytes());
    if !up_to_date {
        fsutil::create_dir_all_durable(&dir)?;
        fsutil::write_atomic(&file, RUNNER_SOURCE.as_bytes())?;
    }
    Ok(dir)
}

/// A stable 64-bit FNV-1a hash: enough to name a directory after a file's content.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3))
}

fn prepend_path(dir: &Path, existing: Option<OsString>) -> OsString {
    let mut value = OsString::from(dir);
    if let Some(existing) = existing.filter(|e| !e.is_empty()) {
        value.push(":");
        value.push(existing);
    }
    value
}

/// Python's `str.splitlines()`: splits on every Unicode line boundary and drops a final empty
/// line, so a project that prints at import time gets the same spider count as in stock.
pub fn python_splitlines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let boundary = rest.char_indices().find(|&(_, ch)| {
            matches!(ch, '\n' | '\r' | '\x0b' | '\x0c' | '\x1c' | '\x1d' | '\x1e' | '\u{85}' | '\u{2028}' | '\u{2029}')
        });
        match boundary {
            None => {
                lines.push(rest.to_string());
                break;
            }
            Some((index, ch)) => {
                lines.push(rest[..index].to_string());
                let skip = if rest[index..].starts_with("\r\n") { 2 } else { ch.len_utf8() };
                rest = &rest[index + skip..];
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitlines_matches_python() {
        assert_eq!(python_splitlines("a\nb\r\nc\rd\x0be\u{2028}f\n"), ["a", "b", "c", "d", "e", "f"]);
        assert_eq!(python_splitlines(""), Vec::<String>::new());
        assert_eq!(python_splitlines("\n\n"), ["", ""]);
        assert_eq!(python_splitlines("x"), ["x"]);
    }

    #[test]
    fn the_runner_is_written_once_per_content() {
        let spool = tempfile::tempdir().unwrap();
        let first = write_runner_module(spool.path()).unwrap();
        let second = write_runner_module(spool.path()).unwrap();
        assert_eq!(first, second);
        let written = std::fs::read_to_string(first.join("scrapyd_rs_runner.py")).unwrap();
        assert_eq!(written, RUNNER_SOURCE);
    }
}
