//! The HTTP server: hyper over TCP and a Unix socket, with graceful shutdown.

pub mod auth;
pub mod params;
pub mod response;
pub mod router;

use crate::app::App;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};

/// The sockets the daemon serves on. Binding is the caller's job, so tests can bind port 0.
#[derive(Debug, Default)]
pub struct Listeners {
    pub tcp: Option<TcpListener>,
    pub unix: Option<UnixListener>,
}

/// How long in-flight requests may take to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` completes, then lets open requests finish (for up to
/// 10 seconds, `DRAIN_TIMEOUT`).
pub async fn serve(app: Arc<App>, listeners: Listeners, shutdown: impl Future<Output = ()>) {
    let graceful = GracefulShutdown::new();
    let Listeners { tcp, unix } = listeners;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = accept_tcp(tcp.as_ref()) => match accepted {
                Ok(stream) => spawn_connection(&app, &graceful, stream),
                Err(err) => accept_failed(err).await,
            },
            accepted = accept_unix(unix.as_ref()) => match accepted {
                Ok(stream) => spawn_connection(&app, &graceful, stream),
                Err(err) => accept_failed(err).await,
            },
            () = &mut shutdown => break,
        }
    }
    drop((tcp, unix));
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(DRAIN_TIMEOUT) => tracing::warn!("some connections were still open at shutdown"),
    }
}

async fn accept_tcp(listener: Option<&TcpListener>) -> std::io::Result<tokio::net::TcpStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

async fn accept_unix(listener: Option<&UnixListener>) -> std::io::Result<tokio::net::UnixStream> {
    match listener {
        Some(listener) => listener.accept().await.map(|(stream, _)| stream),
        None => std::future::pending().await,
    }
}

/// Out of file descriptors and similar: log, pause briefly, keep serving.
async fn accept_failed(err: std::io::Error) {
    tracing::error!("accepting a connection failed: {err}");
    tokio::time::sleep(Duration::from_millis(100)).await;
}

fn spawn_connection<S>(app: &Arc<App>, graceful: &GracefulShutdown, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let app = app.clone();
    let service = service_fn(move |request| {
        let app = app.clone();
        async move { Ok::<_, std::convert::Infallible>(router::route(app, request).await) }
    });
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .title_case_headers(true)
        .serve_connection(TokioIo::new(stream), service);
    let connection = graceful.watch(connection);
    tokio::spawn(async move {
        if let Err(err) = connection.await {
            tracing::debug!("connection ended with an error: {err}");
        }
    });
}
