//! The responses stock Scrapyd (Twisted) sends, byte for byte where clients can see it.

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use hyper::{Response, StatusCode};

/// The body type of every response: most are built in memory ([`full`]); files are streamed.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A body held in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

/// Twisted's 404 page for an unknown resource.
pub const NO_SUCH_RESOURCE: &str = "\n<html>\n  <head><title>404 - No Such Resource</title></head>\n  <body>\n    <h1>No Such Resource</h1>\n    <p>Sorry. No luck finding that resource.</p>\n  </body>\n</html>\n";

/// A response with `Content-Type` and an explicit `Content-Length`, as Twisted sends them.
pub fn with_body(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> Response<Body> {
    let body = body.into();
    let mut response = Response::new(full(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

/// A JSON webservice answer with stock's CORS headers, in stock's order.
pub fn json(status: StatusCode, methods: &'static str, body: Vec<u8>) -> Response<Body> {
    let len = body.len();
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    cors(headers, methods);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// `OPTIONS` on a webservice: 204 with `Allow` and the CORS headers, no body.
pub fn options(methods: &'static str) -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::NO_CONTENT;
    let headers = response.headers_mut();
    headers.insert("allow", HeaderValue::from_static(methods));
    cors(headers, methods);
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
    response
}

fn cors(headers: &mut hyper::HeaderMap, methods: &'static str) {
    headers.insert("access-control-allow-origin", HeaderValue::from_static("*"));
    headers.insert("access-control-allow-methods", HeaderValue::from_static(methods));
    headers.insert("access-control-allow-headers", HeaderValue::from_static("X-Requested-With"));
}

/// Twisted's 404 for a missing file under `/logs/` or `/items/`.
pub const FILE_NOT_FOUND: &str = "\n<html>\n  <head><title>404 - No Such Resource</title></head>\n  <body>\n    <h1>No Such Resource</h1>\n    <p>File not found.</p>\n  </body>\n</html>\n";

/// Twisted's "No Such Resource" page.
pub fn not_found() -> Response<Body> {
    with_body(StatusCode::NOT_FOUND, "text/html; charset=utf-8", NO_SUCH_RESOURCE)
}

/// The 401 stock's basic-auth wrapper answers, for every path. (Stock sends no
/// `Content-Length` on a HEAD request's 401; neither do we.)
pub fn unauthorized(head: bool) -> Response<Body> {
    let mut response = with_body(StatusCode::UNAUTHORIZED, "text/html", "Unauthorized");
    if head {
        response.headers_mut().remove(CONTENT_LENGTH);
        *response.body_mut() = full(Bytes::new());
    }
    response.headers_mut().insert("www-authenticate", HeaderValue::from_static("basic realm=\"Scrapyd\""));
    response
}

/// A malformed multipart body: Twisted answers 400 with no body and closes the connection.
pub fn bad_request() -> Response<Body> {
    let mut response = Response::new(full(Bytes::new()));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    response.headers_mut().insert(CONTENT_LENGTH, HeaderValue::from(0));
    closing(response)
}

/// Marks a response as the connection's last, for requests whose body was not read to the end.
pub fn closing(mut response: Response<Body>) -> Response<Body> {
    response.headers_mut().insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// `405` for a method a page does not answer, as Twisted words it.
pub fn method_not_allowed(path: &str, method: &str) -> Response<Body> {
    let escaped = crate::web::escape(path);
    let body = format!(
        "\n<html>\n  <head><title>405 - Method Not Allowed</title></head>\n  <body>\n    <h1>Method Not Allowed</h1>\n    <p>Your browser approached me (at {escaped}) with the method \"{method}\".  I only allow the methods HEAD, GET here.</p>\n  </body>\n</html>\n"
    );
    let len = body.len();
    let mut response = Response::new(full(body));
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let headers = response.headers_mut();
    headers.insert("allow", HeaderValue::from_static("HEAD, GET"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(len));
    response
}

/// `501` for a method Twisted does not know how to treat on a page.
pub fn not_implemented(method: &str) -> Response<Body> {
    let body = format!(
        "\n<html>\n  <head><title>501 - Huh?</title></head>\n  <body>\n    <h1>Huh?</h1>\n    <p>I don't know how to treat a {} request.</p>\n  </body>\n</html>\n",
        crate::web::escape(method)
    );
    with_body(StatusCode::NOT_IMPLEMENTED, "text/html; charset=utf-8", body)
}
