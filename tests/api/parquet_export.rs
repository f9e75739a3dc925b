//! The event export as Parquet, read by DuckDB (PyPI `duckdb`, as a warehouse loader or a notebook
//! would), against the CSV export of the same campaign: the same rows, with their types.

use crate::helpers::*;
use crate::seed::{seed, send_all};
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::Value;
use std::io::Write;

/// Prints the file's columns with their types, in order, and its rows (ordered by id, times as
/// microseconds) as JSON.
const READ_WITH_DUCKDB: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
f = sys.argv[1].replace("'", "''")
columns = [r[:2] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{f}')").fetchall()]
cols = ["epoch_us(received_at)" if c == "received_at" else c for c, _ in columns]
rows = con.execute(f"SELECT {', '.join(cols)} FROM read_parquet('{f}') ORDER BY id").fetchall()
print(json.dumps({"columns": columns, "rows": rows}))
"#;

/// Both files' column types and figures, side by side, as JSON.
const COMPARE_WITH_DUCKDB: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
pq, csv = (p.replace("'", "''") for p in sys.argv[1:3])
sources = {"parquet": f"read_parquet('{pq}')", "csv": f"read_csv('{csv}', header=true)"}
out = {}
for name, src in sources.items():
    out[name] = {
        "types": con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM {src})").fetchall(),
        "figures": con.execute(f"""SELECT count(*), count(*) FILTER (kind = 'open'),
            count(*) FILTER (kind = 'click'), count(DISTINCT message_id), sum(id),
            count(user_agent), min(received_at)::VARCHAR, max(received_at)::VARCHAR FROM {src}""").fetchone(),
    }
print(json.dumps(out))
"#;

