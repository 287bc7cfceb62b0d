//! The `scrapyd-rs` command: reads the configuration, sets up logging and runs the daemon.
//!
//! It accepts the flags of stock's `scrapyd` command that matter for a service (`--pidfile`,
//! `-l/--logfile`, `-n/--nodaemon`), so existing unit files and scripts keep working. One
//! subcommand, `migrate [--dry-run]`, imports stock's jobs from `dbs_dir` (which every start also
//! does) and prints what it imported or would import.

use clap::{Parser, Subcommand};
use scrapyd_rs::config::{self, Sources};
use std::path::PathBuf;
use std::process::ExitCode;

/// A drop-in replacement for the Scrapyd daemon.
#[derive(Debug, Parser)]
#[command(name = "scrapyd-rs", version, about, disable_version_flag = true)]
struct Cli {
    /// Read this configuration file after the standard ones (may be repeated).
    #[arg(long = "config", value_name = "FILE", global = true)]
    config: Vec<PathBuf>,
    /// Write the daemon's pid to this file while it runs (stock writes twistd.pid by default;
    /// several instances share a directory here, so only an explicit file is written).
    #[arg(long, value_name = "FILE")]
    pidfile: Option<PathBuf>,
    /// Write the daemon's own log to this file instead of standard error (`-` for stdout).
    #[arg(short = 'l', long, value_name = "FILE")]
    logfile: Option<PathBuf>,
    /// Accepted for compatibility: the daemon never forks into the background.
    #[arg(short = 'n', long)]
    nodaemon: bool,
    /// Print the version and exit.
    #[arg(short = 'v', long = "version")]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import stock Scrapyd's jobs from dbs_dir, print what was imported, and exit.
    ///
    /// Pending jobs come from dbs_dir/<project>.db and finished jobs from dbs_dir/jobs.db. Every
    /// start of the daemon does the same; each job is imported once, and dbs_dir is never
    /// written. Exits with status 1 when a database could not be read.
    Migrate {
        /// Only print what would be imported; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if cli.version {
        println!("scrapyd-rs {} (Scrapyd 1.6.0 compatible)", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    if let Err(err) = init_logging(cli.logfile.as_deref()) {
        eprintln!("scrapyd-rs: cannot open the log file: {err}");
        return ExitCode::FAILURE;
    }
    let config = match config::load(&Sources::from_process(cli.config.clone())) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("scrapyd-rs: {err}");
            return ExitCode::FAILURE;
        }
    };
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    if let Some(Command::Migrate { dry_run }) = cli.command {
        return migrate(&config, dry_run);
    }
    let runtime = match scrapyd_rs::runtime::build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("scrapyd-rs: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(config, cli.pidfile)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!("{err}");
            eprintln!("scrapyd-rs: {err}");
            ExitCode::FAILURE
        }
    }
}

/// `scrapyd-rs migrate`: the report goes to standard output.
fn migrate(config: &scrapyd_rs::Config, dry_run: bool) -> ExitCode {
    use scrapyd_rs::migrate::{Mode, run_alone};
    let mode = if dry_run { Mode::DryRun } else { Mode::Import };
    match run_alone(config, mode) {
        Ok(report) => {
            print!("{report}");
            if report.failures() == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
        Err(err) => {
            eprintln!("scrapyd-rs: cannot read the spool {}: {err}", config.spool_dir.display());
            ExitCode::FAILURE
        }
    }
}

async fn serve(config: scrapyd_rs::Config, pidfile: Option<PathBuf>) -> std::io::Result<()> {
    // Before anything can be connected to: a SIGTERM that arrives while the daemon starts (a
    // stop right after a start) must stop it gracefully, not kill it by the default action.
    let shutdown = shutdown_signal()?;
    let listeners = scrapyd_rs::bind(&config).await?;
    if let Some(listener) = &listeners.tcp {
        tracing::info!("Scrapyd web console available at http://{}/", listener.local_addr()?);
    }
    if let Some(path) = &config.unix_socket_path {
        tracing::info!("Scrapyd web console available at http+unix://{}", path.display());
    }
    match config.auth() {
        Some(_) => tracing::info!("Basic authentication enabled"),
        None => tracing::info!("Basic authentication disabled as either `username` or `password` is unset"),
    }
    if let Some(path) = &pidfile {
        std::fs::write(path, format!("{}\n", std::process::id()))?;
    }
    let socket = config.unix_socket_path.clone();
    let result = scrapyd_rs::run(config, listeners, shutdown).await;
    if let Some(path) = socket {
        let _ = std::fs::remove_file(path);
    }
    if let Some(path) = pidfile {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// Installs the SIGTERM and SIGINT handlers now, and returns what completes on either.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let (mut term, mut int) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    Ok(async move {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!("Received {name}, shutting down.");
    })
}

fn init_logging(logfile: Option<&std::path::Path>) -> std::io::Result<()> {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // Under systemd the journal adds its own timestamps.
    let journal = std::env::var_os("JOURNAL_STREAM").is_some();
    match logfile {
        Some(path) if path.as_os_str() == "-" => builder.with_writer(std::io::stdout).init(),
        Some(path) => {
            let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
            builder.with_ansi(false).with_writer(std::sync::Mutex::new(file)).init();
        }
        None if journal => builder.without_time().with_ansi(false).with_writer(std::io::stderr).init(),
        None => builder.with_writer(std::io::stderr).init(),
    }
    Ok(())
}
