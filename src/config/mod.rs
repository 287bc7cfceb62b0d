//! Scrapyd's configuration: the stock file search order, the `SCRAPYD_*`
//! environment overrides and typed options with stock defaults.
//!
//! Stock Scrapyd 1.6 builds one Python `ConfigParser`, reads its packaged
//! `default_scrapyd.conf`, then every configuration file it can find (see
//! [`Sources::candidates`]), each overriding the previous one option by
//! option, and reads options lazily with `get`/`getint`/`getfloat`/
//! `getboolean`. We read everything once at start-up into [`Config`], so a
//! bad value is reported immediately with the file and line that set it
//! (stock fails with a bare Python traceback, sometimes only later).
//!
//! The INI dialect itself lives in [`ini`].

pub mod ini;

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use ini::{Ini, IniError, Location};

/// Our copy of stock's `default_scrapyd.conf`, plus scrapyd-rs's options.
const DEFAULT_CONF: &str = include_str!("default_scrapyd.conf");

/// The pseudo file name the embedded defaults are reported under.
pub const DEFAULT_CONF_NAME: &str = "<built-in default_scrapyd.conf>";

/// The section stock Scrapyd reads its options from.
const SECTION: &str = "scrapyd";

/// Stock's `[services]` defaults, in `default_scrapyd.conf` order.
pub const STOCK_SERVICES: [(&str, &str); 11] = [
    ("schedule.json", "scrapyd.webservice.Schedule"),
    ("cancel.json", "scrapyd.webservice.Cancel"),
    ("status.json", "scrapyd.webservice.Status"),
    ("addversion.json", "scrapyd.webservice.AddVersion"),
    ("listprojects.json", "scrapyd.webservice.ListProjects"),
    ("listversions.json", "scrapyd.webservice.ListVersions"),
    ("listspiders.json", "scrapyd.webservice.ListSpiders"),
    ("delproject.json", "scrapyd.webservice.DeleteProject"),
    ("delversion.json", "scrapyd.webservice.DeleteVersion"),
    ("listjobs.json", "scrapyd.webservice.ListJobs"),
    ("daemonstatus.json", "scrapyd.webservice.DaemonStatus"),
];

/// Options whose values are Python class paths: `(option, stock default,
/// the component scrapyd-rs uses instead)`. We cannot load Python classes,
/// so anything but the default is reported in [`Config::warnings`].
const CLASS_PATH_OPTIONS: [(&str, &str, &str); 6] = [
    ("application", "scrapyd.app.application", "application"),
    ("spiderqueue", "scrapyd.spiderqueue.SqliteSpiderQueue", "job spool"),
    ("poller", "scrapyd.poller.QueuePoller", "dispatcher"),
    ("launcher", "scrapyd.launcher.Launcher", "launcher"),
    ("webroot", "scrapyd.website.Root", "web root"),
    ("eggstorage", "scrapyd.eggstorage.FilesystemEggStorage", "egg storage"),
];

const MEMORY_JOB_STORAGE: &str = "scrapyd.jobstorage.MemoryJobStorage";
const SQLITE_JOB_STORAGE: &str = "scrapyd.jobstorage.SqliteJobStorage";

/// Where an effective option value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A configuration file (or the built-in defaults) at a line.
    File(Location),
    /// An environment variable (`SCRAPYD_HTTP_PORT`, ...).
    Env(String),
    /// Not set anywhere; the hard-coded fallback applied.
    Fallback,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(location) => location.fmt(f),
            Origin::Env(name) => write!(f, "environment variable {name}"),
            Origin::Fallback => f.write_str("built-in fallback"),
        }
    }
}

/// Errors that stop the daemon from starting.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read or parsed, or a value could not be
    /// interpolated.
    #[error(transparent)]
    Ini(#[from] IniError),
    /// A file named on the command line (`--config FILE`) is missing.
    #[error("{}: configuration file does not exist or is not a file", path.display())]
    MissingFile { path: PathBuf },
    /// [`Sources::cwd`] is not an absolute path, typically because the
    /// process's working directory could not be determined (it was deleted).
    #[error(
        "cannot determine the working directory (got {:?}); start scrapyd-rs from an existing directory",
        cwd.display().to_string()
    )]
    UnknownCwd { cwd: PathBuf },
    /// Stock's `InvalidUsernameError`: HTTP Basic credentials cannot carry a
    /// `:` in the user name.
    #[error(
        "{origin}: The `username` option contains illegal character ':'. Check and update the Scrapyd configuration file."
    )]
    IllegalUsername { origin: Origin },
    /// An option's value does not have the required type or range.
    #[error("{origin}: option `{option}` has an invalid value {value:?}: expected {expected}")]
    InvalidValue { option: &'static str, value: String, expected: &'static str, origin: Origin },
}

/// The inputs of configuration loading, separated from the process so that
/// tests can point every location at a temporary directory.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// Stock's `/etc/scrapyd`; `None` skips `scrapyd.conf` and `conf.d/` there.
    pub etc_dir: Option<PathBuf>,
    /// The working directory: searched for `scrapyd.conf` and `scrapy.cfg`,
    /// and the base every relative `*_dir` is resolved against.
    pub cwd: PathBuf,
    /// The home directory, for `~/.scrapyd.conf`.
    pub home: Option<PathBuf>,
    /// Files given on the command line, read last; each must exist.
    pub extra_files: Vec<PathBuf>,
    /// The environment, for the `SCRAPYD_*` overrides and `HOSTNAME`.
    pub env: Vec<(String, String)>,
}

impl Sources {
    /// The real process's sources: `/etc/scrapyd`, the current directory,
    /// `$HOME` and the environment (variables that are not valid Unicode are
    /// left out; none of the ones we read can usefully be). If the current
    /// directory cannot be determined, `cwd` is left empty and [`load`]
    /// reports it.
    pub fn from_process(extra_files: Vec<PathBuf>) -> Sources {
        let cwd = std::env::current_dir().unwrap_or_default();
        let home = std::env::var_os("HOME").filter(|h| !h.is_empty()).map(PathBuf::from);
        let env =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        Sources { etc_dir: Some(PathBuf::from("/etc/scrapyd")), cwd, home, extra_files, env }
    }

