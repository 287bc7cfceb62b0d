//! `/jobs`: pending, running and finished jobs in stock 1.6's table, which ScrapydWeb parses.

use super::indent;
use crate::app::App;

/// The column headers: stock's eight, then `Items` with local items, then `Cancel` when the
/// cancel service is enabled.
fn headers(app: &App) -> Vec<&'static str> {
    let mut headers = vec!["Project", "Spider", "Job", "PID", "Start", "Runtime", "Finish", "Log"];
    if app.config.items_local().is_some() {
        headers.push("Items");
    }
    if app.services.contains_key("cancel.json") {
        headers.push("Cancel");
    }
    headers
}

pub async fn render(app: &App, _base: &str) -> std::io::Result<String> {
    let headers = headers(app);
    let columns = headers.len();
    let ths: Vec<String> = headers.iter().map(|h| format!("<th>{h}</th>")).collect();
    let header_row = format!("<tr>\n{}\n</tr>", indent(&ths.join("\n"), "    "));
    let section = |title: &str, rows: &str| {
        format!(
            "        <tbody>\n            <tr>\n                <th colspan=\"{columns}\">{title}</th>\n            </tr>\n{}\n        </tbody>\n",
            indent(rows, "            ")
        )
    };
    // No job has been accepted yet: the spool and the supervisor come with the jobs issue.
    let (pending, running, finished) = (String::new(), String::new(), String::new());
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
