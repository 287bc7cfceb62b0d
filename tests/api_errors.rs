//! The HTTP contract without eggs: routing, methods, the envelope, parameter parsing, auth and
//! bad input, each compared with what stock Scrapyd 1.6 answers.

use crate::helper::{Daemon, multipart::Part};

const FORM: (&str, &str) = ("Content-Type", "application/x-www-form-urlencoded");

#[test]
fn the_envelope_is_python_json_with_a_trailing_newline() {
    let daemon = Daemon::start("");
    let reply = daemon.get("/daemonstatus.json");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.text(),
        "{\"pending\": 0, \"running\": 0, \"finished\": 0, \"status\": \"ok\", \"node_name\": \"testnode\"}\n"
    );
    // (`Connection: close` answers the test client's own header.)
    let names: Vec<&str> =
        reply.headers.iter().map(|(n, _)| n.as_str()).filter(|n| !matches!(*n, "Date" | "Connection")).collect();
    assert_eq!(
        names,
        [
            "Content-Type",
            "Access-Control-Allow-Origin",
            "Access-Control-Allow-Methods",
            "Access-Control-Allow-Headers",
            "Content-Length"
        ]
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    assert_eq!(reply.header("access-control-allow-methods"), Some("OPTIONS, HEAD, GET"));
    assert_eq!(reply.header("access-control-allow-headers"), Some("X-Requested-With"));
    assert_eq!(reply.header("content-length"), Some("85"));
}

#[test]
fn required_parameters_are_reported_in_stock_order() {
    let daemon = Daemon::start("");
    type Fields<'a> = &'a [(&'a str, &'a [u8])];
    let cases: &[(&str, &str, Fields, &str)] = &[
        ("POST", "/schedule.json", &[], "'project' parameter is required"),
        ("POST", "/schedule.json", &[("spider", b"s")], "'project' parameter is required"),
        ("POST", "/schedule.json", &[("project", b"p")], "'spider' parameter is required"),
        ("POST", "/cancel.json", &[], "'project' parameter is required"),
        ("POST", "/cancel.json", &[("job", b"j")], "'project' parameter is required"),
        ("POST", "/cancel.json", &[("project", b"p")], "'job' parameter is required"),
        ("POST", "/addversion.json", &[], "'project' parameter is required"),
        ("POST", "/addversion.json", &[("version", b"1")], "'project' parameter is required"),
        ("POST", "/addversion.json", &[("project", b"p")], "'version' parameter is required"),
        ("POST", "/addversion.json", &[("project", b"p"), ("version", b"1")], "'egg' parameter is required"),
        ("POST", "/delproject.json", &[], "'project' parameter is required"),
        ("POST", "/delversion.json", &[], "'project' parameter is required"),
        ("POST", "/delversion.json", &[("version", b"1")], "'project' parameter is required"),
        ("POST", "/delversion.json", &[("project", b"p")], "'version' parameter is required"),
        ("GET", "/listversions.json", &[], "'project' parameter is required"),
        ("GET", "/listspiders.json", &[], "'project' parameter is required"),
        ("GET", "/status.json", &[], "'job' parameter is required"),
    ];
    for (method, path, fields, expected) in cases {
        let reply = match *method {
            "POST" => daemon.post_form(path, fields),
            _ => {
                let query = String::from_utf8(crate::helper::client::urlencode(fields)).unwrap();
                daemon.get(&format!("{path}?{query}"))
            }
        };
        assert_eq!(reply.status, 200, "{path}");
        assert_eq!(reply.error(), *expected, "{method} {path} {fields:?}");
    }
}

