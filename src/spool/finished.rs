//! The finished-job history: one JSON line per job in `spool/.scrapyd-rs/finished.jl`.
//!
//! Appends are serialised by a lock on a sidecar file (never the log itself, which compaction
//! replaces), written with one `write` and fsynced before the job counts as finished. Readers
//! keep a cursor (the file's identity and an offset) and read only what was appended since, so
//! answering `listjobs` or `status` never rescans history. When the log holds well over
//! `finished_to_keep` entries it is rewritten with the newest ones; readers notice the new file
//! and reload. A file's identity is its inode number and its birth time: filesystems reuse inode
//! numbers, so a log compacted twice may come back with the inode of one a reader last saw.
//!
//! The sidecar also holds the number of lines in the log (and the inode it counted), kept under
//! the lock, so compaction runs when the log is over its limit by count, whatever the lines'
//! lengths; a count that does not belong to the current log is recounted once.
//!
//! A crash in the middle of an append leaves a torn last line; readers skip it and the next
//! writer cuts it off before appending.

use super::records::FinishedJob;
use crate::fsutil;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};

/// The log file and its lock.
#[derive(Debug, Clone)]
pub struct FinishedLog {
    path: PathBuf,
    lock_path: PathBuf,
}

/// How far a reader has read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cursor {
    file: FileIdentity,
    offset: u64,
}

/// Which file a path named when it was read: inode number and birth time (in nanoseconds since
/// the epoch; 0 where the filesystem records none, leaving the inode alone to tell).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct FileIdentity {
    inode: u64,
    born_ns: u128,
}

impl FileIdentity {
    fn of(meta: &fs::Metadata) -> FileIdentity {
        let born_ns =
            meta.created().ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()).map_or(0, |d| d.as_nanos());
        FileIdentity { inode: meta.ino(), born_ns }
    }
}

/// What a reader learns from [`FinishedLog::read_since`].
#[derive(Debug)]
pub enum Update {
    /// Jobs appended since the cursor, oldest first.
    Appended(Vec<FinishedJob>),
    /// The log was replaced (compacted): its whole content, oldest first.
    Replaced(Vec<FinishedJob>),
}

impl FinishedLog {
    /// The log at `path`, with its lock beside it (`<path>.lock`).
    pub fn new(path: &Path) -> Self {
        let mut lock_name = path.file_name().unwrap_or_default().to_os_string();
        lock_name.push(".lock");
        FinishedLog { path: path.to_path_buf(), lock_path: path.with_file_name(lock_name) }
    }

    fn lock(&self) -> io::Result<File> {
        if let Some(dir) = self.path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).truncate(false).read(true).write(true).open(&self.lock_path)?;
        file.lock()?;
        Ok(file)
    }

    /// Records a finished job durably. With `keep` of zero nothing is kept, as stock documents
    /// `finished_to_keep = 0`. Once the log is well over `keep` lines it is compacted.
    pub fn append(&self, job: &FinishedJob, keep: usize) -> io::Result<()> {
        self.append_all(std::slice::from_ref(job), keep)
    }

    /// Records several finished jobs, oldest first, with one write and one fsync (an import).
    pub fn append_all(&self, jobs: &[FinishedJob], keep: usize) -> io::Result<()> {
        if keep == 0 || jobs.is_empty() {
            return Ok(());
        }
        let lock = self.lock()?;
        let mut file = OpenOptions::new().create(true).read(true).append(true).open(&self.path)?;
        cut_torn_tail(&mut file)?;
        let inode = file.metadata()?.ino();
        let counted = match read_line_count(&lock)? {
            Some((counted, lines)) if counted == inode => lines,
            _ => count_lines(&mut file)?,
        };
        let mut text = Vec::new();
        for job in jobs {
            serde_json::to_writer(&mut text, job)?;
            text.push(b'\n');
        }
        file.write_all(&text)?;
        file.sync_data()?;
        // The count is a hint for when to compact, so it is not fsynced: after a crash it is
        // short by the lines of at most one append.
        let lines = counted + jobs.len() as u64;
        if lines > (keep + slack(keep)) as u64 {
            match self.compact(keep) {
                Ok(inode) => return write_line_count(&lock, inode, keep.min(lines as usize) as u64),
                // The jobs are recorded durably; a log left long is tried again next time.
                Err(err) => tracing::warn!("cannot compact {}: {err}", self.path.display()),
            }
        }
        // Only a hint: the jobs are recorded whether or not the count is.
        if let Err(err) = write_line_count(&lock, inode, lines) {
            tracing::warn!("cannot update the line count of {}: {err}", self.path.display());
        }
        Ok(())
    }

    /// Rewrites the log with its newest `keep` entries and returns the new file's inode. The
    /// caller holds the lock.
    fn compact(&self, keep: usize) -> io::Result<u64> {
        let lines = read_lines(&self.path)?;
        let start = lines.len().saturating_sub(keep);
        let mut text = Vec::new();
        for line in &lines[start..] {
            text.extend_from_slice(line.as_bytes());
            text.push(b'\n');
        }
        fsutil::write_atomic(&self.path, &text)?;
        Ok(fs::metadata(&self.path)?.ino())
    }

    /// Whether the log is as `cursor` left it (same file, same length): one `stat`, so callers
    /// can check often.
    pub fn unchanged_since(&self, cursor: &Cursor) -> bool {
        match fs::metadata(&self.path) {
            Ok(meta) => FileIdentity::of(&meta) == cursor.file && meta.len() == cursor.offset,
            Err(err) if err.kind() == io::ErrorKind::NotFound => *cursor == Cursor::default(),
            Err(_) => false,
        }
    }

    /// Reads what was appended after `cursor`, and moves the cursor to the end.
    pub fn read_since(&self, cursor: &mut Cursor) -> io::Result<Update> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let replaced = *cursor != Cursor::default();
                *cursor = Cursor::default();
                return Ok(if replaced { Update::Replaced(Vec::new()) } else { Update::Appended(Vec::new()) });
            }
            Err(err) => return Err(err),
        };
        let meta = file.metadata()?;
        let identity = FileIdentity::of(&meta);
        let replaced = identity != cursor.file || meta.len() < cursor.offset;
        let start = if replaced { 0 } else { cursor.offset };
        file.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        // Only whole lines: a line still being written is read next time.
        let complete = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        let jobs = parse_lines(&bytes[..complete]);
        *cursor = Cursor { file: identity, offset: start + complete as u64 };
        Ok(if replaced { Update::Replaced(jobs) } else { Update::Appended(jobs) })
    }
}

