//! Python for the integration tests: an interpreter with Scrapy, and real eggs.
//!
//! scrapyd-rs runs every job as a real Scrapy process from an uploaded egg, so the
//! tests need a Python that can import Scrapy and eggs built the way
//! `scrapyd-deploy` builds them (`setup.py bdist_egg`). Both are expensive to make
//! and identical for every test, so they are made once and kept in the target
//! directory:
//!
//! - `<target>/test-venv/`: a virtualenv with Scrapy and setuptools, complete once
//!   `.ready` exists in it;
//! - `<target>/test-eggs/<project>-<hash>.egg`: one egg per fixture project, named
//!   by a hash of the project's files, so editing a fixture builds a new egg.
//!
//! cargo-nextest runs each test in its own process, so a `OnceLock` alone cannot
//! keep two tests from provisioning at once: every step that writes takes an
//! exclusive lock on a file next to what it writes, and results appear by rename
//! or by a marker file written last, so a crashed run never leaves a half-made
//! venv or egg that looks finished.
//!
//! Fixture projects live in `fixtures/projects/<name>/`. A project directory that
//! has an `OVERLAY_OF` file is not complete on its own: it is built by copying the
//! project named in that file and then this directory over it (`demo_v2` is
//! `demo` plus one spider).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

/// The Scrapy versions the tests are known to pass with (2.13 on Python 3.9 and
/// 2.19 on 3.11 and 3.13 were tried; 2.11 no longer imports with current w3lib).
pub const SCRAPY_REQUIREMENT: &str = "scrapy>=2.13,<3";

/// Overrides the interpreter: use it as is, without provisioning a venv.
pub const PYTHON_ENV: &str = "SCRAPYD_RS_TEST_PYTHON";

/// The file in a fixture directory that names the project it extends.
const OVERLAY_MARKER: &str = "OVERLAY_OF";

/// The directory holding the fixture projects.
pub fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/projects")
}

/// Cargo's target directory, where the venv and the eggs are kept between runs.
///
/// Cargo does not tell tests where it is, so this follows the same rules as cargo:
/// `CARGO_TARGET_DIR` (relative to the package, which is the tests' working
/// directory) or `target` in the package.
pub fn target_dir() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => manifest_dir.join(dir),
        _ => manifest_dir.join("target"),
    }
}

/// The Python interpreter with Scrapy: `$SCRAPYD_RS_TEST_PYTHON`, or the test venv,
/// made on first use from the `python3` on `PATH` (pip needs the package registry).
///
/// # Panics
///
/// If the venv cannot be provisioned (no `python3`, no network for pip, ...).
pub fn python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| match std::env::var_os(PYTHON_ENV) {
            Some(python) if !python.is_empty() => PathBuf::from(python),
            _ => provision_venv(&target_dir().join("test-venv")),
        })
        .clone()
}

/// A Python interpreter that cannot import Scrapy: a bare venv without pip.
///
/// Used to check the runner's message when Scrapy is missing. Cheap to make
/// (no packages), but kept in the target directory like the full venv.
pub fn python_without_scrapy() -> PathBuf {
    static BARE: OnceLock<PathBuf> = OnceLock::new();
    BARE.get_or_init(|| {
        let venv = target_dir().join("test-venv-bare");
        let _lock = lock(&target_dir().join("test-venv-bare.lock"));
        if !venv.join(".ready").exists() {
            remove_dir_if_exists(&venv);
            run("create the bare venv", Command::new("python3").args(["-m", "venv", "--without-pip"]).arg(&venv));
            write_marker(&venv.join(".ready"), "no packages\n");
        }
        venv_python(&venv)
    })
    .clone()
}

