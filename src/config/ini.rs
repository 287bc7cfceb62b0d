//! A reader for INI files with the exact semantics of Python 3.11's
//! `configparser.ConfigParser()` in its default configuration.
//!
//! Stock Scrapyd reads its configuration with `ConfigParser().read(files)`,
//! so every quirk of that parser is observable by users: `=` and `:` both
//! delimit, option names are lower-cased while section names are not,
//! inline comments are *not* stripped, indented lines continue a value
//! (blank lines inside a value are kept), `[DEFAULT]` keys leak into every
//! section, duplicate sections/options inside one file are errors, and
//! `%(name)s` interpolation happens when a value is fetched, not when it is
//! read. This module reproduces all of that, line for line, from
//! `RawConfigParser._read`, `_join_multiline_values` and
//! `BasicInterpolation`, and records where every value came from so that
//! errors further up can name the file and line.
//!
//! The same reader parses an egg's `EGG-INFO/entry_points.txt`, which
//! setuptools and Scrapyd also read with `ConfigParser`.
//!
//! Deliberate differences from Python:
//! * Files are decoded as UTF-8 (Python uses the locale encoding, which is
//!   UTF-8 on every system Scrapyd is deployed to); a byte order mark is
//!   *not* skipped, exactly as Python's `utf-8` codec does not skip it.
//! * Python collects every malformed line into one `ParsingError`; we do
//!   too, but the error's headline location is the first bad line.
//! * After a failed read the parser may hold the part of the file that was
//!   read before the error, as Python's does; callers abort anyway.

use std::fmt;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;

/// The name of the section whose keys act as defaults for every section.
pub const DEFAULT_SECTION: &str = "DEFAULT";

/// Python's `configparser.MAX_INTERPOLATION_DEPTH`.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// Where an option was set: the file and the 1-based line on which the
/// option's first line stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file (or pseudo-file name, for embedded text) the value came from.
    pub path: PathBuf,
    /// 1-based line number of the `name = value` line.
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}, line {}", self.path.display(), self.line)
    }
}

/// Everything that can go wrong reading or interpolating an INI file. The
/// variants mirror Python's exception classes (see [`IniError::kind`]) so
/// that tests can be compared with the real `configparser`.
#[derive(Debug, thiserror::Error)]
pub enum IniError {
    /// The file exists but could not be read.
    #[error("{}: cannot read file: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid UTF-8 (Python: `UnicodeDecodeError`).
    #[error("{location}: file is not valid UTF-8")]
    NotUtf8 { location: Location },
    /// A non-comment line appears before the first `[section]` header.
    #[error("{location}: file contains no [section] header before this line: {text:?}")]
    MissingSectionHeader { location: Location, text: String },
    /// One or more lines are neither a section header, an option, a comment,
    /// a continuation nor blank. `location` is the first such line.
    #[error("{location}: line is neither a [section] header nor `name = value`: {text:?}{}", more_lines(others))]
    Parsing {
        location: Location,
        text: String,
        /// Line numbers of further bad lines in the same file.
        others: Vec<usize>,
    },
    /// A section header repeats within one file (Python's strict mode).
    #[error("{location}: section [{section}] already exists in this file")]
    DuplicateSection { location: Location, section: String },
    /// An option repeats within one section of one file (strict mode).
    #[error("{location}: option `{option}` in section [{section}] already exists in this file")]
    DuplicateOption { location: Location, section: String, option: String },
    /// A `%` that is not `%%` or a well-formed `%(name)s`.
    #[error("{}: bad value for option `{}` in section [{}]: {message}", context.location, context.option, context.section)]
    InterpolationSyntax { context: Box<InterpolationContext>, message: String },
    /// `%(name)s` names an option that exists neither in the section nor in
    /// `[DEFAULT]`.
    #[error("{}: option `{}` in section [{}] refers to `%({reference})s`, which is not an option of that section or [DEFAULT] (raw value: {:?}; write `%%` for a literal `%`)", context.location, context.option, context.section, context.raw)]
    InterpolationMissingOption { context: Box<InterpolationContext>, reference: String },
    /// Interpolation recursed deeper than Python's limit of 10 (usually a
    /// reference cycle).
    #[error("{}: value of option `{}` in section [{}] contains too deeply nested or circular `%(name)s` references (raw value: {:?})", context.location, context.option, context.section, context.raw)]
    InterpolationDepth { context: Box<InterpolationContext> },
}

