//! The README's examples, run as written against the real server and CLI: the first steps (each
//! `$ ` line of their blocks, its output compared with what the README shows), the shell blocks of
//! the API, export and webhook sections (each command must succeed, and what the README shows of
//! its answer must be there), the address-list and migration commands, and the settings table
//! against `mailbeacon serve --help`.

use crate::helpers::*;
use reqwest::StatusCode;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

const README: &str = include_str!("../../README.md");

/// A fenced block of the README: its language, the section it is in, its text.
struct Block {
    lang: String,
    section: String,
    text: String,
}

fn blocks() -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut section = String::new();
    let mut open: Option<Block> = None;
    for line in README.lines() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(lang)) => {
                open = Some(Block {
                    lang: lang.to_string(),
                    section: section.clone(),
                    text: String::new(),
                })
            }
            (Some(_), Some(_)) => blocks.push(open.take().unwrap()),
            (Some(block), None) => {
                block.text.push_str(line);
                block.text.push('\n');
            }
            (None, None) => {
                if let Some(title) = line.strip_prefix("## ") {
                    section = title.to_string();
                }
            }
        }
    }
    blocks
}

/// What differs from run to run is made equal: tokens, times, the port.
fn normalised(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(prefix) = ["/o/", "/c/", "mb_", "http://127.0.0.1:"]
            .into_iter()
            .find(|p| rest.starts_with(p))
        {
            out.push_str(prefix);
            out.push('*');
            rest = rest[prefix.len()..]
                .trim_start_matches(|c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        } else if is_time(rest) {
            out.push_str("<time>");
            rest = rest[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
            rest = rest.strip_prefix('Z').unwrap_or(rest);
        } else {
            let c = rest.chars().next().unwrap();
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

/// `2026-11-23T11:45:22` at the start of `s`.
fn is_time(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() >= 19
        && "dddd-dd-ddTdd:dd:dd".bytes().zip(b).all(|(p, c)| {
            if p == b'd' {
                c.is_ascii_digit()
            } else {
                p == *c
            }
        })
}

/// Runs `command` with `sh` in `dir`, with `mailbeacon` on the PATH; stdout and stderr together.
fn sh(dir: &Path, command: &str, public_url: &str) -> (bool, String) {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("mailbeacon");
    std::fs::write(&wrapper, format!("#!/bin/sh\nexec '{BIN}' \"$@\"\n")).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o700)).unwrap();
    // The virtual environment `.ci/test` makes holds duckdb, which the exports section uses.
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let path = format!(
        "{}:{home}/.cache/mailbeacon-venv/bin:{}",
        bin.display(),
        std::env::var("PATH").unwrap()
    );
    let out = Command::new("sh")
        .args(["-c", &format!("exec 2>&1\n{command}")])
        .current_dir(dir)
        .env("PATH", path)
        .env("MAILBEACON_PUBLIC_URL", public_url)
        .env("MAILBEACON_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The first steps: campaign, instrumented mail, a pixel URL for mail built elsewhere, and the
/// campaign's numbers once the mail was opened and its link clicked in a browser.
#[tokio::test]
async fn the_first_steps_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("examples")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/mail.html"),
        dir.path().join("examples/mail.html"),
    )
    .unwrap();
    let app = TestApp::spawn_on(dir, "sqlite://mailbeacon.db", &[], None).await;
    let steps: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.section == "First steps" && b.text.starts_with("$ mailbeacon"))
        .collect();
    assert_eq!(
        steps.len(),
        2,
        "the README's first steps have two blocks of commands"
    );
    for (i, block) in steps.iter().enumerate() {
        if i == 1 {
            open_and_click_in_a_browser(&app).await;
        }
        for step in block.text.split("$ ").filter(|s| !s.is_empty()) {
            let (command, shown) = step.split_once('\n').unwrap();
            let (ok, printed) = sh(app.dir.path(), command, &app.base);
            assert!(ok, "{command}\n{printed}");
            assert_eq!(normalised(&printed), normalised(shown), "{command}");
        }
    }
}

/// What the README asks the reader to do between the blocks: open out.html, click its link.
async fn open_and_click_in_a_browser(app: &TestApp) {
    let html = std::fs::read_to_string(app.dir.path().join("out.html")).unwrap();
    let pixel = html.split("<img src=\"").nth(1).unwrap().split('"').next();
    let click = click_urls(&html).remove(0);
    for (url, status) in [
        (pixel.unwrap(), StatusCode::OK),
        (&click, StatusCode::FOUND),
    ] {
        let r = app.client.get(url).header("user-agent", CHROME).send();
        assert_eq!(r.await.unwrap().status(), status, "{url}");
    }
    app.settled().await;
}

/// The sections whose shell block runs against one server, in this order.
const SECTIONS: [&str; 5] = [
    "HTTP API",
    "Exports",
    "Webhooks",
    "Send to Segment or RudderStack",
    "Loading a warehouse",
];

/// The API, export, webhook, Segment and warehouse sections' shell blocks, in order, on one fresh
/// server: each command succeeds, and what the README shows after it (`# ...`) is in its answer.
#[tokio::test]
async fn the_api_export_and_webhook_examples_run_as_written() {
    let app = TestApp::spawn_on(
        tempfile::tempdir().unwrap(),
        "sqlite://mailbeacon.db",
        &[],
        None,
    )
    .await;
    let examples: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.lang == "sh")
        .filter(|b| SECTIONS.contains(&b.section.as_str()))
        .collect();
    assert_eq!(
        examples.len(),
        SECTIONS.len(),
        "one shell block in each of the sections {SECTIONS:?}"
    );
    let set_token = format!("T={}", app.admin_token);
    let mut ran = 0;
    for block in &examples {
        for (command, shown) in commands(&block.text) {
            let command = command
                .replace("T=mb_...", &set_token)
                .replace("http://127.0.0.1:8080", &app.base);
            let (ok, printed) = sh(
                app.dir.path(),
                &format!("{set_token}\n{command}"),
                &app.base,
            );
            assert!(ok, "{command}\n{printed}");
            check_shown(app.dir.path(), &command, &printed, &shown);
            ran += 1;
        }
    }
    assert!(ran >= 14, "{ran} commands");
}

