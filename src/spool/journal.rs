//! The schedule journal: a job is acknowledged after one synchronous write in place.
//!
//! Making a new file durable costs the filesystem a journal commit (a new inode, its blocks, its
//! directory entry): about 0.4 ms per job on ext4 here, most of `schedule.json`'s time. Rewriting
//! blocks a file already owns does not: a synchronous direct write into a preallocated file is
//! one data write and a cache flush, about 0.1 ms. So a job's pending file is written without
//! waiting for the disk, and the job is made durable by a record in its project's journal:
//!
//! ```text
//! spool/<project>/journal    2 header blocks, then 256 record blocks; 4 KiB each, all allocated
//! ```
//!
//! A record says "`pending/<name>` holds these bytes". Records are numbered in order (their
//! LSN), and record `n` lives in block `2 + n % 256`. Records before the *checkpoint* are
//! *settled*: their pending files were fsynced with their directory since, so their blocks may be
//! reused. Settling happens in the background once half the record blocks are in use (see
//! [`Journal::append`]), on the request path only when the journal is full (or its marks are
//! from before a reboot), and always before a
//! pending file leaves `pending/` (claimed, cancelled or withdrawn; see [`Journal::settle`]).
//! Hence every record past the checkpoint names a job that was still pending when the machine
//! last went down, and recovery is: rewrite each such pending file from its record if it is
//! missing or torn, then settle.
//!
//! The head (the next LSN) and the checkpoint live in the project's lock file, beside its change
//! counter, with the boot id of the machine that wrote them and the journal file's inode number.
//! Within one boot they are exact for every instance, since they change only under the project's
//! lock; an instance whose open journal is not the file they name opens the journal again. After
//! a reboot, or when they do not name the journal found under its name (marks written by an
//! older scrapyd-rs), they are not trusted: the first instance to lock the project reads the
//! checkpoint from the journal's header blocks and finds the head by reading records from there
//! until one is missing or torn. The two
//! header blocks are written alternately, so a header torn by a power cut leaves the previous one,
//! which is still right: the settle that wrote the torn one never finished, so nothing relied on it.
//!
//! The journal is opened with `O_DIRECT` (falling back to the page cache where the filesystem
//! refuses it, as tmpfs does) and `O_DSYNC`, so a record's write returns once it is on disk.

use super::ProjectGuard;
use crate::fsutil;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The size of a block: the unit of every write, and what `O_DIRECT` requires alignment to.
pub const BLOCK: usize = 4096;

/// Record blocks: how many jobs may be acknowledged before their pending files must be settled.
const SLOTS: u64 = 256;

/// Header blocks, before the records.
const HEADERS: u64 = 2;

const RECORD_MAGIC: &[u8; 4] = b"SRJr";
const HEADER_MAGIC: &[u8; 4] = b"SRJh";

/// A record block: magic, LSN, name length, data length, CRC-32 of everything after it.
const RECORD_HEADER: usize = 4 + 8 + 2 + 4 + 4;

/// The journal's file name in the project's spool directory.
const FILE_NAME: &str = "journal";

/// Where a project's journal stands, as its lock file records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Marks {
    /// The LSN the next record gets.
    pub head: u64,
    /// Every record before this one is settled.
    pub checkpoint: u64,
}

/// One 4 KiB block, aligned as `O_DIRECT` needs.
#[derive(Clone)]
#[repr(C, align(4096))]
struct Block([u8; BLOCK]);

impl Block {
    fn zeroed() -> Box<Block> {
        Box::new(Block([0; BLOCK]))
    }
}

/// Views blocks as the bytes they hold, for reading several in one call.
fn bytes_of(blocks: &mut [Block]) -> &mut [u8] {
    // SAFETY: `Block` is `repr(C)` around a byte array, so a slice of blocks is that many bytes,
    // contiguous, with no padding; the returned slice borrows `blocks` mutably.
    unsafe { std::slice::from_raw_parts_mut(blocks.as_mut_ptr().cast::<u8>(), std::mem::size_of_val(blocks)) }
}

/// What a record block says: the job file's name and bytes.
#[derive(Debug, PartialEq, Eq)]
struct Record {
    lsn: u64,
    name: String,
    bytes: Vec<u8>,
}