/// The option an interpolation error is about (boxed to keep `IniError`
/// small).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterpolationContext {
    /// Where the option being fetched was set.
    pub location: Location,
    /// The section it was fetched from.
    pub section: String,
    /// The option name (after `optionxform`).
    pub option: String,
    /// Its raw, uninterpolated value.
    pub raw: String,
}

fn more_lines(others: &[usize]) -> String {
    if others.is_empty() {
        return String::new();
    }
    let list: Vec<String> = others.iter().map(ToString::to_string).collect();
    format!(" (further bad lines: {})", list.join(", "))
}

impl IniError {
    /// The name of the Python exception this error corresponds to.
    pub fn kind(&self) -> &'static str {
        match self {
            IniError::Io { .. } => "OSError",
            IniError::NotUtf8 { .. } => "UnicodeDecodeError",
            IniError::MissingSectionHeader { .. } => "MissingSectionHeaderError",
            IniError::Parsing { .. } => "ParsingError",
            IniError::DuplicateSection { .. } => "DuplicateSectionError",
            IniError::DuplicateOption { .. } => "DuplicateOptionError",
            IniError::InterpolationSyntax { .. } => "InterpolationSyntaxError",
            IniError::InterpolationMissingOption { .. } => "InterpolationMissingOptionError",
            IniError::InterpolationDepth { .. } => "InterpolationDepthError",
        }
    }

    /// The file and line the error is about, when there is one.
    pub fn location(&self) -> Option<&Location> {
        match self {
            IniError::Io { .. } => None,
            IniError::NotUtf8 { location }
            | IniError::MissingSectionHeader { location, .. }
            | IniError::Parsing { location, .. }
            | IniError::DuplicateSection { location, .. }
            | IniError::DuplicateOption { location, .. } => Some(location),
            IniError::InterpolationSyntax { context, .. }
            | IniError::InterpolationMissingOption { context, .. }
            | IniError::InterpolationDepth { context } => Some(&context.location),
        }
    }
}

/// One stored option value together with its provenance.
#[derive(Debug, Clone)]
struct Entry {
    value: String,
    location: Location,
}

type Options = IndexMap<String, Entry>;

/// A parsed set of INI sources, equivalent to one Python `ConfigParser`.
///
/// Sections and options keep their first-seen order (Python dicts keep
/// insertion order and re-assignment does not move a key). Reading several
/// files into the same `Ini` overrides earlier values option by option.
#[derive(Debug, Clone, Default)]
pub struct Ini {
    defaults: Options,
    sections: IndexMap<String, Options>,
}

/// Python's `str.isspace()`: Unicode White_Space plus the four ASCII
/// information separators U+001C..U+001F, which Python also treats as
/// whitespace (they have bidirectional class B or S).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Python's `str.strip()` with no argument.
fn py_strip(s: &str) -> &str {
    s.trim_matches(py_isspace)
}

/// Python's `optionxform`: `str.lower()` (full Unicode lower-casing,
/// including the final-sigma rule, which Rust also implements).
pub fn optionxform(name: &str) -> String {
    name.to_lowercase()
}

/// Splits text into lines the way Python's text-mode file iteration does
/// with universal newlines: `\r\n`, `\r` and `\n` all end a line.
fn universal_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let bytes = text.as_bytes();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                lines.push(&text[start..i]);
                i += 1;
                start = i;
            }
            b'\r' => {
                lines.push(&text[start..i]);
                i += if bytes.get(i + 1) == Some(&b'\n') { 2 } else { 1 };
                start = i;
            }
            _ => i += 1,
        }
    }
    if start < bytes.len() {
        lines.push(&text[start..]);
    }
    lines
}

/// Python's `SECTCRE.match(value)`: `\[(?P<header>.+)\]` anchored at the
/// start, greedy, so the header runs to the *last* `]` and anything after it
/// is ignored.
fn match_section_header(value: &str) -> Option<&str> {
    let rest = value.strip_prefix('[')?;
    let close = rest.rfind(']')?;
    (close > 0).then(|| &rest[..close])
}

/// Python's `OPTCRE.match(value)`: the option name is everything before the
/// first `=` or `:`; returns `(name, value)` both stripped.
fn match_option(value: &str) -> Option<(&str, &str)> {
    let at = value.find(['=', ':'])?;
    let name = value[..at].trim_end_matches(py_isspace);
    let val = py_strip(&value[at + 1..]);
    Some((name, val))
}

