//! JSON text exactly as Python's `json.dumps` writes it with its defaults.
//!
//! Scrapyd answers every API call with `json.dumps(obj) + "\n"`, and some clients and tests
//! compare those bytes. Python's defaults differ from `serde_json`'s compact output in two ways:
//! the separators are `", "` and `": "`, and `ensure_ascii` writes every non-ASCII character as
//! a lowercase `\uXXXX` escape (astral characters as a surrogate pair). [`PythonFormatter`] plugs
//! those rules into `serde_json`, so values keep their insertion order (the `preserve_order`
//! feature) and nothing is re-implemented beyond the formatting itself.

use serde::Serialize;
use serde_json::ser::{CharEscape, Formatter, Serializer};
use std::io::{self, Write};

/// A `serde_json` formatter that reproduces Python's `json.dumps` defaults.
#[derive(Debug, Default, Clone, Copy)]
pub struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_key<W: ?Sized + Write>(&mut self, writer: &mut W, first: bool) -> io::Result<()> {
        if first { Ok(()) } else { writer.write_all(b", ") }
    }

    fn begin_object_value<W: ?Sized + Write>(&mut self, writer: &mut W) -> io::Result<()> {
        writer.write_all(b": ")
    }

    fn write_string_fragment<W: ?Sized + Write>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()> {
        // `serde_json` hands over runs that need no JSON escaping; only non-ASCII remains to do.
        if fragment.bytes().all(|b| b < 0x7f) {
            return writer.write_all(fragment.as_bytes());
        }
        let mut ascii_start = 0;
        for (index, ch) in fragment.char_indices() {
            // Python escapes everything outside printable ASCII; serde_json has already escaped
            // the other control characters, but not DEL.
            if ch.is_ascii() && ch != '\x7f' {
                continue;
            }
            writer.write_all(&fragment.as_bytes()[ascii_start..index])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            ascii_start = index + ch.len_utf8();
        }
        writer.write_all(&fragment.as_bytes()[ascii_start..])
    }

    fn write_char_escape<W: ?Sized + Write>(&mut self, writer: &mut W, escape: CharEscape) -> io::Result<()> {
        // Python writes the same short escapes as serde_json, except that it spells other control
        // characters with lowercase hex digits.
        match escape {
            CharEscape::AsciiControl(byte) => write!(writer, "\\u{byte:04x}"),
            other => serde_json::ser::CompactFormatter.write_char_escape(writer, other),
        }
    }

    fn write_f64<W: ?Sized + Write>(&mut self, writer: &mut W, value: f64) -> io::Result<()> {
        // Python's float repr: `1.0` keeps its fraction, large magnitudes use `e+NN`.
        if value.is_finite() && value == value.trunc() && value.abs() < 1e16 {
            write!(writer, "{value:.1}")
        } else {
            serde_json::ser::CompactFormatter.write_f64(writer, value)
        }
    }
}

/// Serialises `value` as Python's `json.dumps(value)` would, without the trailing newline.
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    let mut serializer = Serializer::with_formatter(&mut out, PythonFormatter);
    // Serialising plain data (maps, strings, numbers) into a Vec cannot fail.
    value.serialize(&mut serializer).expect("JSON serialisation into memory");
    out
}

/// JSON text written piece by piece into a buffer, as `json.dumps` would write it, for answers
/// too large to serialise through structs: fixed text (keys, punctuation) is copied as it is and
/// values go through [`PythonFormatter`]. For a listing of 100,000 finished jobs, `serde_json`
/// spent a third of its time escaping the same key names over and over.
pub struct JsonText<'a>(pub &'a mut Vec<u8>);

impl JsonText<'_> {
    /// Text that is already JSON.
    pub fn raw(&mut self, text: &str) -> &mut Self {
        self.0.extend_from_slice(text.as_bytes());
        self
    }

    /// A string value; one of printable ASCII without quotes or backslashes, the usual kind, is
    /// copied without looking for escapes twice.
    pub fn str(&mut self, value: &str) -> &mut Self {
        if value.bytes().all(|b| (b' '..0x7f).contains(&b) && b != b'"' && b != b'\\') {
            self.0.push(b'"');
            self.0.extend_from_slice(value.as_bytes());
            self.0.push(b'"');
            self
        } else {
            self.value(value)
        }
    }

    /// Any other value.
    pub fn value<T: Serialize + ?Sized>(&mut self, value: &T) -> &mut Self {
        let mut serializer = Serializer::with_formatter(&mut *self.0, PythonFormatter);
        // Serialising plain data into a Vec cannot fail.
        value.serialize(&mut serializer).expect("JSON serialisation into memory");
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dumps(value: serde_json::Value) -> String {
        String::from_utf8(to_python_json(&value)).unwrap()
    }

    #[test]
    fn separators_and_key_order_follow_python() {
        let value = json!({"spiders": ["a", "b"], "status": "ok", "node_name": "n"});
        assert_eq!(dumps(value), r#"{"spiders": ["a", "b"], "status": "ok", "node_name": "n"}"#);
        assert_eq!(dumps(json!({})), "{}");
        assert_eq!(dumps(json!([])), "[]");
        assert_eq!(dumps(json!({"a": {"b": []}})), r#"{"a": {"b": []}}"#);
    }

    #[test]
    fn non_ascii_is_escaped_with_lowercase_hex() {
        assert_eq!(dumps(json!("ara\u{f1}a1")), r#""ara\u00f1a1""#);
        assert_eq!(dumps(json!("\u{1F577}")), r#""\ud83d\udd77""#);
        assert_eq!(dumps(json!("\u{2028}x\u{e9}")), r#""\u2028x\u00e9""#);
        assert_eq!(dumps(json!("a\x7fb")), r#""a\u007fb""#);
    }

    #[test]
    fn control_characters_and_slashes_match_python() {
        assert_eq!(dumps(json!("a/b\n\t\"\\\u{1}\u{1f}")), r#""a/b\n\t\"\\\u0001\u001f""#);
    }

    #[test]
    fn text_written_piece_by_piece_matches_the_serialised_value() {
        for text in ["plain-id_1.2", "quote\"d", "back\\slash", "tab\t", "caf\u{e9}", "del\x7f", ""] {
            let mut out = Vec::new();
            JsonText(&mut out).raw("{\"id\": ").str(text).raw(", \"n\": ").value(&Some(3)).raw("}");
            assert_eq!(String::from_utf8(out).unwrap(), dumps(json!({"id": text, "n": 3})), "{text:?}");
        }
    }

    #[test]
    fn numbers_match_python_repr() {
        assert_eq!(dumps(json!([0, -3, 1.0, 2.5, null, true])), "[0, -3, 1.0, 2.5, null, true]");
    }
}
