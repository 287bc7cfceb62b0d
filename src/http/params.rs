//! Request parameters, parsed exactly as Twisted builds `request.args` for Scrapyd.
//!
//! The rules (reference §1.2): the query string is always read; the body only for an upper-case
//! `POST` that has a `Content-Type` and a non-empty body. Pairs split on `&` and `;`, a pair
//! without `=` is dropped, `+` is a space, percent escapes are decoded at the byte level and blank
//! values are kept. A body key replaces the query key's whole value list (a Python `dict.update`),
//! keeping the key's original position.
//!
//! Values stay bytes until an endpoint asks for text, because Scrapyd reports invalid UTF-8 per
//! parameter, in the endpoint's own order. A value larger than [`SPILL_THRESHOLD`] (in practice
//! an egg, sent either as a multipart file or url-encoded into the body) is written to a
//! temporary file as it arrives instead of being held in memory.

use bytes::Bytes;
use futures_util::Stream;
use indexmap::IndexMap;
use std::io::{self, Write};
use std::path::Path;
use tempfile::NamedTempFile;

/// Values up to this size stay in memory; larger ones go to a temporary file.
pub const SPILL_THRESHOLD: usize = 256 * 1024;

/// Parameter names are never legitimately large; a longer one is refused instead of buffered.
pub const MAX_NAME_LEN: usize = 64 * 1024;

/// The most values one request body may carry: far more than any client sends, few enough that
/// their bookkeeping stays small.
pub const MAX_VALUES: usize = 100_000;

/// The most bytes of values one request body may keep in memory (values under
/// [`SPILL_THRESHOLD`] each); many small values must not add up to an unbounded allocation.
pub const MAX_INLINE_BYTES: u64 = 64 * 1024 * 1024;

/// One value of a parameter: bytes in memory, or a spilled temporary file.
#[derive(Debug)]
pub enum Value {
    Inline(Vec<u8>),
    Spooled(SpooledValue),
}

/// A value written to a temporary file because it was large. The file is removed on drop.
#[derive(Debug)]
pub struct SpooledValue {
    pub file: NamedTempFile,
    pub len: u64,
}

impl Value {
    /// The value's bytes, reading a spilled value back into memory.
    pub fn into_bytes(self) -> io::Result<Vec<u8>> {
        match self {
            Value::Inline(bytes) => Ok(bytes),
            Value::Spooled(spooled) => std::fs::read(spooled.file.path()),
        }
    }

    /// The value's length in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Value::Inline(bytes) => bytes.len() as u64,
            Value::Spooled(spooled) => spooled.len,
        }
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An ordered multimap of parameter name to values, as Twisted's `request.args`.
#[derive(Debug, Default)]
pub struct Params {
    entries: IndexMap<Vec<u8>, Vec<Value>>,
}

impl Params {
    /// Parses a query string (the part after `?`).
    pub fn from_query(query: &[u8]) -> Params {
        let mut params = Params::default();
        for (name, value) in parse_pairs(query) {
            params.push(name, Value::Inline(value));
        }
        params
    }

    /// Appends a value, accumulating repeated names in order.
    pub fn push(&mut self, name: Vec<u8>, value: Value) {
        self.entries.entry(name).or_default().push(value);
    }

    /// Appends a value from a request body, keeping the body within [`MAX_VALUES`] values and
    /// [`MAX_INLINE_BYTES`] of values held in memory (`inline` counts them so far).
    fn push_counted(&mut self, name: Vec<u8>, value: Value, count: &mut Budget) -> Result<(), BodyError> {
        count.values += 1;
        if let Value::Inline(bytes) = &value {
            count.inline_bytes += (bytes.len() + name.len()) as u64;
        }
        if count.values > MAX_VALUES || count.inline_bytes > MAX_INLINE_BYTES {
            return Err(BodyError::TooManyValues);
        }
        self.push(name, value);
        Ok(())
    }

    /// Merges a body's parameters over these, as Python's `dict.update`: a body name replaces the
    /// whole value list of the same name and keeps that name's position.
    pub fn update(&mut self, body: Params) {
        for (name, values) in body.entries {
            self.entries.insert(name, values);
        }
    }

