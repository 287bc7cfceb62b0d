//! One pass over a finished crawl's log, collecting what LogParser 0.8.4 extracts from it.
//!
//! LogParser runs its regexes over the whole text; a Scrapy log is line-oriented, so the same
//! facts come from reading it once, line by line, keeping only bounded state: the first 100
//! lines, the last 200, the last ten entries of each log category (each cut to 200 lines and
//! 64 KiB), and the latest line of each kind it reports. An *entry* is a log line with a level (`DEBUG` ... `CRITICAL`) and the lines
//! that follow it up to the next one (a traceback, a stats dump, an item).

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};

/// Lines kept from the start of the log (LogParser's `LOG_HEAD_LINES`).
pub const HEAD_LINES: usize = 100;
/// Lines kept from the end of the log (`LOG_TAIL_LINES`).
pub const TAIL_LINES: usize = 200;
/// Entries kept per log category (`LOG_CATEGORIES_LIMIT`).
pub const CATEGORY_DETAILS: usize = 10;
/// Longer lines are cut here (and marked), so a huge item or response dumped into the log cannot
/// make the per-job file huge.
const MAX_LINE: usize = 16 * 1024;

/// LogParser's log categories, in its order: the key and what marks an entry's first line.
pub const CATEGORIES: [(&str, &[&str]); 6] = [
    ("critical_logs", &["] CRITICAL:"]),
    ("error_logs", &["] ERROR:"]),
    ("warning_logs", &["] WARNING:"]),
    ("redirect_logs", &[": Redirecting ("]),
    ("retry_logs", &[" Retrying <", " retrying <"]),
    ("ignore_logs", &[": Ignoring response <"]),
];

/// LogParser's `latest_matches` patterns, in its order: key, text to find after a line's
/// timestamp, and whether the first match counts (otherwise the last). The telnet credentials are
/// searched anywhere in a line, as LogParser does.
const MATCHES: [(&str, &str, bool); 9] = [
    ("scrapy_version", " started", true),
    ("telnet_console", "Telnet console listening on", true),
    ("telnet_username", "TELNETCONSOLE_USERNAME", true),
    ("telnet_password", "", true),
    ("resuming_crawl", "Resuming crawl", true),
    ("latest_offsite", "Filtered offsite", false),
    ("latest_duplicate", "Filtered duplicate", false),
    ("latest_crawl", "Crawled (", false),
    ("latest_stat", "", false),
];

/// One point of LogParser's progress chart, from a `LogStats` line: time, pages, pages per
/// minute, items, items per minute.
pub type DataPoint = (String, u64, u64, u64, u64);

/// A log category's entries: how many, and the last [`CATEGORY_DETAILS`] of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Category {
    pub count: u64,
    pub details: VecDeque<String>,
}

/// What one pass over a log found.
#[derive(Debug, Default)]
pub struct LogScan {
    /// The log's size in bytes, all of it read.
    pub size: u64,
    pub head: String,
    pub tail: String,
    /// `YYYY-MM-DD HH:MM:SS` of the first and the last timestamped line.
    pub first_log_time: Option<String>,
    pub latest_log_time: Option<String>,
    pub datas: Vec<DataPoint>,
    /// LogParser's `latest_matches`, in its key order (empty strings where nothing matched).
    pub latest_matches: Vec<(&'static str, String)>,
    /// The last `Scraped from <...>` line and the item printed after it.
    pub latest_scrape: String,
    pub latest_item: String,
    /// In [`CATEGORIES`] order.
    pub categories: Vec<Category>,
    /// `Received SIGINT`, `Received SIGTERM twice`, ...: the last such line's reason.
    pub shutdown_reason: Option<String>,
}

/// Reads the whole log once.
pub fn scan(reader: impl BufRead) -> io::Result<LogScan> {
    let mut scanner = Scanner::new();
    scanner.read(reader, true)?;
    Ok(scanner.finish())
}

/// A scan of a log that is still being written: each [`LogScanner::catch_up`] reads only what
/// was appended since the last, up to the last complete line.
#[derive(Debug, Clone)]
pub struct LogScanner(Scanner);

impl LogScanner {
    pub fn new() -> Self {
        LogScanner(Scanner::new())
    }

