//! scrapyd-rs: a drop-in replacement for the Scrapyd daemon.
//!
//! The same JSON API, pages, configuration files and data directory as Scrapyd 1.6, served by one
//! Rust binary whose state lives entirely in the data directory.
//!
//! # Layout
//!
//! - [`config`]: `scrapyd.conf` files read as Python's ConfigParser reads them, in stock's order.
//! - [`http`]: the hyper server, parameter parsing, the response envelope, basic auth.
//! - [`api`]: one module per JSON endpoint.
//! - [`web`]: the HTML pages.
//! - [`eggs`]: egg storage, version order, the spider-list cache.
//! - [`runner`]: the embedded Python runner and how it is started.
//! - [`spool`]: jobs as files (pending, running, finished) and their in-memory index.
//! - [`supervisor`]: the one owner of crawl processes.
//! - [`logparser`]: LogParser-compatible stats files in `logs_dir`, for ScrapydWeb.
//! - [`migrate`]: the import of stock Scrapyd's queues and finished jobs from `dbs/`, once.
//! - [`app`]: the shared state handed to every request.
//! - [`runtime`]: the one async worker, and which work runs on it or is handed off.
//!
//! [`run`] is the daemon: it takes a configuration, already-bound listeners and a shutdown
//! future, so tests can start it in-process on port 0.

pub mod api;
pub mod app;
pub mod config;
pub mod eggs;
pub mod fsutil;
pub mod http;
pub mod json;
pub mod links;
pub mod logparser;
pub mod migrate;
pub mod runner;
pub mod runtime;
pub mod spool;
pub mod supervisor;
pub mod web;

pub use config::Config;
pub use http::Listeners;

use std::future::Future;
use std::io;
use std::sync::Arc;

/// Runs the daemon on `listeners` until `shutdown` completes: the HTTP server, the supervisor
/// and the spool watcher. Crawls still running at shutdown keep running.
pub async fn run(config: Config, listeners: Listeners, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let (handle, inbox) = supervisor::SupervisorHandle::new();
    let app = Arc::new(app::App::new(config, handle)?);
    let watching = match app.config.watch_spool.then(|| spool::watch::watch_projects(app.index.spool().root())) {
        None => None,
        Some(Ok(watching)) => Some(watching),
        Some(Err(err)) => {
            tracing::warn!("not watching the spool ({err}); relying on the rescan every poll_interval");
            None
        }
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let supervisor = tokio::spawn(supervisor::run(app.clone(), inbox, watching, async {
        let _ = stopped.await;
    }));
    http::serve(app, listeners, shutdown).await;
    let _ = stop.send(());
    let _ = supervisor.await;
    Ok(())
}

/// Binds the sockets the configuration asks for: TCP on `bind_address:http_port` (unless the
/// address is empty or the port is 0, as in stock) and `unix_socket_path` when set. Unlike stock,
/// which silently drops TCP when a Unix socket is configured, both listen.
pub async fn bind(config: &Config) -> io::Result<Listeners> {
    let tcp = if config.bind_address.is_empty() || config.http_port == 0 {
        None
    } else {
        let address = format!("{}:{}", bracket_ipv6(&config.bind_address), config.http_port);
        let listener = tokio::net::TcpListener::bind(&address)
            .await
            .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {address}: {err}")))?;
        Some(listener)
    };
    let unix = match &config.unix_socket_path {
        None => None,
        Some(path) => {
            // A socket left by a previous run would make bind fail; only a socket is removed.
            if std::fs::symlink_metadata(path).is_ok_and(|meta| {
                use std::os::unix::fs::FileTypeExt;
                meta.file_type().is_socket()
            }) {
                std::fs::remove_file(path)?;
            }
            let listener = tokio::net::UnixListener::bind(path)
                .map_err(|err| io::Error::new(err.kind(), format!("cannot listen on {}: {err}", path.display())))?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
            Some(listener)
        }
    };
    if tcp.is_none() && unix.is_none() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "nothing to listen on: set bind_address and http_port, or unix_socket_path",
        ));
    }
    Ok(Listeners { tcp, unix })
}

fn bracket_ipv6(address: &str) -> String {
    if address.contains(':') && !address.starts_with('[') { format!("[{address}]") } else { address.to_string() }
}
