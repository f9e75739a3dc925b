//! The labelled corpus (tests/corpus/requests.csv, every row citing its public source) replayed
//! over HTTP through a trusted proxy. `cargo test labelled -- --nocapture` prints per-class
//! precision and recall, machine-vs-reader precision and recall, and every row the classifier gets
//! wrong; the test holds the targets of tests/corpus/README.md, and the campaign's stats must count
//! machine activity exactly as the stored classes say.

use crate::helpers::*;
use reqwest::StatusCode;
use reqwest::header::USER_AGENT;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};

const MACHINE: [&str; 3] = ["apple_mpp", "scanner", "bot"];
const CLASSES: [&str; 8] = [
    "human",
    "apple_mpp",
    "gmail_proxy",
    "yahoo_proxy",
    "microsoft_proxy",
    "other_proxy",
    "scanner",
    "bot",
];

/// Machine-vs-reader precision and recall, and the share of rows given their exact class.
const MIN_MACHINE_PRECISION: f64 = 0.97;
const MIN_MACHINE_RECALL: f64 = 0.97;
const MIN_EXACT: f64 = 0.90;

#[derive(Debug, serde::Deserialize)]
pub struct Row {
    pub id: String,
    pub kind: String,
    pub method: String,
    pub user_agent: String,
    pub client_ip: String,
    pub headers: String,
    pub seconds_after_send: f64,
    pub expected_class: String,
    pub confidence: String,
    pub family: String,
    pub source: String,
}

pub fn corpus() -> Vec<Row> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/corpus/requests.csv");
    csv::Reader::from_path(path)
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect()
}

#[test]
fn the_labelled_corpus_is_what_its_readme_promises() {
    let rows = corpus();
    assert!(rows.len() >= 300, "the corpus has {} rows", rows.len());
    let mut ids = BTreeSet::new();
    for r in &rows {
        assert!(ids.insert(&r.id), "{}: id twice", r.id);
        assert!(CLASSES.contains(&r.expected_class.as_str()), "{}", r.id);
        assert!(["open", "click"].contains(&r.kind.as_str()), "{}", r.id);
        assert!(["GET", "HEAD"].contains(&r.method.as_str()), "{}", r.id);
        assert!(
            ["high", "medium", "low"].contains(&r.confidence.as_str()),
            "{}",
            r.id
        );
        assert!(r.source.starts_with("http"), "{}: no source", r.id);
        assert!(r.client_ip.parse::<std::net::IpAddr>().is_ok(), "{}", r.id);
        serde_json::from_str::<BTreeMap<String, String>>(&r.headers).unwrap();
    }
    for class in CLASSES {
        assert!(
            rows.iter().any(|r| r.expected_class == class),
            "no {class} row"
        );
    }
    let families = |prefix: &str| -> BTreeSet<&str> {
        rows.iter()
            .filter_map(|r| r.family.strip_prefix(prefix))
            .collect()
    };
    let providers = families("provider:");
    let vendors = families("vendor:");
    assert!(providers.len() >= 8, "mail providers: {providers:?}");
    assert!(vendors.len() >= 8, "security vendors: {vendors:?}");
}