    /// Reads the complete lines appended to the log since the last call; whether there were any.
    pub fn catch_up(&mut self, log: &mut File) -> io::Result<bool> {
        let before = self.0.size;
        log.seek(SeekFrom::Start(before))?;
        self.0.read(BufReader::new(log), false)?;
        Ok(self.0.size > before)
    }

    /// What the lines read so far show.
    pub fn scan(&self) -> LogScan {
        self.0.clone().finish()
    }
}

impl Default for LogScanner {
    fn default() -> Self {
        Self::new()
    }
}

#[derive(Debug, Default, Clone)]
struct Scanner {
    size: u64,
    lines: u64,
    head: Vec<String>,
    tail: VecDeque<String>,
    first_log_time: Option<String>,
    latest_log_time: Option<String>,
    datas: Vec<DataPoint>,
    matches: Vec<(&'static str, String)>,
    latest_scrape: String,
    latest_item: String,
    categories: Vec<Category>,
    shutdown_reason: Option<String>,
    /// The entry being read: its first line and the lines after it.
    entry: Option<(String, Vec<String>)>,
}

impl Scanner {
    fn new() -> Self {
        Scanner {
            categories: vec![Category::default(); CATEGORIES.len()],
            matches: MATCHES.iter().map(|(key, _, _)| (*key, String::new())).collect(),
            ..Scanner::default()
        }
    }

    /// Feeds the reader's lines; a last line without its newline only when `to_the_end` (a log
    /// still being written may be in the middle of one).
    fn read(&mut self, mut reader: impl BufRead, to_the_end: bool) -> io::Result<()> {
        let mut raw = Vec::new();
        loop {
            raw.clear();
            let read = reader.read_until(b'\n', &mut raw)?;
            if read == 0 || (!to_the_end && raw.last() != Some(&b'\n')) {
                return Ok(());
            }
            self.size += read as u64;
            let text = String::from_utf8_lossy(&raw);
            let line = text.trim_end_matches(['\n', '\r']);
            self.line(&cut(line));
        }
    }

    fn line(&mut self, line: &str) {
        self.lines += 1;
        if self.head.len() < HEAD_LINES {
            self.head.push(line.to_string());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line.to_string());

        let Some(time) = timestamp(line) else {
            if let Some((_, rest)) = &mut self.entry {
                push_continuation(rest, line);
            }
            return;
        };
        if self.first_log_time.is_none() {
            self.first_log_time = Some(time.to_string());
        }
        self.latest_log_time = Some(time.to_string());
        let message = &line[20..];
        self.match_latest(line, message);
        if let Some(point) = data_point(time, message) {
            self.datas.push(point);
        }
        if let Some(reason) = shutdown_reason(message) {
            self.shutdown_reason = Some(reason);
        }
        if has_level(message) {
            self.end_entry();
            self.entry = Some((line.to_string(), Vec::new()));
        } else if let Some((_, rest)) = &mut self.entry {
            push_continuation(rest, line);
        }
    }

    fn match_latest(&mut self, line: &str, message: &str) {
        for ((_, needle, first), (key, found)) in MATCHES.iter().zip(self.matches.iter_mut()) {
            if *first && !found.is_empty() {
                continue;
            }
            let hit = match *key {
                "scrapy_version" => scrapy_version(message).is_some(),
                "telnet_username" => line.contains("TELNETCONSOLE_USERNAME"),
                "telnet_password" => line.contains("TELNETCONSOLE_PASSWORD") || line.contains("Telnet Password: "),
                "latest_crawl" => crawled_status(message),
                "latest_stat" => logstats_line(message),
                _ => message.get(1..).is_some_and(|m| m.contains(needle)),
            };
            if hit {
                *found = line.to_string();
            }
        }
    }

    /// Files the finished entry under its category and, if it is a scraped item, as the latest.
    fn end_entry(&mut self) {
        let Some((first, rest)) = self.entry.take() else { return };
        let message = &first[20..];
        if message.contains(": Scraped from <") && rest.first().is_some_and(|l| l.starts_with('{')) {
            self.latest_scrape = first.clone();
            self.latest_item = rest.join("\n");
        }
        for ((key, markers), category) in CATEGORIES.iter().zip(self.categories.iter_mut()) {
            if !markers.iter().any(|marker| message.get(1..).is_some_and(|m| m.contains(marker))) {
                continue;
            }
            let text = if rest.is_empty() { first.clone() } else { format!("{first}\n{}", rest.join("\n")) };
            // LogParser lists a "Gave up retrying" line among the retries but does not count it.
            if !(*key == "retry_logs" && text.contains("Gave up retrying <")) {
                category.count += 1;
            }
            if category.details.len() == CATEGORY_DETAILS {
                category.details.pop_front();
            }
            category.details.push_back(text);
        }
    }