    /// Every file stock Scrapyd would try, in its order (missing ones are
    /// skipped when reading):
    /// `<etc>/scrapyd.conf`, `c:\scrapyd\scrapyd.conf` (on Unix Python opens
    /// that literally, i.e. a file of that odd name in the working
    /// directory), `<etc>/conf.d/*` sorted (hidden names excluded, as
    /// `glob` does), `./scrapyd.conf`, `~/.scrapyd.conf`, the closest
    /// `scrapy.cfg`, then the extra files.
    pub fn candidates(&self) -> Vec<PathBuf> {
        let mut files = Vec::new();
        if let Some(etc) = &self.etc_dir {
            files.push(etc.join("scrapyd.conf"));
        }
        files.push(self.cwd.join(r"c:\scrapyd\scrapyd.conf"));
        if let Some(etc) = &self.etc_dir {
            files.extend(conf_d_files(&etc.join("conf.d")));
        }
        files.push(self.cwd.join("scrapyd.conf"));
        if let Some(home) = &self.home {
            files.push(home.join(".scrapyd.conf"));
        }
        files.extend(closest_scrapy_cfg(&self.cwd));
        files.extend(self.extra_files.iter().cloned());
        files
    }

    /// The last non-empty value of an environment variable.
    fn var(&self, name: &str) -> Option<&str> {
        self.env.iter().rev().find(|(k, v)| k == name && !v.is_empty()).map(|(_, v)| v.as_str())
    }
}

/// `sorted(glob.glob("<dir>/*"))`: every non-hidden entry, sorted by name.
/// Subdirectories are listed too; reading them is skipped later, as Python
/// skips them with an `IsADirectoryError`.
fn conf_d_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| !e.file_name().as_encoded_bytes().starts_with(b"."))
        .map(|e| e.path())
        .collect();
    files.sort();
    files
}

/// Scrapy's `closest_scrapy_cfg`: `scrapy.cfg` in the (symlink-resolved)
/// directory or the nearest parent that has one, up to the root.
fn closest_scrapy_cfg(cwd: &Path) -> Option<PathBuf> {
    let start = cwd.canonicalize().unwrap_or_else(|_| cwd.to_path_buf());
    start.ancestors().map(|dir| dir.join("scrapy.cfg")).find(|cfg| cfg.exists())
}

/// The effective configuration. Every stock option has a typed field with
/// stock's default; directories are absolute (resolved against
/// [`Config::base_dir`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// The directory relative paths are resolved against: the working
    /// directory at load time, as stock resolves them against its cwd.
    pub base_dir: PathBuf,
    /// The configuration files actually read, in reading order (the
    /// built-in defaults are not listed).
    pub sources: Vec<PathBuf>,
    /// TCP listen address (`bind_address`, default `127.0.0.1`; env
    /// `SCRAPYD_BIND_ADDRESS`). Empty disables TCP, as in stock.
    pub bind_address: String,
    /// TCP port (`http_port`, default 6800; env `SCRAPYD_HTTP_PORT`). 0
    /// disables TCP, as in stock.
    pub http_port: u16,
    /// Unix socket to listen on (`unix_socket_path`, default none; env
    /// `SCRAPYD_UNIX_SOCKET_PATH`), made absolute like stock's
    /// `os.path.abspath`.
    pub unix_socket_path: Option<PathBuf>,
    /// HTTP Basic user (`username`, default empty; env `SCRAPYD_USERNAME`).
    /// Never contains `:` (rejected at load, as stock does at start).
    pub username: String,
    /// HTTP Basic password (`password`, default empty; env
    /// `SCRAPYD_PASSWORD`). Auth is on only when both are non-empty.
    pub password: String,
    /// Time between dispatch ticks (`poll_interval`, default 5.0 seconds).
    /// scrapyd-rs also wakes on new jobs; this is the periodic rescan.
    pub poll_interval: Duration,
    /// Maximum concurrent crawls (`max_proc`, default 0 = CPUs ×
    /// `max_proc_per_cpu`); see [`Config::max_processes`].
    pub max_proc: i64,
    /// Crawls per CPU when `max_proc` is 0 (`max_proc_per_cpu`, default 4).
    pub max_proc_per_cpu: i64,
    /// Crawl log directory (`logs_dir`, default `logs`); `None` when the
    /// option is empty, which disables logs and the `/logs/` pages.
    pub logs_dir: Option<PathBuf>,
    /// Feed directory or URL (`items_dir`, default empty = no feeds), kept
    /// raw because it may be a URL (`s3://...`); see [`Config::items_local`].
    pub items_dir: String,
    /// Scrapy `JOBDIR` base (`jobs_dir`, default empty = `None`, no JOBDIR).
    pub jobs_dir: Option<PathBuf>,
    /// Log/item files kept per spider (`jobs_to_keep`, default 5).
    pub jobs_to_keep: i64,
    /// Finished jobs kept (`finished_to_keep`, default 100).
    pub finished_to_keep: i64,
    /// Python module run with `python -m` for crawls and listing
    /// (`runner`, default `scrapyd.runner`).
    pub runner: String,
    /// Request header carrying the reverse-proxy base path
    /// (`prefix_header`, default `x-forwarded-prefix`).
    pub prefix_header: String,
    /// Whether webservice errors include tracebacks (`debug`, default off).
    pub debug: bool,
    /// Egg storage directory (`eggs_dir`, default `eggs`).
    pub eggs_dir: PathBuf,
    /// Stock's SQLite directory (`dbs_dir`, default `dbs`), which we import
    /// from. The literal `:memory:` is kept unresolved; see
    /// [`Config::dbs_in_memory`].
    pub dbs_dir: PathBuf,
    /// The name reported as `node_name` (option `node_name`, default the
    /// host name).
    pub node_name: String,
    /// scrapyd-rs's job spool directory (`spool_dir`, default `spool`):
    /// pending, running and finished job records.
    pub spool_dir: PathBuf,
    /// Python interpreter for the runner and `scrapy list` (`python`,
    /// default `python3`); stock uses its own `sys.executable`.
    pub python: String,
    /// Largest accepted request body in bytes (`max_upload_size`, default
    /// 1 GiB); stock has no limit, which lets one request fill the disk.
    pub max_upload_size: u64,
    /// How long a cancelled crawl may take to exit before scrapyd-rs
    /// escalates to its process group (`cancel_grace`, default 30 seconds).
    pub cancel_grace: Duration,
    /// Whether to watch the spool for other instances' changes (`watch_spool`, default on).
    /// Turn it off on filesystems that deliver no events (NFS); the rescan every
    /// `poll_interval` then does the work alone.
    pub watch_spool: bool,
    /// Whether a graceful stop also stops this instance's crawls (`stop_crawls_on_shutdown`,
    /// default off): they are cancelled as `cancel.json` would, and the daemon exits once their
    /// ends are recorded. Off, crawls keep running and the next start re-adopts them.
    pub stop_crawls_on_shutdown: bool,
    /// Effective endpoints (`[services]`), name → Python class path: stock's
    /// defaults in stock's order minus those set to an empty value, then
    /// added names in file order.
    pub services: Vec<(String, String)>,
    /// `[settings]` projects, name → settings module, in Python's `items()`
    /// order, which includes `[DEFAULT]` keys (a stock quirk).
    pub settings_projects: Vec<(String, String)>,
    /// Things that are accepted but not honoured (Python class paths we
    /// cannot load, negative process counts); log them at start.
    pub warnings: Vec<String>,
}