    /// Removes a parameter and returns all of its values.
    pub fn take_all(&mut self, name: &str) -> Option<Vec<Value>> {
        self.entries.shift_remove(name.as_bytes())
    }

    /// Removes a parameter and returns its first value (Scrapyd ignores the others).
    pub fn take_first(&mut self, name: &str) -> Option<Value> {
        self.take_all(name).and_then(|values| values.into_iter().next())
    }

    /// Removes and returns every remaining parameter with its first value, in order.
    pub fn drain_first(&mut self) -> Vec<(Vec<u8>, Value)> {
        self.entries
            .drain(..)
            .filter_map(|(name, values)| values.into_iter().next().map(|value| (name, value)))
            .collect()
    }

    /// Whether a parameter is present.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name.as_bytes())
    }

    /// The number of distinct parameter names.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Splits `name=value` pairs on `&` and `;` and decodes them as Twisted's `parse_qs` does.
pub fn parse_pairs(input: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    input
        .split(|&b| b == b'&' || b == b';')
        .filter_map(|pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            Some((unquote_plus(&pair[..eq]), unquote_plus(&pair[eq + 1..])))
        })
        .collect()
}

/// `+` becomes a space, then `%XX` escapes are decoded; a malformed escape stays literal.
pub fn unquote_plus(input: &[u8]) -> Vec<u8> {
    let mut decoder = PercentDecoder::default();
    let mut out = Vec::with_capacity(input.len());
    decoder.feed(input, &mut out);
    decoder.finish(&mut out);
    out
}

/// Percent-decodes a URL path segment (`+` stays `+`), as Twisted does for resource lookup.
pub fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut decoder = PercentDecoder { pending: None, plus_is_space: false };
    decoder.feed(input, &mut out);
    decoder.finish(&mut out);
    out
}

/// A percent decoder that can be fed in chunks, so an escape may straddle two network reads.
#[derive(Debug, Clone, Copy)]
struct PercentDecoder {
    /// `None` outside an escape; `Some(None)` after `%`; `Some(Some(h))` after `%` and one digit.
    pending: Option<Option<u8>>,
    /// Form encoding writes a space as `+`; paths do not.
    plus_is_space: bool,
}

impl Default for PercentDecoder {
    fn default() -> Self {
        PercentDecoder { pending: None, plus_is_space: true }
    }
}

impl PercentDecoder {
    fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &byte in input {
            self.push(byte, out);
        }
    }

    fn push(&mut self, byte: u8, out: &mut Vec<u8>) {
        match self.pending {
            None if byte == b'%' => self.pending = Some(None),
            None => out.push(if byte == b'+' && self.plus_is_space { b' ' } else { byte }),
            Some(None) => match hex_value(byte) {
                Some(_) => self.pending = Some(Some(byte)),
                None => {
                    out.push(b'%');
                    self.pending = None;
                    self.push(byte, out);
                }
            },
            Some(Some(first)) => {
                self.pending = None;
                match (hex_value(first), hex_value(byte)) {
                    (Some(high), Some(low)) => out.push(high << 4 | low),
                    _ => {
                        out.extend_from_slice(&[b'%', first]);
                        self.push(byte, out);
                    }
                }
            }
        }
    }

    /// Flushes an escape left unfinished at the end of a name or value.
    fn finish(&mut self, out: &mut Vec<u8>) {
        match self.pending.take() {
            None => {}
            Some(None) => out.push(b'%'),
            Some(Some(first)) => out.extend_from_slice(&[b'%', first]),
        }
    }
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char).to_digit(16).map(|digit| digit as u8)
}

/// Why a request body could not be turned into parameters.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The body is larger than `max_upload_size`.
    #[error("the request body is larger than max_upload_size ({limit} bytes)")]
    TooLarge { limit: u64 },
    /// A multipart body that cannot be parsed; Twisted answers 400 and closes the connection.
    #[error("malformed multipart body: {0}")]
    MalformedMultipart(String),
    /// A multipart body that ends before its closing boundary: an interrupted upload.
    #[error("the multipart body is incomplete: {0}")]
    IncompleteMultipart(String),
    /// A parameter name longer than [`MAX_NAME_LEN`].
    #[error("a parameter name is longer than {MAX_NAME_LEN} bytes")]
    NameTooLong,
    /// More than [`MAX_VALUES`] values, or more than [`MAX_INLINE_BYTES`] of small ones.
    #[error("the request carries more than {MAX_VALUES} values or {MAX_INLINE_BYTES} bytes of small values")]
    TooManyValues,
    /// Reading the body or writing a spilled value failed.
    #[error("could not receive the request body: {0}")]
    Io(#[from] io::Error),
}

