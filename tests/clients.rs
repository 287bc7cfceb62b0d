//! The real clients against our daemon: `scrapyd-deploy` and `scrapyd-client` (scrapyd-client
//! 2.0.3) and python-scrapyd-api 2.1.2, from the stock venv (see [`crate::helper::stock`]).
//!
//! `scrapyd-deploy` builds the egg from a copy of `fixtures/projects/demo` with `setup.py
//! bdist_egg` and uploads it as a multipart form, exactly as users deploy. The Python libraries
//! run small scripts whose printed JSON the tests assert; the same script also runs against stock
//! Scrapyd 1.6.0, and both outputs must be equal.

use crate::helper::stock::{self, Stock};
use crate::helper::{Daemon, python};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const DEMO_SPIDERS: [&str; 5] = ["args", "failing", "follow", "sleeper", "stubborn"];

/// A command of the stock venv, isolated from the machine: `HOME` is `home` (no `~/.netrc`,
/// `~/.scrapy.cfg` or `~/.scrapyd.conf` leaks in) and no `SCRAPY_*`, `SCRAPYD_*` or `PYTHONPATH`
/// variable of the test environment reaches it.
fn stock_command(program: &str, home: &Path) -> Command {
    let mut command = Command::new(stock::bin(program));
    command.env("HOME", home);
    for (name, _) in std::env::vars_os() {
        let text = name.to_string_lossy();
        if text.starts_with("SCRAPY") || text == "PYTHONPATH" {
            command.env_remove(&name);
        }
    }
    command
}

/// Runs a command to completion, returning (stdout, stderr) and panicking with both if it fails
/// to start.
fn output(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("run {command:?}: {e}"))
}

fn texts(output: &Output) -> (String, String) {
    (String::from_utf8_lossy(&output.stdout).into_owned(), String::from_utf8_lossy(&output.stderr).into_owned())
}

/// A copy of the demo fixture project in `dir`, with a `scrapy.cfg` whose `[deploy]` section is
/// `deploy` (the fixture's own `scrapy.cfg` is replaced). Build outputs are not copied, so
/// `scrapyd-deploy` builds from sources as it does for users.
fn demo_project(dir: &Path, deploy: &str) -> PathBuf {
    fn copy(from: &Path, to: &Path) {
        std::fs::create_dir_all(to).expect("create the project copy");
        for entry in std::fs::read_dir(from).expect("read the fixture") {
            let path = entry.expect("read the fixture").path();
            let name = path.file_name().expect("a file name").to_string_lossy().into_owned();
            if matches!(name.as_str(), "build" | "dist" | "__pycache__" | "scrapy.cfg") || name.ends_with(".egg-info") {
                continue;
            }
            if path.is_dir() {
                copy(&path, &to.join(&name));
            } else {
                std::fs::copy(&path, to.join(&name)).expect("copy a fixture file");
            }
        }
    }
    let project = dir.join("demo");
    copy(&python::fixtures_dir().join("demo"), &project);
    let cfg = format!("[settings]\ndefault = demo.settings\n\n[deploy]\n{deploy}");
    std::fs::write(project.join("scrapy.cfg"), cfg).expect("write scrapy.cfg");
    project
}

