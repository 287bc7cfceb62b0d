//! `/jobs`: pending, running and finished jobs in stock 1.6's table, which ScrapydWeb parses.
//!
//! ScrapydWeb matches every row with a regex that wants `<tr>` and `<td>` without attributes and
//! the columns Project, Spider, Job, PID, Start, Runtime, Finish, Log, Items in that order, and
//! reads Start and Finish as `%Y-%m-%d %H:%M:%S`; so the markup copies stock's templates to the
//! whitespace.
//!
//! After stock's columns come two of ours, what each finished crawl did: items scraped and pages
//! crawled, from the stats the runner recorded. Their cells carry a `class`, which no stock cell
//! has: ScrapydWeb's regex only takes `<td>` without attributes for its optional columns, so it
//! never mistakes one of ours for a missing stock column (Items, with no `items_dir`).

use super::{escape, indent};
use crate::app::App;
use crate::links::Links;
use crate::runtime::blocking;
use crate::spool::index::Snapshot;
use crate::spool::records::python_timedelta;
use chrono::NaiveDateTime;

/// Our columns after stock's: header text and the class of their cells.
const SCRAPED: (&str, &str) = ("Items scraped", "items-scraped");
const CRAWLED: (&str, &str) = ("Pages crawled", "pages-crawled");

/// The column headers: stock's eight, then `Items` with local items, then `Cancel` when the
/// cancel service is enabled, then ours.
fn headers(app: &App) -> Vec<&'static str> {
    let mut headers = vec!["Project", "Spider", "Job", "PID", "Start", "Runtime", "Finish", "Log"];
    if app.config.items_local().is_some() {
        headers.push("Items");
    }
    if app.services.contains_key("cancel.json") {
        headers.push("Cancel");
    }
    headers.extend([SCRAPED.0, CRAWLED.0]);
    headers
}

pub async fn render(app: &App, base: &str) -> std::io::Result<String> {
    let headers = headers(app);
    app.catch_up();
    let (index, links) = (app.index.clone(), Links::new(&app.config));
    let base = base.to_string();
    let rows_for = headers.clone();
    // The copy of a long history out of the index and its rows: off the async worker.
    let (pending, running, finished) = blocking(move || rows(&rows_for, index.snapshot(None), links, &base)).await;
    let columns = headers.len();
    let ths: Vec<String> = headers.iter().map(|h| format!("<th>{h}</th>")).collect();
    let header_row = format!("<tr>\n{}\n</tr>", indent(&ths.join("\n"), "    "));
    let section = |title: &str, rows: &str| {
        format!(
            "        <tbody>\n            <tr>\n                <th colspan=\"{columns}\">{title}</th>\n            </tr>\n{}\n        </tbody>\n",
            indent(rows, "            ")
        )
    };
    Ok(format!(
        r#"<!DOCTYPE html>
<html lang="en">
<head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>Scrapyd</title>
    <style>
        body {{ font-family: system-ui, sans-serif; }}
        table {{ border-collapse: collapse; }}
        th, td {{ border-style: solid; border-width: 1px; }}
        tbody > tr:first-child {{ background-color: #eee; }}
        th, td {{ padding: .5rem; }}
        td:nth-child(2), td:nth-child(3) {{ word-break: break-all; }}
    </style>
</head>
<body>
    <h1>Jobs</h1>
    <p><a href="./">Go up</a></p>
    <table id="jobs">
        <thead>
{header_row}
        </thead>
{pending}{running}{finished}    </table>
</body>
</html>
"#,
        header_row = indent(&header_row, "            "),
        pending = section("Pending", &pending),
        running = section("Running", &running),
        finished = section("Finished", &finished),
    ))
}

/// One row per job, for each section.
fn rows(headers: &[&str], snapshot: Snapshot, mut links: Links, base: &str) -> (String, String, String) {
    let row = |cells: &[(&str, String)]| {
        let tds: Vec<String> = headers
            .iter()
            .map(|header| {
                let value = cells.iter().find(|(name, _)| name == header).map(|(_, v)| v.as_str()).unwrap_or("");
                match [SCRAPED, CRAWLED].iter().find(|(name, _)| name == header) {
                    Some((_, class)) => format!("<td class=\"{class}\">{value}</td>"),
                    None => format!("<td>{value}</td>"),
                }
            })
            .collect();
        format!("<tr>\n{}\n</tr>", indent(&tds.join("\n"), "    "))
    };
    let link = |url: Option<String>, text: &str| url.map(|url| format!("<a href=\"{base}{url}\">{text}</a>"));
    let now = chrono::Local::now().naive_local();

    let pending: Vec<String> = snapshot
        .pending
        .iter()
        .map(|job| {
            row(&[
                ("Project", escape(&job.project)),
                ("Spider", escape(&job.spider)),
                ("Job", escape(&job.id)),
                ("Cancel", cancel_button(base, &job.project, &job.id)),
            ])
        })
        .collect();
    let running: Vec<String> = snapshot
        .running
        .iter()
        .map(|record| {
            let job = &record.job;
            let started = parse_time(&record.start_time);
            row(&[
                ("Project", escape(&job.project)),
                ("Spider", escape(&job.spider)),
                ("Job", escape(&job.id)),
                ("PID", record.pid.map(|pid| pid.to_string()).unwrap_or_default()),
                ("Start", seconds(&record.start_time)),
                ("Runtime", started.map(|start| python_timedelta(now - start)).unwrap_or_default()),
                ("Log", link(links.log_url(&job.project, &job.spider, &job.id), "Log").unwrap_or_default()),
                ("Items", link(links.items_url(&job.project, &job.spider, &job.id), "Items").unwrap_or_default()),
                ("Cancel", cancel_button(base, &job.project, &job.id)),
            ])
        })
        .collect();
    let finished: Vec<String> = snapshot
        .finished
        .iter()
        .map(|job| {
            let elapsed =
                parse_time(&job.start_time).zip(parse_time(&job.end_time)).map(|(s, e)| python_timedelta(e - s));
            let summary = job.summary();
            row(&[
                ("Project", escape(&job.project)),
                ("Spider", escape(&job.spider)),
                ("Job", escape(&job.id)),
                ("Start", seconds(&job.start_time)),
                ("Runtime", elapsed.unwrap_or_default()),
                ("Finish", seconds(&job.end_time)),
                ("Log", link(links.log_url(&job.project, &job.spider, &job.id), "Log").unwrap_or_default()),
                ("Items", link(links.items_url(&job.project, &job.spider, &job.id), "Items").unwrap_or_default()),
                (SCRAPED.0, summary.map(|s| s.items_scraped.to_string()).unwrap_or_default()),
                (CRAWLED.0, summary.map(|s| s.pages_crawled.to_string()).unwrap_or_default()),
            ])
        })
        .collect();
    (pending.join("\n"), running.join("\n"), finished.join("\n"))
}

/// Stock's cancel form, a dedented block that starts and ends with a newline.
fn cancel_button(base: &str, project: &str, job: &str) -> String {
    format!(
        "\n<form method=\"post\" onsubmit=\"return confirm('Are you sure?');\" action=\"{base}/cancel.json\">\n<input type=\"hidden\" name=\"project\" value=\"{}\">\n<input type=\"hidden\" name=\"job\" value=\"{}\">\n<input type=\"submit\" style=\"float: left;\" value=\"Cancel\">\n</form>\n",
        escape(project),
        escape(job)
    )
}

fn parse_time(text: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f").ok()
}

/// A time without its microseconds, as the page shows it.
fn seconds(text: &str) -> String {
    text.split('.').next().unwrap_or(text).to_string()
}