/// Which section the parser is currently filling.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cursor {
    Defaults,
    Section(String),
}

/// The mutable state of one `_read` call (one file).
struct FileReader<'a> {
    ini: &'a mut Ini,
    source: &'a Path,
    /// Python's `elements_added`: sections and (section, option) pairs seen
    /// in this file, for the strict duplicate checks.
    seen_sections: std::collections::HashSet<String>,
    seen_options: std::collections::HashSet<(String, String)>,
    cursor: Option<Cursor>,
    /// Python's `sectname`: the last header's name (`DEFAULT` included).
    sectname: String,
    /// Python's `optname`; `Some("")` is kept because it is falsy in Python
    /// yet still stored.
    optname: Option<String>,
    indent_level: usize,
    /// Bad lines (line number, text), reported at the end like Python.
    errors: Vec<(usize, String)>,
}

impl FileReader<'_> {
    fn location(&self, line: usize) -> Location {
        Location { path: self.source.to_path_buf(), line }
    }

    fn current_options(&mut self) -> Option<&mut Options> {
        match self.cursor.as_ref()? {
            Cursor::Defaults => Some(&mut self.ini.defaults),
            Cursor::Section(name) => self.ini.sections.get_mut(name),
        }
    }

    /// The entry that continuation lines append to, if Python's condition
    /// `cursect is not None and optname` holds.
    fn continued_entry(&mut self) -> Option<&mut Entry> {
        let name = self.optname.clone().filter(|n| !n.is_empty())?;
        self.current_options()?.get_mut(&name)
    }

    fn read(&mut self, text: &str) -> Result<(), IniError> {
        for (index, line) in universal_lines(text).into_iter().enumerate() {
            self.line(index + 1, line)?;
        }
        self.ini.join_multiline_values();
        self.parsing_error()
    }

    fn parsing_error(&mut self) -> Result<(), IniError> {
        let mut errors = std::mem::take(&mut self.errors).into_iter();
        match errors.next() {
            None => Ok(()),
            Some((line, text)) => {
                Err(IniError::Parsing { location: self.location(line), text, others: errors.map(|(n, _)| n).collect() })
            }
        }
    }

    fn line(&mut self, lineno: usize, line: &str) -> Result<(), IniError> {
        let stripped = py_strip(line);
        let is_comment = stripped.starts_with('#') || stripped.starts_with(';');
        let value = if is_comment { "" } else { stripped };
        if value.is_empty() {
            // empty_lines_in_values: a blank (non-comment) line is part of
            // the current value; it is trimmed off the end at join time.
            if !is_comment && let Some(entry) = self.continued_entry() {
                entry.value.push('\n');
            }
            return Ok(());
        }
        let indent = line.chars().take_while(|c| py_isspace(*c)).count();
        if indent > self.indent_level
            && let Some(entry) = self.continued_entry()
        {
            entry.value.push('\n');
            entry.value.push_str(value);
            return Ok(());
        }
        self.indent_level = indent;
        if let Some(header) = match_section_header(value) {
            return self.section_header(lineno, header);
        }
        if self.cursor.is_none() {
            return Err(IniError::MissingSectionHeader { location: self.location(lineno), text: line.to_string() });
        }
        match match_option(value) {
            Some((name, val)) => self.option(lineno, line, name, val),
            None => {
                self.errors.push((lineno, line.to_string()));
                Ok(())
            }
        }
    }

    fn section_header(&mut self, lineno: usize, header: &str) -> Result<(), IniError> {
        if self.ini.sections.contains_key(header) {
            if self.seen_sections.contains(header) {
                return Err(IniError::DuplicateSection {
                    location: self.location(lineno),
                    section: header.to_string(),
                });
            }
            self.seen_sections.insert(header.to_string());
            self.cursor = Some(Cursor::Section(header.to_string()));
        } else if header == DEFAULT_SECTION {
            self.cursor = Some(Cursor::Defaults);
        } else {
            self.ini.sections.insert(header.to_string(), Options::default());
            self.seen_sections.insert(header.to_string());
            self.cursor = Some(Cursor::Section(header.to_string()));
        }
        self.sectname = header.to_string();
        self.optname = None;
        Ok(())
    }

    fn option(&mut self, lineno: usize, line: &str, name: &str, val: &str) -> Result<(), IniError> {
        if name.is_empty() {
            // Python records the error but still stores the option.
            self.errors.push((lineno, line.to_string()));
        }
        let name = optionxform(name);
        let key = (self.sectname.clone(), name.clone());
        if self.seen_options.contains(&key) {
            return Err(IniError::DuplicateOption {
                location: self.location(lineno),
                section: self.sectname.clone(),
                option: name,
            });
        }
        self.seen_options.insert(key);
        let entry = Entry { value: val.to_string(), location: self.location(lineno) };
        if let Some(options) = self.current_options() {
            options.insert(name.clone(), entry);
        }
        self.optname = Some(name);
        Ok(())
    }
}