    fn finish(mut self) -> LogScan {
        self.end_entry();
        let matches = self
            .matches
            .into_iter()
            .map(|(key, line)| {
                let value = match key {
                    "scrapy_version" => scrapy_version(&line).unwrap_or_default().to_string(),
                    "telnet_console" => line.split_once("listening on ").map(|(_, a)| a.to_string()).unwrap_or(line),
                    "telnet_username" => quoted_setting(&line, "TELNETCONSOLE_USERNAME").unwrap_or_default(),
                    "telnet_password" => match line.split_once("Telnet Password: ") {
                        Some((_, password)) => password.to_string(),
                        None => quoted_setting(&line, "TELNETCONSOLE_PASSWORD").unwrap_or_default(),
                    },
                    _ => line,
                };
                (key, value)
            })
            .collect();
        LogScan {
            size: self.size,
            head: self.head.join("\n"),
            tail: Vec::from(self.tail).join("\n"),
            first_log_time: self.first_log_time,
            latest_log_time: self.latest_log_time,
            datas: self.datas,
            latest_matches: matches,
            latest_scrape: self.latest_scrape,
            latest_item: self.latest_item,
            categories: self.categories,
            shutdown_reason: self.shutdown_reason,
        }
    }
}

/// A line cut to [`MAX_LINE`] bytes (at a character boundary), marked when it was cut.
fn cut(line: &str) -> std::borrow::Cow<'_, str> {
    if line.len() <= MAX_LINE {
        return line.into();
    }
    let end = (0..=MAX_LINE).rev().find(|&i| line.is_char_boundary(i)).unwrap_or(0);
    format!("{} [... {} bytes cut]", &line[..end], line.len() - end).into()
}

/// The most of an entry's continuation lines kept, by count and by bytes: enough for a stats dump,
/// a traceback or an item, while a spider that prints whole pages between two log lines does not
/// make the daemon hold them.
const ENTRY_LINES: usize = 200;
const ENTRY_BYTES: usize = 64 * 1024;

fn push_continuation(rest: &mut Vec<String>, line: &str) {
    let held: usize = rest.iter().map(String::len).sum();
    if rest.len() < ENTRY_LINES && held + line.len() <= ENTRY_BYTES {
        rest.push(line.to_string());
    }
}

/// `YYYY-MM-DD HH:MM:SS` when the line starts with it and a space, as Scrapy's log lines do.
pub fn timestamp(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    if bytes.len() < 21 || bytes[19] != b' ' {
        return None;
    }
    let shape = b"dddd-dd-dd dd:dd:dd";
    let fits = shape.iter().zip(bytes).all(|(want, got)| match want {
        b'd' => got.is_ascii_digit(),
        other => other == got,
    });
    fits.then(|| &line[..19])
}

/// Whether a log line's message names a level, which makes it start a new entry.
fn has_level(message: &str) -> bool {
    ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"].iter().any(|level| message.contains(level))
}

/// `Scrapy 2.11.2 started` -> `2.11.2`.
fn scrapy_version(message: &str) -> Option<&str> {
    let start = message.find("Scrapy ")? + "Scrapy ".len();
    let rest = &message[start..];
    let version = rest.split(' ').next()?;
    let parts: Vec<&str> = version.split('.').collect();
    let numeric = parts.len() == 3 && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    (numeric && rest[version.len()..].starts_with(" started")).then_some(version)
}

/// `Crawled (200) <GET ...>`: a downloaded page, as opposed to a `LogStats` line.
fn crawled_status(message: &str) -> bool {
    message.match_indices("Crawled (").any(|(at, found)| {
        let rest = &message[at + found.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        at >= 1 && digits > 0 && rest[digits..].starts_with(')')
    })
}

/// `Crawled 12 pages (at`: a `LogStats` line.
fn logstats_line(message: &str) -> bool {
    message.match_indices("Crawled ").any(|(at, found)| {
        let rest = &message[at + found.len()..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        at >= 1 && digits > 0 && rest[digits..].starts_with(" pages (at")
    })
}

/// `'TELNETCONSOLE_USERNAME': 'usr'` -> `usr`.
fn quoted_setting(line: &str, name: &str) -> Option<String> {
    let rest = &line[line.find(name)? + name.len()..];
    let rest = rest.strip_prefix(['\'', '"'])?.strip_prefix(": ")?;
    let quote = rest.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &rest[1..];
    rest.find(quote).filter(|&end| end > 0).map(|end| rest[..end].to_string())
}

/// `Crawled 12 pages (at 3 pages/min), scraped 10 items (at 2 items/min)`.
fn data_point(time: &str, message: &str) -> Option<DataPoint> {
    message.match_indices("Crawled ").find_map(|(at, _)| {
        let mut rest = &message[at + "Crawled ".len()..];
        let mut number = |after: &str| -> Option<u64> {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let value = rest[..digits].parse().ok()?;
            rest = rest[digits..].strip_prefix(after)?;
            Some(value)
        };
        let pages = number(" pages (at ")?;
        let pages_min = number(" pages/min), scraped ")?;
        let items = number(" items (at ")?;
        let items_min = number(" items/min)")?;
        (at >= 1).then(|| (time.to_string(), pages, pages_min, items, items_min))
    })
}

/// `Received SIGINT, shutting down gracefully.` -> `Received SIGINT` (with ` twice` if so).
fn shutdown_reason(message: &str) -> Option<String> {
    let at = message.find(": Received SIG")?;
    let reason = &message[at + 2..];
    ["BREAK", "INT", "TERM"].iter().find_map(|signal| {
        let name = format!("Received SIG{signal}");
        let rest = reason.strip_prefix(&name)?;
        if rest.starts_with(" twice,") { Some(format!("{name} twice")) } else { rest.starts_with(',').then_some(name) }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_keeps_a_bounded_part_of_what_follows_it() {
        let mut rest = Vec::new();
        for _ in 0..1000 {
            push_continuation(&mut rest, "a line printed by the spider");
        }
        assert_eq!(rest.len(), ENTRY_LINES);
        let mut rest = Vec::new();
        for _ in 0..100 {
            push_continuation(&mut rest, &"x".repeat(10_000));
        }
        assert_eq!(rest.len(), ENTRY_BYTES / 10_000);
    }

    const LOG: &str = "\
2026-11-25 04:09:08 [scrapy.utils.log] INFO: Scrapy 2.13.3 started (bot: demo)
2026-11-25 04:09:08 [scrapy.utils.log] INFO: Versions:
{'lxml': '6.0'}
2026-11-25 04:09:08 [scrapy.extensions.logstats] INFO: Crawled 0 pages (at 0 pages/min), scraped 0 items (at 0 items/min)
2026-11-25 04:09:09 [scrapy.core.engine] DEBUG: Crawled (200) <GET http://127.0.0.1/> (referer: None)
2026-11-25 04:09:09 [scrapy.core.scraper] DEBUG: Scraped from <200 http://127.0.0.1/>
{'url': 'http://127.0.0.1/',
 'title': 'Home'}
2026-11-25 04:09:09 [scrapy.core.scraper] ERROR: Spider error processing <GET http://127.0.0.1/x>
Traceback (most recent call last):
ValueError: boom
2026-11-25 04:09:09 [scrapy.downloadermiddlewares.retry] DEBUG: Retrying <GET http://127.0.0.1/y> (failed 1 times)
2026-11-25 04:09:09 [scrapy.downloadermiddlewares.retry] ERROR: Gave up retrying <GET http://127.0.0.1/y> (failed 2 times)
2026-11-25 04:09:10 [scrapy.crawler] INFO: Received SIGINT, shutting down gracefully. Send again to force
2026-11-25 04:10:10 [scrapy.extensions.logstats] INFO: Crawled 5 pages (at 5 pages/min), scraped 4 items (at 4 items/min)
2026-11-25 04:10:11 [scrapy.core.engine] INFO: Spider closed (shutdown)
";

    #[test]
    fn one_pass_finds_what_logparser_finds() {
        let scan = scan(LOG.as_bytes()).unwrap();
        assert_eq!(scan.size, LOG.len() as u64);
        assert_eq!(scan.first_log_time.as_deref(), Some("2026-11-25 04:09:08"));
        assert_eq!(scan.latest_log_time.as_deref(), Some("2026-11-25 04:10:11"));
        assert_eq!(
            scan.datas,
            [("2026-11-25 04:09:08".into(), 0, 0, 0, 0), ("2026-11-25 04:10:10".into(), 5, 5, 4, 4)]
        );
        let matched = |key: &str| scan.latest_matches.iter().find(|(k, _)| *k == key).unwrap().1.clone();
        assert_eq!(matched("scrapy_version"), "2.13.3");
        assert!(matched("latest_crawl").ends_with("Crawled (200) <GET http://127.0.0.1/> (referer: None)"));
        assert!(matched("latest_stat").contains("Crawled 5 pages"));
        assert_eq!(matched("telnet_console"), "");
        assert!(scan.latest_scrape.ends_with("Scraped from <200 http://127.0.0.1/>"));
        assert_eq!(scan.latest_item, "{'url': 'http://127.0.0.1/',\n 'title': 'Home'}");
        let errors = &scan.categories[1];
        assert_eq!(errors.count, 2);
        assert!(errors.details[0].ends_with("\nTraceback (most recent call last):\nValueError: boom"));
        let retries = &scan.categories[4];
        assert_eq!((retries.count, retries.details.len()), (1, 2), "a give-up is listed, not counted");
        assert_eq!(scan.shutdown_reason.as_deref(), Some("Received SIGINT"));
        assert!(scan.head.starts_with("2026-11-25 04:09:08 [scrapy.utils.log] INFO: Scrapy 2.13.3 started"));
        assert!(scan.tail.ends_with("Spider closed (shutdown)"));
    }

    #[test]
    fn head_tail_and_details_stay_bounded() {
        let mut log = String::new();
        for i in 0..1000 {
            log.push_str(&format!("2026-11-25 04:09:08 [x] WARNING: warning {i}\n"));
        }
        log.push_str(&format!("2026-11-25 04:09:08 [x] INFO: {}\n", "y".repeat(MAX_LINE * 2)));
        let scan = scan(log.as_bytes()).unwrap();
        assert_eq!(scan.head.lines().count(), HEAD_LINES);
        assert_eq!(scan.tail.lines().count(), TAIL_LINES);
        assert!(scan.tail.len() < TAIL_LINES * 60 + MAX_LINE + 100);
        assert_eq!(scan.categories[2].count, 1000);
        assert_eq!(scan.categories[2].details.len(), CATEGORY_DETAILS);
        assert!(scan.categories[2].details.back().unwrap().ends_with("warning 999"));
    }

    #[test]
    fn telnet_and_signals() {
        assert_eq!(
            quoted_setting("Overridden settings: {'TELNETCONSOLE_USERNAME': 'usr'}", "TELNETCONSOLE_USERNAME"),
            Some("usr".into())
        );
        assert_eq!(
            shutdown_reason(" [scrapy.crawler] INFO: Received SIGTERM twice, forcing"),
            Some("Received SIGTERM twice".into())
        );
        assert_eq!(shutdown_reason(" [x] INFO: Received SIGHUP, no"), None);
        assert_eq!(timestamp("2026-11-25 04:09:08 x"), Some("2026-11-25 04:09:08"));
        assert_eq!(timestamp("2026-11-25T04:09:08 x"), None);
    }

    #[test]
    fn a_growing_log_is_read_in_whole_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.log");
        let (first, second) = LOG.split_at(LOG.find("2026-11-25 04:09:10").unwrap());
        let start = &second[..20];
        std::fs::write(&path, format!("{first}{start}")).unwrap();
        let mut scanner = LogScanner::new();
        assert!(scanner.catch_up(&mut File::open(&path).unwrap()).unwrap());
        assert_eq!(scanner.scan().size, first.len() as u64, "the half-written line waits");
        assert_eq!(scanner.scan().shutdown_reason, None);
        assert!(!scanner.catch_up(&mut File::open(&path).unwrap()).unwrap());
        std::fs::write(&path, LOG).unwrap();
        assert!(scanner.catch_up(&mut File::open(&path).unwrap()).unwrap());
        let whole = scan(LOG.as_bytes()).unwrap();
        let growing = scanner.scan();
        assert_eq!((growing.size, &growing.datas, &growing.categories), (whole.size, &whole.datas, &whole.categories));
        assert_eq!((growing.head, growing.tail), (whole.head, whole.tail));
        assert_eq!(growing.shutdown_reason.as_deref(), Some("Received SIGINT"));
    }
}
