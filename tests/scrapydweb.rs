//! ScrapydWeb 1.6 pointed at the daemon: its dashboard lists the jobs in the right states with
//! the pages and items of finished ones (read from our `logs/stats.json`), its log page shows
//! the log, and its stats page shows the crawl's stats from our `<job>.json` (finished or
//! running), without parsing the whole log itself.

use crate::helper::scene::Scene;
use crate::helper::scrapydweb::ScrapydWeb;
use crate::helper::wait_until;
use serde_json::Value;
use std::time::Duration;

/// The number ScrapydWeb's stats page shows for a row (`<th>crawled_pages</th> <td> <strong
/// class="...">7</strong>`).
fn stats_number(page: &str, row: &str) -> Option<u64> {
    let after = &page[page.find(&format!("<th>{row}</th>"))?..];
    let end = after.find("</strong>")?;
    after[..end].rsplit('>').next()?.trim().parse().ok()
}

#[test]
fn scrapydweb_shows_jobs_logs_and_stats() {
    let scene = Scene::start("poll_interval = 0.2\n");
    let web = ScrapydWeb::start(scene.daemon.addr);
    let pages = scene.pages() as u64;

    // The stats files are written just after the job is recorded; ScrapydWeb reads them once.
    let stats_url = format!("/logs/demo/follow/{}.json", scene.finished);
    assert!(wait_until(Duration::from_secs(30), || scene.daemon.get(&stats_url).status == 200), "{stats_url}");

    // The dashboard: the Jobs page parses /jobs and refreshes pages and items from stats.json
    // (the POST its page sends).
    let jobs: Value = web.post("/1/jobs/").json();
    let job = |id: &str| jobs[format!("demo/{}/{id}", spider_of(&scene, id))].clone();
    assert_eq!(job(&scene.pending)["status"], "0", "pending: {jobs}");
    assert_eq!(job(&scene.running)["status"], "1", "running: {jobs}");
    let finished = job(&scene.finished);
    assert_eq!(finished["status"], "2", "finished: {jobs}");
    assert_eq!((finished["pages"].as_u64(), finished["items"].as_u64()), (Some(pages), Some(pages)), "{finished}");
    assert_eq!(finished["href_log"], format!("/logs/demo/follow/{}.log", scene.finished));
    assert!(job(&scene.running)["pid"].as_u64().is_some_and(|pid| pid > 1), "{jobs}");
    let dashboard = web.get("/1/jobs/");
    assert_eq!(dashboard.status, 200);
    for id in [&scene.pending, &scene.running, &scene.finished] {
        assert!(dashboard.text().contains(id.as_str()), "{id} on the dashboard");
    }

    // The log page shows the log, fetched from /logs/.
    let log = web.get(&format!("/1/log/utf8/demo/follow/{}/", scene.finished));
    assert_eq!(log.status, 200);
    assert!(log.text().contains("Spider closed (finished)"), "{}", log.text());

    // The stats page shows our LogParser file.
    let stats = web.get(&format!("/1/log/stats/demo/follow/{}/", scene.finished)).text();
    assert!(stats.contains("LogParser v0.8.4, last updated at"), "ScrapydWeb used the LogParser file:\n{stats}");
    assert!(stats.contains(&stats_url), "{stats}");
    assert_eq!(stats_number(&stats, "crawled_pages"), Some(pages), "{stats}");
    assert_eq!(stats_number(&stats, "scraped_items"), Some(pages), "{stats}");
    assert!(stats.contains("<td id=\"finish_reason\">finished</td>"), "{stats}");

    // A running job's stats page too (the daemon refreshes its file every poll_interval).
    let running_url = format!("/logs/demo/sleeper/{}.json", scene.running);
    assert!(wait_until(Duration::from_secs(30), || scene.daemon.get(&running_url).status == 200), "{running_url}");
    let running = web.get(&format!("/1/log/stats/demo/sleeper/{}/", scene.running)).text();
    assert!(running.contains("LogParser v0.8.4, last updated at"), "{running}");
    assert!(running.contains("sleeping for"), "the log's tail is shown: {running}");
    assert!(!web.output().contains("Parse the whole log"), "{}", web.output());
}

fn spider_of<'a>(scene: &Scene, id: &str) -> &'a str {
    if id == scene.pending {
        "args"
    } else if id == scene.running {
        "sleeper"
    } else {
        "follow"
    }
}