impl Ini {
    /// An empty parser (no sections, no defaults).
    pub fn new() -> Self {
        Self::default()
    }

    /// Reads one INI "file" whose content is `text`; `source` is only used
    /// for provenance and error messages. Strict duplicate checks apply
    /// within this text; values override those read earlier.
    pub fn read_str(&mut self, text: &str, source: &Path) -> Result<(), IniError> {
        FileReader {
            ini: self,
            source,
            seen_sections: Default::default(),
            seen_options: Default::default(),
            cursor: None,
            sectname: String::new(),
            optname: None,
            indent_level: 0,
            errors: Vec::new(),
        }
        .read(text)
    }

    /// Reads a file. Returns `Ok(false)` when there is nothing to read
    /// because the path does not exist or is a directory: Python's
    /// `ConfigParser.read()` skips such paths silently (it ignores every
    /// `OSError`; we only ignore these, so that e.g. a permission problem is
    /// reported instead of silently dropping the configuration).
    pub fn read_file(&mut self, path: &Path) -> Result<bool, IniError> {
        use std::io::ErrorKind;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err)
                if matches!(err.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory) =>
            {
                return Ok(false);
            }
            Err(source) => {
                return Err(IniError::Io { path: path.to_path_buf(), source });
            }
        };
        let text = decode_utf8(&bytes, path)?;
        self.read_str(text, path)?;
        Ok(true)
    }

    /// Python's `_join_multiline_values`: a value's lines were joined with
    /// `\n` while reading; trailing blank lines are removed here.
    fn join_multiline_values(&mut self) {
        let all = std::iter::once(&mut self.defaults).chain(self.sections.values_mut());
        for options in all {
            for entry in options.values_mut() {
                let trimmed = entry.value.trim_end_matches(py_isspace).len();
                entry.value.truncate(trimmed);
            }
        }
    }

    /// Section names in file order, without `DEFAULT` (as Python's
    /// `sections()`).
    pub fn sections(&self) -> Vec<&str> {
        self.sections.keys().map(String::as_str).collect()
    }

    /// Whether a section exists; `DEFAULT` never "exists" (as in Python).
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains_key(section)
    }

    /// The option names visible in `section`, in the order of Python's
    /// `items(section)`: `[DEFAULT]` keys first (in their order), then the
    /// section's own keys that are not defaults. A missing section yields an
    /// empty list; `DEFAULT` yields the default keys.
    pub fn options(&self, section: &str) -> Vec<String> {
        self.merged(section).map(|merged| merged.keys().map(ToString::to_string).collect()).unwrap_or_default()
    }

    /// Python's `items(section)` with interpolation, in [`Ini::options`]
    /// order. For a missing section this returns an empty list, which is
    /// what Scrapyd's `Config.items(section, default=[])` yields.
    pub fn items(&self, section: &str) -> Result<Vec<(String, String)>, IniError> {
        let Some(merged) = self.merged(section) else {
            return Ok(Vec::new());
        };
        merged
            .iter()
            .map(|(name, entry)| {
                let value = self.interpolate(section, name, entry, &merged)?;
                Ok((name.to_string(), value))
            })
            .collect()
    }

    /// The value of `option` in `section` (falling back to `[DEFAULT]`),
    /// with `%(name)s` interpolation applied. `Ok(None)` when the section or
    /// option does not exist.
    pub fn get(&self, section: &str, option: &str) -> Result<Option<String>, IniError> {
        let Some(merged) = self.merged(section) else {
            return Ok(None);
        };
        let name = optionxform(option);
        match merged.get(name.as_str()) {
            Some(entry) => self.interpolate(section, &name, entry, &merged).map(Some),
            None => Ok(None),
        }
    }

    /// The value as written (no interpolation), falling back to `[DEFAULT]`.
    pub fn get_raw(&self, section: &str, option: &str) -> Option<&str> {
        self.entry(section, option).map(|e| e.value.as_str())
    }

    /// Where the effective value of `option` in `section` was set.
    pub fn provenance(&self, section: &str, option: &str) -> Option<&Location> {
        self.entry(section, option).map(|e| &e.location)
    }

    fn entry(&self, section: &str, option: &str) -> Option<&Entry> {
        let name = optionxform(option);
        if section == DEFAULT_SECTION {
            return self.defaults.get(&name);
        }
        let options = self.sections.get(section)?;
        options.get(&name).or_else(|| self.defaults.get(&name))
    }

    /// Python's `_unify_values` / the dict built by `items()`: defaults
    /// overlaid with the section's own options. `None` if the section does
    /// not exist (`DEFAULT` always exists here).
    fn merged(&self, section: &str) -> Option<IndexMap<&str, &Entry>> {
        let own = if section == DEFAULT_SECTION { None } else { Some(self.sections.get(section)?) };
        let mut merged: IndexMap<&str, &Entry> = self.defaults.iter().map(|(k, v)| (k.as_str(), v)).collect();
        for (k, v) in own.into_iter().flatten() {
            merged.insert(k.as_str(), v);
        }
        Some(merged)
    }

    fn interpolate(
        &self,
        section: &str,
        option: &str,
        entry: &Entry,
        map: &IndexMap<&str, &Entry>,
    ) -> Result<String, IniError> {
        let ctx = Interpolation { section, option, entry, map };
        let mut out = String::new();
        ctx.some(&mut out, &entry.value, 1)?;
        Ok(out)
    }
}