#[test]
fn unknown_projects_are_not_found() {
    let daemon = Daemon::start("");
    let not_found = "project 'nope' not found";
    assert_eq!(daemon.post_form("/schedule.json", &[("project", b"nope"), ("spider", b"s")]).error(), not_found);
    assert_eq!(daemon.post_form("/cancel.json", &[("project", b"nope"), ("job", b"j")]).error(), not_found);
    assert_eq!(daemon.get("/status.json?job=x&project=nope").error(), not_found);
    assert_eq!(daemon.get("/listspiders.json?project=nope").error(), not_found);
    assert_eq!(daemon.get("/listjobs.json?project=nope").error(), not_found);
    assert_eq!(daemon.post_form("/delproject.json", &[("project", b"nope")]).error(), not_found);
    assert_eq!(
        daemon.post_form("/delversion.json", &[("project", b"nope"), ("version", b"r1")]).error(),
        "version 'r1' not found"
    );
    assert_eq!(daemon.get("/listversions.json?project=nope").ok()["versions"], serde_json::json!([]));
    assert_eq!(daemon.get("/status.json?job=x").ok()["currstate"], serde_json::Value::Null);
    let jobs = daemon.get("/listjobs.json").ok();
    assert_eq!(jobs["pending"], serde_json::json!([]));
    assert_eq!(daemon.get("/listprojects.json").ok()["projects"], serde_json::json!([]));
}

#[test]
fn unsafe_project_names_get_stock_errors_and_touch_nothing() {
    let daemon = Daemon::start("");
    std::fs::create_dir_all(daemon.path().join("eggs/victim")).unwrap();
    std::fs::write(daemon.path().join("eggs/victim/1.egg"), b"keep me").unwrap();
    let before = crate::helper::tree(daemon.path());
    for name in ["../p", "a/b", "..", ".", "", "a\\b"] {
        let traversal = format!("DirectoryTraversalError: {name}");
        let n = name.as_bytes();
        let egg = crate::helper::python::not_a_zip();
        assert_eq!(daemon.get(&format!("/listversions.json?project={}", enc(name))).error(), traversal);
        assert_eq!(daemon.post_form("/delversion.json", &[("project", n), ("version", b"1")]).error(), traversal);
        assert_eq!(daemon.post_form("/delproject.json", &[("project", n)]).error(), traversal);
        // The egg is checked first, as in stock; a zip then meets the name check.
        assert_eq!(
            daemon.post_form("/addversion.json", &[("project", n), ("version", b"1"), ("egg", &egg)]).error(),
            "egg is not a ZIP file (if using curl, use egg=@path not egg=path)"
        );
        let zip = std::fs::read(crate::helper::python::zip_without_entry_point()).unwrap();
        assert_eq!(
            daemon.post_form("/addversion.json", &[("project", n), ("version", b"1"), ("egg", &zip)]).error(),
            traversal
        );
        let not_found = format!("project '{name}' not found");
        assert_eq!(daemon.get(&format!("/listspiders.json?project={}", enc(name))).error(), not_found);
        assert_eq!(daemon.get(&format!("/listjobs.json?project={}", enc(name))).error(), not_found);
        assert_eq!(daemon.post_form("/cancel.json", &[("project", n), ("job", b"j")]).error(), not_found);
    }
    assert_eq!(crate::helper::tree(daemon.path()), before, "nothing was written or removed");
}

fn enc(text: &str) -> String {
    String::from_utf8(crate::helper::client::urlencode(&[("", text.as_bytes())])).unwrap()[1..].to_string()
}

#[test]
fn invalid_utf8_and_bad_numbers_read_like_python() {
    let daemon = Daemon::start("");
    assert_eq!(
        daemon.get("/listversions.json?project=%C3%28").error(),
        "project is invalid: 'utf-8' codec can't decode byte 0xc3 in position 0: invalid continuation byte"
    );
    let schedule = |fields: &[(&str, &[u8])]| daemon.post_form("/schedule.json", fields).error();
    let base: [(&str, &[u8]); 2] = [("project", b"nope"), ("spider", b"s")];
    let with = |extra: (&'static str, &'static [u8])| {
        let mut fields = base.to_vec();
        fields.push(extra);
        schedule(&fields)
    };
    assert_eq!(with(("priority", b"x")), "priority is invalid: could not convert string to float: b'x'");
    assert_eq!(with(("priority", b"")), "priority is invalid: could not convert string to float: b''");
    assert_eq!(with(("priority", b"\xff")), "priority is invalid: could not convert string to float: b'\\xff'");
    assert_eq!(
        with(("setting", b"A=\xff")),
        "setting is invalid: 'utf-8' codec can't decode byte 0xff in position 2: invalid start byte"
    );
    // A valid priority passes to the next check.
    assert_eq!(with(("priority", b" +2.5e1 ")), "project 'nope' not found");
    assert_eq!(with(("priority", b"1_0")), "project 'nope' not found");
}

