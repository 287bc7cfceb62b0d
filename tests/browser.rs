//! `/` and `/jobs` in a real browser (headless Chromium), as a person sees and uses them: the
//! table with a pending, a running and a finished job, the links that lead somewhere, and the
//! cancel button that cancels.
//!
//! Skipped, with a message saying so, where Chromium or chromedriver is not installed (`.ci/run`
//! installs both).

use crate::helper::scene::Scene;
use crate::helper::wait_until;
use crate::helper::webdriver::{Browser, Element};
use std::time::Duration;

/// The cells of a table row, as rendered text.
fn cells(browser: &Browser, row: &Element) -> Vec<String> {
    browser.find_in(row, "th, td").iter().map(|cell| browser.text(cell)).collect()
}

#[test]
fn a_person_sees_the_jobs_follows_the_links_and_cancels_a_job() {
    let browser = match Browser::start() {
        Ok(browser) => browser,
        Err(why) => {
            eprintln!("browser::a_person_sees_the_jobs_follows_the_links_and_cancels_a_job SKIPPED: {why}");
            return;
        }
    };
    let scene = Scene::start("");
    let base = format!("http://{}", scene.daemon.addr);
    let pages = scene.pages().to_string();

    // The home page names the project and links to the jobs.
    browser.open(&format!("{base}/"));
    let home = browser.page_text();
    assert!(home.contains("Scrapyd"), "{home}");
    assert!(home.contains("demo"), "the deployed project is listed: {home}");
    let jobs_link = browser
        .find_all("a")
        .into_iter()
        .find(|a| browser.text(a) == "Jobs")
        .unwrap_or_else(|| panic!("a Jobs link on the home page: {home}"));
    browser.click(&jobs_link);
    assert_eq!(browser.url(), format!("{base}/jobs"));

    // The table: stock's columns, then ours; a section per state, a row per job.
    let header = browser.find_all("#jobs thead tr");
    assert_eq!(
        cells(&browser, &header[0]),
        [
            "Project",
            "Spider",
            "Job",
            "PID",
            "Start",
            "Runtime",
            "Finish",
            "Log",
            "Cancel",
            "Items scraped",
            "Pages crawled"
        ]
    );
    let rows: Vec<Vec<String>> = browser.find_all("#jobs tbody tr").iter().map(|row| cells(&browser, row)).collect();
    assert_eq!(rows.len(), 6, "{rows:?}");
    assert_eq!(rows[0], ["Pending"]);
    assert_eq!(rows[1][..3], ["demo", "args", scene.pending.as_str()], "{rows:?}");
    assert!(rows[1][3..].iter().all(String::is_empty), "a pending job has no pid, times or log: {rows:?}");
    assert_eq!(rows[2], ["Running"]);
    assert_eq!(rows[3][..3], ["demo", "sleeper", scene.running.as_str()], "{rows:?}");
    assert!(rows[3][3].parse::<u32>().is_ok(), "a pid: {rows:?}");
    assert_eq!(rows[3][4].len(), "2026-11-25 04:16:26".len(), "a start time: {rows:?}");
    assert_eq!((rows[3][6].as_str(), rows[3][7].as_str()), ("", "Log"), "{rows:?}");
    assert_eq!(rows[4], ["Finished"]);
    assert_eq!(rows[5][..3], ["demo", "follow", scene.finished.as_str()], "{rows:?}");
    assert_eq!(rows[5][6].len(), "2026-11-25 04:16:26".len(), "a finish time: {rows:?}");
    assert_eq!(rows[5][7], "Log");
    assert_eq!(rows[5][9..], [pages.clone(), pages.clone()], "items scraped, pages crawled: {rows:?}");

    // The finished job's Log link shows its log.
    let table_rows = browser.find_all("#jobs tbody tr");
    let log_link = browser.find_in(&table_rows[5], "a");
    assert_eq!(log_link.len(), 1, "one link in a finished row");
    browser.click(&log_link[0]);
    assert_eq!(browser.url(), format!("{base}/logs/demo/follow/{}.log", scene.finished));
    let log = browser.page_text();
    assert!(log.contains("Spider closed (finished)"), "{log}");
    browser.back();
    assert_eq!(browser.url(), format!("{base}/jobs"));

    // Only pending and running jobs have a Cancel button; the running one's cancels it.
    let buttons = browser.find_all("#jobs input[type=submit]");
    assert_eq!(buttons.len(), 2, "Cancel buttons for the pending and the running job");
    let running_row = &browser.find_all("#jobs tbody tr")[3];
    let cancel = browser.find_in(running_row, "input[type=submit]");
    browser.click(&cancel[0]);
    assert_eq!(browser.dialog_text().as_deref(), Some("Are you sure?"), "the page asks first");
    browser.accept_dialog();
    // The form is submitted once the dialog is closed: wait for its answer before reading it.
    let answered = wait_until(Duration::from_secs(10), || browser.url().ends_with("/cancel.json"));
    assert!(answered, "the form was submitted: {}", browser.url());
    let answer = browser.page_text();
    assert!(answer.contains("\"prevstate\": \"running\""), "cancel.json answers in the browser: {answer}");
    scene.wait_state(&scene.running, "finished");
    assert_eq!(scene.finished_entry(&scene.running)["outcome"], "cancelled");

    // The slot went to the pending job; the page shows it, and the cancelled job as finished.
    scene.wait_state(&scene.pending, "finished");
    browser.open(&format!("{base}/jobs"));
    let rows: Vec<Vec<String>> = browser.find_all("#jobs tbody tr").iter().map(|row| cells(&browser, row)).collect();
    let finished: Vec<&str> = rows.iter().skip_while(|r| r[0] != "Finished").skip(1).map(|r| r[2].as_str()).collect();
    assert_eq!(
        finished,
        [scene.pending.as_str(), scene.running.as_str(), scene.finished.as_str()],
        "newest first: {rows:?}"
    );
}