/// What a request body has used of its allowance so far.
#[derive(Debug, Default)]
struct Budget {
    values: usize,
    inline_bytes: u64,
}

/// Collects one value, moving it to a temporary file once it outgrows [`SPILL_THRESHOLD`].
struct ValueSink<'a> {
    upload_dir: &'a Path,
    memory: Vec<u8>,
    file: Option<(std::io::BufWriter<NamedTempFile>, u64)>,
}

impl<'a> ValueSink<'a> {
    fn new(upload_dir: &'a Path) -> Self {
        ValueSink { upload_dir, memory: Vec::new(), file: None }
    }

    fn write(&mut self, bytes: &[u8]) -> io::Result<()> {
        if let Some((writer, len)) = &mut self.file {
            writer.write_all(bytes)?;
            *len += bytes.len() as u64;
            return Ok(());
        }
        self.memory.extend_from_slice(bytes);
        if self.memory.len() > SPILL_THRESHOLD {
            std::fs::create_dir_all(self.upload_dir)?;
            let mut writer = std::io::BufWriter::with_capacity(
                256 * 1024,
                tempfile::Builder::new().prefix(".upload-").tempfile_in(self.upload_dir)?,
            );
            writer.write_all(&self.memory)?;
            self.file = Some((writer, self.memory.len() as u64));
            self.memory = Vec::new();
        }
        Ok(())
    }

    fn finish(self) -> io::Result<Value> {
        match self.file {
            None => Ok(Value::Inline(self.memory)),
            Some((writer, len)) => {
                let file = writer.into_inner().map_err(|err| err.into_error())?;
                Ok(Value::Spooled(SpooledValue { file, len }))
            }
        }
    }
}

/// Incremental `application/x-www-form-urlencoded` parser: names are kept in memory, values go
/// through a [`ValueSink`], so a url-encoded egg (as ScrapydWeb and SpiderKeeper send it) is never
/// held in memory whole.
struct UrlencodedParser<'a> {
    upload_dir: &'a Path,
    params: Params,
    budget: Budget,
    name: Vec<u8>,
    name_decoder: PercentDecoder,
    value: Option<(ValueSink<'a>, PercentDecoder)>,
    scratch: Vec<u8>,
}

impl<'a> UrlencodedParser<'a> {
    fn new(upload_dir: &'a Path) -> Self {
        UrlencodedParser {
            upload_dir,
            params: Params::default(),
            budget: Budget::default(),
            name: Vec::new(),
            name_decoder: PercentDecoder::default(),
            value: None,
            scratch: Vec::new(),
        }
    }

    fn feed(&mut self, mut chunk: &[u8]) -> Result<(), BodyError> {
        while !chunk.is_empty() {
            let stop = chunk.iter().position(|&b| matches!(b, b'&' | b';') || (b == b'=' && self.value.is_none()));
            let (run, rest) = match stop {
                Some(index) => (&chunk[..index], Some((chunk[index], &chunk[index + 1..]))),
                None => (chunk, None),
            };
            self.absorb(run)?;
            match rest {
                Some((b'=', tail)) => {
                    self.value = Some((ValueSink::new(self.upload_dir), PercentDecoder::default()));
                    chunk = tail;
                }
                Some((_, tail)) => {
                    self.end_pair()?;
                    chunk = tail;
                }
                None => chunk = &[],
            }
        }
        Ok(())
    }

    /// Adds bytes that contain no separator to the current name or value.
    fn absorb(&mut self, run: &[u8]) -> Result<(), BodyError> {
        match &mut self.value {
            None => {
                self.name.extend_from_slice(run);
                if self.name.len() > MAX_NAME_LEN {
                    return Err(BodyError::NameTooLong);
                }
            }
            Some((sink, decoder)) => {
                self.scratch.clear();
                decoder.feed(run, &mut self.scratch);
                sink.write(&self.scratch)?;
            }
        }
        Ok(())
    }