/// Loads the configuration from every source in stock's order, then
/// applies the environment overrides.
pub fn load(sources: &Sources) -> Result<Config, ConfigError> {
    if !sources.cwd.is_absolute() {
        return Err(ConfigError::UnknownCwd { cwd: sources.cwd.clone() });
    }
    let mut ini = embedded_defaults()?;
    let mut read = Vec::new();
    let mut unreadable = Vec::new();
    for path in sources.candidates() {
        let is_extra = sources.extra_files.contains(&path);
        match ini.read_file(&path) {
            Ok(true) => read.push(path),
            Ok(false) if is_extra => return Err(ConfigError::MissingFile { path }),
            Ok(false) => {}
            // A file of the search path the daemon's user may not read (`~/.scrapyd.conf` of
            // another user's HOME, say) is skipped, as stock skips it, but said; a `--config`
            // file was asked for by name, so not reading it is an error.
            Err(IniError::Io { source, .. }) if !is_extra && source.kind() == std::io::ErrorKind::PermissionDenied => {
                unreadable.push(format!("{}: not read ({source})", path.display()));
            }
            Err(err) => return Err(err.into()),
        }
    }
    let mut config = Config::from_ini(&ini, read, sources)?;
    config.warnings.splice(0..0, unreadable);
    Ok(config)
}

/// A parser holding only the built-in defaults.
fn embedded_defaults() -> Result<Ini, IniError> {
    let mut ini = Ini::new();
    ini.read_str(DEFAULT_CONF, Path::new(DEFAULT_CONF_NAME))?;
    Ok(ini)
}

impl Config {
    /// Builds the typed configuration from a filled parser. `read` is the
    /// list of files that were read; `sources` supplies the base directory
    /// and the environment.
    pub fn from_ini(ini: &Ini, read: Vec<PathBuf>, sources: &Sources) -> Result<Config, ConfigError> {
        let opts = Options { ini, sources };
        let base = &sources.cwd;
        let mut warnings = class_path_warnings(&opts)?;
        let (bind_address, _) = opts.string_env("bind_address", "SCRAPYD_BIND_ADDRESS", "127.0.0.1")?;
        let http_port = opts.port()?;
        let (socket, _) = opts.string_env("unix_socket_path", "SCRAPYD_UNIX_SOCKET_PATH", "")?;
        let (username, user_origin) = opts.string_env("username", "SCRAPYD_USERNAME", "")?;
        if username.contains(':') {
            return Err(ConfigError::IllegalUsername { origin: user_origin });
        }
        let (password, _) = opts.string_env("password", "SCRAPYD_PASSWORD", "")?;
        let max_proc = opts.int("max_proc", "0")?;
        let max_proc_per_cpu = opts.int("max_proc_per_cpu", "4")?;
        for (name, value) in [("max_proc", max_proc), ("max_proc_per_cpu", max_proc_per_cpu)] {
            if value < 0 {
                warnings.push(format!("option `{name} = {value}` is negative; no crawl will ever start"));
            }
        }
        check_jobstorage(&opts, &mut warnings)?;
        Ok(Config {
            base_dir: base.clone(),
            sources: read,
            bind_address,
            http_port,
            unix_socket_path: (!socket.is_empty()).then(|| absolute(base, &socket)),
            username,
            password,
            poll_interval: opts.seconds("poll_interval", "5.0")?,
            max_proc,
            max_proc_per_cpu,
            logs_dir: opts.optional_dir("logs_dir", "logs", base)?,
            items_dir: opts.string("items_dir", "")?.0,
            jobs_dir: opts.optional_dir("jobs_dir", "", base)?,
            jobs_to_keep: opts.int("jobs_to_keep", "5")?,
            finished_to_keep: opts.int("finished_to_keep", "100")?,
            runner: opts.string("runner", "scrapyd.runner")?.0,
            prefix_header: opts.string("prefix_header", "x-forwarded-prefix")?.0,
            debug: opts.boolean("debug", "off")?,
            eggs_dir: resolve(base, &opts.string("eggs_dir", "eggs")?.0),
            dbs_dir: dbs_dir(base, &opts.string("dbs_dir", "dbs")?.0),
            node_name: match opts.string_opt("node_name")? {
                Some((name, _)) => name,
                None => hostname(sources),
            },
            spool_dir: resolve(base, &opts.non_empty("spool_dir", "spool")?),
            python: opts.non_empty("python", "python3")?,
            max_upload_size: opts.size("max_upload_size", "1073741824")?,
            cancel_grace: opts.seconds("cancel_grace", "30.0")?,
            watch_spool: opts.boolean("watch_spool", "on")?,
            stop_crawls_on_shutdown: opts.boolean("stop_crawls_on_shutdown", "off")?,
            services: services(ini)?,
            settings_projects: ini.items("settings")?,
            warnings,
        })
    }

    /// The built-in defaults with every directory under `base_dir`, no
    /// files read and no environment; for tests of other modules.
    pub fn for_tests(base_dir: &Path) -> Config {
        let sources = Sources { cwd: base_dir.to_path_buf(), ..Sources::default() };
        let ini = embedded_defaults().expect("the embedded default_scrapyd.conf parses");
        let mut config =
            Config::from_ini(&ini, Vec::new(), &sources).expect("the embedded default_scrapyd.conf has valid values");
        config.node_name = "localhost".to_string();
        config
    }

    /// How many crawls may run at once: `max_proc` if non-zero, otherwise
    /// the machine's CPU count × `max_proc_per_cpu` (stock's launcher).
    /// Negative settings give 0.
    pub fn max_processes(&self) -> usize {
        let n = if self.max_proc != 0 {
            self.max_proc
        } else {
            let cpus = i64::try_from(cpu_count()).unwrap_or(i64::MAX);
            cpus.saturating_mul(self.max_proc_per_cpu)
        };
        usize::try_from(n).unwrap_or(0)
    }

    /// The Basic-auth credentials, only when both are non-empty (stock
    /// disables auth if either is unset).
    pub fn auth(&self) -> Option<(String, String)> {
        (!self.username.is_empty() && !self.password.is_empty()).then(|| (self.username.clone(), self.password.clone()))
    }

    /// Whether crawl logs are written and `/logs/` is served.
    pub fn logs_enabled(&self) -> bool {
        self.logs_dir.is_some()
    }

    /// Whether `dbs_dir` is SQLite's `:memory:` (stock then keeps queues
    /// and finished jobs in memory only; there is nothing to import).
    pub fn dbs_in_memory(&self) -> bool {
        self.dbs_dir == Path::new(":memory:")
    }

