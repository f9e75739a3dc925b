//! Drives a real headless Chromium (through chromedriver and WebDriver) against the running
//! server, for tests of what a person sees in the dashboard.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`apt-get install chromium chromium-driver`,
//! which `bash .ci/test` does). Each [`Browser`] has its own chromedriver port, profile and
//! download directory, so browser tests can run in parallel.

use crate::helpers::TestApp;
use fantoccini::error::CmdError;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "chromedriver";
const INSTALL_HINT: &str = "browser tests need Chromium and chromedriver: run \
    `apt-get install chromium chromium-driver` as root (`bash .ci/test` does)";

/// One headless Chromium, driven through its own chromedriver.
pub struct Browser {
    client: Client,
    session: Option<String>,
    // Dropped in this order after `Drop::drop`: the processes end before their files go.
    driver: Driver,
    dir: TempDir,
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session through it.
    /// Panics, saying how to install them, when Chromium or chromedriver is missing.
    pub async fn start() -> Browser {
        assert!(
            Path::new(CHROMIUM).exists(),
            "{CHROMIUM} is missing; {INSTALL_HINT}"
        );
        let dir = tempfile::tempdir().unwrap();
        let downloads = dir.path().join("downloads");
        std::fs::create_dir(&downloads).unwrap();
        let driver = Driver::start(&dir.path().join("chromedriver.log")).await;
        let caps = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--no-first-run",
                    "--window-size=1280,1000",
                    format!("--user-data-dir={}", dir.path().join("profile").display()),
                ],
                "prefs": {
                    "download.default_directory": downloads,
                    "download.prompt_for_download": false,
                },
            },
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .unwrap_or_else(|e| {
                panic!("no Chromium session: {e}\n{}", driver.log_tail());
            });
        let session = client.session_id().await.unwrap();
        Browser {
            client,
            session,
            driver,
            dir,
        }
    }

    /// Navigates to `url` and waits for the page to load.
    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("goto {url}: {e}"));
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        let el = self.find(css).await;
        el.text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        el.click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Clears the first input matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        el.clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        el.send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
    }

    /// The value of the JavaScript expression `js` in the page, as JSON; a promise is awaited.
    /// Statements go in an arrow function: `(() => { ...; return x })()`.
    pub async fn eval(&self, js: &str) -> Value {
        self.try_eval(js)
            .await
            .unwrap_or_else(|e| panic!("eval {js}: {e}"))
    }

    /// Polls the JavaScript expression `condition` until it is truthy and returns its value.
    /// While it throws (say, the element is not there yet) it counts as false. Err only when the
    /// browser session itself fails; panics at `timeout`, with the page's URL and some of its text.
    pub async fn wait_for(&self, condition: &str, timeout: Duration) -> Result<Value, CmdError> {
        let deadline = Instant::now() + timeout;
        let mut last_error = None;
        loop {
            match self.try_eval(condition).await {
                Ok(v) if truthy(&v) => return Ok(v),
                Ok(_) => {}
                Err(CmdError::Standard(e)) => last_error = Some(e.to_string()),
                Err(e) => return Err(e),
            }
            if Instant::now() >= deadline {
                let url = self.client.current_url().await?;
                let text = self
                    .try_eval("document.body ? document.body.innerText.slice(0, 500) : ''")
                    .await?;
                panic!(
                    "waited {timeout:?} for `{condition}` (last error: {last_error:?})\n\
                     page {url} shows: {text}"
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// What axe-core (npm, injected into the page) finds serious or critical on the page as it
    /// is now: each rule's id with the first elements it names. `.ci/test` installs axe-core and
    /// says where (`MAILBEACON_TEST_AXE`).
    pub async fn serious_accessibility_violations(&self) -> Vec<String> {
        let path = std::env::var("MAILBEACON_TEST_AXE").unwrap_or_else(|_| {
            let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
            format!("{home}/.cache/mailbeacon-npm/node_modules/axe-core/axe.min.js")
        });
        let axe = std::fs::read_to_string(&path).unwrap_or_else(|e| {
            panic!("axe-core is not at {path} ({e}): run `bash .ci/test`, which installs it")
        });
        self.client
            .execute(&axe, vec![])
            .await
            .expect("axe-core loads");
        let found = self
            .eval(
                "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations \
                 .filter(v => v.impact === 'serious' || v.impact === 'critical') \
                 .map(v => v.id + ' (' + v.impact + '): ' + \
                      v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ')))",
            )
            .await;
        serde_json::from_value(found).unwrap()
    }

    /// Writes a PNG screenshot of the viewport to `path`.
    pub async fn screenshot(&self, path: impl AsRef<Path>) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(path, png).unwrap();
    }

    /// The page's title, as WebDriver reads it (no script of ours runs in the page).
    pub async fn title(&self) -> String {
        self.client.title().await.expect("title")
    }

    /// Resizes the browser window to `width` x `height` pixels.
    pub async fn set_window_size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("set window size");
    }

    /// Waits for a completed download whose file name ends with `name_suffix` (Chromium writes
    /// `*.crdownload` until it is done) and returns its path; panics at `timeout`.
    pub async fn downloaded_file(&self, name_suffix: &str, timeout: Duration) -> PathBuf {
        let dir = self.dir.path().join("downloads");
        let deadline = Instant::now() + timeout;
        loop {
            let names: Vec<String> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            let busy = names.iter().any(|n| n.ends_with(".crdownload"));
            if let Some(name) = names.iter().find(|n| n.ends_with(name_suffix))
                && !busy
            {
                return dir.join(name);
            }
            assert!(
                Instant::now() < deadline,
                "no download ending in {name_suffix:?} within {timeout:?}; the folder has {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("find {css}: {e}"))
    }

    async fn try_eval(&self, js: &str) -> Result<Value, CmdError> {
        // Newlines, so that a trailing `// comment` in `js` does not swallow the parenthesis.
        self.client
            .execute(&format!("return (\n{js}\n);"), vec![])
            .await
    }
}

impl Drop for Browser {
    /// Ends the session (chromedriver closes Chromium); `Driver`'s Drop then kills whatever is
    /// left. Plain blocking HTTP, since Drop cannot await and the runtime may be shutting down.
    fn drop(&mut self) {
        if let Some(id) = &self.session {
            let _ = http(self.driver.port, "DELETE", &format!("/session/{id}"));
        }
    }
}

/// JavaScript's truthiness, for JSON values.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// chromedriver, leading its own process group, which the Chromium processes it starts join.
struct Driver {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Driver {
    /// Starts chromedriver on a free port and waits until it says it is ready.
    async fn start(log: &Path) -> Driver {
        // A port picked free can be taken before chromedriver binds it: then it exits; try anew.
        for _ in 0..3 {
            let port = crate::ports::unused_port();
            let child = Command::new(CHROMEDRIVER)
                .arg(format!("--port={port}"))
                .arg(format!("--log-path={}", log.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("cannot run {CHROMEDRIVER}: {e}; {INSTALL_HINT}"));
            let mut driver = Driver {
                child,
                port,
                log: log.to_path_buf(),
            };
            let deadline = Instant::now() + Duration::from_secs(20);
            while driver.child.try_wait().unwrap().is_none() {
                if http(port, "GET", "/status").is_some_and(|r| r.contains(r#""ready":true"#)) {
                    return driver;
                }
                assert!(
                    Instant::now() < deadline,
                    "chromedriver did not get ready\n{}",
                    driver.log_tail()
                );
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
        }
        panic!("chromedriver exited at start three times");
    }

    /// The end of chromedriver's log, for error messages.
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = log.len().saturating_sub(2000);
        format!(
            "chromedriver log ({}):\n{}",
            self.log.display(),
            &log[log.ceil_char_boundary(start)..]
        )
    }
}

impl Drop for Driver {
    /// Kills chromedriver's whole process group, Chromium included, and reaps chromedriver.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.wait();
    }
}

/// A port that was free a moment ago on 127.0.0.1.
/// One blocking HTTP request to chromedriver; the response's body, or None on any failure.
fn http(port: u16, method: &str, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    // chromedriver refuses HTTP/1.0 and keeps the connection open even when asked to close it,
    // so the body is read by its Content-Length.
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\n\r\n"
    )
    .ok()?;
    let mut r = BufReader::new(s);
    let mut length = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0; length];
    r.read_exact(&mut body).ok()?;
    String::from_utf8(body).ok()
}

#[tokio::test]
async fn browser_reads_a_page_from_the_server() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/healthz")).await;
    assert_eq!(browser.text_of("body").await, "ok");
    let shot = app.dir.path().join("healthz.png");
    browser.screenshot(&shot).await;
    let png = std::fs::read(&shot).unwrap();
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
}

/// The harness itself: typing, clicking, waiting, resizing and a download, on a page the test
/// writes into the server's /healthz page.
#[tokio::test]
async fn browser_types_clicks_waits_and_downloads() {
    let app = TestApp::spawn().await;
    let browser = Browser::start().await;
    browser.goto(&app.url("/healthz")).await;
    assert_eq!(
        browser
            .eval("[window.outerWidth, window.outerHeight]")
            .await,
        json!([1280, 1000])
    );
    browser.set_window_size(800, 600).await;
    assert_eq!(
        browser
            .eval("[window.outerWidth, window.outerHeight]")
            .await,
        json!([800, 600])
    );
    browser
        .eval(
            r#"(() => {
                document.body.innerHTML = '<input id="q"><button id="go">Go</button><p id="out"></p>';
                document.getElementById('go').onclick = () => setTimeout(() => {
                    const q = document.getElementById('q').value;
                    document.getElementById('out').textContent = 'hello ' + q;
                    const a = document.createElement('a');
                    a.href = URL.createObjectURL(new Blob(['id,name\n1,' + q + '\n']));
                    a.download = 'export.csv';
                    a.click();
                }, 100);
            })()"#,
        )
        .await;
    browser.fill("#q", "world").await;
    browser.click("#go").await;
    let seen = browser
        .wait_for(
            "document.getElementById('out').textContent",
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(seen, "hello world");
    assert_eq!(browser.text_of("#out").await, "hello world");
    let csv = browser
        .downloaded_file("export.csv", Duration::from_secs(10))
        .await;
    assert_eq!(std::fs::read_to_string(csv).unwrap(), "id,name\n1,world\n");
}