    /// Ends a pair at `&`, `;` or the end of the body; a pair without `=` is dropped.
    fn end_pair(&mut self) -> Result<(), BodyError> {
        let raw_name = std::mem::take(&mut self.name);
        if let Some((mut sink, mut decoder)) = self.value.take() {
            self.scratch.clear();
            decoder.finish(&mut self.scratch);
            sink.write(&self.scratch)?;
            let mut name = Vec::with_capacity(raw_name.len());
            self.name_decoder = PercentDecoder::default();
            self.name_decoder.feed(&raw_name, &mut name);
            self.name_decoder.finish(&mut name);
            let value = sink.finish()?;
            self.params.push_counted(name, value, &mut self.budget)?;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<Params, BodyError> {
        self.end_pair()?;
        Ok(self.params)
    }
}

/// The kind of body a request carries, from its `Content-Type`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    Urlencoded,
    Multipart {
        boundary: Option<String>,
    },
    /// Any other type: the body is ignored, as Twisted does.
    Ignored,
}

impl BodyKind {
    /// Classifies a `Content-Type` value; parameters such as `charset` are ignored.
    pub fn from_content_type(content_type: &str) -> BodyKind {
        let mime = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match mime.as_str() {
            "application/x-www-form-urlencoded" => BodyKind::Urlencoded,
            "multipart/form-data" => BodyKind::Multipart { boundary: multer::parse_boundary(content_type).ok() },
            _ => BodyKind::Ignored,
        }
    }
}

/// Reads a request body into parameters, streaming large values to files in `upload_dir`.
///
/// `body` yields the raw body chunks; the caller has already capped its length at `limit`, and
/// reports an over-long body as an `io::Error` of kind `FileTooLarge`.
pub async fn read_body<S>(kind: BodyKind, body: S, upload_dir: &Path, limit: u64) -> Result<Params, BodyError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static,
{
    use futures_util::StreamExt;
    let too_large = |err: io::Error| {
        if err.kind() == io::ErrorKind::FileTooLarge { BodyError::TooLarge { limit } } else { BodyError::Io(err) }
    };
    match kind {
        BodyKind::Ignored => Ok(Params::default()),
        BodyKind::Urlencoded => {
            let mut body = body;
            let mut parser = UrlencodedParser::new(upload_dir);
            while let Some(chunk) = body.next().await {
                parser.feed(&chunk.map_err(too_large)?)?;
            }
            parser.finish()
        }
        BodyKind::Multipart { boundary: None } => {
            Err(BodyError::MalformedMultipart("the Content-Type has no boundary".into()))
        }
        BodyKind::Multipart { boundary: Some(boundary) } => read_multipart(body, boundary, upload_dir, limit).await,
    }
}

async fn read_multipart<S>(body: S, boundary: String, upload_dir: &Path, limit: u64) -> Result<Params, BodyError>
where
    S: Stream<Item = io::Result<Bytes>> + Send + Unpin + 'static,
{
    let constraints = multer::Constraints::new().size_limit(multer::SizeLimit::new().whole_stream(limit));
    let mut multipart = multer::Multipart::with_constraints(body, boundary, constraints);
    let mut params = Params::default();
    let mut budget = Budget::default();
    let classify = |err: multer::Error| match err {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            BodyError::TooLarge { limit }
        }
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<io::Error>() {
            Ok(io) if io.kind() == io::ErrorKind::FileTooLarge => BodyError::TooLarge { limit },
            Ok(io) => BodyError::Io(*io),
            Err(other) => BodyError::MalformedMultipart(other.to_string()),
        },
        incomplete @ (multer::Error::IncompleteStream
        | multer::Error::IncompleteFieldData { .. }
        | multer::Error::IncompleteHeaders) => BodyError::IncompleteMultipart(incomplete.to_string()),
        other => BodyError::MalformedMultipart(other.to_string()),
    };
    // A body in which no part ever started is malformed (stock: 400, empty); one that stops in
    // the middle is an interrupted upload, which deserves a message.
    let mut started = false;
    let classify = |err: multer::Error, started: bool| match classify(err) {
        BodyError::IncompleteMultipart(reason) if !started => BodyError::MalformedMultipart(reason),
        other => other,
    };
    while let Some(mut field) = multipart.next_field().await.map_err(|err| classify(err, started))? {
        started = true;
        // Parts without a name are ignored; file parts and plain fields are treated alike.
        let Some(name) = field.name().map(|name| name.as_bytes().to_vec()) else { continue };
        let encoding = field
            .headers()
            .get("content-transfer-encoding")
            .and_then(|value| value.to_str().ok())
            .map(|value| value.trim().to_ascii_lowercase());
        let mut sink = ValueSink::new(upload_dir);
        match encoding.as_deref() {
            // Encoded parts (rare, and small in practice) are decoded whole, as Python's email
            // parser decodes them; every other part streams straight into its sink.
            Some(encoding @ ("base64" | "quoted-printable")) => {
                let mut raw = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(|err| classify(err, true))? {
                    raw.extend_from_slice(&chunk);
                }
                sink.write(&if encoding == "base64" { decode_base64(&raw) } else { decode_quoted_printable(&raw) })?;
            }
            _ => {
                while let Some(chunk) = field.chunk().await.map_err(|err| classify(err, true))? {
                    sink.write(&chunk)?;
                }
            }
        }
        params.push_counted(name, sink.finish()?, &mut budget)?;
    }
    if !started {
        // Only a closing boundary: Python's email parser sees no multipart message at all.
        return Err(BodyError::MalformedMultipart("the body has no parts".into()));
    }
    Ok(params)
}