/// A block's commands (continued lines joined), each with the `# ` lines that follow it.
fn commands(block: &str) -> Vec<(String, Vec<String>)> {
    let mut commands: Vec<(String, Vec<String>)> = Vec::new();
    let mut continued = false;
    for line in block.lines() {
        if let Some(shown) = line.strip_prefix("# ") {
            commands.last_mut().unwrap().1.push(shown.to_string());
        } else if continued {
            let command = &mut commands.last_mut().unwrap().0;
            command.push('\n');
            command.push_str(line);
        } else if !line.trim().is_empty() {
            commands.push((line.to_string(), Vec::new()));
        }
        // A command goes on after a trailing backslash, or inside a quoted string.
        let quotes = commands.last().map_or(0, |(c, _)| c.matches('\'').count());
        continued = line.ends_with('\\') || quotes % 2 == 1;
    }
    commands
}

fn check_shown(dir: &Path, command: &str, printed: &str, shown: &[String]) {
    let Some(first) = shown.first() else {
        return;
    };
    if let Some(file) = first.strip_prefix("saves ") {
        assert!(dir.join(file).is_file(), "{command}: no {file}");
    } else if first.starts_with('{') {
        // The README shortens answers with `...`: every field it names is in the answer.
        let answer: serde_json::Value = serde_json::from_str(printed)
            .unwrap_or_else(|e| panic!("{command}: not JSON ({e}): {printed}"));
        let answer = answer.to_string();
        for field in keys(&shown.join(" ")) {
            assert!(
                answer.contains(&format!("\"{field}\":")),
                "{command}: no {field} in {answer}"
            );
        }
    } else {
        let header = printed.lines().next().unwrap_or_default();
        assert!(header.starts_with(first.as_str()), "{command}: {header}");
    }
}

/// The quoted names followed by `:` in a shortened JSON text.
fn keys(text: &str) -> Vec<&str> {
    let quoted: Vec<&str> = text.split('"').collect();
    (1..quoted.len())
        .step_by(2)
        .filter(|&i| {
            quoted
                .get(i + 1)
                .is_some_and(|after| after.starts_with(':'))
        })
        .map(|i| quoted[i])
        .collect()
}

/// Excerpts of the files the classification section downloads, in their publishers' formats.
const DOWNLOADS: [(&str, &str); 4] = [
    (
        "egress-ip-ranges.csv",
        "172.224.226.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,FR,FR-IDF,Paris,\n",
    ),
    (
        "goog.json",
        r#"{"syncToken": "1", "creationTime": "2026-11-01T00:00:00", "prefixes": [{"ipv4Prefix": "66.249.80.0/20"}, {"ipv6Prefix": "2001:4860::/32"}]}"#,
    ),
    (
        "endpoints.json",
        r#"[{"id": 1, "ips": ["40.96.0.0/13"]}, {"id": 9, "ips": ["40.92.0.0/15", "2a01:111:f403::/48"]}, {"id": 10, "ips": ["104.47.0.0/17"]}]"#,
    ),
    (
        "ip-ranges.json",
        r#"{"syncToken": "1", "createDate": "2025-07-24-20-23-14", "prefixes": [{"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "EC2", "network_border_group": "ap-northeast-2"}], "ipv6_prefixes": []}"#,
    ),
];

