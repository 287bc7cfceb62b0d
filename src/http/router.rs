//! Which resource answers a request, and how a webservice call becomes a response.
//!
//! The resource tree is flat, as in stock: `/` (home), `/jobs`, one leaf per `[services]` entry,
//! and everything else is Twisted's 404 page. A webservice answers its own method (GET or POST),
//! `HEAD` and `OPTIONS`; any other method is a 200 error envelope, as stock does it.

use super::params::{BodyError, BodyKind, Params, read_body};
use super::response::{self, Body};
use crate::api::{Answer, ApiError, Endpoint, Fields, Method};
use crate::app::App;
use crate::json::to_python_json;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use serde_json::{Value, json};
use std::io;
use std::sync::Arc;

/// Answers one request.
pub async fn route(app: Arc<App>, request: Request<Incoming>) -> Response<Body> {
    if let Some(credentials) = &app.credentials
        && !credentials.accept(request.headers())
    {
        return response::unauthorized(request.method() == hyper::Method::HEAD);
    }
    let Some(segments) = path_segments(request.uri().path()) else { return response::not_found() };
    match segments.as_slice() {
        [home] if home.is_empty() => crate::web::page(&app, &request, crate::web::Page::Home).await,
        [jobs] if jobs == "jobs" => crate::web::page(&app, &request, crate::web::Page::Jobs).await,
        [base, rest @ ..] if base == "logs" || base == "items" => static_files(&app, base, rest, &request).await,
        [name] => match app.services.get(name.as_str()) {
            Some(&endpoint) => serve(&app, endpoint, request).await,
            None => response::not_found(),
        },
        _ => response::not_found(),
    }
}

/// `/logs/...` (when `logs_dir` is set) and `/items/...` (when items are local), as files.
async fn static_files(app: &App, base: &str, rest: &[String], request: &Request<Incoming>) -> Response<Body> {
    let root = match base {
        "logs" => app.config.logs_dir.clone(),
        _ => app.config.items_local(),
    };
    let Some(root) = root else { return response::not_found() };
    // Twisted's static files answer every method as GET (HEAD without the body).
    let path = String::from_utf8_lossy(&super::params::percent_decode(request.uri().path().as_bytes())).into_owned();
    crate::web::files::serve(&root, base, rest, &path, request.headers()).await
}

/// The percent-decoded path segments after the leading `/`, or `None` when one is not UTF-8.
fn path_segments(path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix('/').unwrap_or(path);
    rest.split('/').map(|segment| String::from_utf8(super::params::percent_decode(segment.as_bytes())).ok()).collect()
}

/// The `Allow` value of an endpoint.
fn allowed_methods(endpoint: Endpoint) -> &'static str {
    match endpoint.method() {
        Method::Get => "OPTIONS, HEAD, GET",
        Method::Post => "OPTIONS, HEAD, POST",
    }
}

/// Runs a webservice and wraps its answer in stock's envelope.
async fn serve(app: &App, endpoint: Endpoint, request: Request<Incoming>) -> Response<Body> {
    let methods = allowed_methods(endpoint);
    let method = request.method().as_str();
    let result = match (method, endpoint.method()) {
        ("OPTIONS", _) => return response::options(methods),
        ("GET" | "HEAD", Method::Get) | ("POST", Method::Post) => match parameters(app, request).await {
            Ok(mut params) => endpoint.handle(app, &mut params).await,
            Err(rejection) => return rejection,
        },
        ("HEAD", Method::Post) => Err(ApiError::exception(
            "AttributeError",
            format!("'{}' object has no attribute 'render_GET'", endpoint.class_name()),
        )),
        (_, Method::Get) => {
            Err(ApiError::exception("UnsupportedMethod", "Expected one of [b'HEAD', b'OPTIONS', b'GET']"))
        }
        (_, Method::Post) => {
            Err(ApiError::exception("UnsupportedMethod", "Expected one of [b'HEAD', b'OPTIONS', b'POST']"))
        }
    };
    match result {
        Ok(Answer::Fields(fields)) => {
            envelope(methods, StatusCode::OK, &Value::Object(with_envelope(app, fields, Default::default())))
        }
        Ok(Answer::Extended(fields, extra)) => {
            envelope(methods, StatusCode::OK, &Value::Object(with_envelope(app, fields, extra)))
        }
        Ok(Answer::Raw(mut body)) => {
            // Appended, not copied: the body may be tens of megabytes.
            body.extend_from_slice(b", \"status\": \"ok\", \"node_name\": ");
            body.extend_from_slice(&to_python_json(app.node_name()));
            body.extend_from_slice(b"}\n");
            response::json(StatusCode::OK, methods, body)
        }
        Err(error) if app.config.debug => {
            let name = endpoint_path(app, endpoint);
            response::with_body(StatusCode::OK, "text/html", error.traceback(&name))
        }
        Err(error) => envelope(methods, StatusCode::OK, &error_body(app, &error)),
    }
}