    /// The local directory feeds are written to, when `items_dir` is local:
    /// non-empty with no URL scheme (a plain path) or the `file` scheme
    /// (its path, percent-decoded). Remote feed URLs give `None`: no
    /// `/items/` route and no rotation, as in stock. Unlike stock, a
    /// `file://` URL is used as the path it names rather than as a literal
    /// relative directory name (stock's links are then always broken).
    pub fn items_local(&self) -> Option<PathBuf> {
        let items = self.items_dir.as_str();
        if items.is_empty() {
            return None;
        }
        match url_scheme(items) {
            None => Some(resolve(&self.base_dir, items)),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("file") => {
                Some(resolve(&self.base_dir, &percent_decode(file_url_path(rest))))
            }
            Some(_) => None,
        }
    }
}

/// Typed access to the `[scrapyd]` section plus the environment.
struct Options<'a> {
    ini: &'a Ini,
    sources: &'a Sources,
}

impl Options<'_> {
    /// The interpolated value and where it was set, if set anywhere.
    fn string_opt(&self, option: &str) -> Result<Option<(String, Origin)>, ConfigError> {
        let Some(value) = self.ini.get(SECTION, option)? else {
            return Ok(None);
        };
        let origin = self.ini.provenance(SECTION, option).map_or(Origin::Fallback, |l| Origin::File(l.clone()));
        Ok(Some((value, origin)))
    }

    fn string(&self, option: &str, fallback: &str) -> Result<(String, Origin), ConfigError> {
        Ok(self.string_opt(option)?.unwrap_or_else(|| (fallback.to_string(), Origin::Fallback)))
    }

    /// Stock's `os.getenv(VAR) or config.get(option)`: the variable wins
    /// only when non-empty, and then the file value is not even read.
    fn string_env(&self, option: &str, var: &str, fallback: &str) -> Result<(String, Origin), ConfigError> {
        match self.sources.var(var) {
            Some(value) => Ok((value.to_string(), Origin::Env(var.to_string()))),
            None => self.string(option, fallback),
        }
    }

    fn non_empty(&self, option: &'static str, fallback: &str) -> Result<String, ConfigError> {
        let (value, origin) = self.string(option, fallback)?;
        if value.is_empty() {
            return Err(invalid(option, value, "a non-empty value", origin));
        }
        Ok(value)
    }

    fn optional_dir(&self, option: &str, fallback: &str, base: &Path) -> Result<Option<PathBuf>, ConfigError> {
        let (value, _) = self.string(option, fallback)?;
        Ok((!value.is_empty()).then(|| resolve(base, &value)))
    }

    fn int(&self, option: &'static str, fallback: &str) -> Result<i64, ConfigError> {
        let (value, origin) = self.string(option, fallback)?;
        match py_int(&value) {
            Some(n) => Ok(n),
            None => Err(invalid(option, value, "an integer", origin)),
        }
    }

    /// `http_port`: stock's `int(os.getenv("SCRAPYD_HTTP_PORT") or
    /// config.getint("http_port"))`, limited to the TCP port range.
    fn port(&self) -> Result<u16, ConfigError> {
        let (value, origin) = self.string_env("http_port", "SCRAPYD_HTTP_PORT", "6800")?;
        let Some(n) = py_int(&value) else {
            return Err(invalid("http_port", value, "an integer", origin));
        };
        u16::try_from(n).map_err(|_| invalid("http_port", value, "a port number from 0 to 65535", origin))
    }

    fn size(&self, option: &'static str, fallback: &str) -> Result<u64, ConfigError> {
        let (value, origin) = self.string(option, fallback)?;
        let Some(n) = py_int(&value) else {
            return Err(invalid(option, value, "an integer", origin));
        };
        u64::try_from(n).map_err(|_| invalid(option, value, "a non-negative integer", origin))
    }

    fn seconds(&self, option: &'static str, fallback: &str) -> Result<Duration, ConfigError> {
        let (value, origin) = self.string(option, fallback)?;
        let Some(secs) = py_float(&value) else {
            return Err(invalid(option, value, "a number", origin));
        };
        Duration::try_from_secs_f64(secs)
            .map_err(|_| invalid(option, value, "a non-negative, finite number of seconds", origin))
    }

    /// Python's `getboolean`.
    fn boolean(&self, option: &'static str, fallback: &str) -> Result<bool, ConfigError> {
        let (value, origin) = self.string(option, fallback)?;
        match value.to_lowercase().as_str() {
            "1" | "yes" | "true" | "on" => Ok(true),
            "0" | "no" | "false" | "off" => Ok(false),
            _ => Err(invalid(option, value, "a boolean (1/yes/true/on or 0/no/false/off)", origin)),
        }
    }
}

fn invalid(option: &'static str, value: String, expected: &'static str, origin: Origin) -> ConfigError {
    ConfigError::InvalidValue { option, value, expected, origin }
}

/// Warnings for Python class-path options set to something we cannot load.
fn class_path_warnings(opts: &Options<'_>) -> Result<Vec<String>, ConfigError> {
    let mut warnings = Vec::new();
    for (option, stock, ours) in CLASS_PATH_OPTIONS {
        let (value, _) = opts.string(option, stock)?;
        if value != stock {
            warnings.push(format!(
                "option `{option} = {value}` is a Python class path; scrapyd-rs ignores it and uses its own {ours}"
            ));
        }
    }
    Ok(warnings)
}

/// `jobstorage`: either stock class is fine (finished jobs are always persisted in the spool,
/// and `finished_to_keep = 0` keeps none, as stock documents it); anything else is named.
fn check_jobstorage(opts: &Options<'_>, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    let (value, _) = opts.string("jobstorage", MEMORY_JOB_STORAGE)?;
    if value != MEMORY_JOB_STORAGE && value != SQLITE_JOB_STORAGE {
        warnings.push(format!(
            "option `jobstorage = {value}` is a Python class path; scrapyd-rs ignores it and keeps finished jobs in its spool"
        ));
    }
    Ok(())
}

/// The effective `[services]` map: stock names in stock order, then added
/// names in `items()` order; empty values remove an endpoint.
fn services(ini: &Ini) -> Result<Vec<(String, String)>, ConfigError> {
    let items = ini.items("services")?;
    let lookup = |name: &str| items.iter().find(|(n, _)| n == name).map(|(_, c)| c.clone());
    let mut services = Vec::new();
    for (name, class) in STOCK_SERVICES {
        let class = lookup(name).unwrap_or_else(|| class.to_string());
        if !class.is_empty() {
            services.push((name.to_string(), class));
        }
    }
    let is_stock = |name: &str| STOCK_SERVICES.iter().any(|(n, _)| *n == name);
    services.extend(items.iter().filter(|(name, class)| !is_stock(name) && !class.is_empty()).cloned());
    Ok(services)
}