/// Makes the venv at `venv` unless `.ready` says it is complete, under a lock
/// shared by every test process.
fn provision_venv(venv: &Path) -> PathBuf {
    let _lock = lock(&venv.with_extension("lock"));
    let python = venv_python(venv);
    if venv.join(".ready").exists() {
        return python;
    }
    let started = std::time::Instant::now();
    eprintln!("test helper: provisioning {} with {SCRAPY_REQUIREMENT}", venv.display());
    // A venv without `.ready` is what a killed run left behind: start afresh.
    remove_dir_if_exists(venv);
    run("create the venv", Command::new("python3").arg("-m").arg("venv").arg(venv));
    run(
        "install Scrapy into the venv",
        Command::new(&python).args(["-m", "pip", "install", "--quiet", SCRAPY_REQUIREMENT, "setuptools"]),
    );
    let version = run(
        "import Scrapy from the venv",
        Command::new(&python).args(["-c", "import scrapy, setuptools; print(scrapy.__version__)"]),
    );
    let version = String::from_utf8_lossy(&version.stdout).trim().to_owned();
    write_marker(&venv.join(".ready"), &format!("scrapy {version}\n"));
    eprintln!("test helper: Scrapy {version} ready in {:.1?}", started.elapsed());
    python
}

fn venv_python(venv: &Path) -> PathBuf {
    venv.join("bin").join("python")
}

/// A real egg of the fixture project `project`, built with `setup.py bdist_egg`.
///
/// Built once per content of the project's files (see the module docs); later
/// calls, in this process or another, return the same file.
///
/// # Panics
///
/// If the project does not exist or the build fails.
pub fn egg(project: &str) -> PathBuf {
    static EGGS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let eggs = EGGS.get_or_init(Mutex::default);
    let mut eggs = eggs.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(path) = eggs.get(project) {
        return path.clone();
    }
    let path = build_egg(project);
    eggs.insert(project.to_owned(), path.clone());
    path
}

/// The project directories to copy, base first, following `OVERLAY_OF` files.
fn project_layers(project: &str) -> Vec<PathBuf> {
    let dir = fixtures_dir().join(project);
    assert!(dir.is_dir(), "no fixture project at {}", dir.display());
    let mut layers = match fs::read_to_string(dir.join(OVERLAY_MARKER)) {
        Ok(base) => project_layers(base.trim()),
        Err(_) => Vec::new(),
    };
    layers.push(dir);
    layers
}

fn build_egg(project: &str) -> PathBuf {
    let layers = project_layers(project);
    let python = python();
    let eggs_dir = target_dir().join("test-eggs");
    fs::create_dir_all(&eggs_dir).expect("create the test eggs directory");
    let egg = eggs_dir.join(format!("{project}-{:016x}.egg", hash_inputs(&python, &layers)));
    if egg.exists() {
        return egg; // eggs appear by rename, so an existing one is complete
    }
    let _lock = lock(&eggs_dir.join(".lock"));
    if egg.exists() {
        return egg;
    }
    let started = std::time::Instant::now();
    let work = tempfile::tempdir_in(&eggs_dir).expect("create a temporary build directory");
    let source = work.path().join("src");
    for layer in &layers {
        copy_project(layer, &source);
    }
    let dist = work.path().join("dist");
    run(
        &format!("build the {project} egg"),
        Command::new(python).args(["setup.py", "--quiet", "bdist_egg", "--dist-dir"]).arg(&dist).current_dir(&source),
    );
    let built = single_egg_in(&dist);
    fs::rename(&built, &egg).expect("move the built egg into place");
    eprintln!("test helper: built {} in {:.1?}", egg.display(), started.elapsed());
    egg
}

fn single_egg_in(dist: &Path) -> PathBuf {
    let eggs: Vec<PathBuf> = fs::read_dir(dist)
        .expect("read the egg build output")
        .map(|entry| entry.expect("read the egg build output").path())
        .filter(|path| path.extension() == Some(OsStr::new("egg")))
        .collect();
    assert_eq!(eggs.len(), 1, "expected one egg in {}, found {eggs:?}", dist.display());
    eggs.into_iter().next().unwrap_or_default()
}