/// A base64 part's payload, ignoring line breaks and other characters outside the alphabet as
/// Python's `email` package does; undecodable input is kept as it is.
fn decode_base64(raw: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let cleaned: Vec<u8> =
        raw.iter().copied().filter(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/')).collect();
    base64::engine::general_purpose::STANDARD_NO_PAD.decode(&cleaned).unwrap_or_else(|_| raw.to_vec())
}

/// A quoted-printable part's payload: `=XX` escapes and `=` soft line breaks.
fn decode_quoted_printable(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        match &raw[i..] {
            [b'=', b'\r', b'\n', ..] => i += 3,
            [b'=', b'\n', ..] => i += 2,
            [b'=', high, low, ..] if hex_value(*high).is_some() && hex_value(*low).is_some() => {
                out.push(hex_value(*high).unwrap_or(0) << 4 | hex_value(*low).unwrap_or(0));
                i += 3;
            }
            [byte, ..] => {
                out.push(*byte);
                i += 1;
            }
            [] => break,
        }
    }
    out
}

/// The error Python's strict UTF-8 decoder reports, e.g.
/// `'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte`.
pub fn python_utf8_error(bytes: &[u8], error: std::str::Utf8Error) -> String {
    let start = error.valid_up_to();
    let (end, reason) = match error.error_len() {
        None => (bytes.len(), "unexpected end of data"),
        Some(len) => {
            let first = bytes[start];
            let bad_start = (0x80..=0xc1).contains(&first) || first >= 0xf5;
            (start + len, if bad_start { "invalid start byte" } else { "invalid continuation byte" })
        }
    };
    if end - start == 1 {
        format!("'utf-8' codec can't decode byte 0x{:02x} in position {start}: {reason}", bytes[start])
    } else {
        format!("'utf-8' codec can't decode bytes in position {start}-{}: {reason}", end - 1)
    }
}