/// How far past `keep` the log may grow before it is compacted: compaction rewrites `keep`
/// entries, so it runs once per `slack` appends.
fn slack(keep: usize) -> usize {
    (keep / 10).max(16)
}

fn parse_lines(bytes: &[u8]) -> Vec<FinishedJob> {
    bytes
        .split(|&b| b == b'\n')
        .filter(|line| !line.is_empty())
        .filter_map(|line| match serde_json::from_slice(line) {
            Ok(job) => Some(job),
            Err(err) => {
                tracing::warn!("skipping an unreadable finished-job record: {err}");
                None
            }
        })
        .collect()
}

fn read_lines(path: &Path) -> io::Result<Vec<String>> {
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(err),
    };
    BufReader::new(file).lines().filter(|line| !matches!(line, Ok(l) if l.is_empty())).collect()
}

/// The line count kept in the lock file: the inode it counted and the count.
fn read_line_count(lock: &File) -> io::Result<Option<(u64, u64)>> {
    let mut bytes = [0u8; 16];
    match lock.read_exact_at(&mut bytes, 0) {
        Ok(()) => {
            let (inode, lines) = bytes.split_at(8);
            Ok(Some((
                u64::from_le_bytes(inode.try_into().unwrap_or_default()),
                u64::from_le_bytes(lines.try_into().unwrap_or_default()),
            )))
        }
        Err(err) if err.kind() == io::ErrorKind::UnexpectedEof => Ok(None),
        Err(err) => Err(err),
    }
}

fn write_line_count(lock: &File, inode: u64, lines: u64) -> io::Result<()> {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&inode.to_le_bytes());
    bytes[8..].copy_from_slice(&lines.to_le_bytes());
    lock.write_all_at(&bytes, 0)
}

/// Counts the log's lines (once, when the kept count is missing or belongs to another file).
fn count_lines(file: &mut File) -> io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&mut *file);
    let mut lines = 0;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(lines);
        }
        lines += buffer.iter().filter(|&&b| b == b'\n').count() as u64;
        let used = buffer.len();
        reader.consume(used);
    }
}

