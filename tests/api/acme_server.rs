//! A local ACME server for the certificate tests: Debian's pebble 2.4.0, which resolves names
//! through pebble-challtestsrv (every A query answered with 127.0.0.1), so that a test's server
//! on 127.0.0.1 answers the HTTP-01 and TLS-ALPN-01 challenges for any name.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// How long pebble (it makes RSA keys at start: ~1 s on an idle machine) or challtestsrv may
/// take to answer on a loaded one.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A local ACME server (pebble) and the DNS server it asks (challtestsrv), stopped on drop.
pub struct AcmeServer {
    /// The ACME directory URL, e.g. https://127.0.0.1:PORT/dir
    pub directory: String,
    /// PEM file of the CA that signed pebble's own HTTPS certificate (what a client must trust to
    /// talk ACME to it).
    pub ca_file: PathBuf,
    management: String,
    dns: String,
    client: reqwest::Client,
    pebble: Option<Child>,
    challtestsrv: Option<Child>,
    dir: TempDir,
}

impl AcmeServer {
    /// Starts both on free ports; pebble validates HTTP-01 on 127.0.0.1:`http_port` and
    /// TLS-ALPN-01 on 127.0.0.1:`tls_port`, and issues certificates valid for `validity`
    /// seconds. Returns once the directory answers.
    pub async fn start(http_port: u16, tls_port: u16, validity: u64) -> AcmeServer {
        let dir = tempfile::tempdir().unwrap();
        let (ca_file, cert, key) = make_pki(dir.path());
        // reqwest is built without a crypto provider (see helpers.rs).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_file).unwrap()).unwrap();
        // A new connection for every request, so that a stopped pebble is seen at once.
        let client = reqwest::Client::builder().tls_certs_only([ca]).no_proxy();
        let client = client.pool_max_idle_per_host(0);
        let client = client.timeout(Duration::from_secs(10)).build().unwrap();
        let mut server = AcmeServer {
            directory: String::new(),
            ca_file,
            management: String::new(),
            dns: String::new(),
            client,
            pebble: None,
            challtestsrv: None,
            dir,
        };
        // A port found free may be taken by someone else before the child binds it: the child
        // then fails (pebble exits; challtestsrv logs it and goes on), and new ports are tried.
        for _ in 0..5 {
            let [dns, cts_management, listen, management] = free_ports([http_port, tls_port]);
            let at = |port| format!("127.0.0.1:{port}");
            server.dns = at(dns);
            let log = server.log_file("challtestsrv.log");
            let log_from = log.metadata().unwrap().len() as usize;
            // All on loopback (the defaults are all interfaces, and challenge servers of its own
            // on pebble's ports). No AAAA answers: pebble would try ::1, where tests don't listen.
            let mut command = Command::new("pebble-challtestsrv");
            command
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args(["-dns01", &server.dns, "-management", &at(cts_management)])
                .args(["-http01", "", "-https01", "", "-tlsalpn01", ""]);
            server.challtestsrv = Some(spawn(&mut command, log));
            if server.dns_answers(log_from).await {
                let config = serde_json::json!({"pebble": {
                    "listenAddress": at(listen), "managementListenAddress": at(management),
                    "certificate": cert, "privateKey": key, "certificateValidityPeriod": validity,
                    "httpPort": http_port, "tlsPort": tls_port, "ocspResponderURL": "",
                    "externalAccountBindingRequired": false,
                    // A name it refuses, as a CA's policy does.
                    "domainBlocklist": ["refused.test"]}});
                std::fs::write(server.dir.path().join("pebble.json"), config.to_string()).unwrap();
                server.directory = format!("https://127.0.0.1:{listen}/dir");
                server.management = format!("https://127.0.0.1:{management}");
                if server.run_pebble().await {
                    return server;
                }
            }
            stop(&mut server.pebble);
            stop(&mut server.challtestsrv);
        }
        panic!("the ACME server did not start:\n{}", server.logs());
    }

    /// PEM of the root that issues the certificates (pebble makes a new one at every start).
    pub async fn issuing_root(&self) -> String {
        let url = format!("{}/roots/0", self.management);
        let root = self.body(&url).await;
        root.unwrap_or_else(|| panic!("no answer from {url}:\n{}", self.logs()))
    }