impl Record {
    fn encode(lsn: u64, name: &str, bytes: &[u8]) -> Option<Box<Block>> {
        let name_len = u16::try_from(name.len()).ok()?;
        let data_len = u32::try_from(bytes.len()).ok()?;
        if RECORD_HEADER + name.len() + bytes.len() > BLOCK {
            return None;
        }
        let mut block = Block::zeroed();
        let b = &mut block.0;
        b[..4].copy_from_slice(RECORD_MAGIC);
        b[4..12].copy_from_slice(&lsn.to_le_bytes());
        b[12..14].copy_from_slice(&name_len.to_le_bytes());
        b[14..18].copy_from_slice(&data_len.to_le_bytes());
        let body = RECORD_HEADER + name.len();
        b[RECORD_HEADER..body].copy_from_slice(name.as_bytes());
        b[body..body + bytes.len()].copy_from_slice(bytes);
        let crc = record_crc(b, body + bytes.len());
        b[18..22].copy_from_slice(&crc.to_le_bytes());
        Some(block)
    }

    /// The record a block holds, if it holds a whole one.
    fn decode(block: &[u8]) -> Option<Record> {
        let word = |range: std::ops::Range<usize>| block.get(range);
        if word(0..4)? != RECORD_MAGIC {
            return None;
        }
        let lsn = u64::from_le_bytes(word(4..12)?.try_into().ok()?);
        let name_len = usize::from(u16::from_le_bytes(word(12..14)?.try_into().ok()?));
        let data_len = usize::try_from(u32::from_le_bytes(word(14..18)?.try_into().ok()?)).ok()?;
        let crc = u32::from_le_bytes(word(18..22)?.try_into().ok()?);
        let end = RECORD_HEADER.checked_add(name_len)?.checked_add(data_len)?;
        if end > block.len() || record_crc(block, end) != crc {
            return None;
        }
        let name = String::from_utf8(block[RECORD_HEADER..RECORD_HEADER + name_len].to_vec()).ok()?;
        Some(Record { lsn, name, bytes: block[RECORD_HEADER + name_len..end].to_vec() })
    }
}

/// The CRC-32 of a record block's fields and contents, the CRC field itself left out.
fn record_crc(block: &[u8], end: usize) -> u32 {
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&block[4..18]);
    hasher.update(&block[RECORD_HEADER..end]);
    hasher.finalize()
}

/// A header block: magic, checkpoint, CRC-32 of the checkpoint.
fn encode_header(checkpoint: u64) -> Box<Block> {
    let mut block = Block::zeroed();
    block.0[..4].copy_from_slice(HEADER_MAGIC);
    block.0[4..12].copy_from_slice(&checkpoint.to_le_bytes());
    let crc = crc32fast::hash(&block.0[4..12]);
    block.0[12..16].copy_from_slice(&crc.to_le_bytes());
    block
}

fn decode_header(block: &[u8]) -> Option<u64> {
    let checkpoint = block.get(4..12)?;
    let crc = u32::from_le_bytes(block.get(12..16)?.try_into().ok()?);
    (block.get(..4)? == HEADER_MAGIC && crc32fast::hash(checkpoint) == crc)
        .then(|| u64::from_le_bytes(checkpoint.try_into().unwrap_or_default()))
}

/// An open journal, and which file it is (an instance that finds another file under the name
/// opens that one).
#[derive(Debug)]
struct OpenJournal {
    file: File,
    identity: (u64, u64),
    /// Every record below this LSN had its pending file on disk when a background sync of the
    /// filesystem finished (kept here, with the file it is about, so a journal made anew under
    /// the same name starts again from 0).
    synced: AtomicU64,
    /// Whether a background sync for this journal is under way.
    syncing: AtomicBool,
}

impl OpenJournal {
    /// The journal file's inode number, which the lock file's marks name.
    fn inode(&self) -> u64 {
        self.identity.1
    }

    fn block_offset(block: u64) -> u64 {
        block * BLOCK as u64
    }

    fn write_record(&self, block: &Block, lsn: u64) -> io::Result<()> {
        self.file.write_all_at(&block.0, Self::block_offset(HEADERS + lsn % SLOTS))
    }