/// `dbs_dir`, resolved unless it is SQLite's `:memory:`.
fn dbs_dir(base: &Path, value: &str) -> PathBuf {
    if value == ":memory:" { PathBuf::from(value) } else { resolve(base, value) }
}

/// A configured path relative to the base directory; an empty value means
/// the base directory itself (stock joins `""` with file names, i.e. cwd).
fn resolve(base: &Path, value: &str) -> PathBuf {
    if value.is_empty() { base.to_path_buf() } else { base.join(value) }
}

/// Python's `os.path.abspath`: join with the base and normalise `.` and
/// `..` lexically (stock logs this form of `unix_socket_path`).
fn absolute(base: &Path, value: &str) -> PathBuf {
    let mut out = PathBuf::new();
    for component in base.join(value).components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

/// `urlsplit(url).scheme` rules: a scheme is present when the text before
/// the first `:` starts with an ASCII letter and consists of letters,
/// digits, `+`, `-` and `.`. Returns the scheme and the rest after `:`.
fn url_scheme(url: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = url.split_once(':')?;
    let mut chars = scheme.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    (first_ok && rest_ok).then_some((scheme, rest))
}

/// The path of a `file:` URL (the part after the scheme): drops a
/// `//authority` if present.
fn file_url_path(rest: &str) -> &str {
    match rest.strip_prefix("//") {
        Some(after) => after.find('/').map_or("", |i| &after[i..]),
        None => rest,
    }
}

/// Decodes `%XX` escapes; malformed escapes and non-UTF-8 results are kept
/// literally.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| s.to_string())
}

/// Python's `int(str)` for base 10: surrounding whitespace, an optional
/// sign, ASCII digits with single `_` between digits. (Python also accepts
/// non-ASCII decimal digits such as `٦`; we do not.) `None` also when the
/// number does not fit in an `i64`.
pub fn py_int(text: &str) -> Option<i64> {
    let s = text.trim();
    let (negative, digits) = split_sign(s);
    if !valid_digit_groups(digits) {
        return None;
    }
    let mut n: i64 = 0;
    for d in digits.bytes().filter(u8::is_ascii_digit) {
        let d = i64::from(d - b'0');
        n = n.checked_mul(10)?;
        n = if negative { n.checked_sub(d)? } else { n.checked_add(d)? };
    }
    Some(n)
}

/// Python's `float(str)`: whitespace, sign, `inf`/`infinity`/`nan` in any
/// case, or a decimal with optional fraction and exponent, `_` allowed
/// between digits. (Non-ASCII digits are not accepted, unlike Python.)
pub fn py_float(text: &str) -> Option<f64> {
    let s = text.trim();
    let (negative, body) = split_sign(s);
    let magnitude = match body.to_ascii_lowercase().as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ => parse_decimal(body)?,
    };
    Some(if negative { -magnitude } else { magnitude })
}

fn split_sign(s: &str) -> (bool, &str) {
    match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    }
}

/// Non-empty ASCII digits, `_` only between two digits.
fn valid_digit_groups(s: &str) -> bool {
    !s.is_empty() && s.split('_').all(|group| !group.is_empty() && group.bytes().all(|b| b.is_ascii_digit()))
}

/// `digits[.digits][e[sign]digits]` or `.digits[...]`, underscores between
/// digits; parsed by Rust once the underscores are removed.
fn parse_decimal(s: &str) -> Option<f64> {
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(at) => (&s[..at], Some(&s[at + 1..])),
        None => (s, None),
    };
    let (int_part, frac_part) = match mantissa.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (mantissa, None),
    };
    let int_ok = int_part.is_empty() || valid_digit_groups(int_part);
    let frac_ok = frac_part.is_none_or(|f| f.is_empty() || valid_digit_groups(f));
    let has_digits = !int_part.is_empty() || frac_part.is_some_and(|f| !f.is_empty());
    let exp_ok = exponent.is_none_or(|e| valid_digit_groups(split_sign(e).1));
    if !(int_ok && frac_ok && has_digits && exp_ok) {
        return None;
    }
    s.replace('_', "").parse().ok()
}

/// The host name, as Python's `socket.gethostname()` reports it, without
/// libc: the kernel's UTS name, else `$HOSTNAME`, else `localhost`.
fn hostname(sources: &Sources) -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .or_else(|| sources.var("HOSTNAME").map(str::to_string))
        .unwrap_or_else(|| "localhost".to_string())
}

/// The machine's logical CPU count, like Python's `os.cpu_count()` (online
/// CPUs, ignoring affinity and cgroup limits), else the parallelism Rust
/// reports, else 1.
fn cpu_count() -> usize {
    std::fs::read_to_string("/sys/devices/system/cpu/online")
        .ok()
        .and_then(|s| count_cpu_list(s.trim()))
        .or_else(|| std::thread::available_parallelism().ok().map(usize::from))
        .unwrap_or(1)
}