/// Whether a fixture file is part of the project (build outputs and the overlay
/// marker are not).
fn is_source(path: &Path) -> bool {
    let name = path.file_name().and_then(OsStr::to_str).unwrap_or_default();
    let generated = matches!(name, "build" | "dist" | "__pycache__" | "OVERLAY_OF" | "README.md")
        || name.ends_with(".egg-info")
        || name.ends_with(".pyc");
    !generated
}

/// The source files of a project directory, sorted, relative to it.
fn source_files(dir: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap_or_else(|e| panic!("read {}: {e}", dir.display())).path();
            if !is_source(&path) {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).unwrap_or(&path).to_path_buf());
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, dir, &mut files);
    files.sort();
    files
}

fn copy_project(from: &Path, to: &Path) {
    for relative in source_files(from) {
        let target = to.join(&relative);
        if let Some(parent) = target.parent() {
            fs::create_dir_all(parent).expect("create a directory of the project copy");
        }
        fs::copy(from.join(&relative), &target)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.join(&relative).display(), target.display()));
    }
}

/// A 64-bit FNV-1a hash of the interpreter that builds the egg (bdist_egg may
/// byte-compile for it) and of the layers' file names and contents. Unlike
/// `DefaultHasher` it is stable across Rust releases, which matters for a cache
/// kept on disk.
fn hash_inputs(python: &Path, layers: &[PathBuf]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for byte in bytes.iter().chain(&(bytes.len() as u64).to_le_bytes()) {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    feed(python.as_os_str().as_encoded_bytes());
    for (index, layer) in layers.iter().enumerate() {
        feed(&index.to_le_bytes());
        for relative in source_files(layer) {
            feed(relative.to_string_lossy().as_bytes());
            feed(&fs::read(layer.join(&relative)).expect("read a fixture file"));
        }
    }
    hash
}

/// A zip holding a Python module but no `EGG-INFO`: an upload that is a zip yet
/// not an egg.
pub fn zip_without_entry_point() -> PathBuf {
    let eggs_dir = target_dir().join("test-eggs");
    fs::create_dir_all(&eggs_dir).expect("create the test eggs directory");
    let zip = eggs_dir.join("no-entry-point.zip");
    if zip.exists() {
        return zip;
    }
    let _lock = lock(&eggs_dir.join(".lock"));
    if !zip.exists() {
        let script = "import os, sys, zipfile\n\
                      with zipfile.ZipFile(sys.argv[1] + '.tmp', 'w') as z:\n    \
                      z.writestr('hello.py', 'print(\"hello\")\\n')\n\
                      os.replace(sys.argv[1] + '.tmp', sys.argv[1])\n";
        run("write a zip without EGG-INFO", Command::new(python()).arg("-c").arg(script).arg(&zip));
    }
    zip
}

/// Bytes that are not a zip file at all.
pub fn not_a_zip() -> Vec<u8> {
    b"This is not a zip file, let alone an egg.\n".to_vec()
}

/// Takes an exclusive lock on `path` (created if needed), held until the file is
/// dropped. The lock file itself is never renamed or deleted.
pub(crate) fn lock(path: &Path) -> File {
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open the lock file {}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("lock {}: {e}", path.display()));
    file
}

fn remove_dir_if_exists(dir: &Path) {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("remove {}: {e}", dir.display()),
    }
}

fn write_marker(path: &Path, text: &str) {
    fs::write(path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

/// Runs a provisioning command to completion, panicking with its output if it fails.
pub(crate) fn run(what: &str, command: &mut Command) -> Output {
    let output = command.output().unwrap_or_else(|e| panic!("test helper: cannot {what}: {command:?}: {e}"));
    if !output.status.success() {
        panic!(
            "test helper: cannot {what}: {command:?} exited with {}\n--- stdout\n{}\n--- stderr\n{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }
    output
}