/// A bytes value as Python's `repr(bytes)` writes it, e.g. `b'x'` or `b'\xff'`.
pub fn python_bytes_repr(bytes: &[u8]) -> String {
    let quote = if bytes.contains(&b'\'') && !bytes.contains(&b'"') { '"' } else { '\'' };
    let mut out = format!("b{quote}");
    for &byte in bytes {
        match byte {
            b'\\' => out.push_str("\\\\"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\'' if quote == '\'' => out.push_str("\\'"),
            0x20..=0x7e => out.push(byte as char),
            _ => out.push_str(&format!("\\x{byte:02x}")),
        }
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(input: &str) -> Vec<(String, String)> {
        parse_pairs(input.as_bytes())
            .into_iter()
            .map(|(n, v)| (String::from_utf8(n).unwrap(), String::from_utf8(v).unwrap()))
            .collect()
    }

    #[test]
    fn query_pairs_follow_twisted() {
        assert_eq!(pairs("a=1&b=2;c=3"), [("a", "1"), ("b", "2"), ("c", "3")].map(|(a, b)| (a.into(), b.into())));
        assert_eq!(pairs("project&x=&=v"), [("x", ""), ("", "v")].map(|(a, b)| (a.into(), b.into())));
        assert_eq!(pairs("a=b=c"), [("a".into(), "b=c".into())]);
        assert_eq!(pairs("k=a+b%2B%41%zz%4"), [("k".into(), "a b+A%zz%4".into())]);
    }

    #[test]
    fn body_replaces_query_values_in_place() {
        let mut params = Params::from_query(b"project=p&spider=nonexist&x=1&x=2");
        let body = Params::from_query(b"spider=spider1&jobid=j");
        params.update(body);
        let names: Vec<_> = params.entries.keys().map(|k| String::from_utf8(k.clone()).unwrap()).collect();
        assert_eq!(names, ["project", "spider", "x", "jobid"]);
        assert_eq!(params.take_first("spider").unwrap().into_bytes().unwrap(), b"spider1");
        assert_eq!(params.take_all("x").unwrap().len(), 2);
    }

    #[test]
    fn urlencoded_parser_handles_escapes_split_across_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let body = b"egg=%00%FFab%2&x=1;noeq&y=%4";
        for split in 0..body.len() {
            let mut parser = UrlencodedParser::new(dir.path());
            parser.feed(&body[..split]).unwrap();
            parser.feed(&body[split..]).unwrap();
            let mut params = parser.finish().unwrap();
            assert_eq!(params.take_first("egg").unwrap().into_bytes().unwrap(), b"\x00\xffab%2", "split {split}");
            assert_eq!(params.take_first("x").unwrap().into_bytes().unwrap(), b"1");
            assert_eq!(params.take_first("y").unwrap().into_bytes().unwrap(), b"%4");
            assert!(params.is_empty());
        }
    }

    #[test]
    fn large_values_spill_to_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut parser = UrlencodedParser::new(dir.path());
        let big = vec![b'z'; SPILL_THRESHOLD * 3];
        parser.feed(b"egg=").unwrap();
        for chunk in big.chunks(1000) {
            parser.feed(chunk).unwrap();
        }
        let mut params = parser.finish().unwrap();
        let value = params.take_first("egg").unwrap();
        assert!(matches!(value, Value::Spooled(_)));
        assert_eq!(value.len(), big.len() as u64);
        assert_eq!(value.into_bytes().unwrap(), big);
    }

    #[test]
    fn utf8_errors_read_like_python() {
        let check = |bytes: &[u8], expected: &str| {
            let error = std::str::from_utf8(bytes).unwrap_err();
            assert_eq!(python_utf8_error(bytes, error), expected);
        };
        check(b"\xc3(", "'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte");
        check(b"ab\xff", "'utf-8' codec can't decode byte 0xff in position 2: invalid start byte");
        check(b"\xe2\x82", "'utf-8' codec can't decode bytes in position 0-1: unexpected end of data");
        check(b"\xe2\x82(", "'utf-8' codec can't decode bytes in position 0-1: invalid continuation byte");
        check(b"\x80", "'utf-8' codec can't decode byte 0x80 in position 0: invalid start byte");
    }

    #[test]
    fn encoded_parts_are_decoded() {
        assert_eq!(decode_base64(b"YWJj\r\nZGVm"), b"abcdef");
        assert_eq!(decode_base64(b"YWJjZA=="), b"abcd");
        assert_eq!(decode_quoted_printable(b"a=3Db=\r\nc=ZZ"), b"a=bc=ZZ");
    }

    #[test]
    fn bytes_repr_reads_like_python() {
        assert_eq!(python_bytes_repr(b"x"), "b'x'");
        assert_eq!(python_bytes_repr(b""), "b''");
        assert_eq!(python_bytes_repr(b"\xff\n'"), "b\"\\xff\\n'\"");
        assert_eq!(python_bytes_repr(b"'\""), "b'\\'\"'");
    }
}
