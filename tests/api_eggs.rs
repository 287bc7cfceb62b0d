//! Deploying real eggs: the three upload forms clients use, version order, spider listing and its
//! on-disk cache, broken eggs, deletion, and two daemons sharing one data directory.

use crate::helper::client::urlencode;
use crate::helper::multipart::Part;
use crate::helper::{Daemon, python, tree};
use serde_json::json;
use std::time::{Duration, Instant};

const DEMO_SPIDERS: [&str; 5] = ["args", "failing", "follow", "sleeper", "stubborn"];

#[test]
fn an_egg_uploads_in_all_three_forms_clients_use() {
    let daemon = Daemon::start("");
    let egg = std::fs::read(python::egg("demo")).unwrap();

    // scrapyd-deploy: multipart, the egg as a file part named `project.egg`.
    let reply = daemon.post_multipart(
        "/addversion.json",
        &[Part::field("project", b"demo"), Part::field("version", b"r1"), Part::file("egg", "project.egg", &egg)],
    );
    assert_eq!(
        reply.text(),
        "{\"project\": \"demo\", \"version\": \"r1\", \"spiders\": 5, \"status\": \"ok\", \"node_name\": \"testnode\"}\n"
    );

    // python-scrapyd-api with raw bytes: a file part whose filename is `egg`, fields in the query.
    let reply = daemon.post_multipart("/addversion.json?project=demo&version=r2", &[Part::file("egg", "egg", &egg)]);
    assert_eq!(reply.ok()["spiders"], 5);

    // ScrapydWeb and SpiderKeeper: the egg's bytes url-encoded into the body.
    let reply = daemon
        .post_form("/addversion.json", &[("project", b"demo"), ("version", b"2024-01-01T00_00_01"), ("egg", &egg)]);
    assert_eq!(reply.ok()["version"], "2024-01-01T00_00_01");

    // Digits sort before letters in the same place, so the timestamp version comes first.
    assert_eq!(
        daemon.get("/listversions.json?project=demo").ok()["versions"],
        json!(["2024-01-01T00_00_01", "r1", "r2"])
    );
    assert_eq!(daemon.get("/listprojects.json").ok()["projects"], json!(["demo"]));
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"], json!(DEMO_SPIDERS));
    for version in ["r1", "r2", "2024-01-01T00_00_01"] {
        let stored = std::fs::read(daemon.path().join(format!("eggs/demo/{version}.egg"))).unwrap();
        assert_eq!(stored, egg, "version {version} is stored byte for byte");
    }
    assert!(tree(&daemon.path().join("spool/.scrapyd-rs/uploads")).is_empty(), "no upload is left behind");
}

#[test]
fn versions_order_like_looseversion_and_the_latest_is_the_default() {
    let daemon = Daemon::start("");
    let demo = python::egg("demo");
    let demo_v2 = python::egg("demo_v2");
    daemon.add_version("demo", "1.10", &demo_v2).ok();
    daemon.add_version("demo", "1.9", &demo).ok();
    daemon.add_version("demo", "r99", &demo).ok();
    daemon.add_version("demo", "r156", &demo).ok();
    assert_eq!(daemon.get("/listversions.json?project=demo").ok()["versions"], json!(["1_9", "1_10", "r99", "r156"]));

    // The default is the latest: r156 (demo). 1.10, the newer dotted version, has demo_v2's spiders.
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"], json!(DEMO_SPIDERS));
    let v2 = daemon.get("/listspiders.json?project=demo&_version=1.10").ok();
    assert_eq!(v2["spiders"].as_array().unwrap().len(), 6);
    assert!(v2["spiders"].as_array().unwrap().contains(&json!("extra")));
    // `_version` is sanitized like stored names, so 1.10 and 1_10 are the same egg.
    assert_eq!(daemon.get("/listspiders.json?project=demo&_version=1_10").ok()["spiders"], v2["spiders"]);
    assert_eq!(daemon.get("/listspiders.json?project=demo&_version=nope").error(), "version 'nope' not found");

    // Deleting the default makes the previous one the default.
    daemon.post_form("/delversion.json", &[("project", b"demo"), ("version", b"r156")]).ok();
    daemon.post_form("/delversion.json", &[("project", b"demo"), ("version", b"r99")]).ok();
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"], v2["spiders"]);
}

