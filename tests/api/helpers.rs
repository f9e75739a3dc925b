//! Starts the real `mailbeacon` binary on a free port with its own database in a temporary
//! directory, and speaks HTTP to it.

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub use crate::seed::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_mailbeacon");

/// A fresh schema of the test PostgreSQL server, as a database URL; panics saying how to start
/// the server when it is not reachable.
pub fn postgres_schema(label: &str) -> String {
    // The synchronous client runs a runtime of its own: not on a test's async thread.
    let label = label.to_string();
    std::thread::spawn(move || mailbeacon::store::postgres::test_schema(&label))
        .join()
        .unwrap()
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A desktop browser, for requests that should look like a person's.
pub const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

pub struct TestApp {
    pub base: String,
    pub admin_token: String,
    pub dir: TempDir,
    pub client: Client,
    pub child: Child,
    /// The database the server uses: `sqlite://<dir>/mb.db`, or a PostgreSQL schema's URL.
    pub database: String,
    /// Lines the server printed on stdout, from start-up on.
    pub stdout: Vec<String>,
    lines: mpsc::Receiver<String>,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// Spawns with extra flags, in a new temporary directory.
    pub async fn spawn_with(args: &[&str]) -> TestApp {
        let dir = tempfile::tempdir().unwrap();
        TestApp::spawn_in(dir, args, None).await
    }

    /// Spawns in `dir` (reusing its database). `admin_token` is the token to use when the database
    /// already has one (a restart), since the server prints a new one only on first start.
    pub async fn spawn_in(dir: TempDir, args: &[&str], admin_token: Option<String>) -> TestApp {
        let db = format!("sqlite://{}", dir.path().join("mb.db").display());
        TestApp::spawn_on(dir, &db, args, admin_token).await
    }

    /// Spawns on a fresh schema of the test PostgreSQL server (see `test_schema`).
    pub async fn spawn_postgres(label: &str, args: &[&str]) -> TestApp {
        let url = postgres_schema(label);
        TestApp::spawn_on(tempfile::tempdir().unwrap(), &url, args, None).await
    }

    /// Spawns on a fresh SQLite database, or on a fresh PostgreSQL schema.
    pub async fn spawn_on_engine(postgres: bool, label: &str, args: &[&str]) -> TestApp {
        if postgres {
            TestApp::spawn_postgres(label, args).await
        } else {
            TestApp::spawn_with(args).await
        }
    }

    /// Spawns in `dir` on the database `db` (a URL).
    pub async fn spawn_on(
        dir: TempDir,
        db: &str,
        args: &[&str],
        admin_token: Option<String>,
    ) -> TestApp {
        Self::spawn_with_env(dir, db, args, admin_token, &[]).await
    }

    /// [`TestApp::spawn_on`] with more environment variables for the server.
    pub async fn spawn_with_env(
        dir: TempDir,
        db: &str,
        args: &[&str],
        admin_token: Option<String>,
        env: &[(&str, &str)],
    ) -> TestApp {
        // reqwest is built without a TLS crypto provider (the server's webhook client installs
        // ring); the tests' client needs one too, although it only speaks plain HTTP.
        let _ = rustls::crypto::ring::default_provider().install_default();
        // No kept-alive connections: the server closes an idle one after --header-timeout, and
        // a request sent on it just then fails (IncompleteMessage) when the machine is slow.
        let client = Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        // A free port unless the test chose one.
        let listen: &[&str] = if args.contains(&"--listen") {
            &[]
        } else {
            &["--listen", "127.0.0.1:0"]
        };
        let mut child = Command::new(BIN)
            .args(["serve", "--database", db])
            .args(listen)
            .args(args)
            .current_dir(dir.path())
            .env("MAILBEACON_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start mailbeacon");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut stdout = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let base = loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Ok(line) = lines.recv_timeout(left) else {
                // Not left running: it would hold the test's stderr open.
                let _ = child.kill();
                panic!("server did not say where it listens; printed {stdout:?}")
            };
            stdout.push(line.clone());
            if let Some(rest) = line.strip_prefix("listening on ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        let admin_token = admin_token.unwrap_or_else(|| {
            stdout
                .iter()
                .find_map(|l| l.split("keep it safe): ").nth(1))
                .expect("a fresh database prints an admin token")
                .to_string()
        });
        TestApp {
            base,
            admin_token,
            dir,
            client,
            child,
            database: db.to_string(),
            stdout,
            lines,
        }
    }

    pub fn db_path(&self) -> PathBuf {
        self.dir.path().join("mb.db")
    }

    pub fn db_url(&self) -> String {
        self.database.clone()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn api_post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .bearer_auth(&self.admin_token)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// GET with the admin token, once every event answered so far is in the database (reports
    /// trail the journal by a moment).
    pub async fn api_get(&self, path: &str) -> Response {
        self.settled().await;
        self.client
            .get(self.url(path))
            .bearer_auth(&self.admin_token)
            .send()
            .await
            .unwrap()
    }

    /// Waits (60 s at most) until `/readyz` says no answered event waits in the journal: every
    /// event answered before the call is then in the database and its reports.
    pub async fn settled(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let ready: Value = self
                .client
                .get(self.url("/readyz"))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ready["journal"]["pending_events"] == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "events still wait in the journal after 60 s: {ready}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Loads a tracking URL (a pixel or a click) with a user agent; the answer's status.
    pub async fn hit(&self, url: &str, user_agent: &str) -> StatusCode {
        let ua = (reqwest::header::USER_AGENT, user_agent);
        self.client
            .get(url)
            .header(ua.0, ua.1)
            .send()
            .await
            .unwrap()
            .status()
    }

    pub async fn create_campaign(&self, name: &str) -> i64 {
        let r = self
            .api_post("/api/campaigns", &json!({ "name": name }))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
    }

    /// Registers one message and returns the response's message object.
    pub async fn add_message(&self, campaign: i64, recipient: &str, html: &str) -> Value {
        let r = self
            .api_post(
                &format!("/api/campaigns/{campaign}/messages"),
                &json!({ "recipient_id": recipient, "html": html }),
            )
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["messages"][0].clone()
    }

    /// Registers one message per recipient with the same HTML, sent `hours_ago` hours ago (so that
    /// requests now do not look like delivery-time scans); returns the message objects in order.
    pub async fn register_sent(
        &self,
        campaign: i64,
        recipients: &[&str],
        html: &str,
        hours_ago: i64,
    ) -> Vec<Value> {
        let sent_at = (chrono::Utc::now() - chrono::Duration::hours(hours_ago)).to_rfc3339();
        let body: Vec<Value> = recipients
            .iter()
            .map(|rid| json!({"recipient_id": rid, "html": html, "sent_at": sent_at}))
            .collect();
        let r = self
            .api_post(&format!("/api/campaigns/{campaign}/messages"), &json!(body))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED);
        r.json::<Value>().await.unwrap()["messages"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Signs in to the dashboard with `token` and reads the page at `path`: its status and text.
    pub async fn dashboard_page(&self, token: &str, path: &str) -> (StatusCode, String) {
        let login = self
            .client
            .post(self.url("/login"))
            .form(&[("secret", token)]);
        let login = login.send().await.unwrap();
        let cookie = login.headers()[reqwest::header::SET_COOKIE]
            .to_str()
            .unwrap();
        let cookie = cookie.split(';').next().unwrap().to_string();
        let page = self.client.get(self.url(path)).header("cookie", cookie);
        let page = page.send().await.unwrap();
        (page.status(), page.text().await.unwrap())
    }

    pub async fn stats(&self, campaign: i64) -> Value {
        let r = self
            .api_get(&format!("/api/campaigns/{campaign}/stats"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    pub async fn events(&self, campaign: i64) -> Vec<Value> {
        let r = self
            .api_get(&format!("/api/events?campaign={campaign}&limit=10000"))
            .await;
        assert_eq!(r.status(), StatusCode::OK);
        r.json::<Value>().await.unwrap()["events"]
            .as_array()
            .unwrap()
            .clone()
    }

    /// Sends SIGTERM and waits for the process to exit; returns its exit code and what it printed.
    pub fn terminate(mut self) -> (Option<i32>, Vec<String>, TempDir) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let code = wait_exit(&mut self.child, Duration::from_secs(30));
        let mut out = std::mem::take(&mut self.stdout);
        out.extend(self.lines.try_iter());
        let dir = tempfile::tempdir().unwrap();
        let dir = std::mem::replace(&mut self.dir, dir);
        (code, out, dir)
    }

    /// kill -9: no chance to flush or drain anything.
    pub fn kill9(mut self) -> TempDir {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self.dir, dir)
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_exit(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        assert!(
            Instant::now() < deadline,
            "server did not exit within {limit:?}; its threads: {}",
            threads_of(child.id())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A process's threads with what each waits in (name and kernel wait channel), for a server
/// that does not stop: which part of it holds the exit.
fn threads_of(pid: u32) -> String {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return "(unknown)".into();
    };
    let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap_or_default();
    tasks
        .filter_map(Result::ok)
        .map(|t| {
            let (name, wchan) = (read(t.path().join("comm")), read(t.path().join("wchan")));
            format!("{} ({})", name.trim(), wchan.trim())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Runs the CLI against a database and returns (exit success, stdout, stderr).
pub fn cli(db_url: &str, args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .args(["--database", db_url])
        .env("MAILBEACON_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    let out = child.wait_with_output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Reads the event log straight from the SQLite file, as (user_agent, kind) pairs.
pub fn stored_events(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut stmt = conn
        .prepare("SELECT coalesce(user_agent, ''), kind FROM events ORDER BY id")
        .unwrap();
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The tracking URLs in instrumented HTML, in document order (href in double or single quotes).
pub fn click_urls(html: &str) -> Vec<String> {
    html.split("href=")
        .skip(1)
        .filter_map(|s| {
            let quote = s.chars().next()?;
            s[1..].split(quote).next()
        })
        .filter(|u| u.contains("/c/"))
        .map(|u| u.replace("&amp;", "&"))
        .collect()
}

/// Rows of a query run on the database a URL names (either engine), every value as text.
pub fn db_rows(url: &str, sql: &str) -> Vec<Vec<Option<String>>> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let conn = rusqlite::Connection::open(path).unwrap();
        let mut stmt = conn.prepare(sql).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        let mut out = Vec::new();
        while let Some(r) = rows.next().unwrap() {
            out.push(
                (0..n)
                    .map(|i| match r.get_ref(i).unwrap() {
                        rusqlite::types::ValueRef::Null => None,
                        rusqlite::types::ValueRef::Integer(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Real(v) => Some(v.to_string()),
                        rusqlite::types::ValueRef::Text(t) => {
                            Some(String::from_utf8_lossy(t).into_owned())
                        }
                        rusqlite::types::ValueRef::Blob(b) => Some(format!("{b:?}")),
                    })
                    .collect(),
            );
        }
        return out;
    }
    let (url, sql) = (url.to_string(), sql.to_string());
    // The synchronous client runs a runtime of its own: not on a test's async thread.
    std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client
            .simple_query(&sql)
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()
    })
    .join()
    .unwrap()
}

/// Runs statements on the database a URL names (either engine).
pub fn db_execute(url: &str, sql: &str) {
    if let Some(path) = url.strip_prefix("sqlite://") {
        rusqlite::Connection::open(path)
            .unwrap()
            .execute_batch(sql)
            .unwrap();
        return;
    }
    let (url, sql) = (url.to_string(), sql.to_string());
    std::thread::spawn(move || {
        postgres::Client::connect(&url, postgres::NoTls)
            .unwrap()
            .batch_execute(&sql)
            .unwrap()
    })
    .join()
    .unwrap()
}

/// `SELECT count(*) …` on either engine.
pub fn db_count(url: &str, sql: &str) -> i64 {
    db_rows(url, sql)[0][0].as_deref().unwrap().parse().unwrap()
}

/// Waits (30 s at most) for `/readyz` to say ready: a journal stored, a database back.
pub async fn wait_until_ready(app: &TestApp) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
        if ready.status() == reqwest::StatusCode::OK {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not ready after 30 s: {}",
            ready.text().await.unwrap()
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Counts the connections made to a port (nothing is answered).
pub async fn counting_listener() -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(conn);
        }
    });
    (port, count)
}

/// A program from PyPI the tests run: `env` if set, else the one in the virtual environment
/// `.ci/test` makes (`~/.cache/mailbeacon-venv`), else `name` from the PATH.
pub fn python_tool(name: &str, env: &str) -> String {
    if let Ok(path) = std::env::var(env) {
        return path;
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let venv = format!("{home}/.cache/mailbeacon-venv/bin/{name}");
    if std::path::Path::new(&venv).exists() {
        return venv;
    }
    name.into()
}