/// Decodes file content as UTF-8, reporting the line of the first bad byte.
fn decode_utf8<'a>(bytes: &'a [u8], path: &Path) -> Result<&'a str, IniError> {
    std::str::from_utf8(bytes).map_err(|err| {
        let before = &bytes[..err.valid_up_to()];
        let line = 1 + before.iter().filter(|b| **b == b'\n').count();
        IniError::NotUtf8 { location: Location { path: path.to_path_buf(), line } }
    })
}

/// Python's `BasicInterpolation.before_get` for one option.
struct Interpolation<'a> {
    section: &'a str,
    option: &'a str,
    /// The entry being fetched; its raw value and location go into errors.
    entry: &'a Entry,
    map: &'a IndexMap<&'a str, &'a Entry>,
}

impl Interpolation<'_> {
    fn context(&self) -> Box<InterpolationContext> {
        Box::new(InterpolationContext {
            location: self.entry.location.clone(),
            section: self.section.to_string(),
            option: self.option.to_string(),
            raw: self.entry.value.clone(),
        })
    }

    fn syntax_error(&self, message: String) -> IniError {
        IniError::InterpolationSyntax { context: self.context(), message }
    }

    /// Python's `_interpolate_some`.
    fn some(&self, accum: &mut String, mut rest: &str, depth: usize) -> Result<(), IniError> {
        if depth > MAX_INTERPOLATION_DEPTH {
            return Err(IniError::InterpolationDepth { context: self.context() });
        }
        while !rest.is_empty() {
            let Some(p) = rest.find('%') else {
                accum.push_str(rest);
                return Ok(());
            };
            accum.push_str(&rest[..p]);
            rest = &rest[p..];
            if rest[1..].starts_with('%') {
                accum.push('%');
                rest = &rest[2..];
            } else if rest[1..].starts_with('(') {
                let (var, after) = match parse_reference(rest) {
                    Some(found) => found,
                    None => {
                        return Err(self.syntax_error(format!("bad interpolation variable reference {rest:?}")));
                    }
                };
                rest = after;
                let var = optionxform(var);
                let Some(target) = self.map.get(var.as_str()) else {
                    return Err(IniError::InterpolationMissingOption { context: self.context(), reference: var });
                };
                if target.value.contains('%') {
                    self.some(accum, &target.value, depth + 1)?;
                } else {
                    accum.push_str(&target.value);
                }
            } else {
                return Err(self.syntax_error(format!(
                    "'%' must be followed by '%' or '(', found: {rest:?} (write `%%` for a literal `%`)"
                )));
            }
        }
        Ok(())
    }
}