#[test]
fn re_adding_a_version_replaces_it_and_its_spider_list() {
    let daemon = Daemon::start("");
    daemon.add_version("demo", "1.0", &python::egg("demo")).ok();
    assert_eq!(daemon.get("/listspiders.json?project=demo&_version=1.0").ok()["spiders"].as_array().unwrap().len(), 5);
    let reply = daemon.add_version("demo", "1.0", &python::egg("demo_v2")).ok();
    assert_eq!(reply["version"], "1.0", "the answer echoes the version as given");
    assert_eq!(reply["spiders"], 6);
    assert_eq!(daemon.get("/listversions.json?project=demo").ok()["versions"], json!(["1_0"]));
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"].as_array().unwrap().len(), 6);
}

#[test]
fn a_broken_egg_stores_nothing_and_the_previous_version_stays_the_default() {
    let daemon = Daemon::start("");
    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    let before = tree(&daemon.path().join("eggs"));

    let reply = daemon.add_version("demo", "r2", &python::egg("broken_settings"));
    let message = reply.error();
    assert!(message.starts_with("RunnerError: Traceback (most recent call last):"), "{message}");
    assert!(message.ends_with("Exception: This should break the `scrapy list` command\n"), "{message}");

    let reply = daemon.add_version("demo", "r3", &python::zip_without_entry_point());
    assert!(reply.error().starts_with("RunnerError: BadEggError: "), "{}", reply.text());

    let reply = daemon
        .post_form("/addversion.json", &[("project", b"demo"), ("version", b"r4"), ("egg", &python::not_a_zip())]);
    assert_eq!(reply.error(), "egg is not a ZIP file (if using curl, use egg=@path not egg=path)");

    // A new project whose first egg is broken does not appear at all.
    let reply = daemon.add_version("fresh", "1", &python::egg("broken_settings"));
    assert!(reply.error().starts_with("RunnerError: "));

    assert_eq!(tree(&daemon.path().join("eggs")), before);
    assert_eq!(daemon.get("/listversions.json?project=demo").ok()["versions"], json!(["r1"]));
    assert_eq!(daemon.get("/listprojects.json").ok()["projects"], json!(["demo"]));
    assert!(tree(&daemon.path().join("spool/.scrapyd-rs/uploads")).is_empty(), "staged uploads are removed");
}

#[test]
fn non_ascii_spider_names_are_escaped_as_python_does() {
    let daemon = Daemon::start("");
    daemon.add_version("utf", "1", &python::egg("utf8names")).ok();
    let reply = daemon.get("/listspiders.json?project=utf");
    assert_eq!(
        reply.text(),
        "{\"spiders\": [\"ara\\u00f1a1\", \"ara\\u00f1a2\"], \"status\": \"ok\", \"node_name\": \"testnode\"}\n"
    );
}

#[test]
fn lines_printed_at_import_count_as_spiders_as_in_stock() {
    let daemon = Daemon::start("");
    assert_eq!(daemon.add_version("printing", "1", &python::egg("printing")).ok()["spiders"], 2);
}

#[test]
fn spider_lists_survive_a_restart_without_running_python() {
    let data = tempfile::tempdir().unwrap();
    {
        let daemon = Daemon::start_reusing(data.path(), "");
        daemon.add_version("demo", "r1", &python::egg("demo")).ok();
        daemon.add_version("demo", "r2", &python::egg("demo_v2")).ok();
    }
    // The second daemon cannot run Python at all: every answer must come from the cache.
    let daemon = Daemon::start_reusing(data.path(), "python = /nonexistent/python3\n");
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"].as_array().unwrap().len(), 6);
    assert_eq!(daemon.get("/listspiders.json?project=demo&_version=r1").ok()["spiders"], json!(DEMO_SPIDERS));

    // An egg replaced behind the daemon's back is not answered from the stale entry.
    let eggs = data.path().join("eggs/demo");
    std::fs::copy(python::egg("demo"), eggs.join("r2.egg.new")).unwrap();
    std::fs::rename(eggs.join("r2.egg.new"), eggs.join("r2.egg")).unwrap();
    let message = daemon.get("/listspiders.json?project=demo").error();
    assert!(
        message.starts_with("RunnerError: could not start the Python interpreter `/nonexistent/python3`"),
        "{message}"
    );
}

#[test]
fn a_python_without_scrapy_is_named_in_one_line() {
    let python = python::python_without_scrapy();
    let daemon = Daemon::start(&format!("python = {}\n", python.display()));
    let message = daemon.add_version("demo", "1", &python::egg("demo")).error();
    assert!(message.starts_with("RunnerError: scrapyd-rs: Scrapy is not importable by "), "{message}");
    assert_eq!(message.trim_end().lines().count(), 1, "{message}");
    assert!(!daemon.path().join("eggs").exists());
}

