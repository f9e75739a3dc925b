//! Report tables as Parquet, read by DuckDB (PyPI `duckdb`): each report's rows as its NDJSON gives
//! them, with typed columns (integers, doubles, timestamps), from the API and the CLI.

use crate::helpers::*;
use crate::parquet_export::duckdb;
use crate::seed::seed;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use serde_json::Value;

/// The file's columns with their types, and its rows with timestamps as microseconds.
const READ_WITH_DUCKDB: &str = r#"
import duckdb, json, sys
con = duckdb.connect()
f = sys.argv[1].replace("'", "''")
columns = [r[:2] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{f}')").fetchall()]
cols = [f'epoch_us("{c}")' if t.startswith("TIMESTAMP") else f'"{c}"' for c, t in columns]
rows = con.execute(f"SELECT {', '.join(cols)} FROM read_parquet('{f}')").fetchall()
print(json.dumps({"columns": columns, "rows": rows}))
"#;

fn read_with_duckdb(file: &std::path::Path) -> Value {
    duckdb(READ_WITH_DUCKDB, &[file])
}

/// Every cell of DuckDB's rows equals the NDJSON row's field of the same name.
fn assert_same_rows(what: &str, read: &Value, ndjson: &str) {
    let columns = read["columns"].as_array().unwrap();
    let rows = read["rows"].as_array().unwrap();
    let want: Vec<Value> = ndjson
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), want.len(), "{what}: rows");
    for (got, want) in rows.iter().zip(&want) {
        for (i, column) in columns.iter().enumerate() {
            let (name, kind) = (column[0].as_str().unwrap(), column[1].as_str().unwrap());
            let (cell, field) = (&got[i], &want[name]);
            let same = match kind {
                k if k.starts_with("TIMESTAMP") => {
                    let t = chrono::DateTime::parse_from_rfc3339(field.as_str().unwrap());
                    cell.as_i64() == Some(t.unwrap().timestamp_micros())
                }
                "DOUBLE" => match (cell.as_f64(), field.as_f64()) {
                    (Some(a), Some(b)) => (a - b).abs() < 1e-9,
                    _ => cell.is_null() && field.is_null(),
                },
                _ => cell == field,
            };
            assert!(
                same,
                "{what}: {name} ({kind}) is {cell} in Parquet, {field} in NDJSON"
            );
        }
    }
}

#[tokio::test]
async fn duckdb_reads_each_report_table_as_its_ndjson_rows_with_types() {
    let app = TestApp::spawn().await;
    let campaign = app.create_campaign("Reports in Parquet").await;
    seed(&app, campaign, 400).await;
    app.settled().await;
    let mut types: Vec<(String, String)> = Vec::new();
    for report in [
        "report",
        "timeseries",
        "links",
        "breakdown/class",
        "breakdown/client",
        "hour-of-week",
    ] {
        let path = format!("/api/campaigns/{campaign}/{report}");
        let r = app.api_get(&format!("{path}?format=parquet")).await;
        assert_eq!(r.status(), StatusCode::OK, "{report}");
        assert_eq!(r.headers()[CONTENT_TYPE], "application/vnd.apache.parquet");
        assert!(
            r.headers()[CONTENT_DISPOSITION]
                .to_str()
                .unwrap()
                .ends_with(".parquet\""),
            "{report}"
        );
        let file = app
            .dir
            .path()
            .join(format!("{}.parquet", report.replace('/', "-")));
        std::fs::write(&file, r.bytes().await.unwrap()).unwrap();
        let read = read_with_duckdb(&file);
        let ndjson = app
            .api_get(&format!("{path}?format=ndjson"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!ndjson.is_empty(), "{report}");
        assert_same_rows(report, &read, &ndjson);
        for c in read["columns"].as_array().unwrap() {
            types.push((
                format!("{report}.{}", c[0].as_str().unwrap()),
                c[1].as_str().unwrap().to_string(),
            ));
        }
    }
    let type_of = |name: &str| {
        types
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, t)| t.as_str())
    };
    assert_eq!(type_of("report.value"), "DOUBLE", "{types:?}");
    assert_eq!(type_of("report.campaign_id"), "BIGINT");
    assert_eq!(type_of("timeseries.start"), "TIMESTAMP WITH TIME ZONE");
    assert_eq!(type_of("timeseries.reader_opens"), "BIGINT");
    assert_eq!(type_of("links.url"), "VARCHAR");

    // Asked for by Accept, and from the CLI.
    let r = app
        .client
        .get(app.url(&format!("/api/campaigns/{campaign}/links")))
        .bearer_auth(&app.admin_token)
        .header("accept", "application/vnd.apache.parquet")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()[CONTENT_TYPE], "application/vnd.apache.parquet");
    let (ok, _, err) = cli(
        &app.db_url(),
        &[
            "report",
            "--campaign",
            &campaign.to_string(),
            "--report",
            "timeseries",
            "--format",
            "parquet",
            "--output",
            app.dir.path().join("cli.parquet").to_str().unwrap(),
        ],
        None,
    );
    assert!(ok, "{err}");
    let from_cli = read_with_duckdb(&app.dir.path().join("cli.parquet"));
    let ndjson = app
        .api_get(&format!(
            "/api/campaigns/{campaign}/timeseries?format=ndjson"
        ))
        .await
        .text()
        .await
        .unwrap();
    assert_same_rows("the CLI's timeseries", &from_cli, &ndjson);

    // The event log's pages are not Parquet: the answer says where Parquet is.
    let r = app
        .client
        .get(app.url("/api/events"))
        .bearer_auth(&app.admin_token)
        .header("accept", "application/vnd.apache.parquet")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("events/export?format=parquet")
    );
}