    /// The record blocks, in block order.
    fn read_slots(&self) -> io::Result<Vec<Block>> {
        let mut blocks = vec![Block([0; BLOCK]); SLOTS as usize];
        self.file.read_exact_at(bytes_of(&mut blocks), Self::block_offset(HEADERS))?;
        Ok(blocks)
    }

    /// The two header blocks' checkpoints (`None` for one never written or torn).
    fn read_headers(&self) -> io::Result<[Option<u64>; 2]> {
        let mut blocks = vec![Block([0; BLOCK]); HEADERS as usize];
        self.file.read_exact_at(bytes_of(&mut blocks), 0)?;
        Ok([decode_header(&blocks[0].0), decode_header(&blocks[1].0)])
    }

    /// The checkpoint the header blocks hold: the newer of the two whole ones.
    fn durable_checkpoint(&self) -> io::Result<u64> {
        match self.read_headers()? {
            [None, None] => Err(io::Error::new(io::ErrorKind::InvalidData, "both header blocks are torn")),
            [a, b] => Ok(a.max(b).unwrap_or(0)),
        }
    }

    /// Writes `checkpoint` over the older header block.
    fn write_checkpoint(&self, checkpoint: u64) -> io::Result<()> {
        let [a, b] = self.read_headers()?;
        let older = if a.is_none() || a < b { 0 } else { 1 };
        self.file.write_all_at(&encode_header(checkpoint).0, Self::block_offset(older))
    }
}

/// A project's journal and where it stands.
struct Loaded {
    journal: Arc<OpenJournal>,
    marks: Marks,
    /// Whether the marks came from this boot's lock file (or were found and not yet settled).
    trusted: bool,
}

/// The journals of the spool's projects, opened as they are first used.
#[derive(Debug)]
pub struct Journal {
    root: PathBuf,
    /// This boot's id (`/proc/sys/kernel/random/boot_id`): marks written under another one are
    /// not trusted.
    boot: [u8; 16],
    open: Mutex<HashMap<String, Arc<OpenJournal>>>,
}

impl Journal {
    pub fn new(root: &Path) -> Journal {
        Journal::with_boot_id(root, boot_id())
    }

    /// A journal that takes `boot` for this boot's id, so tests can play a reboot.
    pub fn with_boot_id(root: &Path, boot: [u8; 16]) -> Journal {
        Journal { root: root.to_path_buf(), boot, open: Mutex::default() }
    }

    fn project_dir(&self, project: &str) -> PathBuf {
        self.root.join(project)
    }

    fn pending_dir(&self, project: &str) -> PathBuf {
        self.project_dir(project).join("pending")
    }

    /// Makes `pending/<name>` with `bytes` durable through a journal record, once `write_file`
    /// has written that file (whole, without waiting for the disk); the job is acknowledged when
    /// this returns `Ok(true)`. `Ok(false)`, with nothing written, when the record does not fit in
    /// a block: the caller writes the file durably itself. The caller holds the project's lock.
    ///
    /// Settling, a sync of the whole filesystem (about 3 ms here, far longer where crawls write
    /// much beside the spool), stays off the request path: once half the record blocks are in
    /// use a thread of its own syncs the filesystem without the project's lock, and a later
    /// append moves the checkpoint to where that sync reached, one header write. Only a journal
    /// that fills up before then (the sync taking longer than half a journal of schedules) is
    /// settled here. Measured with every 256th `schedule.json` settling in place: 11-12 µs
    /// per request on average, about 4% of its time.
    pub fn append(
        &self,
        guard: &ProjectGuard,
        project: &str,
        name: &str,
        bytes: &[u8],
        write_file: impl FnOnce() -> io::Result<()>,
    ) -> io::Result<bool> {
        if RECORD_HEADER + name.len() + bytes.len() > BLOCK {
            return Ok(false);
        }
        let Some(mut loaded) = self.load(guard, project, true)? else { return Ok(false) };
        if loaded.trusted {
            loaded.marks = self.take_background_sync(guard, &loaded)?;
        }
        if !loaded.trusted || loaded.marks.head - loaded.marks.checkpoint >= SLOTS {
            // A sync of the whole filesystem: too long to hold up the async worker.
            loaded.marks = crate::runtime::may_block(|| self.settle_loaded(guard, project, &loaded))?;
        }
        let Marks { head, checkpoint } = loaded.marks;
        let Some(block) = Record::encode(head, name, bytes) else { return Ok(false) };
        write_file()?;
        if let Err(err) = loaded.journal.write_record(&block, head) {
            // Not acknowledged: the job must not stay behind.
            let _ = fs::remove_file(self.pending_dir(project).join(name));
            return Err(err);
        }
        guard.set_journal_marks(&self.boot, loaded.journal.inode(), Marks { head: head + 1, checkpoint })?;
        if head + 1 - checkpoint >= SLOTS / 2 {
            self.sync_in_background(project, &loaded.journal, head + 1);
        }
        Ok(true)
    }