#[test]
fn scrapyd_deploy_builds_and_uploads_the_demo_project() {
    let daemon = Daemon::start("");
    let home = tempfile::tempdir().expect("temp dir");
    let url = format!("http://{}/", daemon.addr);
    // `scrapyd-client` joins paths with "/", so its target has no trailing slash.
    let deploy = format!("url = {url}\nproject = demo\n\n[deploy:cli]\nurl = http://{}\n", daemon.addr);
    let project = demo_project(home.path(), &deploy);

    let run = output(stock_command("scrapyd-deploy", home.path()).args(["-v", "r7"]).current_dir(&project));
    let (stdout, stderr) = texts(&run);
    assert!(run.status.success(), "scrapyd-deploy failed ({}):\n{stdout}\n{stderr}", run.status);
    assert_eq!(
        stdout,
        "{\"project\": \"demo\", \"version\": \"r7\", \"spiders\": 5, \"status\": \"ok\", \"node_name\": \"testnode\"}\n\n",
        "stderr: {stderr}"
    );
    assert!(stderr.contains(&format!("Deploying to project \"demo\" in {url}addversion.json")), "{stderr}");
    assert!(stderr.contains("Server response (200):"), "{stderr}");

    assert_eq!(daemon.get("/listversions.json?project=demo").ok()["versions"], json!(["r7"]));
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"], json!(DEMO_SPIDERS));
    let stored = std::fs::read(daemon.path().join("eggs/demo/r7.egg")).expect("the egg is stored");
    assert!(stored.starts_with(b"PK\x03\x04"), "the stored egg is the zip scrapyd-deploy built");

    // scrapyd-deploy 2.0.3 has no `-l`; `scrapyd-client` lists targets, projects and spiders.
    let run = output(stock_command("scrapyd-client", home.path()).arg("targets").current_dir(&project));
    let (stdout, stderr) = texts(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(&format!("default              {url}\n")), "{stdout}");
    let run =
        output(stock_command("scrapyd-client", home.path()).args(["projects", "-t", "cli"]).current_dir(&project));
    let (stdout, stderr) = texts(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout, "demo\n", "{stderr}");
    let run = output(
        stock_command("scrapyd-client", home.path()).args(["spiders", "-t", "cli", "-p", "demo"]).current_dir(&project),
    );
    let (stdout, stderr) = texts(&run);
    assert!(run.status.success(), "{stdout}\n{stderr}");
    assert_eq!(stdout, "demo:\n  args\n  failing\n  follow\n  sleeper\n  stubborn\n", "{stderr}");
}

#[test]
fn scrapyd_deploy_authenticates_with_the_deploy_section_credentials() {
    let daemon = Daemon::start("username = deployer\npassword = s3cret:with:colons\n");
    let home = tempfile::tempdir().expect("temp dir");
    let url = format!("http://{}/", daemon.addr);
    let deploy = format!(
        "url = {url}\nproject = demo\nusername = deployer\npassword = s3cret:with:colons\n\n\
         [deploy:wrong]\nurl = {url}\nproject = demo\nusername = deployer\npassword = nope\n"
    );
    let project = demo_project(home.path(), &deploy);

    let run = output(stock_command("scrapyd-deploy", home.path()).args(["-v", "auth1"]).current_dir(&project));
    let (stdout, stderr) = texts(&run);
    assert!(run.status.success(), "scrapyd-deploy failed ({}):\n{stdout}\n{stderr}", run.status);
    assert!(
        stdout.starts_with("{\"project\": \"demo\", \"version\": \"auth1\", \"spiders\": 5, \"status\": \"ok\""),
        "{stdout}\n{stderr}"
    );

    // Wrong credentials: the 401 makes scrapyd-deploy fail and print the body. A prebuilt egg
    // spares a second build.
    let egg = python::egg("demo");
    let run = output(
        stock_command("scrapyd-deploy", home.path())
            .args(["wrong", "-v", "auth2", "--egg"])
            .arg(&egg)
            .current_dir(&project),
    );
    let (stdout, stderr) = texts(&run);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("Deploy failed (401):"), "{stderr}");
    assert_eq!(stdout, "Unauthorized\n", "{stderr}");

    let authorized = daemon.request(
        "GET",
        "/listversions.json?project=demo",
        &[("Authorization", "Basic ZGVwbG95ZXI6czNjcmV0OndpdGg6Y29sb25z")], // deployer:s3cret:with:colons
        b"",
    );
    assert_eq!(authorized.ok()["versions"], json!(["auth1"]));
    assert_eq!(daemon.get("/listversions.json?project=demo").status, 401);
}