/// Runs a DuckDB `script` (Python) on `files` and returns the JSON it prints. Python with duckdb:
/// the virtual environment `.ci/test` makes, or `MAILBEACON_TEST_PYTHON`.
pub(crate) fn duckdb(script: &str, files: &[&std::path::Path]) -> Value {
    let out = std::process::Command::new(python_tool("python", "MAILBEACON_TEST_PYTHON"))
        .args(["-c", script])
        .args(files)
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "DuckDB could not read {files:?} (install it with bash .ci/test, which puts duckdb in \
         ~/.cache/mailbeacon-venv): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test]
async fn duckdb_reads_the_parquet_export_as_the_csv_export_with_types() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Parquet").await;
    // More events than one page of the export (5,000), so more than one row group.
    let want = seed(&app, campaign, 3600).await;
    let total = (want.opens + want.clicks) as usize;

    let r = app
        .api_get(&format!(
            "/api/campaigns/{campaign}/events/export?format=parquet"
        ))
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()[CONTENT_TYPE], "application/vnd.apache.parquet");
    assert_eq!(
        r.headers()[CONTENT_DISPOSITION],
        format!("attachment; filename=\"campaign-{campaign}-events.parquet\"").as_str()
    );
    let file = app.dir.path().join("events.parquet");
    std::fs::write(&file, r.bytes().await.unwrap()).unwrap();
    let read = duckdb(READ_WITH_DUCKDB, &[&file]);

    let columns = read["columns"].as_array().unwrap();
    let type_of = |name: &str| {
        let column = columns.iter().find(|c| c[0] == name);
        column.map_or(String::new(), |c| c[1].as_str().unwrap().to_string())
    };
    for (column, want) in [
        ("id", "BIGINT"),
        ("kind", "VARCHAR"),
        ("received_at", "TIMESTAMP WITH TIME ZONE"),
        ("campaign_id", "BIGINT"),
        ("link_url", "VARCHAR"),
        ("duplicate", "BOOLEAN"),
        ("internal", "BOOLEAN"),
    ] {
        assert_eq!(type_of(column), want, "{column}: {columns:?}");
    }

    let csv = app
        .api_get(&format!(
            "/api/campaigns/{campaign}/events/export?format=csv"
        ))
        .await
        .text()
        .await
        .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    let names: Vec<&str> = columns.iter().map(|c| c[0].as_str().unwrap()).collect();
    assert_eq!(names, header, "the CSV's columns, in its order");
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    let parquet = read["rows"].as_array().unwrap();
    assert_eq!((parquet.len(), rows.len()), (total, total));
    let mut nulls = 0;
    for (p, c) in parquet.iter().zip(&rows) {
        for (i, name) in header.iter().enumerate() {
            let (value, cell) = (&p[i], &c[i]);
            let same = match name.as_str() {
                "received_at" => {
                    let at = chrono::DateTime::parse_from_rfc3339(cell).unwrap();
                    value.as_i64() == Some(at.timestamp_micros())
                }
                _ => match value {
                    Value::Null => {
                        nulls += 1;
                        cell.is_empty()
                    }
                    Value::String(s) => s == cell,
                    Value::Bool(b) => cell == if *b { "true" } else { "false" },
                    Value::Number(n) => n.as_i64() == cell.parse().ok(),
                    _ => false,
                },
            };
            assert!(same, "{name}: {value} in Parquet, {cell:?} in CSV");
        }
    }
    assert!(nulls > 0, "absent values are nulls");

    // The command line writes the same file.
    let out = app.dir.path().join("cli.parquet");
    let (ok, _, err) = cli(
        &app.db_url(),
        &[
            "export",
            "--campaign",
            &campaign.to_string(),
            "--format",
            "parquet",
            "--output",
            out.to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(duckdb(READ_WITH_DUCKDB, &[&out])["rows"], read["rows"]);
}

/// 100,000 events: the Parquet export and the CSV export hold the same rows by DuckDB's reading,
/// and as many as the report counts; the server's peak memory while it writes the Parquet file is
/// printed (the seeding's peak is reset first).
#[tokio::test]
async fn a_parquet_export_of_100000_events_matches_the_csv_and_the_report() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Parquet 100k").await;
    let rids: Vec<String> = (0..10_000).map(|i| format!("pq-{i}@example.com")).collect();
    let refs: Vec<&str> = rids.iter().map(String::as_str).collect();
    let mut requests = Vec::new();
    for chunk in refs.chunks(1000) {
        for m in app.register_sent(campaign, chunk, "<p>Hi</p>", 2).await {
            let pixel = m["pixel_url"].as_str().unwrap().to_string();
            requests.extend(std::iter::repeat_n((pixel, CHROME), 10));
        }
    }
    send_all(&app, requests).await;
    app.settled().await;

    let pid = app.child.id();
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").unwrap();
    let download = |format: &'static str| {
        let app = &app;
        async move {
            let r = app
                .api_get(&format!(
                    "/api/campaigns/{campaign}/events/export?format={format}"
                ))
                .await;
            assert_eq!(r.status(), StatusCode::OK);
            let file = app.dir.path().join(format!("events.{format}"));
            std::fs::write(&file, r.bytes().await.unwrap()).unwrap();
            file
        }
    };
    let parquet = download("parquet").await;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let peak = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    let size = std::fs::metadata(&parquet).unwrap().len();
    // Past the test harness's capture: the figure is for whoever runs the suite.
    let _ = writeln!(
        std::io::stderr(),
        "parquet export of 100,000 events: {size} bytes; server's peak while writing it: {}",
        peak.trim_start_matches("VmHWM:").trim()
    );
    let csv = download("csv").await;

    let read = duckdb(COMPARE_WITH_DUCKDB, &[&parquet, &csv]);
    let (p, c) = (&read["parquet"], &read["csv"]);
    assert_eq!(p["figures"], c["figures"], "{read}");
    assert_eq!(p["figures"][0], 100_000, "{read}");
    assert_eq!(p["figures"][1], 100_000, "{read}");
    // DuckDB sniffs the CSV's types; the Parquet file says them.
    assert_eq!(p["types"], c["types"], "{read}");
    let report: Value = app
        .api_get(&format!("/api/campaigns/{campaign}/report"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["opens"]["total"], p["figures"][1], "{report}");
    assert_eq!(report["clicks"]["total"], p["figures"][2], "{report}");
}