/// The address-list commands of the classification section, then the move to PostgreSQL, as
/// written, in a fresh directory: the files the first block downloads are there (excerpts in their
/// publishers' formats), and the migration's target is a schema of the suite's PostgreSQL.
#[test]
fn the_address_list_and_migration_examples_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in DOWNLOADS {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let block = |section: &str, command: &str| -> Vec<String> {
        let found: Vec<Block> = blocks()
            .into_iter()
            .filter(|b| b.lang == "sh" && b.section == section && b.text.contains(command))
            .collect();
        assert_eq!(found.len(), 1, "one block of {command} in {section}");
        commands(&found[0].text)
            .into_iter()
            .map(|(c, _)| c)
            .collect()
    };
    let url = "http://127.0.0.1:8080";
    let ranges = block("Readers or machines: classification", "ranges import");
    assert_eq!(ranges.len(), 6, "{ranges:?}");
    for command in &ranges {
        let (ok, printed) = sh(dir.path(), command, url);
        assert!(ok, "{command}\n{printed}");
        if command.contains("ranges import ") {
            assert!(printed.contains("ranges imported"), "{command}\n{printed}");
        }
    }
    let (_, listed) = sh(dir.path(), &ranges[0], url);
    for list in [
        "apple-mpp-egress",
        "google-image-proxy",
        "microsoft-eop",
        "cloud-aws",
    ] {
        let line = listed.lines().find(|l| l.starts_with(list)).unwrap();
        assert!(line.contains("imported"), "{line}");
    }

    let target = postgres_schema("readme_migration");
    for command in block("Settings", "migrate-data") {
        let command = command.replace("postgres://mailbeacon@db.example.com/mailbeacon", &target);
        let (ok, printed) = sh(dir.path(), &command, url);
        assert!(ok, "{command}\n{printed}");
    }
    let (ok, listed) = sh(
        dir.path(),
        &format!("mailbeacon --database '{target}' ranges list"),
        url,
    );
    assert!(ok, "{listed}");
    assert!(
        listed.contains("microsoft-eop") && listed.contains("imported"),
        "{listed}"
    );
}

/// The settings table names every flag of `mailbeacon serve --help`, and nothing else.
#[test]
fn the_settings_table_lists_every_flag_of_serve() {
    let settings = README
        .split("\n## Settings\n")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .unwrap();
    let flags = |lines: Vec<&str>| -> std::collections::BTreeSet<String> {
        (lines.into_iter())
            .flat_map(|l| l.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-')))
            .filter(|w| w.starts_with("--") && w.len() > 2)
            .map(String::from)
            .collect()
    };
    // The first cell of each row of the table.
    let documented = flags(
        (settings.lines())
            .filter(|l| l.starts_with("| `--"))
            .filter_map(|l| l.split('|').nth(1))
            .collect(),
    );
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    let mut offered = flags(
        (help.lines())
            .map(str::trim_start)
            .filter(|l| l.starts_with("--"))
            .collect(),
    );
    // `--config` is described above the table.
    for not_a_setting in ["--help", "--version", "--config"] {
        offered.remove(not_a_setting);
    }
    // The HTTPS example starts a server on ports 80 and 443 that orders from Let's Encrypt: not
    // run here, but every flag it gives must be one serve takes.
    let https: Vec<Block> = (blocks().into_iter())
        .filter(|b| b.section == "Automatic HTTPS")
        .collect();
    assert_eq!(https.len(), 1, "one block of the HTTPS example");
    let given = flags(https[0].text.lines().collect());
    assert!(given.is_subset(&offered), "{given:?}");
    assert_eq!(offered, documented);
}

/// The tracking-domain commands, as written, in a fresh directory (the default SQLite database):
/// each succeeds, and the campaign's mail is then registered under the domain.
#[test]
fn the_tracking_domain_examples_run_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let found: Vec<Block> = blocks()
        .into_iter()
        .filter(|b| b.lang == "sh" && b.section == "Tracking domains of your own")
        .collect();
    assert_eq!(found.len(), 1, "one shell block");
    let mut printed = String::new();
    for (command, _) in commands(&found[0].text) {
        let (ok, out) = sh(dir.path(), &command, "http://127.0.0.1:8080");
        assert!(ok, "{command}\n{out}");
        printed = out;
    }
    assert!(
        printed.starts_with("t.yourbrand.example\thttps://t.yourbrand.example\tadded "),
        "{printed}"
    );
    let (ok, url) = sh(
        dir.path(),
        "mailbeacon url open --campaign 1 --recipient alice@example.com",
        "http://127.0.0.1:8080",
    );
    assert!(
        ok && url.starts_with("https://t.yourbrand.example/o/"),
        "{url}"
    );
}