#[test]
fn query_and_body_merge_as_twisted_does() {
    let daemon = Daemon::start("");
    // A body key replaces the query's value; `;` separates pairs; keys without `=` are dropped.
    let reply = daemon.request("POST", "/schedule.json?project=fromquery;spider=s", &[FORM], b"project=frombody");
    assert_eq!(reply.error(), "project 'frombody' not found");
    let reply = daemon.request("POST", "/schedule.json?project&spider=s", &[FORM], b"");
    assert_eq!(reply.error(), "'project' parameter is required");
    // Only the first value counts.
    let reply = daemon.request("POST", "/schedule.json?project=a&project=b&spider=s", &[], b"");
    assert_eq!(reply.error(), "project 'a' not found");
    // JSON bodies are not read, and GET bodies never are.
    let reply =
        daemon.request("POST", "/schedule.json", &[("Content-Type", "application/json")], b"{\"project\": \"p\"}");
    assert_eq!(reply.error(), "'project' parameter is required");
    let reply = daemon.request("GET", "/listspiders.json", &[FORM], b"project=p");
    assert_eq!(reply.error(), "'project' parameter is required");
    // Multipart fields count like form fields.
    let reply = daemon.post_multipart("/schedule.json?spider=s", &[Part::field("project", b"multi")]);
    assert_eq!(reply.error(), "project 'multi' not found");
}

#[test]
fn methods_options_and_head_behave_as_stock() {
    let daemon = Daemon::start("");
    let wrong_get = "UnsupportedMethod: Expected one of [b'HEAD', b'OPTIONS', b'GET']";
    let wrong_post = "UnsupportedMethod: Expected one of [b'HEAD', b'OPTIONS', b'POST']";
    assert_eq!(daemon.get("/schedule.json").error(), wrong_post);
    assert_eq!(daemon.request("PUT", "/listjobs.json", &[], b"").error(), wrong_get);
    assert_eq!(daemon.request("POST", "/listjobs.json", &[FORM], b"x=1").error(), wrong_get);
    assert_eq!(daemon.request("get", "/listjobs.json", &[], b"").error(), wrong_get);

    for (path, allow) in [("/schedule.json", "OPTIONS, HEAD, POST"), ("/daemonstatus.json", "OPTIONS, HEAD, GET")] {
        let reply = daemon.request("OPTIONS", path, &[], b"");
        assert_eq!(reply.status, 204);
        assert!(reply.body.is_empty());
        // Stock also sends `Content-Length: 0`, which RFC 9110 forbids on a 204; hyper omits it.
        let headers: Vec<(&str, &str)> = reply
            .headers
            .iter()
            .filter(|(n, _)| !matches!(n.as_str(), "Date" | "Connection"))
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(
            headers,
            [
                ("Allow", allow),
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", allow),
                ("Access-Control-Allow-Headers", "X-Requested-With"),
            ]
        );
    }

    // HEAD runs GET services without a body; on POST services it is stock's AttributeError.
    let head = daemon.request("HEAD", "/daemonstatus.json", &[], b"");
    assert_eq!((head.status, head.header("content-length")), (200, Some("85")));
    for (path, class, length) in [
        ("/schedule.json", "Schedule", "123"),
        ("/addversion.json", "AddVersion", "125"),
        ("/cancel.json", "Cancel", "121"),
        ("/delproject.json", "DeleteProject", "128"),
        ("/delversion.json", "DeleteVersion", "128"),
    ] {
        let head = daemon.request("HEAD", path, &[], b"");
        assert_eq!((head.status, head.header("content-length")), (200, Some(length)), "{class}");
        assert!(head.body.is_empty());
        let get_body_len = daemon.request("GET", path, &[], b"").body.len();
        assert!(get_body_len > 0);
    }
}