/// Runs a Python script with the stock venv's interpreter against both daemons at once and
/// returns the JSON each printed; the script gets the base URL and then `args`.
fn script_against_both(script: &str, args: &[&Path], ours: &Daemon, stock: &Stock) -> (Value, Value) {
    let home = tempfile::tempdir().expect("temp dir");
    let run = |addr: std::net::SocketAddr| {
        let out =
            output(stock_command("python", home.path()).arg("-c").arg(script).arg(format!("http://{addr}")).args(args));
        let (stdout, stderr) = texts(&out);
        assert!(out.status.success(), "the script failed against {addr}:\n{stdout}\n{stderr}");
        serde_json::from_str::<Value>(&stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{stderr}"))
    };
    std::thread::scope(|scope| {
        let theirs = scope.spawn(|| run(stock.addr));
        let ours = run(ours.addr);
        (ours, theirs.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

/// Our daemon and stock, started side by side.
fn both() -> (Daemon, Stock) {
    std::thread::scope(|scope| {
        let stock = scope.spawn(|| Stock::start(""));
        let ours = Daemon::start("");
        (ours, stock.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    })
}

#[test]
fn python_scrapyd_api_deploys_lists_and_deletes() {
    let (ours, stock) = both();
    let script = r#"
import json, sys
from scrapyd_api import ScrapydAPI
from scrapyd_api.exceptions import ScrapydResponseError

api = ScrapydAPI(sys.argv[1])
egg = open(sys.argv[2], "rb").read()
out = {}
out["add_version"] = api.add_version("demo", "v1", egg)
out["add_version_again"] = api.add_version("demo", "v2", egg)
out["list_projects"] = api.list_projects()
out["list_versions"] = api.list_versions("demo")
out["list_spiders"] = api.list_spiders("demo")
out["list_jobs"] = api.list_jobs("demo")
out["job_status"] = api.job_status("demo", "nope")
out["delete_version"] = api.delete_version("demo", "v1")
out["versions_after"] = api.list_versions("demo")
out["delete_project"] = api.delete_project("demo")
out["projects_after"] = api.list_projects()
try:
    api.list_spiders("demo")
except ScrapydResponseError as error:
    out["error"] = str(error)
print(json.dumps(out))
"#;
    let egg = python::egg("demo");
    let (ours_out, stock_out) = script_against_both(script, &[&egg], &ours, &stock);
    assert_eq!(
        ours_out,
        json!({
            "add_version": 5,
            "add_version_again": 5,
            "list_projects": ["demo"],
            "list_versions": ["v1", "v2"],
            "list_spiders": DEMO_SPIDERS,
            "list_jobs": {"pending": [], "running": [], "finished": [], "node_name": "testnode"},
            "job_status": "",
            "delete_version": true,
            "versions_after": ["v2"],
            "delete_project": true,
            "projects_after": [],
            "error": "project 'demo' not found",
        })
    );
    assert_eq!(ours_out, stock_out, "python-scrapyd-api sees the same from ours (left) and stock (right)");
}

#[test]
fn scrapyd_client_library_lists_and_deletes() {
    let (ours, stock) = both();
    let egg = python::egg("demo");
    for reply in [ours.add_version("demo", "r1", &egg), ours.add_version("demo", "r2", &egg)] {
        assert_eq!(reply.ok()["spiders"], 5);
    }
    for reply in [stock.add_version("demo", "r1", &egg), stock.add_version("demo", "r2", &egg)] {
        assert_eq!(reply.ok()["spiders"], 5);
    }
    let script = r#"
import json, sys
from scrapyd_client import ScrapydClient
from scrapyd_client.exceptions import ErrorResponse

client = ScrapydClient(sys.argv[1])
out = {}
out["projects"] = client.projects()
out["projects_d"] = client.projects("d*")
out["versions"] = client.versions("demo")
out["spiders"] = client.spiders("demo")
out["spiders_s"] = client.spiders("demo", "s*")
out["daemonstatus"] = client.daemonstatus()
out["jobs"] = client.jobs("demo")
out["status"] = client.status("nope", "demo")
out["delversion"] = client.delversion("demo", "r1")
out["versions_after"] = client.versions("demo")
out["delproject"] = client.delproject("demo")
out["projects_after"] = client.projects()
try:
    client.spiders("demo")
except ErrorResponse as error:
    out["error"] = str(error)
print(json.dumps(out))
"#;
    let (ours_out, stock_out) = script_against_both(script, &[], &ours, &stock);
    let done = json!({"status": "ok", "node_name": "testnode"});
    assert_eq!(
        ours_out,
        json!({
            "projects": ["demo"],
            "projects_d": ["demo"],
            "versions": ["r1", "r2"],
            "spiders": DEMO_SPIDERS,
            "spiders_s": ["sleeper", "stubborn"],
            "daemonstatus": {"pending": 0, "running": 0, "finished": 0, "status": "ok", "node_name": "testnode"},
            "jobs": {"pending": [], "running": [], "finished": [], "status": "ok", "node_name": "testnode"},
            "status": {"currstate": null, "status": "ok", "node_name": "testnode"},
            "delversion": done,
            "versions_after": ["r2"],
            "delproject": done,
            "projects_after": [],
            "error": "project 'demo' not found",
        })
    );
    assert_eq!(ours_out, stock_out, "ScrapydClient sees the same from ours (left) and stock (right)");
}