/// A handler's keys, then `status` and `node_name` as stock adds them, then `extra`.
fn with_envelope(app: &App, mut fields: Fields, extra: Fields) -> Fields {
    fields.insert("status".into(), json!("ok"));
    fields.insert("node_name".into(), json!(app.node_name()));
    fields.extend(extra);
    fields
}

fn endpoint_path(app: &App, endpoint: Endpoint) -> String {
    app.services.iter().find(|(_, e)| **e == endpoint).map(|(name, _)| name.clone()).unwrap_or_default()
}

fn error_body(app: &App, error: &ApiError) -> Value {
    json!({"status": "error", "message": error.text(), "node_name": app.node_name()})
}

fn envelope(methods: &'static str, status: StatusCode, body: &Value) -> Response<Body> {
    let mut bytes = to_python_json(body);
    bytes.push(b'\n');
    response::json(status, methods, bytes)
}

/// The request's parameters: the query string, plus the body of an upper-case `POST` that has a
/// `Content-Type` and a non-empty body. A rejected body becomes the response to send instead.
async fn parameters(app: &App, request: Request<Incoming>) -> Result<Params, Response<Body>> {
    let mut params = Params::from_query(request.uri().query().unwrap_or("").as_bytes());
    if request.method() != hyper::Method::POST {
        return Ok(params);
    }
    let Some(content_type) = request.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return Ok(params);
    };
    let kind = BodyKind::from_content_type(content_type);
    if kind == BodyKind::Ignored {
        return Ok(params);
    }
    let limit = app.config.max_upload_size;
    let declared = request.headers().get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(too_large(app, limit));
    }
    let body = limited_stream(request.into_body(), limit);
    match read_body(kind, body, &app.upload_dir, limit).await {
        Ok(body) => {
            params.update(body);
            Ok(params)
        }
        Err(BodyError::TooLarge { limit }) => Err(too_large(app, limit)),
        Err(error @ BodyError::TooManyValues) => {
            let body = error_body(app, &ApiError::exception("RequestError", &error));
            Err(response::closing(envelope("OPTIONS, HEAD, POST", StatusCode::PAYLOAD_TOO_LARGE, &body)))
        }
        Err(BodyError::MalformedMultipart(reason)) => {
            tracing::info!("malformed multipart body: {reason}");
            Err(response::bad_request())
        }
        Err(error) => {
            // An interrupted upload, or a failure to spill it to disk: say what happened.
            let body = error_body(app, &ApiError::exception("RequestError", &error));
            Err(response::closing(envelope("OPTIONS, HEAD, POST", StatusCode::BAD_REQUEST, &body)))
        }
    }
}

/// An upload over `max_upload_size`: 413 with the error envelope, and the connection closed
/// since the rest of the body is not read. Stock has no limit, so there is no stock answer to
/// copy; a non-2xx status makes `scrapyd-deploy` report the failure.
fn too_large(app: &App, limit: u64) -> Response<Body> {
    let message = format!("the request body is larger than max_upload_size ({limit} bytes)");
    let body = error_body(app, &ApiError::exception("UploadTooLarge", message));
    response::closing(envelope("OPTIONS, HEAD, POST", StatusCode::PAYLOAD_TOO_LARGE, &body))
}

/// The body as a stream of chunks that fails with `FileTooLarge` past `limit` bytes.
fn limited_stream(body: Incoming, limit: u64) -> impl Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static {
    let mut seen: u64 = 0;
    Box::pin(body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(io::Error::other)?;
        seen += chunk.len() as u64;
        if seen > limit {
            return Err(io::Error::new(io::ErrorKind::FileTooLarge, "request body over max_upload_size"));
        }
        Ok(chunk)
    }))
}