#[test]
fn routing_is_flat_and_exact() {
    let daemon = Daemon::start("");
    for path in ["/nope", "/daemonstatus.json/", "//daemonstatus.json", "/DAEMONSTATUS.json", "/daemonstatus", "/jobs/"]
    {
        let reply = daemon.get(path);
        assert_eq!(reply.status, 404, "{path}");
        assert_eq!(reply.text(), scrapyd_rs::http::response::NO_SUCH_RESOURCE);
        assert_eq!(reply.body.len(), 167);
        assert_eq!(reply.header("content-type"), Some("text/html; charset=utf-8"));
    }
    // Path segments are percent-decoded before matching, as Twisted does.
    assert_eq!(daemon.get("/daemonstatus%2Ejson").status, 200);
    assert_eq!(daemon.get("/").status, 200);
    assert_eq!(daemon.get("/jobs").status, 200);
    let post = daemon.request("POST", "/jobs", &[], b"");
    assert_eq!((post.status, post.header("allow")), (405, Some("HEAD, GET")));
    assert_eq!(daemon.request("DELETE", "/", &[], b"").status, 501);
}

#[test]
fn services_can_be_removed_and_added() {
    let daemon = Daemon::start("[services]\ncancel.json =\nextra.json = scrapyd.webservice.DaemonStatus\n");
    assert_eq!(daemon.post_form("/cancel.json", &[("project", b"p"), ("job", b"j")]).status, 404);
    assert_eq!(daemon.get("/extra.json").ok()["pending"], 0);
    // Without the cancel service the jobs page has no Cancel column.
    assert!(!daemon.get("/jobs").text().contains("<th>Cancel</th>"));
}

#[test]
fn basic_auth_guards_every_path() {
    let daemon = Daemon::start("username = hello12345\npassword = 67890:world\n");
    let good = format!("Basic {}", b64("hello12345:67890:world"));
    let bad = format!("Basic {}", b64("baduser:badpass"));
    for (method, path) in [
        ("GET", "/daemonstatus.json"),
        ("POST", "/schedule.json"),
        ("OPTIONS", "/schedule.json"),
        ("GET", "/"),
        ("GET", "/jobs"),
        ("GET", "/no/such/page"),
    ] {
        for headers in [vec![], vec![("Authorization", bad.as_str())], vec![("Authorization", "Bearer x")]] {
            let reply = daemon.request(method, path, &headers, b"");
            assert_eq!(reply.status, 401, "{method} {path} {headers:?}");
            assert_eq!(reply.body, b"Unauthorized");
            assert_eq!(reply.header("www-authenticate"), Some("basic realm=\"Scrapyd\""));
        }
        let reply = daemon.request(method, path, &[("Authorization", good.as_str())], b"");
        assert_ne!(reply.status, 401, "{method} {path} with good credentials");
    }
    assert_eq!(daemon.request("GET", "/no/such/page", &[("Authorization", &good)], b"").status, 404);
}

fn b64(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

#[test]
fn debug_mode_answers_with_a_traceback() {
    let daemon = Daemon::start("debug = on\n");
    let reply = daemon.post_form("/schedule.json", &[("project", b"p"), ("spider", b"s"), ("priority", b"x")]);
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with("Traceback (most recent call last):"), "{}", reply.text());
    assert!(
        reply
            .text()
            .ends_with("twisted.web.error.Error: 200 priority is invalid: could not convert string to float: b'x'\n")
    );
    assert_eq!(reply.header("access-control-allow-origin"), None);
    // Success is unchanged.
    assert_eq!(daemon.get("/daemonstatus.json").ok()["node_name"], "testnode");
}