/// Cuts an incomplete last line (a crash during an append) so the next line starts cleanly.
fn cut_torn_tail(file: &mut File) -> io::Result<()> {
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let window = len.min(64 * 1024);
    file.seek(SeekFrom::Start(len - window))?;
    let mut tail = vec![0; window as usize];
    file.read_exact(&mut tail)?;
    if tail.last() == Some(&b'\n') {
        return Ok(());
    }
    let keep = match tail.iter().rposition(|&b| b == b'\n') {
        Some(index) => len - window + index as u64 + 1,
        // A single record longer than the window is unusual; scan the whole file for it.
        None => {
            let mut all = Vec::new();
            file.seek(SeekFrom::Start(0))?;
            file.read_to_end(&mut all)?;
            all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i as u64 + 1)
        }
    };
    tracing::warn!("cutting a torn finished-job record ({} bytes) left by a crash", len - keep);
    file.set_len(keep)?;
    file.sync_data()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: &str) -> FinishedJob {
        FinishedJob::for_tests(id, "2026-01-01 00:00:00.000000", "2026-01-01 00:00:01.000000")
    }

    fn ids(jobs: &[FinishedJob]) -> Vec<&str> {
        jobs.iter().map(|j| j.id.as_str()).collect()
    }

    #[test]
    fn readers_see_only_new_entries_then_the_compacted_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        let mut cursor = Cursor::default();
        assert!(matches!(log.read_since(&mut cursor).unwrap(), Update::Appended(v) if v.is_empty()));
        log.append(&job("a"), 100).unwrap();
        log.append(&job("b"), 100).unwrap();
        // A reader that has read nothing yet gets everything, as a replacement of nothing.
        let Update::Replaced(first) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&first), ["a", "b"]);
        log.append(&job("c"), 100).unwrap();
        let Update::Appended(next) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&next), ["c"]);

        // Past keep + slack the log is rewritten with the newest `keep` entries.
        for i in 0..20 {
            log.append(&job(&format!("j{i}")), 2).unwrap();
        }
        let Update::Replaced(all) = log.read_since(&mut cursor).unwrap() else {
            panic!("compaction replaces the file")
        };
        assert!(all.len() <= 2 + slack(2), "{}", all.len());
        assert_eq!(all.last().unwrap().id, "j19");
    }

    #[test]
    fn a_torn_line_is_skipped_by_readers_and_cut_by_the_next_writer() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        log.append(&job("a"), 100).unwrap();
        let mut file = OpenOptions::new().append(true).open(dir.path().join("finished.jl")).unwrap();
        file.write_all(b"{\"id\": \"torn").unwrap();
        let mut cursor = Cursor::default();
        let Update::Replaced(seen) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&seen), ["a"]);
        log.append(&job("b"), 100).unwrap();
        let Update::Appended(next) = log.read_since(&mut cursor).unwrap() else { panic!() };
        assert_eq!(ids(&next), ["b"]);
    }

    #[test]
    fn keeping_none_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        log.append(&job("a"), 0).unwrap();
        assert!(!dir.path().join("finished.jl").exists());
    }

    #[test]
    fn compaction_counts_lines_whatever_their_lengths() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("finished.jl");
        let log = FinishedLog::new(&path);
        let long = |id: &str| FinishedJob { stats: Some(serde_json::json!({"padding": "x".repeat(4000)})), ..job(id) };
        // Long lines, then short ones: judging the count from the last line's length would
        // compact far too early (and then after every short append).
        for i in 0..10 {
            log.append(&long(&format!("long{i}")), 100).unwrap();
        }
        let inode = fs::metadata(&path).unwrap().ino();
        for i in 0..50 {
            log.append(&job(&format!("short{i}")), 100).unwrap();
        }
        assert_eq!(fs::metadata(&path).unwrap().ino(), inode, "60 lines of 100 allowed: never compacted");
        assert_eq!(read_lines(&path).unwrap().len(), 60);
        // A count that belongs to another file (here: none kept) is recounted, not trusted.
        fs::remove_file(dir.path().join("finished.jl.lock")).unwrap();
        for i in 0..57 {
            log.append(&job(&format!("more{i}")), 100).unwrap();
        }
        assert_ne!(fs::metadata(&path).unwrap().ino(), inode, "past 100 + slack it is compacted");
        assert_eq!(read_lines(&path).unwrap().len(), 100);
    }

    #[test]
    fn a_file_with_a_reused_inode_number_is_still_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let log = FinishedLog::new(&dir.path().join("finished.jl"));
        log.append(&job("a"), 100).unwrap();
        let mut cursor = Cursor::default();
        log.read_since(&mut cursor).unwrap();
        assert!(log.unchanged_since(&cursor));
        // Same inode number and offset, another birth: what a reader holds after the log was
        // compacted into a file that got the inode number of one it had read.
        let mut stale = cursor;
        stale.file.born_ns = stale.file.born_ns.wrapping_sub(1);
        if cursor.file.born_ns != 0 {
            assert!(!log.unchanged_since(&stale));
            assert!(matches!(log.read_since(&mut stale).unwrap(), Update::Replaced(jobs) if ids(&jobs) == ["a"]));
        }
    }
}