    /// Moves the checkpoint to where the last background sync reached, if that is further. Safe
    /// without the lock having been held during the sync: every record below `synced` had its
    /// pending file written before the sync began, and a pending file leaves `pending/` only
    /// after a settle that already moved the checkpoint past its record. The caller holds the
    /// project's lock, and passes marks it trusts: those name `loaded.journal`'s inode, so the
    /// sync was of the journal now under the project's name (one made anew after the project's
    /// directory was removed is another inode, and another `OpenJournal` with nothing synced).
    fn take_background_sync(&self, guard: &ProjectGuard, loaded: &Loaded) -> io::Result<Marks> {
        let Marks { head, checkpoint } = loaded.marks;
        let synced = loaded.journal.synced.load(Ordering::Acquire);
        if synced <= checkpoint || synced > head {
            return Ok(loaded.marks);
        }
        loaded.journal.write_checkpoint(synced)?;
        let marks = Marks { head, checkpoint: synced };
        guard.set_journal_marks(&self.boot, loaded.journal.inode(), marks)?;
        Ok(marks)
    }

    /// Starts a sync of the filesystem that covers every record below `head`, unless one is under
    /// way for this journal.
    fn sync_in_background(&self, project: &str, journal: &Arc<OpenJournal>, head: u64) {
        if journal.syncing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (syncing, dir) = (journal.clone(), self.pending_dir(project));
        let spawned = std::thread::Builder::new().name("spool-settle".into()).spawn(move || {
            match fsutil::sync_filesystem(&dir) {
                Ok(()) => {
                    syncing.synced.fetch_max(head, Ordering::AcqRel);
                }
                Err(err) => tracing::warn!("syncing the filesystem of {} failed: {err}", dir.display()),
            }
            syncing.syncing.store(false, Ordering::Release);
        });
        if let Err(err) = spawned {
            tracing::warn!("cannot start a thread to settle the journal: {err}");
            journal.syncing.store(false, Ordering::Release);
        }
    }

    /// Makes every journaled pending file of the project durable on its own, and moves the
    /// checkpoint past their records. It must run before a pending file is renamed or removed:
    /// a record past the checkpoint is rewritten into `pending/` by the next recovery. The caller
    /// holds the project's lock.
    pub fn settle(&self, guard: &ProjectGuard, project: &str) -> io::Result<()> {
        match self.load(guard, project, false)? {
            Some(loaded) => self.settle_loaded(guard, project, &loaded).map(drop),
            None => Ok(()),
        }
    }

    /// After a reboot, the first look at a project under its lock puts back every pending file
    /// the journal acknowledged but the disk had not kept, and settles them. Within a boot it
    /// only reads the lock file.
    pub fn recover(&self, guard: &ProjectGuard, project: &str) -> io::Result<()> {
        match self.load(guard, project, false)? {
            Some(loaded) if !loaded.trusted => self.settle_loaded(guard, project, &loaded).map(drop),
            _ => Ok(()),
        }
    }

    fn settle_loaded(&self, guard: &ProjectGuard, project: &str, loaded: &Loaded) -> io::Result<Marks> {
        let Loaded { journal, marks, trusted } = loaded;
        if marks.head > marks.checkpoint {
            let dir = self.pending_dir(project);
            if !trusted {
                let slots = journal.read_slots()?;
                for lsn in marks.checkpoint..marks.head {
                    match Record::decode(&slots[(lsn % SLOTS) as usize].0).filter(|record| record.lsn == lsn) {
                        Some(record) => restore(&dir, &record)?,
                        None => tracing::error!(project, lsn, "a journal record is torn; its job may be lost"),
                    }
                }
            }
            // One flush of the whole filesystem makes every pending file and its name durable at
            // once; an fsync per file costs a device flush each (about 0.1 ms here).
            fsutil::sync_filesystem(&dir)?;
            journal.write_checkpoint(marks.head)?;
        } else if *trusted {
            return Ok(*marks);
        }
        // Only now may the marks be trusted: a crash before this leaves the recovery to be done.
        let settled = Marks { head: marks.head, checkpoint: marks.head };
        guard.set_journal_marks(&self.boot, journal.inode(), settled)?;
        Ok(settled)
    }

