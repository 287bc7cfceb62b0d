//! `/`: links and the project list, as stock 1.6 renders it.

use super::{escape, indent};
use crate::app::App;

pub async fn render(app: &App, base: &str) -> std::io::Result<String> {
    let mut projects = app.projects().await?;
    projects.sort();
    let project_html = if projects.is_empty() {
        "<p>No Scrapy projects yet.</p>".to_string()
    } else {
        let items: Vec<String> = projects.iter().map(|p| format!("<li>{}</li>", escape(p))).collect();
        format!("<p>Scrapy projects:</p>\n<ul>\n{}\n</ul>", indent(&items.join("\n"), "    "))
    };
    let items_link = if app.config.items_local().is_some() {
        format!("<li><a href=\"{base}/items/\">Items</a></li>")
    } else {
        String::new()
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
    </style>
</head>
<body>
    <h1>Scrapyd</h1>

    <ul>
        <li><a href="{base}/jobs">Jobs</a></li>
{items_line}
        <li><a href="{base}/logs/">Logs</a></li>
        <li><a href="https://scrapyd.readthedocs.io/en/latest/">Documentation</a></li>
    </ul>

{projects}

    <p>
        This web UI is for monitoring only. To upload projects and schedule crawls, use the API.
        For example, using <a href="https://curl.se/">curl</a>:
    </p>

    <p>
        <code>curl http://localhost:6800/schedule.json -d project=default -d spider=somespider</code>
    </p>

    <p>
        See the <a href="https://scrapyd.readthedocs.io/en/latest/">Scrapyd documentation</a> for details.
    </p>
</body>
</html>
"#,
        items_line = if items_link.is_empty() { String::new() } else { format!("        {items_link}") },
        projects = indent(&project_html, "    "),
    ))
}