/// Counts a kernel CPU list such as `0-3,5,7-8`.
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut total = 0usize;
    for part in list.split(',') {
        let count = match part.split_once('-') {
            Some((lo, hi)) => {
                let (lo, hi): (usize, usize) = (lo.parse().ok()?, hi.parse().ok()?);
                hi.checked_sub(lo)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
        total = total.checked_add(count)?;
    }
    (total > 0).then_some(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    /// A sandbox with separate etc, home and project directories, so the
    /// search never reaches the real machine's files.
    struct Sandbox {
        dir: tempfile::TempDir,
    }

    impl Sandbox {
        fn new() -> Sandbox {
            let dir = tempfile::tempdir().expect("tempdir");
            for sub in ["etc/conf.d", "home", "project/sub/cwd"] {
                fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
            }
            Sandbox { dir }
        }

        fn path(&self, rel: &str) -> PathBuf {
            self.dir.path().join(rel)
        }

        fn write(&self, rel: &str, text: &str) -> PathBuf {
            let path = self.path(rel);
            fs::write(&path, text).expect("write");
            path
        }

        fn sources(&self) -> Sources {
            Sources {
                etc_dir: Some(self.path("etc")),
                cwd: self.path("project/sub/cwd"),
                home: Some(self.path("home")),
                extra_files: Vec::new(),
                env: Vec::new(),
            }
        }

        fn load_with(&self, text: &str) -> Result<Config, ConfigError> {
            self.write("project/sub/cwd/scrapyd.conf", text);
            load(&self.sources())
        }
    }

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn defaults_match_stock() {
        let base = Path::new("/srv/scrapyd");
        let c = Config::for_tests(base);
        assert_eq!(c.base_dir, base);
        assert!(c.sources.is_empty());
        assert_eq!(c.bind_address, "127.0.0.1");
        assert_eq!(c.http_port, 6800);
        assert_eq!(c.unix_socket_path, None);
        assert_eq!((c.username.as_str(), c.password.as_str()), ("", ""));
        assert_eq!(c.auth(), None);
        assert_eq!(c.poll_interval, Duration::from_secs(5));
        assert_eq!((c.max_proc, c.max_proc_per_cpu), (0, 4));
        assert_eq!(c.logs_dir, Some(base.join("logs")));
        assert!(c.logs_enabled());
        assert_eq!(c.items_dir, "");
        assert_eq!(c.items_local(), None);
        assert_eq!(c.jobs_dir, None);
        assert_eq!((c.jobs_to_keep, c.finished_to_keep), (5, 100));
        assert_eq!(c.runner, "scrapyd.runner");
        assert_eq!(c.prefix_header, "x-forwarded-prefix");
        assert!(!c.debug);
        assert_eq!(c.eggs_dir, base.join("eggs"));
        assert_eq!(c.dbs_dir, base.join("dbs"));
        assert!(!c.dbs_in_memory());
        assert_eq!(c.spool_dir, base.join("spool"));
        assert_eq!(c.python, "python3");
        assert_eq!(c.max_upload_size, 1 << 30);
        assert_eq!(c.cancel_grace, Duration::from_secs(30));
        let expected: Vec<(String, String)> =
            STOCK_SERVICES.iter().map(|(n, c)| (n.to_string(), c.to_string())).collect();
        assert_eq!(c.services, expected);
        assert!(c.settings_projects.is_empty());
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert_eq!(c.max_processes(), cpu_count() * 4);
    }

    #[test]
    fn embedded_defaults_contain_every_stock_option() {
        let ini = embedded_defaults().expect("parses");
        let stock = [
            "application",
            "bind_address",
            "http_port",
            "unix_socket_path",
            "username",
            "password",
            "spiderqueue",
            "poller",
            "poll_interval",
            "launcher",
            "max_proc",
            "max_proc_per_cpu",
            "logs_dir",
            "items_dir",
            "jobs_dir",
            "jobs_to_keep",
            "runner",
            "webroot",
            "prefix_header",
            "debug",
            "eggstorage",
            "eggs_dir",
            "jobstorage",
            "finished_to_keep",
            "dbs_dir",
            "spool_dir",
            "python",
            "max_upload_size",
            "cancel_grace",
            "watch_spool",
            "stop_crawls_on_shutdown",
        ];
        let mut options = ini.options("scrapyd");
        options.sort();
        let mut expected: Vec<String> = stock.iter().map(ToString::to_string).collect();
        expected.sort();
        assert_eq!(options, expected);
    }

    #[test]
    fn search_order_is_stocks() {
        let sb = Sandbox::new();
        let names = [
            ("etc/scrapyd.conf", "etc"),
            ("etc/conf.d/b.conf", "conf.d b"),
            ("etc/conf.d/a.conf", "conf.d a"),
            ("etc/conf.d/.hidden", "hidden"),
            ("project/sub/cwd/scrapyd.conf", "cwd"),
            ("home/.scrapyd.conf", "home"),
            ("project/scrapy.cfg", "scrapy.cfg"),
            ("extra.conf", "extra"),
        ];
        for (rel, label) in names {
            // Each file sets `prefix_header` (last one wins) and its own option.
            let own = label.replace(['.', ' '], "_");
            sb.write(rel, &format!("[scrapyd]\nprefix_header = {label}\nown_{own} = {label}\n"));
        }
        fs::create_dir(sb.path("etc/conf.d/c.dir")).expect("mkdir");
        let mut sources = sb.sources();
        sources.extra_files = vec![sb.path("extra.conf")];
        let config = load(&sources).expect("loads");
        let expected: Vec<PathBuf> = [
            "etc/scrapyd.conf",
            "etc/conf.d/a.conf",
            "etc/conf.d/b.conf",
            "project/sub/cwd/scrapyd.conf",
            "home/.scrapyd.conf",
            "project/scrapy.cfg",
            "extra.conf",
        ]
        .iter()
        .map(|rel| {
            let p = sb.path(rel);
            // scrapy.cfg is found through the canonicalised cwd.
            p.parent().and_then(|d| d.canonicalize().ok()).map_or(p.clone(), |d| d.join(p.file_name().expect("name")))
        })
        .collect();
        let canon = |v: &[PathBuf]| -> Vec<PathBuf> { v.iter().map(|p| p.canonicalize().expect("exists")).collect() };
        assert_eq!(canon(&config.sources), canon(&expected));
        assert_eq!(config.prefix_header, "extra");

        // Without the extra file, scrapy.cfg is read last and wins; and
        // conf.d files apply in sorted order (b overrides a).
        sources.extra_files.clear();
        let config = load(&sources).expect("loads");
        assert_eq!(config.prefix_header, "scrapy.cfg");
        for rel in ["project/scrapy.cfg", "home/.scrapyd.conf", "project/sub/cwd/scrapyd.conf"] {
            fs::remove_file(sb.path(rel)).expect("rm");
        }
        let config = load(&sources).expect("loads");
        assert_eq!(config.prefix_header, "conf.d b");
    }

    #[test]
    fn closest_scrapy_cfg_prefers_the_nearest_directory() {
        let sb = Sandbox::new();
        sb.write("project/scrapy.cfg", "[settings]\ndefault = far.settings\n");
        sb.write("project/sub/scrapy.cfg", "[settings]\ndefault = near.settings\n");
        let config = load(&sb.sources()).expect("loads");
        assert_eq!(config.settings_projects, [("default".to_string(), "near.settings".to_string())]);
        assert_eq!(config.sources.len(), 1);
    }

    #[test]
    fn relative_dirs_resolve_against_cwd_and_settings_come_from_scrapy_cfg() {
        let sb = Sandbox::new();
        sb.write(
            "project/scrapy.cfg",
            "[settings]\ndefault = myproject.settings\nother = other.settings\n[deploy]\nurl = http://localhost:6800/\n",
        );
        let config = sb
            .load_with("[scrapyd]\nlogs_dir =\njobs_dir = jobs\neggs_dir = /abs/eggs\ndbs_dir = :memory:\n")
            .expect("loads");
        let cwd = sb.path("project/sub/cwd");
        assert_eq!(config.base_dir, cwd);
        assert_eq!(config.logs_dir, None);
        assert!(!config.logs_enabled());
        assert_eq!(config.jobs_dir, Some(cwd.join("jobs")));
        assert_eq!(config.eggs_dir, Path::new("/abs/eggs"));
        assert!(config.dbs_in_memory());
        assert_eq!(
            config.settings_projects,
            [
                ("default".to_string(), "myproject.settings".to_string()),
                ("other".to_string(), "other.settings".to_string()),
            ]
        );
    }

    #[test]
    fn default_keys_leak_into_settings_and_services() {
        let sb = Sandbox::new();
        let config = sb.load_with("[DEFAULT]\nshared = x.settings\n[settings]\nproj = p.settings\n").expect("loads");
        assert_eq!(
            config.settings_projects,
            [("shared".to_string(), "x.settings".to_string()), ("proj".to_string(), "p.settings".to_string()),]
        );
        assert_eq!(config.services.last(), Some(&("shared".to_string(), "x.settings".to_string())));
        // No [settings] section: no projects, not even DEFAULT keys.
        let config = sb.load_with("[DEFAULT]\nshared = x.settings\n").expect("loads");
        assert!(config.settings_projects.is_empty());
    }

    #[test]
    fn services_can_be_removed_and_added() {
        let sb = Sandbox::new();
        let config = sb
            .load_with(
                "[services]\nextra.json = scrapyd.webservice.DaemonStatus\ncancel.json =\nDaemonStatus.JSON =\nSchedule.json = my.Schedule\n",
            )
            .expect("loads");
        let names: Vec<&str> = config.services.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "schedule.json",
                "status.json",
                "addversion.json",
                "listprojects.json",
                "listversions.json",
                "listspiders.json",
                "delproject.json",
                "delversion.json",
                "listjobs.json",
                "extra.json",
            ]
        );
        assert_eq!(config.services[0].1, "my.Schedule");
        assert_eq!(config.services[9].1, "scrapyd.webservice.DaemonStatus");
    }

    #[test]
    fn env_overrides_apply_only_when_non_empty() {
        let sb = Sandbox::new();
        sb.write(
            "project/sub/cwd/scrapyd.conf",
            "[scrapyd]\nhttp_port = 6899\nbind_address = 0.0.0.0\nusername = fileuser\npassword = filepass\n",
        );
        let mut sources = sb.sources();
        sources.env = env(&[
            ("SCRAPYD_HTTP_PORT", "6897"),
            ("SCRAPYD_BIND_ADDRESS", ""),
            ("SCRAPYD_USERNAME", "envuser"),
            ("SCRAPYD_PASSWORD", ""),
            ("SCRAPYD_UNIX_SOCKET_PATH", "run/../scrapyd.sock"),
        ]);
        let config = load(&sources).expect("loads");
        assert_eq!(config.http_port, 6897);
        assert_eq!(config.bind_address, "0.0.0.0");
        assert_eq!(config.auth(), Some(("envuser".to_string(), "filepass".to_string())));
        assert_eq!(config.unix_socket_path, Some(sb.path("project/sub/cwd/scrapyd.sock")));
    }

    #[test]
    fn env_port_is_parsed_like_python_int_and_errors_name_the_variable() {
        let sb = Sandbox::new();
        let mut sources = sb.sources();
        sources.env = env(&[("SCRAPYD_HTTP_PORT", " +6_801 ")]);
        assert_eq!(load(&sources).expect("loads").http_port, 6801);
        sources.env = env(&[("SCRAPYD_HTTP_PORT", "http")]);
        let err = load(&sources).expect_err("bad port");
        assert_eq!(
            err.to_string(),
            "environment variable SCRAPYD_HTTP_PORT: option `http_port` has an invalid value \"http\": expected an integer"
        );
        // A bad file value is never read when the variable overrides it.
        sb.write("project/sub/cwd/scrapyd.conf", "[scrapyd]\nhttp_port = nope\n");
        sources.env = env(&[("SCRAPYD_HTTP_PORT", "7000")]);
        assert_eq!(load(&sources).expect("loads").http_port, 7000);
    }

    #[test]
    fn username_with_colon_is_rejected_even_without_password() {
        let sb = Sandbox::new();
        let err = sb.load_with("[scrapyd]\n\nusername = a:b\n").expect_err("colon");
        let conf = sb.path("project/sub/cwd/scrapyd.conf");
        assert_eq!(
            err.to_string(),
            format!(
                "{}, line 3: The `username` option contains illegal character ':'. Check and update the Scrapyd configuration file.",
                conf.display()
            )
        );
        let mut sources = sb.sources();
        sb.write("project/sub/cwd/scrapyd.conf", "");
        sources.env = env(&[("SCRAPYD_USERNAME", "x:y")]);
        let err = load(&sources).expect_err("colon");
        assert!(matches!(err, ConfigError::IllegalUsername { origin: Origin::Env(ref v) } if v == "SCRAPYD_USERNAME"));
    }

    #[test]
    fn typed_errors_name_option_value_file_and_line() {
        let sb = Sandbox::new();
        let conf = sb.path("project/sub/cwd/scrapyd.conf");
        let cases = [
            ("http_port", "6800 # comment", "an integer"),
            ("http_port", "70000", "a port number from 0 to 65535"),
            ("max_proc", "1.5", "an integer"),
            ("max_proc_per_cpu", "four", "an integer"),
            ("jobs_to_keep", "5_", "an integer"),
            ("finished_to_keep", "", "an integer"),
            ("max_upload_size", "1GB", "an integer"),
            ("max_upload_size", "-1", "a non-negative integer"),
            ("poll_interval", "5s", "a number"),
            ("poll_interval", "-1", "a non-negative, finite number of seconds"),
            ("cancel_grace", "inf", "a non-negative, finite number of seconds"),
            ("debug", "maybe", "a boolean (1/yes/true/on or 0/no/false/off)"),
            ("spool_dir", "", "a non-empty value"),
        ];
        for (option, value, expected) in cases {
            let err = sb.load_with(&format!("# comment\n[scrapyd]\n{option} = {value}\n")).expect_err(option);
            assert_eq!(
                err.to_string(),
                format!(
                    "{}, line 3: option `{option}` has an invalid value {value:?}: expected {expected}",
                    conf.display()
                )
            );
        }
    }

    #[test]
    fn values_accepted_like_python() {
        let sb = Sandbox::new();
        let config = sb
            .load_with(
                "[scrapyd]\nmax_proc = +1_0\npoll_interval = .5\ncancel_grace = 1e1\ndebug = YES\nmax_upload_size = 1_024\njobs_to_keep = -1\n",
            )
            .expect("loads");
        assert_eq!(config.max_proc, 10);
        assert_eq!(config.max_processes(), 10);
        assert_eq!(config.poll_interval, Duration::from_millis(500));
        assert_eq!(config.cancel_grace, Duration::from_secs(10));
        assert!(config.debug);
        assert_eq!(config.max_upload_size, 1024);
        assert_eq!(config.jobs_to_keep, -1);
    }

    #[test]
    fn parse_and_interpolation_errors_carry_the_location() {
        let sb = Sandbox::new();
        let conf = sb.path("project/sub/cwd/scrapyd.conf");
        let err = sb.load_with("[scrapyd]\nhttp_port\n").expect_err("parse");
        assert!(err.to_string().starts_with(&format!("{}, line 2: ", conf.display())), "{err}");
        let err = sb.load_with("[scrapyd]\npassword = 50%off\n").expect_err("bare %");
        assert!(err.to_string().starts_with(&format!("{}, line 2: ", conf.display())), "{err}");
        let config = sb
            .load_with("[DEFAULT]\nroot = /data\n[scrapyd]\npassword = 50%%off\neggs_dir = %(root)s/eggs\n")
            .expect("loads");
        assert_eq!(config.password, "50%off");
        assert_eq!(config.eggs_dir, Path::new("/data/eggs"));
    }

    #[test]
    fn relative_or_unknown_cwd_is_an_error() {
        let sources = Sources::default();
        assert!(matches!(load(&sources), Err(ConfigError::UnknownCwd { .. })));
    }

    #[test]
    fn from_process_reads_the_real_process() {
        let sources = Sources::from_process(vec![PathBuf::from("/x.conf")]);
        assert_eq!(sources.etc_dir.as_deref(), Some(Path::new("/etc/scrapyd")));
        assert!(sources.cwd.is_absolute());
        assert_eq!(sources.extra_files, [PathBuf::from("/x.conf")]);
    }

    #[test]
    fn missing_extra_file_is_an_error_but_missing_standard_files_are_not() {
        let sb = Sandbox::new();
        let mut sources = sb.sources();
        assert!(load(&sources).expect("loads").sources.is_empty());
        sources.extra_files = vec![sb.path("nope.conf")];
        let err = load(&sources).expect_err("missing");
        assert!(matches!(err, ConfigError::MissingFile { .. }), "{err}");
    }

    #[test]
    fn class_path_options_warn_unless_stock_or_documented() {
        let sb = Sandbox::new();
        let config = sb
            .load_with(
                "[scrapyd]\nlauncher = my.Launcher\njobstorage = scrapyd.jobstorage.SqliteJobStorage\nwebroot = scrapyd.website.Root\n",
            )
            .expect("loads");
        assert_eq!(
            config.warnings,
            ["option `launcher = my.Launcher` is a Python class path; scrapyd-rs ignores it and uses its own launcher"]
        );
        let config =
            sb.load_with("[scrapyd]\njobstorage = my.Storage\napplication = my.app\nmax_proc = -2\n").expect("loads");
        assert_eq!(config.warnings.len(), 3, "{:?}", config.warnings);
        assert_eq!(config.max_processes(), 0);
    }

    #[test]
    fn node_name_comes_from_the_option_or_the_host() {
        let sb = Sandbox::new();
        let config = sb.load_with("[scrapyd]\nnode_name = box-1\n").expect("loads");
        assert_eq!(config.node_name, "box-1");
        let config = sb.load_with("").expect("loads");
        assert!(!config.node_name.is_empty());
    }

    #[test]
    fn items_local_follows_the_url_scheme() {
        let base = Path::new("/srv");
        let mut c = Config::for_tests(base);
        let cases = [
            ("", None),
            ("items", Some("/srv/items")),
            ("/var/items", Some("/var/items")),
            ("file:///var/my%20items", Some("/var/my items")),
            ("FILE://host/var/items", Some("/var/items")),
            ("file:rel", Some("/srv/rel")),
            ("s3://bucket/items", None),
            ("ftp://host/items", None),
            ("1:not-a-scheme", Some("/srv/1:not-a-scheme")),
        ];
        for (items, expected) in cases {
            c.items_dir = items.to_string();
            assert_eq!(c.items_local(), expected.map(PathBuf::from), "{items}");
        }
    }

    #[test]
    fn max_processes_and_auth() {
        let mut c = Config::for_tests(Path::new("/srv"));
        c.max_proc = 3;
        assert_eq!(c.max_processes(), 3);
        c.max_proc = 0;
        c.max_proc_per_cpu = 2;
        assert_eq!(c.max_processes(), cpu_count() * 2);
        c.username = "u".into();
        assert_eq!(c.auth(), None);
        c.password = "p".into();
        assert_eq!(c.auth(), Some(("u".into(), "p".into())));
    }

    #[test]
    fn py_int_matches_python() {
        let ok = [
            (" 6800 ", 6800),
            ("+5", 5),
            ("-5", -5),
            ("1_000", 1000),
            ("010", 10),
            ("0_0", 0),
            ("\u{a0}6\u{a0}", 6),
            ("\u{2028}7\u{3000}", 7),
        ];
        for (text, n) in ok {
            assert_eq!(py_int(text), Some(n), "{text:?}");
        }
        for text in
            ["_1", "1_", "1__0", "0x10", "", " ", "1.0", "+", "- 5", "1e3", "\u{1c}7\u{1f}", "99999999999999999999"]
        {
            assert_eq!(py_int(text), None, "{text:?}");
        }
    }

    #[test]
    fn py_float_matches_python() {
        let ok = [
            ("5", 5.0),
            (" 5.0 ", 5.0),
            (".5", 0.5),
            ("5.", 5.0),
            ("1e3", 1000.0),
            ("1E-3", 0.001),
            ("1_0.5", 10.5),
            ("1e1_0", 1e10),
            ("+.5e+2", 50.0),
            ("-Infinity", f64::NEG_INFINITY),
            ("iNf ", f64::INFINITY),
        ];
        for (text, n) in ok {
            assert_eq!(py_float(text), Some(n), "{text:?}");
        }
        assert!(py_float("NaN").is_some_and(f64::is_nan));
        assert!(py_float("+nan").is_some_and(f64::is_nan));
        for text in ["1._5", "1_e5", "infin", ".", "e5", "1e", "0x1p3", "1.5_", "--1", "1 0", "", "1e+", "_1"] {
            assert_eq!(py_float(text), None, "{text:?}");
        }
    }

    #[test]
    fn cpu_lists_are_counted() {
        assert_eq!(count_cpu_list("0-3,5,7-8"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
    }

    #[test]
    fn random_config_text_never_panics() {
        let pieces = [
            "[scrapyd]",
            "[services]",
            "[settings]",
            "[DEFAULT]",
            "\n",
            " ",
            "=",
            ":",
            "%",
            "%%",
            "http_port",
            "max_proc",
            "poll_interval",
            "debug",
            "username",
            "items_dir",
            "dbs_dir",
            "1",
            "-1",
            "1e999",
            "nan",
            "on",
            "a:b",
            "file://",
            "%(x)s",
            "x",
        ];
        let sb = Sandbox::new();
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        for _ in 0..300 {
            let mut text = String::new();
            for _ in 0..(state % 30) {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                text.push_str(pieces[(state % pieces.len() as u64) as usize]);
            }
            if let Ok(config) = sb.load_with(&text) {
                let _ = (config.items_local(), config.max_processes(), config.auth());
            }
        }
    }
}