    /// The project's journal and where it stands: from the lock file when its marks are from
    /// this boot, otherwise from the journal itself (the durable checkpoint, and the head found
    /// by reading whole records from there). `None` when the project has no journal and `create`
    /// is false.
    fn load(&self, guard: &ProjectGuard, project: &str, create: bool) -> io::Result<Option<Loaded>> {
        // The journal this process opened before is the project's as long as the lock file's
        // marks are of this boot and name its inode: a journal is only ever made where there is
        // none, and one made anew (a spool directory removed by hand and made again by another
        // instance) is another inode while this one is still open. Not looking at the path again
        // matters: a `stat` of the file makes the next write update its times, which costs about
        // 30 µs per write on ext4 here.
        let cached = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(project).cloned();
        if let Some(journal) = cached
            && let Some(marks) = guard.journal_marks(&self.boot, journal.inode())?
        {
            return Ok(Some(Loaded { journal, marks, trusted: true }));
        }
        let Some(journal) = self.open(project, create.then_some(guard))? else { return Ok(None) };
        if let Some(marks) = guard.journal_marks(&self.boot, journal.inode())? {
            return Ok(Some(Loaded { journal, marks, trusted: true }));
        }
        let checkpoint = journal.durable_checkpoint()?;
        let slots = journal.read_slots()?;
        let mut head = checkpoint;
        while head - checkpoint < SLOTS
            && Record::decode(&slots[(head % SLOTS) as usize].0).is_some_and(|record| record.lsn == head)
        {
            head += 1;
        }
        if head > checkpoint {
            // After a reboot, or once after an upgrade from marks that did not name their journal:
            // either way the pending files are checked against the records before the next settle.
            tracing::info!(
                project,
                "{} acknowledged job(s) in the journal are not known to be settled (the machine restarted, \
                 or the lock file's marks were of an older scrapyd-rs); their pending files are checked",
                head - checkpoint
            );
        }
        Ok(Some(Loaded { journal, marks: Marks { head, checkpoint }, trusted: false }))
    }

    /// The project's journal, opened again unless the one opened before is still the file under
    /// its name; with the project's lock passed in, one is made if there is none. `None` when
    /// there is none and none was to be made.
    fn open(&self, project: &str, create_under: Option<&ProjectGuard>) -> io::Result<Option<Arc<OpenJournal>>> {
        let path = self.project_dir(project).join(FILE_NAME);
        let identity = match fs::metadata(&path) {
            Ok(meta) => (meta.dev(), meta.ino()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                let Some(guard) = create_under else { return Ok(None) };
                // A megabyte written and fsynced, on a project's first schedule.
                crate::runtime::may_block(|| self.create(guard, project))?;
                return self.open(project, None);
            }
            Err(err) => return Err(err),
        };
        let mut open = self.open.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(journal) = open.get(project).filter(|journal| journal.identity == identity) {
            return Ok(Some(journal.clone()));
        }
        let file = open_synchronous(&path)?;
        let meta = file.metadata()?;
        let journal = Arc::new(OpenJournal {
            file,
            identity: (meta.dev(), meta.ino()),
            synced: AtomicU64::new(0),
            syncing: AtomicBool::new(false),
        });
        open.insert(project.to_string(), journal.clone());
        Ok(Some(journal))
    }

    /// Makes the project's journal: every block written (so overwrites never allocate), the
    /// first header saying "nothing to settle", all durable before it takes its name.
    fn create(&self, guard: &ProjectGuard, project: &str) -> io::Result<()> {
        let dir = self.project_dir(project);
        let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(&dir)?;
        temp.write_all(&encode_header(0).0)?;
        temp.write_all(&vec![0; BLOCK * (HEADERS + SLOTS - 1) as usize])?;
        temp.as_file().sync_all()?;
        let inode = temp.as_file().metadata()?.ino();
        temp.persist_noclobber(dir.join(FILE_NAME)).map_err(|err| err.error)?;
        fsutil::sync_dir(&dir)?;
        guard.set_journal_marks(&self.boot, inode, Marks::default())
    }
}