    /// How many certificates pebble has issued so far, restarts included (its log is appended
    /// to): pebble 2.4.0 logs "Issued certificate serial %s for order %s" for each (seen by
    /// ordering one by HTTP-01).
    pub fn issued(&self) -> usize {
        let log = std::fs::read_to_string(self.dir.path().join("pebble.log")).unwrap_or_default();
        log.matches("Issued certificate serial ").count()
    }

    /// Both logs, for assertion messages.
    pub fn logs(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
        let (cts, pebble) = (read("challtestsrv.log"), read("pebble.log"));
        format!("== pebble-challtestsrv ==\n{cts}== pebble ==\n{pebble}")
    }

    /// Stops pebble (challtestsrv keeps running), to see what a client does meanwhile.
    pub fn stop(&mut self) {
        stop(&mut self.pebble);
    }

    /// Starts pebble again, on the same ports with the same configuration (but a new issuing
    /// root, and no accounts or orders: pebble keeps them in memory).
    pub async fn restart(&mut self) {
        self.stop();
        if !self.run_pebble().await {
            panic!("pebble did not restart:\n{}", self.logs());
        }
    }

    /// Starts pebble and waits until it serves; false if it exits (a port taken).
    async fn run_pebble(&mut self) -> bool {
        let mut command = Command::new("pebble");
        command
            .arg("-config")
            .arg(self.dir.path().join("pebble.json"))
            .args(["-dnsserver", &self.dns, "-strict=false"])
            // No random 0-15 s sleep before validating, no deliberately refused nonces, and
            // every order validated anew (no reuse of an earlier authorization).
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .env("PEBBLE_AUTHZREUSE", "0");
        self.pebble = Some(spawn(&mut command, self.log_file("pebble.log")));
        let roots = format!("{}/roots/0", self.management);
        let deadline = Instant::now() + READY_WITHIN;
        loop {
            if let Some(Ok(Some(_))) = self.pebble.as_mut().map(Child::try_wait) {
                self.pebble = None;
                return false;
            }
            // The directory's listener comes up before the management one: wait for both.
            let directory = self.body(&self.directory).await.unwrap_or_default();
            let root = self.body(&roots).await.unwrap_or_default();
            if directory.contains("newOrder") && root.contains("BEGIN CERTIFICATE") {
                return true;
            }
            self.give_up_after(deadline, "pebble");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until challtestsrv answers an A query over UDP (as pebble asks) with 127.0.0.1;
    /// false if a port was taken (its log after `log_from` says so, or another server answers).
    async fn dns_answers(&self, log_from: usize) -> bool {
        // ID 0xbeac, recursion desired, one question: `beacon.test. IN A`.
        let mut query = vec![0xbe, 0xac, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        query.extend(b"\x06beacon\x04test\x00\x00\x01\x00\x01");
        let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let taken = || {
            let log = std::fs::read(self.dir.path().join("challtestsrv.log")).unwrap();
            String::from_utf8_lossy(&log[log_from..]).contains("address already in use")
        };
        let deadline = Instant::now() + READY_WITHIN;
        while !taken() {
            let _ = socket.send_to(&query, self.dns.as_str()).await;
            let mut answer = [0; 512];
            let wait = Duration::from_millis(200);
            if let Ok(Ok(n)) = tokio::time::timeout(wait, socket.recv(&mut answer)).await {
                let answer = &answer[..n];
                // Our ID, and an address record (length 4) of 127.0.0.1.
                let a = answer.windows(6).any(|w| w == [0, 4, 127, 0, 0, 1]);
                return answer.starts_with(&[0xbe, 0xac]) && a && !taken();
            }
            self.give_up_after(deadline, "challtestsrv");
        }
        false
    }

    fn give_up_after(&self, deadline: Instant, who: &str) {
        if Instant::now() > deadline {
            panic!("no answer from {who} in {READY_WITHIN:?}:\n{}", self.logs());
        }
    }

    async fn body(&self, url: &str) -> Option<String> {
        let r = self.client.get(url).send().await.ok()?;
        r.status().is_success().then_some(())?;
        r.text().await.ok()
    }

    /// The log file, appended to so that a restart keeps what came before.
    fn log_file(&self, name: &str) -> File {
        let path = self.dir.path().join(name);
        let file = File::options().create(true).append(true).open(path);
        file.unwrap()
    }
}

impl Drop for AcmeServer {
    fn drop(&mut self) {
        stop(&mut self.pebble);
        stop(&mut self.challtestsrv);
    }
}

/// Starts a child whose output goes to `log`.
fn spawn(command: &mut Command, log: File) -> Child {
    let out = log.try_clone().unwrap();
    command.stdin(Stdio::null()).stdout(out).stderr(log);
    let child = command.spawn();
    child.unwrap_or_else(|e| panic!("{command:?}: {e} (Debian's pebble package; see .ci/test)"))
}

fn stop(child: &mut Option<Child>) {
    if let Some(mut child) = child.take() {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Loopback ports free for TCP and UDP (challtestsrv's DNS uses both), other than `not`.
fn free_ports<const N: usize>(not: [u16; 2]) -> [u16; N] {
    let mut ports = Vec::new();
    while ports.len() < N {
        let port = crate::ports::unused_port();
        if !not.contains(&port) {
            ports.push(port);
        }
    }
    std::array::from_fn(|i| ports[i])
}

/// A CA, and a certificate it signed for pebble's HTTPS listeners (localhost and 127.0.0.1):
/// Debian's pebble ships none. Returns the CA's PEM file, the certificate's and its key's.
fn make_pki(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let openssl = |args: &str| {
        let mut command = Command::new("openssl");
        command.current_dir(dir).args(args.split_whitespace());
        let out = command
            .output()
            .expect("the openssl command makes test certificates");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "openssl {args}: {err}");
    };
    let new_key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    openssl(&format!(
        "req -x509 {new_key} -days 2 -subj /CN=test-ca -keyout ca.key -out ca.pem \
         -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
    ));
    openssl(&format!(
        "req -new {new_key} -subj /CN=localhost -keyout pebble.key -out pebble.csr"
    ));
    let ext = "subjectAltName=DNS:localhost,IP:127.0.0.1\n\
        basicConstraints=critical,CA:FALSE\nextendedKeyUsage=serverAuth\n";
    std::fs::write(dir.join("pebble.ext"), ext).unwrap();
    openssl(
        "x509 -req -in pebble.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
         -extfile pebble.ext -out pebble.pem",
    );
    let file = |name| dir.join(name);
    (file("ca.pem"), file("pebble.pem"), file("pebble.key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_acme_server_starts_and_serves_its_directory() {
    let [http_port, tls_port] = free_ports([0, 0]);
    let started = Instant::now();
    let mut acme = AcmeServer::start(http_port, tls_port, 600).await;
    eprintln!("the ACME server started in {:?}", started.elapsed());
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&acme.ca_file).unwrap()).unwrap();
    let client = reqwest::Client::builder().tls_certs_only([ca]);
    let client = client.pool_max_idle_per_host(0).build().unwrap();
    let directory = acme.directory.clone();
    let get = || client.get(&directory).send();

    let json: serde_json::Value = get().await.unwrap().json().await.unwrap();
    let new_order = json["newOrder"].as_str().unwrap_or_default();
    assert!(new_order.starts_with("https://127.0.0.1:"), "{json}");
    let root = acme.issuing_root().await;
    let pem = root.starts_with("-----BEGIN CERTIFICATE-----\n") && root.contains("-----END ");
    let pem = pem && reqwest::Certificate::from_pem(root.as_bytes()).is_ok();
    assert!(pem, "{root}");

    acme.stop();
    let down = get().await;
    assert!(down.is_err(), "{down:?}");
    acme.restart().await;
    let up = get().await.unwrap();
    assert!(up.status().is_success(), "{}", acme.logs());
    assert_ne!(acme.issuing_root().await, root, "a new root at each start");
    assert_eq!(acme.issued(), 0, "{}", acme.logs());
}