#[test]
fn listing_spiders_never_blocks_other_requests() {
    let daemon = Daemon::start("");
    let egg = std::fs::read(python::egg("slow_list")).unwrap();
    let addr = daemon.addr;
    let upload = std::thread::spawn(move || {
        let body = urlencode(&[("project", b"slow"), ("version", b"1"), ("egg", &egg)]);
        let form = [("Content-Type", "application/x-www-form-urlencoded")];
        let started = Instant::now();
        let reply = crate::helper::client::request(addr, "POST", "/addversion.json", &form, &body);
        (reply, started.elapsed())
    });
    // While `scrapy list` sleeps in the slow project's settings, the daemon answers at once.
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    for _ in 0..5 {
        assert_eq!(daemon.get("/daemonstatus.json").status, 200);
    }
    let answering = started.elapsed();
    let (reply, uploading) = upload.join().unwrap();
    assert_eq!(reply.ok()["spiders"], 1);
    assert!(uploading >= Duration::from_secs(2), "the listing really was slow ({uploading:?})");
    assert!(answering < Duration::from_millis(1500), "five answers took {answering:?} while a listing ran");
}

#[test]
fn deleting_versions_and_projects() {
    let daemon = Daemon::start("");
    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    daemon.add_version("demo", "r2", &python::egg("demo_v2")).ok();
    assert_eq!(
        daemon.post_form("/delversion.json", &[("project", b"demo"), ("version", b"r9")]).error(),
        "version 'r9' not found"
    );
    assert_eq!(
        daemon.post_form("/delversion.json", &[("project", b"demo"), ("version", b"r2")]).text(),
        "{\"status\": \"ok\", \"node_name\": \"testnode\"}\n"
    );
    assert_eq!(daemon.get("/listspiders.json?project=demo").ok()["spiders"], json!(DEMO_SPIDERS));
    daemon.post_form("/delversion.json", &[("project", b"demo"), ("version", b"r1")]).ok();
    assert_eq!(daemon.get("/listprojects.json").ok()["projects"], json!([]));
    assert!(!daemon.path().join("eggs/demo").exists());

    daemon.add_version("demo", "r1", &python::egg("demo")).ok();
    daemon.post_form("/delproject.json", &[("project", b"demo")]).ok();
    assert_eq!(daemon.get("/listspiders.json?project=demo").error(), "project 'demo' not found");
    assert_eq!(daemon.post_form("/delproject.json", &[("project", b"demo")]).error(), "project 'demo' not found");
    assert!(!daemon.path().join("spool/.scrapyd-rs/spiders/demo").exists(), "the project's cached lists go with it");
}

#[test]
fn two_daemons_on_one_directory_see_each_others_changes() {
    let first = Daemon::start("");
    let second = Daemon::start_reusing(first.path(), "node_name = second\n");
    first.add_version("demo", "r1", &python::egg("demo")).ok();
    assert_eq!(second.get("/listprojects.json").ok()["projects"], json!(["demo"]));
    assert_eq!(second.get("/listspiders.json?project=demo").ok()["spiders"], json!(DEMO_SPIDERS));
    second.add_version("demo", "r2", &python::egg("demo_v2")).ok();
    assert_eq!(first.get("/listversions.json?project=demo").ok()["versions"], json!(["r1", "r2"]));
    assert_eq!(first.get("/listspiders.json?project=demo").ok()["spiders"].as_array().unwrap().len(), 6);
    second.post_form("/delproject.json", &[("project", b"demo")]).ok();
    assert_eq!(first.get("/listspiders.json?project=demo").error(), "project 'demo' not found");
}

#[test]
fn settings_projects_are_listed_and_listable_without_eggs() {
    // A `[settings]` project: Scrapy finds it through the scrapy.cfg in the working directory.
    let dir = tempfile::tempdir().unwrap();
    let project = python::fixtures_dir().join("printing");
    crate::helper::copy_dir(&project, dir.path());
    let daemon = Daemon::start_in(dir, "");
    assert_eq!(daemon.get("/listprojects.json").ok()["projects"], json!(["default"]));
    assert_eq!(daemon.get("/listversions.json?project=default").ok()["versions"], json!([]));
    let spiders = daemon.get("/listspiders.json?project=default").ok();
    assert!(spiders["spiders"].as_array().unwrap().contains(&json!("quiet")), "{spiders}");
}