#[test]
fn oversized_uploads_are_refused_and_the_daemon_keeps_serving() {
    let daemon = Daemon::start("max_upload_size = 4096\n");
    let big = vec![b'x'; 64 * 1024];
    // Declared too large: refused before reading.
    let reply = daemon.post_multipart(
        "/addversion.json",
        &[Part::field("project", b"p"), Part::field("version", b"1"), Part::file("egg", "p.egg", &big)],
    );
    assert_eq!(reply.status, 413);
    assert!(reply.error().contains("max_upload_size (4096 bytes)"), "{}", reply.text());
    // Streamed without a length (chunked): refused once the limit is crossed.
    let payload = [b"egg=".as_slice(), &big].concat();
    let mut chunked = Vec::new();
    for piece in payload.chunks(8192) {
        chunked.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
        chunked.extend_from_slice(piece);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let reply = daemon.request(
        "POST",
        "/addversion.json?project=p&version=1",
        &[FORM, ("Transfer-Encoding", "chunked")],
        &chunked,
    );
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(!daemon.path().join("eggs").exists());
    assert_eq!(daemon.get("/daemonstatus.json").status, 200);
    let spilled: Vec<_> = std::fs::read_dir(daemon.path().join("spool/.scrapyd-rs/uploads")).unwrap().collect();
    assert!(spilled.is_empty(), "temporary upload files are removed: {spilled:?}");
}

#[test]
fn malformed_multipart_is_a_400() {
    let daemon = Daemon::start("");
    let content_type = format!("multipart/form-data; boundary={}", crate::helper::multipart::BOUNDARY);
    // No part ever starts: stock's 400 with an empty body.
    let reply = daemon.request("POST", "/addversion.json", &[("Content-Type", &content_type)], b"garbage");
    assert_eq!((reply.status, reply.body.len()), (400, 0));
    let reply = daemon.request("POST", "/addversion.json", &[("Content-Type", "multipart/form-data")], b"garbage");
    assert_eq!(reply.status, 400);
    // An upload cut off in the middle: 400, with a message saying so.
    let (_, body) = crate::helper::multipart::encode(&[Part::field("project", b"p"), Part::file("egg", "e", b"PK")]);
    let reply =
        daemon.request("POST", "/addversion.json", &[("Content-Type", &content_type)], &body[..body.len() - 30]);
    assert_eq!(reply.status, 400);
    assert!(reply.error().contains("incomplete"), "{}", reply.text());
    assert_eq!(daemon.get("/daemonstatus.json").status, 200);
}

#[test]
fn ten_thousand_parameters_are_answered() {
    let daemon = Daemon::start("");
    let query: Vec<String> = (0..10_000).map(|i| format!("{i:x}=")).collect();
    let reply = daemon.get(&format!("/listprojects.json?{}", query.join("&")));
    assert_eq!(reply.ok()["projects"], serde_json::json!([]));
    let body: Vec<String> = (0..10_000).map(|i| format!("arg{i}=v")).collect();
    let reply = daemon.request("POST", "/schedule.json", &[FORM], body.join("&").as_bytes());
    assert_eq!(reply.error(), "'project' parameter is required");
    // A request target over 64 KiB is refused by the HTTP layer (414); the daemon keeps serving.
    let huge: Vec<String> = (0..10_000).map(|i| format!("param{i}=value")).collect();
    let reply = daemon.get(&format!("/listprojects.json?{}", huge.join("&")));
    assert_eq!(reply.status, 414);
    assert_eq!(daemon.get("/daemonstatus.json").status, 200);
}

#[test]
fn many_small_values_or_huge_text_values_are_refused() {
    let daemon = Daemon::start("");
    // 120,000 tiny values: more than a request may carry.
    let body: Vec<u8> = (0..120_000).flat_map(|i| format!("k{i}=v&").into_bytes()).collect();
    let reply = daemon.request("POST", "/schedule.json", &[FORM], &body);
    assert_eq!(reply.status, 413, "{}", reply.text());
    assert!(reply.error().contains("more than 100000 values"), "{}", reply.text());
    // A text parameter larger than 256 KiB is refused, not read back into memory.
    let huge = vec![b'p'; 300 * 1024];
    let reply = daemon.post_form("/delproject.json", &[("project", &huge)]);
    assert!(reply.error().starts_with("project is invalid: the value is 307200 bytes long"), "{}", reply.error());
    assert_eq!(daemon.get("/daemonstatus.json").status, 200);
}