/// Opens a journal so each write returns once it is on disk, bypassing the page cache where the
/// filesystem allows it.
fn open_synchronous(path: &Path) -> io::Result<File> {
    let open = |flags| OpenOptions::new().read(true).write(true).custom_flags(flags).open(path);
    match open(libc::O_DSYNC | libc::O_DIRECT) {
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => open(libc::O_DSYNC),
        other => other,
    }
}

/// Makes sure the pending file of `record` holds its bytes, rewriting it if a crash lost or tore
/// it.
fn restore(dir: &Path, record: &Record) -> io::Result<()> {
    let path = dir.join(&record.name);
    if fs::read(&path).ok().as_deref() == Some(record.bytes.as_slice()) {
        return Ok(());
    }
    tracing::warn!("{}: rewritten from the journal (lost or torn by a crash)", path.display());
    fsutil::write_whole_unsynced(&path, &record.bytes)
}

/// This boot's id. Where the kernel does not say, a random one: every start of the daemon is
/// then taken for a reboot, which is always safe, and costs a scan of each journal.
fn boot_id() -> [u8; 16] {
    let text = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let id = uuid::Uuid::parse_str(text.trim()).unwrap_or_else(|_| uuid::Uuid::new_v4());
    *id.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::Spool;

    const OTHER_BOOT: [u8; 16] = [7; 16];

    struct Scene {
        _dir: tempfile::TempDir,
        spool: Spool,
        journal: Journal,
    }

    impl Scene {
        fn new() -> Scene {
            let dir = tempfile::tempdir().unwrap();
            let spool = Spool::new(dir.path());
            let journal = Journal::new(dir.path());
            Scene { _dir: dir, spool, journal }
        }

        fn append(&self, name: &str) {
            let guard = self.spool.lock_project("p").unwrap();
            let bytes = format!("{{\"id\": \"{name}\"}}");
            let write = || fsutil::write_whole_unsynced(&self.pending(name), bytes.as_bytes());
            assert!(self.journal.append(&guard, "p", name, bytes.as_bytes(), write).unwrap());
        }

        fn marks(&self) -> Option<Marks> {
            self.marks_with(&self.spool.lock_project("p").unwrap(), &self.journal.boot)
        }

        /// The marks the lock file holds for the project's journal file under `boot`.
        fn marks_with(&self, guard: &ProjectGuard, boot: &[u8; 16]) -> Option<Marks> {
            let inode = self.journal.open("p", None).unwrap().unwrap().inode();
            guard.journal_marks(boot, inode).unwrap()
        }

        fn pending(&self, name: &str) -> PathBuf {
            self.spool.pending_dir("p").join(name)
        }

        /// The same spool seen by a daemon started after a reboot.
        fn rebooted(&self) -> Journal {
            Journal::with_boot_id(&self.journal.root, OTHER_BOOT)
        }

        fn recover(&self, journal: &Journal) {
            let guard = self.spool.lock_project("p").unwrap();
            journal.recover(&guard, "p").unwrap();
        }
    }

    #[test]
    fn an_append_writes_the_pending_file_and_one_record() {
        let scene = Scene::new();
        scene.append("a.json");
        scene.append("b.json");
        assert_eq!(fs::read(scene.pending("b.json")).unwrap(), b"{\"id\": \"b.json\"}");
        assert_eq!(scene.marks(), Some(Marks { head: 2, checkpoint: 0 }));
        let journal = fs::metadata(scene.spool.root().join("p").join(FILE_NAME)).unwrap();
        assert_eq!(journal.len(), (HEADERS + SLOTS) * BLOCK as u64, "allocated once, never grown");
        let names: Vec<String> = fs::read_dir(scene.spool.pending_dir("p"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names.len(), 2, "no temporary file is left: {names:?}");
    }

    #[test]
    fn settling_moves_the_durable_checkpoint_to_the_head() {
        let scene = Scene::new();
        for name in ["a.json", "b.json", "c.json"] {
            scene.append(name);
        }
        let guard = scene.spool.lock_project("p").unwrap();
        scene.journal.settle(&guard, "p").unwrap();
        assert_eq!(scene.marks_with(&guard, &scene.journal.boot), Some(Marks { head: 3, checkpoint: 3 }));
        let journal = scene.journal.open("p", None).unwrap().unwrap();
        assert_eq!(journal.durable_checkpoint().unwrap(), 3);
        scene.journal.settle(&guard, "p").unwrap();
        assert_eq!(journal.read_headers().unwrap(), [Some(0), Some(3)], "a settle with nothing new writes nothing");
    }

    #[test]
    fn after_a_reboot_lost_and_torn_pending_files_come_back_and_settled_ones_do_not() {
        let scene = Scene::new();
        scene.append("claimed.json");
        let guard = scene.spool.lock_project("p").unwrap();
        scene.journal.settle(&guard, "p").unwrap();
        drop(guard);
        fs::remove_file(scene.pending("claimed.json")).unwrap(); // as a claim would, once settled
        for name in ["lost.json", "torn.json", "kept.json"] {
            scene.append(name);
        }
        // What a power cut can leave of files that were never fsynced.
        fs::remove_file(scene.pending("lost.json")).unwrap();
        fs::write(scene.pending("torn.json"), b"").unwrap();

        let rebooted = scene.rebooted();
        scene.recover(&rebooted);
        assert_eq!(fs::read(scene.pending("lost.json")).unwrap(), b"{\"id\": \"lost.json\"}");
        assert_eq!(fs::read(scene.pending("torn.json")).unwrap(), b"{\"id\": \"torn.json\"}");
        assert_eq!(fs::read(scene.pending("kept.json")).unwrap(), b"{\"id\": \"kept.json\"}");
        assert!(!scene.pending("claimed.json").exists(), "a settled job is never brought back");
        let guard = scene.spool.lock_project("p").unwrap();
        assert_eq!(scene.marks_with(&guard, &OTHER_BOOT), Some(Marks { head: 4, checkpoint: 4 }));
        assert_eq!(scene.marks_with(&guard, &scene.journal.boot), None, "the marks now belong to the new boot");
    }

    #[test]
    fn a_journal_made_anew_by_another_instance_is_the_one_appended_to() {
        let scene = Scene::new();
        scene.append("before.json");
        // The spool directory removed by hand, and the project scheduled again through another
        // instance, which makes a new journal while this one still holds the old file open.
        fs::remove_dir_all(scene.spool.root().join("p")).unwrap();
        let other = Journal::with_boot_id(&scene.journal.root, scene.journal.boot);
        let guard = scene.spool.lock_project("p").unwrap();
        let write = || fsutil::write_whole_unsynced(&scene.pending("theirs.json"), b"{}");
        assert!(other.append(&guard, "p", "theirs.json", b"{}", write).unwrap());
        drop(guard);

        scene.append("mine.json");
        assert_eq!(scene.marks(), Some(Marks { head: 2, checkpoint: 0 }));
        // The record is in the new journal: a reboot that lost the file brings it back.
        fs::remove_file(scene.pending("mine.json")).unwrap();
        scene.recover(&scene.rebooted());
        assert_eq!(fs::read(scene.pending("mine.json")).unwrap(), b"{\"id\": \"mine.json\"}");
    }

    #[test]
    fn half_a_journal_is_settled_by_a_sync_in_the_background() {
        let scene = Scene::new();
        for i in 0..SLOTS / 2 {
            scene.append(&format!("j{i}.json"));
        }
        assert_eq!(scene.marks().unwrap().checkpoint, 0, "the request path did not settle");
        let journal = scene.journal.open("p", None).unwrap().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while journal.synced.load(Ordering::Acquire) < SLOTS / 2 {
            assert!(std::time::Instant::now() < deadline, "the background sync finishes");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        scene.append("next.json");
        // Only a full journal settles on the way: the checkpoint moved to where the sync reached.
        assert_eq!(scene.marks(), Some(Marks { head: SLOTS / 2 + 1, checkpoint: SLOTS / 2 }));
        assert_eq!(journal.durable_checkpoint().unwrap(), SLOTS / 2);
    }

    #[test]
    fn the_journal_wraps_around_settling_when_full() {
        let scene = Scene::new();
        scene.append("j0.json");
        // As if a background sync never finished: every settle happens on the way.
        scene.journal.open("p", None).unwrap().unwrap().syncing.store(true, Ordering::Release);
        let count = SLOTS * 2 + 10;
        for i in 1..count {
            scene.append(&format!("j{i}.json"));
        }
        let marks = scene.marks().unwrap();
        assert_eq!(marks.head, count);
        assert_eq!(marks.checkpoint, SLOTS * 2, "settled each time every block was taken");
        // After a reboot, the head is found by reading records from the durable checkpoint on.
        fs::remove_file(scene.pending(&format!("j{}.json", count - 1))).unwrap();
        let rebooted = scene.rebooted();
        scene.recover(&rebooted);
        let guard = scene.spool.lock_project("p").unwrap();
        assert_eq!(scene.marks_with(&guard, &OTHER_BOOT), Some(Marks { head: count, checkpoint: count }));
        assert!(scene.pending(&format!("j{}.json", count - 1)).exists());
        assert_eq!(fs::read_dir(scene.spool.pending_dir("p")).unwrap().count() as u64, count);
    }

    #[test]
    fn a_torn_record_ends_the_journal_and_a_torn_header_leaves_the_previous_one() {
        let scene = Scene::new();
        for name in ["a.json", "b.json"] {
            scene.append(name);
        }
        let guard = scene.spool.lock_project("p").unwrap();
        scene.journal.settle(&guard, "p").unwrap(); // header block 1 now says 2
        drop(guard);
        for name in ["c.json", "d.json", "e.json"] {
            scene.append(name);
        }
        let path = scene.spool.root().join("p").join(FILE_NAME);
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        // Record 4 (e.json) torn mid-block; a settle to 5 torn while writing header block 0.
        file.write_all_at(b"garbage", (HEADERS + 4) * BLOCK as u64 + 30).unwrap();
        file.write_all_at(&encode_header(5).0[..12], 0).unwrap();
        file.write_all_at(b"x", 13).unwrap();
        for name in ["c.json", "d.json", "e.json"] {
            fs::remove_file(scene.pending(name)).unwrap();
        }
        let rebooted = scene.rebooted();
        scene.recover(&rebooted);
        assert!(scene.pending("c.json").exists() && scene.pending("d.json").exists());
        assert!(!scene.pending("e.json").exists(), "a torn record was never acknowledged");
        let guard = scene.spool.lock_project("p").unwrap();
        assert_eq!(scene.marks_with(&guard, &OTHER_BOOT), Some(Marks { head: 4, checkpoint: 4 }));
        // The next append reuses the torn record's number and block.
        let write = || fs::write(scene.pending("f.json"), b"{}");
        assert!(rebooted.append(&guard, "p", "f.json", b"{}", write).unwrap());
        assert_eq!(scene.marks_with(&guard, &OTHER_BOOT), Some(Marks { head: 5, checkpoint: 4 }));
    }

    #[test]
    fn a_record_too_large_for_a_block_is_left_to_the_caller() {
        let scene = Scene::new();
        let guard = scene.spool.lock_project("p").unwrap();
        let write = || panic!("nothing is written for a record that does not fit");
        assert!(!scene.journal.append(&guard, "p", "big.json", &vec![b' '; BLOCK], write).unwrap());
        assert!(!scene.pending("big.json").exists());
        assert!(!scene.spool.root().join("p").join(FILE_NAME).exists(), "no journal is made for it");
    }

    #[test]
    fn records_read_back_only_when_whole() {
        let block = Record::encode(9, "n.json", b"{\"x\": 1}").unwrap();
        assert_eq!(
            Record::decode(&block.0),
            Some(Record { lsn: 9, name: "n.json".into(), bytes: b"{\"x\": 1}".to_vec() })
        );
        for at in [0, 5, 13, 16, 20, RECORD_HEADER + 2, RECORD_HEADER + 10] {
            let mut torn = block.clone();
            torn.0[at] ^= 0x40;
            assert_eq!(Record::decode(&torn.0), None, "a flipped byte at {at}");
        }
        assert_eq!(Record::decode(&Block::zeroed().0), None);
        assert_eq!(decode_header(&encode_header(77).0), Some(77));
        assert_eq!(decode_header(&Block::zeroed().0), None);
    }
}