#[tokio::test]
async fn the_labelled_corpus_is_classified_as_labelled() {
    let rows = corpus();
    let app = TestApp::spawn_with(&["--trusted-proxy", "127.0.0.1"]).await;
    let campaign = app.create_campaign("Corpus").await;

    // One message per row, sent as long before "now" as the row says.
    let now = chrono::Utc::now();
    let messages: Vec<Value> = rows
        .iter()
        .map(|r| {
            let sent_at =
                now - chrono::Duration::milliseconds((r.seconds_after_send * 1000.0) as i64);
            json!({
                "recipient_id": r.id,
                "html": "<p>Hello <a href=\"https://shop.example.com/offer\">offer</a></p>",
                "sent_at": sent_at.to_rfc3339(),
            })
        })
        .collect();
    let r = app
        .api_post(
            &format!("/api/campaigns/{campaign}/messages"),
            &json!(messages),
        )
        .await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let registered: Value = r.json().await.unwrap();

    for (row, msg) in rows.iter().zip(registered["messages"].as_array().unwrap()) {
        let html = msg["html"].as_str().unwrap();
        let url = if row.kind == "open" {
            msg["pixel_url"].as_str().unwrap().to_string()
        } else {
            click_urls(html).remove(0)
        };
        let mut req = app
            .client
            .request(row.method.parse().unwrap(), &url)
            .header("x-forwarded-for", &row.client_ip);
        if !row.user_agent.is_empty() {
            req = req.header(USER_AGENT, &row.user_agent);
        }
        let headers: BTreeMap<String, String> = serde_json::from_str(&row.headers).unwrap();
        for (name, value) in &headers {
            req = req.header(name, value);
        }
        let status = req.send().await.unwrap().status();
        assert!(
            status == StatusCode::OK || status == StatusCode::FOUND,
            "{}: {status}",
            row.id
        );
    }

    app.settled().await;
    let events = app.events(campaign).await;
    assert_eq!(events.len(), rows.len());
    let got: HashMap<&str, &Value> = events
        .iter()
        .map(|e| (e["recipient_id"].as_str().unwrap(), e))
        .collect();
    let predicted: Vec<&str> = rows
        .iter()
        .map(|r| got[r.id.as_str()]["class"].as_str().unwrap())
        .collect();

    let score = Score::of(&rows, &predicted);
    score.print();
    for (row, class) in rows.iter().zip(&predicted) {
        if *class != row.expected_class {
            let e = got[row.id.as_str()];
            println!(
                "  {} [{} {}] labelled {} got {} ({}) ua={:?} ip={} +{}s",
                row.id,
                row.family,
                row.confidence,
                row.expected_class,
                class,
                e["reasons"],
                row.user_agent,
                row.client_ip,
                row.seconds_after_send
            );
        }
    }
    assert!(
        score.machine_precision >= MIN_MACHINE_PRECISION
            && score.machine_recall >= MIN_MACHINE_RECALL
            && score.exact >= MIN_EXACT,
        "below the targets (machine precision {MIN_MACHINE_PRECISION}, recall \
         {MIN_MACHINE_RECALL}, exact class {MIN_EXACT}): see the table printed above"
    );

    // The campaign's stats count what the events say, class by class.
    let stats = app.stats(campaign).await;
    let machine = |c: &str| MACHINE.contains(&c);
    let reader_rows = || {
        rows.iter()
            .zip(&predicted)
            .filter(|(_, c)| !machine(c))
            .map(|(r, _)| r)
    };
    let reader_clicks = reader_rows().filter(|r| r.kind == "click").count();
    assert_eq!(stats["opened_by_readers"], reader_rows().count(), "{stats}");
    assert_eq!(
        stats["clicks"]["unique_excluding_machine"], reader_clicks,
        "{stats}"
    );
    for class in CLASSES {
        let count = |kind: &str| {
            rows.iter()
                .zip(&predicted)
                .filter(|(r, c)| **c == class && r.kind == kind)
                .count()
        };
        let want = json!({"opens": count("open"), "clicks": count("click")});
        let have = &stats["by_class"][class];
        assert!(
            *have == want || (have.is_null() && want == json!({"opens": 0, "clicks": 0})),
            "{class}: {have} against {want}"
        );
    }
}

/// What the classifier got right, overall and class by class.
struct Score {
    /// class -> (labelled, correct, predicted)
    classes: BTreeMap<String, (usize, usize, usize)>,
    machine_precision: f64,
    machine_recall: f64,
    exact: f64,
    rows: usize,
}

impl Score {
    fn of(rows: &[Row], predicted: &[&str]) -> Score {
        let mut classes: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        let (mut tp, mut fp, mut fne, mut exact) = (0, 0, 0, 0);
        for (row, class) in rows.iter().zip(predicted) {
            let want = row.expected_class.as_str();
            classes.entry(want.into()).or_default().0 += 1;
            classes.entry((*class).into()).or_default().2 += 1;
            if *class == want {
                classes.get_mut(want).unwrap().1 += 1;
                exact += 1;
            }
            match (MACHINE.contains(&want), MACHINE.contains(class)) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fne += 1,
                (false, false) => {}
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 1.0 } else { a as f64 / b as f64 };
        Score {
            classes,
            machine_precision: ratio(tp, tp + fp),
            machine_recall: ratio(tp, tp + fne),
            exact: ratio(exact, rows.len()),
            rows: rows.len(),
        }
    }

    fn print(&self) {
        println!("class            labelled  precision  recall");
        for (class, (labelled, correct, predicted)) in &self.classes {
            let pct = |a: usize, b: usize| {
                if b == 0 {
                    "-".to_string()
                } else {
                    format!("{:.3}", a as f64 / b as f64)
                }
            };
            println!(
                "{class:<16} {labelled:>8}  {:>9}  {:>6}",
                pct(*correct, *predicted),
                pct(*correct, *labelled)
            );
        }
        println!(
            "{} rows: machine-vs-reader precision {:.3}, recall {:.3}; exact class {:.3}",
            self.rows, self.machine_precision, self.machine_recall, self.exact
        );
    }
}