/// Python's `_KEYCRE.match(rest)`, `%\(([^)]+)\)s`: returns the name and
/// the text after the reference.
fn parse_reference(rest: &str) -> Option<(&str, &str)> {
    let inner = rest.strip_prefix("%(")?;
    let close = inner.find(')')?;
    if close == 0 {
        return None;
    }
    let after = inner[close + 1..].strip_prefix('s')?;
    Some((&inner[..close], after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn fixtures_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ini")
    }

    /// Groups `<case>.ini` / `<case>.<n>.ini` files the way generate.py does.
    fn fixture_cases() -> Vec<(String, Vec<PathBuf>)> {
        let mut groups: IndexMap<String, Vec<(u32, PathBuf)>> = IndexMap::new();
        let mut entries: Vec<PathBuf> = std::fs::read_dir(fixtures_dir())
            .expect("fixtures/ini exists")
            .map(|e| e.expect("dir entry").path())
            .filter(|p| p.extension().is_some_and(|e| e == "ini"))
            .collect();
        entries.sort();
        for path in entries {
            let stem = path.file_stem().and_then(|s| s.to_str()).expect("utf-8 name");
            let (case, n) = match stem.rsplit_once('.') {
                Some((case, n)) if n.chars().all(|c| c.is_ascii_digit()) => {
                    (case.to_string(), n.parse().expect("number"))
                }
                _ => (stem.to_string(), 0),
            };
            groups.entry(case).or_default().push((n, path));
        }
        groups
            .into_iter()
            .map(|(case, mut files)| {
                files.sort();
                (case, files.into_iter().map(|(_, p)| p).collect())
            })
            .collect()
    }

    fn actual_result(files: &[PathBuf]) -> Value {
        let mut ini = Ini::new();
        for file in files {
            match ini.read_file(file) {
                Ok(read) => assert!(read, "{} should be read", file.display()),
                Err(err) => {
                    let location = err.location().expect("read errors have a location");
                    let file_name = location.path.file_name().expect("file name");
                    return serde_json::json!({
                        "error": err.kind(),
                        "line": location.line,
                        "file": file_name.to_string_lossy(),
                    });
                }
            }
        }
        let mut sections = serde_json::Map::new();
        let mut names = Vec::new();
        if !ini.defaults.is_empty() {
            names.push(DEFAULT_SECTION);
        }
        names.extend(ini.sections());
        for section in names {
            let mut options = serde_json::Map::new();
            for option in ini.options(section) {
                let value = match ini.get(section, &option) {
                    Ok(v) => Value::String(v.expect("listed option exists")),
                    Err(err) => serde_json::json!({ "error": err.kind() }),
                };
                options.insert(option, value);
            }
            sections.insert(section.to_string(), Value::Object(options));
        }
        serde_json::json!({ "sections": sections })
    }

    #[test]
    fn differential_fixtures_match_python_configparser() {
        let cases = fixture_cases();
        assert!(cases.len() >= 25, "only {} fixture cases", cases.len());
        let mut failures = Vec::new();
        for (case, files) in &cases {
            let expected_path = fixtures_dir().join(format!("{case}.json"));
            let expected: Value =
                serde_json::from_str(&std::fs::read_to_string(&expected_path).expect("expected .json exists"))
                    .expect("valid JSON");
            let actual = actual_result(files);
            if actual != expected {
                failures.push(format!("case {case}:\n  expected {expected}\n  actual   {actual}"));
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    fn parse(text: &str) -> Result<Ini, IniError> {
        let mut ini = Ini::new();
        ini.read_str(text, Path::new("test.conf"))?;
        Ok(ini)
    }

    #[test]
    fn provenance_points_at_the_option_line() {
        let ini = parse("[s]\n\na = 1\n  more\n[DEFAULT]\nd = x\n").expect("parses");
        let loc = ini.provenance("s", "A").expect("a exists");
        assert_eq!(loc.line, 3);
        assert_eq!(loc.path, Path::new("test.conf"));
        assert_eq!(ini.provenance("s", "d").map(|l| l.line), Some(6));
        assert_eq!(ini.get_raw("s", "a"), Some("1\nmore"));
    }

    #[test]
    fn later_sources_override_option_by_option_and_keep_order() {
        let mut ini = Ini::new();
        ini.read_str("[s]\na = 1\nb = 2\n", Path::new("one")).expect("one");
        ini.read_str("[s]\nc = 3\na = 9\n", Path::new("two")).expect("two");
        assert_eq!(ini.options("s"), ["a", "b", "c"]);
        assert_eq!(ini.get("s", "a").expect("ok").as_deref(), Some("9"));
        assert_eq!(ini.provenance("s", "a").map(|l| l.path.clone()), Some("two".into()));
        assert_eq!(ini.provenance("s", "b").map(|l| l.path.clone()), Some("one".into()));
    }

    #[test]
    fn error_display_names_file_and_line() {
        let err = parse("[s]\na = 1\na = 2\n").expect_err("duplicate");
        assert_eq!(err.to_string(), "test.conf, line 3: option `a` in section [s] already exists in this file");
        let err = parse("[s]\nx\ny\n").expect_err("parsing");
        assert!(err.to_string().starts_with("test.conf, line 2: "), "{err}");
        assert!(err.to_string().ends_with("(further bad lines: 3)"), "{err}");
        let ini = parse("[s]\n\np = 5%\n").expect("parses");
        let err = ini.get("s", "p").expect_err("bare %");
        assert!(err.to_string().starts_with("test.conf, line 3: "), "{err}");
    }

    #[test]
    fn missing_things_are_none_and_default_section_is_readable() {
        let ini = parse("[DEFAULT]\nd = 1\n[s]\n").expect("parses");
        assert_eq!(ini.get("nope", "d").expect("ok"), None);
        assert_eq!(ini.get("s", "nope").expect("ok"), None);
        assert_eq!(ini.get("DEFAULT", "d").expect("ok").as_deref(), Some("1"));
        assert!(!ini.has_section("DEFAULT"));
        assert!(ini.items("nope").expect("ok").is_empty());
        assert_eq!(ini.options("DEFAULT"), ["d"]);
    }

    #[test]
    fn read_file_skips_missing_and_directories_and_rejects_bad_utf8() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut ini = Ini::new();
        assert!(!ini.read_file(&dir.path().join("absent")).expect("ok"));
        assert!(!ini.read_file(dir.path()).expect("ok"));
        let bad = dir.path().join("bad.conf");
        std::fs::write(&bad, b"[s]\na = 1\nb = \xff\n").expect("write");
        let err = ini.read_file(&bad).expect_err("not utf-8");
        assert_eq!(err.kind(), "UnicodeDecodeError");
        assert_eq!(err.location().map(|l| l.line), Some(3));
    }

    #[test]
    fn entry_points_txt_parses() {
        let text = "[scrapy]\nsettings = myproject.settings\n\n[console_scripts]\nfoo = foo.cli:main\n";
        let ini = parse(text).expect("parses");
        assert_eq!(ini.get("scrapy", "settings").expect("ok").as_deref(), Some("myproject.settings"));
        assert_eq!(ini.get("console_scripts", "foo").expect("ok").as_deref(), Some("foo.cli:main"));
    }

    /// A tiny xorshift generator so the fuzz test needs no extra crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[(self.next() % items.len() as u64) as usize]
        }
    }

    #[test]
    fn random_input_never_panics() {
        let pieces = [
            "[",
            "]",
            "[s]",
            "[DEFAULT]",
            "=",
            ":",
            "%",
            "%%",
            "%(",
            ")s",
            "%(a)s",
            "a",
            "B",
            " ",
            "\t",
            "\n",
            "\r",
            "\r\n",
            "#",
            ";",
            "é",
            "Σ",
            "\u{1c}",
            "\u{85}",
            "\u{2028}",
            "\u{feff}",
            "x = 1",
            "  cont",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..3000 {
            let len = rng.next() % 40;
            let text: String = (0..len).map(|_| rng.pick(&pieces)).collect();
            let mut ini = Ini::new();
            let _ = ini.read_str(&text, Path::new("fuzz"));
            for section in ini.sections().into_iter().chain([DEFAULT_SECTION]) {
                let _ = ini.items(section);
            }
            // Raw bytes through the UTF-8 path as well.
            let bytes: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if let Ok(text) = decode_utf8(&bytes, Path::new("fuzz")) {
                let _ = Ini::new().read_str(text, Path::new("fuzz"));
            }
        }
    }
}
