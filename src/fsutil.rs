//! Durable file operations: what "written" means in this daemon.
//!
//! A file becomes visible under its final name only once its bytes are on disk: write a temporary
//! file in the destination directory, fsync it, rename it over the final name, fsync the
//! directory. A crash at any point leaves either the old file or the new one, never a torn one,
//! and at most a stray temporary file, whose name starts with `.` so no listing mistakes it for
//! data.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Fsyncs a directory, making a rename or unlink inside it durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Flushes everything written to the filesystem that holds `path`, data and names, and waits
/// for it: one device flush for any number of files.
pub fn sync_filesystem(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let file = File::open(path)?;
    // SAFETY: syncfs takes a file descriptor, which `file` keeps open for the call.
    if unsafe { libc::syncfs(file.as_raw_fd()) } == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// A file's type and size, as [`shape_of`] reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub is_dir: bool,
    pub len: u64,
}

/// Reads a file's type and size without reading its times: for paths that run per request and
/// then change the file, where `fs::metadata` would slow every synchronous write on the machine.
///
/// Linux (6.13 and later, "multigrain timestamps") gives a file whose change time was read a
/// fine-grained time at its next change, and that moves a floor under the times of every file
/// changed after it. The spool journal's next record then always changes the journal's
/// modification time, and on ext4 without a journal its synchronous write must also write the
/// journal's inode. `schedule.json` used to read the times of `pending/` before renaming a job
/// into it; measured here, each job cost 3.2 device writes and 14 KiB, the record's write 145-163
/// µs at the median, against 2.2 writes, 10 KiB and 116-129 µs once only the type was asked for.
/// `statx` asked for the type and size only leaves the times unread.
pub fn shape_of(path: &Path) -> io::Result<Shape> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a path with a NUL byte"))?;
    // SAFETY: an all-zero `statx` is a valid value of this plain C struct.
    let mut stat: libc::statx = unsafe { std::mem::zeroed() };
    let mask = libc::STATX_TYPE | libc::STATX_SIZE;
    // SAFETY: `path` is NUL-terminated and `stat` is a `statx` the kernel may fill; both live for
    // the call.
    if unsafe { libc::statx(libc::AT_FDCWD, path.as_ptr(), 0, mask, &mut stat) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let is_dir = u32::from(stat.stx_mode) & libc::S_IFMT == libc::S_IFDIR;
    Ok(Shape { is_dir, len: stat.stx_size })
}

/// Whether `path` is a directory, asked as [`shape_of`] asks.
pub fn is_dir_quietly(path: &Path) -> bool {
    shape_of(path).is_ok_and(|shape| shape.is_dir)
}

/// Asks the filesystem to spread the directories made inside `dir` over its whole disk instead of
/// keeping them near `dir` (ext4's "top of a directory hierarchy" flag, `chattr +T`). Files are
/// then made near their own directory, away from the inodes freed around `dir`: ext4 without a
/// journal passes over every inode freed in the last few minutes when it makes a file, which
/// costs hundreds of microseconds per file in a directory where files come and go (measured:
/// 400-580 µs per create beside a busy spool, 18-24 µs in a spread directory). Other filesystems
/// have no such flag; `false` says it was not set, which costs nothing but that speed.
pub fn spread_subdirectories(dir: &Path) -> bool {
    use std::os::fd::AsRawFd;
    /// `FS_TOPDIR_FL` from linux/fs.h.
    const TOPDIR: libc::c_long = 0x0002_0000;
    let Ok(file) = File::open(dir) else { return false };
    let mut flags: libc::c_long = 0;
    // SAFETY: FS_IOC_GETFLAGS and FS_IOC_SETFLAGS read and write one `long` behind the pointer,
    // which lives for the call; the descriptor is open for it.
    unsafe {
        if libc::ioctl(file.as_raw_fd(), libc::FS_IOC_GETFLAGS, &mut flags) != 0 {
            return false;
        }
        if flags & TOPDIR != 0 {
            return true;
        }
        flags |= TOPDIR;
        libc::ioctl(file.as_raw_fd(), libc::FS_IOC_SETFLAGS, &flags) == 0
    }
}

/// Creates `dir` and any missing parents, fsyncing each parent whose entry was created.
pub fn create_dir_all_durable(dir: &Path) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        create_dir_all_durable(parent)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(err) => return Err(err),
    }
    match dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => sync_dir(parent),
        None => Ok(()),
    }
}

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_of(path)?;
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
    temp.write_all(bytes)?;
    temp.as_file().sync_all()?;
    temp.persist(path).map_err(|err| err.error)?;
    sync_dir(dir)
}

/// Writes `path` whole (a temporary file beside it, renamed) without waiting for the disk: for
/// files made durable some other way (a scheduled job's, by the spool's journal).
pub fn write_whole_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(parent_of(path)?)?;
    temp.write_all(bytes)?;
    temp.persist(path).map_err(|err| err.error)?;
    Ok(())
}

/// Moves the already-written file `source` to `dest` atomically and durably.
///
/// `source` is fsynced first. When the two paths are on different filesystems the bytes are
/// copied into a temporary file beside `dest`, which is then renamed, so `dest` is still never
/// seen half-written.
pub fn persist_file(source: &Path, dest: &Path) -> io::Result<()> {
    File::open(source)?.sync_all()?;
    let dir = parent_of(dest)?;
    match fs::rename(source, dest) {
        Ok(()) => {}
        Err(err) if err.kind() == io::ErrorKind::CrossesDevices => {
            let temp = tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir)?;
            fs::copy(source, temp.path())?;
            temp.as_file().sync_all()?;
            temp.persist(dest).map_err(|err| err.error)?;
            fs::remove_file(source)?;
        }
        Err(err) => return Err(err),
    }
    sync_dir(dir)
}

fn parent_of(path: &Path) -> io::Result<&Path> {
    path.parent().filter(|p| !p.as_os_str().is_empty()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("{} has no parent directory", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.json");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn persist_file_moves_a_file_into_a_new_directory() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("upload");
        fs::write(&source, b"egg").unwrap();
        let dest_dir = dir.path().join("a/b");
        create_dir_all_durable(&dest_dir).unwrap();
        persist_file(&source, &dest_dir.join("1.egg")).unwrap();
        assert!(!source.exists());
        assert_eq!(fs::read(dest_dir.join("1.egg")).unwrap(), b"egg");
    }

    #[test]
    fn shape_of_tells_directories_files_and_sizes_apart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("job.json");
        fs::write(&file, b"{\"id\": 1}").unwrap();
        assert!(shape_of(dir.path()).unwrap().is_dir);
        assert_eq!(shape_of(&file).unwrap(), Shape { is_dir: false, len: 9 });
        assert!(is_dir_quietly(dir.path()));
        assert!(!is_dir_quietly(&file));
        let missing = shape_of(&dir.path().join("missing")).unwrap_err();
        assert_eq!(missing.kind(), io::ErrorKind::NotFound);
        assert!(!is_dir_quietly(&dir.path().join("missing")));
    }
}
