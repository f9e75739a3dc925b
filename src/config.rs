//! Settings: each one defined once, with its help text, and read from (in order of precedence) a
//! command-line flag, a `MAILBEACON_*` environment variable, the TOML config file (`--config`), then
//! the default written here.

use crate::token::SigningKey;
use ipnet::IpNet;
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Settings shared by every command. Every field is optional so that the layers can be merged;
/// [`Settings::resolve`] fills in the defaults.
#[derive(clap::Args, Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Settings {
    /// Database URL: sqlite://PATH (default sqlite://mailbeacon.db) or postgres://USER@HOST/DB.
    #[arg(long, env = "MAILBEACON_DATABASE", global = true, value_name = "URL")]
    pub database: Option<DatabaseUrl>,

    /// Address and port the server listens on (default 127.0.0.1:8080; port 0 picks a free one).
    #[arg(long, env = "MAILBEACON_LISTEN", global = true, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,

    /// Serve /metrics on this address and port instead of the main listener (which then
    /// answers 404 for it): keep it on an internal interface, away from the public tracker.
    #[arg(
        long,
        env = "MAILBEACON_METRICS_LISTEN",
        global = true,
        value_name = "ADDR"
    )]
    pub metrics_listen: Option<SocketAddr>,

    /// Base URL under which recipients reach this server, used in pixel and click URLs
    /// (default http://LISTEN).
    #[arg(long, env = "MAILBEACON_PUBLIC_URL", global = true, value_name = "URL")]
    pub public_url: Option<PublicUrl>,

    /// A proxy (address or CIDR) whose X-Forwarded-For / Forwarded headers are believed. Repeat the
    /// flag, or separate with commas in the environment variable.
    #[arg(
        long,
        env = "MAILBEACON_TRUSTED_PROXY",
        global = true,
        value_name = "CIDR",
        value_delimiter = ',',
        value_parser = parse_cidr
    )]
    #[serde(default, deserialize_with = "deserialize_cidrs")]
    pub trusted_proxy: Vec<IpNet>,

    /// The header the trusted proxy sets with the client's address: x-forwarded-for (default)
    /// or forwarded (RFC 7239). The other is ignored: a client could have sent it.
    #[arg(
        long,
        env = "MAILBEACON_PROXY_HEADER",
        global = true,
        value_name = "HEADER"
    )]
    pub proxy_header: Option<ProxyHeader>,

    /// How much of the client address is stored: truncate (IPv4 /24, IPv6 /48), hash (keyed,
    /// the key changes daily), full or none (default truncate).
    #[arg(long, env = "MAILBEACON_CLIENT_IP", global = true, value_name = "MODE")]
    pub client_ip: Option<ClientIpMode>,

    /// How much of the user agent is stored: full, or parsed (only the client, OS and device type
    /// parsed from it, and the class; the string itself is dropped after classification).
    /// Default full.
    #[arg(
        long,
        env = "MAILBEACON_USER_AGENT",
        global = true,
        value_name = "MODE"
    )]
    pub user_agent: Option<UserAgentMode>,

    /// Fsync the journal after every group of events it takes, before they are answered, so that
    /// answered events survive a power loss and not only a crash of the process (default false).
    #[arg(long, env = "MAILBEACON_FSYNC", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub fsync: Option<bool>,

    /// SQLite only: stop the database growing beyond this many megabytes (default: no limit).
    /// At the limit (as on a full disk) new events wait in the journal and /readyz says degraded
    /// and why, until a purge or an erasure frees space or the limit is raised.
    #[arg(long, env = "MAILBEACON_MAX_DATABASE_MB", global = true, value_name = "MB",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_database_mb: Option<u32>,

    /// The event journal: every tracking event is written here before it is answered, and stored
    /// in the database from here. Default: `mailbeacon-journal` next to the SQLite database, or in
    /// the working directory with PostgreSQL. One per process.
    #[arg(
        long,
        alias = "spool-dir",
        env = "MAILBEACON_JOURNAL_DIR",
        global = true,
        value_name = "DIR"
    )]
    #[serde(alias = "spool-dir")]
    pub journal_dir: Option<String>,

    /// Most megabytes of events the journal holds before the database has stored them (default
    /// 1024). At the cap, tracking requests are answered 503 with Retry-After.
    #[arg(long, env = "MAILBEACON_MAX_JOURNAL_MB", global = true, value_name = "MB",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_journal_mb: Option<u32>,

    /// Events the store worker writes in one transaction (default 2048; it takes whole journal
    /// records, so one may hold a group of requests more).
    #[arg(long, env = "MAILBEACON_MAX_BATCH", global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_batch: Option<u32>,

    /// Most recipients in one POST /api/campaigns/{id}/messages call (default 10000).
    #[arg(long, env = "MAILBEACON_MAX_RECIPIENTS_PER_CALL", global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_recipients_per_call: Option<u32>,

    /// Most tracked links in one message (default 500).
    #[arg(long, env = "MAILBEACON_MAX_LINKS", global = true, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..))]
    pub max_links: Option<u16>,

    /// Signing key as ID:SECRET (32 bytes base64url). Repeat to keep old keys verifying; the highest
    /// id signs. When none is given, keys are kept in the database (one is generated on first use).
    #[arg(long, env = "MAILBEACON_SIGNING_KEY", global = true, value_name = "ID:SECRET",
          value_delimiter = ',', value_parser = parse_signing_key, hide_env_values = true)]
    #[serde(default, deserialize_with = "deserialize_signing_keys")]
    pub signing_key: Vec<SigningKey>,

    /// Track a recipient individually only with a standing consent record
    /// (`POST /api/recipients/{id}/consent`): mail to anyone else is registered anonymous, and
    /// after a withdrawal --without-consent applies, also to mail sent before (default false).
    #[arg(long, env = "MAILBEACON_REQUIRE_CONSENT", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub require_consent: Option<bool>,

    /// With `--require-consent`, a hit on mail to a recipient whose consent does not stand:
    /// `anonymous` (default: the message is made anonymous and the hit counted on it) or `none`
    /// (answered, not stored).
    #[arg(
        long,
        env = "MAILBEACON_WITHOUT_CONSENT",
        global = true,
        value_name = "WHAT"
    )]
    pub without_consent: Option<crate::domain::WithoutConsent>,

    /// The most any message may be tracked: `individual` (default), `anonymous` (counted, nothing
    /// stored points to the recipient) or `none` (mail is not instrumented at all).
    #[arg(
        long,
        env = "MAILBEACON_MAX_TRACKING_LEVEL",
        global = true,
        value_name = "LEVEL"
    )]
    pub max_tracking_level: Option<crate::domain::TrackingLevel>,

    /// Add a hidden link to every instrumented mail that only machines follow; a click on it marks
    /// the request as a scanner (default false).
    #[arg(long, env = "MAILBEACON_HONEYPOT_LINK", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub honeypot_link: Option<bool>,

    /// Add a signed "stop tracking my opens and clicks" link to every instrumented mail: the
    /// recipient confirms on a page of ours and is opted out (default false).
    #[arg(long, env = "MAILBEACON_STOP_TRACKING_LINK", global = true, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub stop_tracking_link: Option<bool>,

    /// A MaxMind or DB-IP City/Country database (.mmdb): country and region are stored with each
    /// event, looked up before the address is reduced. Without it, geography is unknown.
    #[arg(long, env = "MAILBEACON_GEOIP", global = true, value_name = "FILE")]
    pub geoip: Option<PathBuf>,

    /// Seconds a client has to send its request line and headers before it is disconnected
    /// (default 10).
    #[arg(long, env = "MAILBEACON_HEADER_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: Option<u64>,

    /// Seconds an API request's body may take to arrive once its headers are in (default 30).
    #[arg(long, env = "MAILBEACON_BODY_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub body_timeout: Option<u64>,

    /// Delete raw events older than this many days (hourly while serving, and with
    /// `mailbeacon purge`); rollups, and so the reports, stay. Default: keep them.
    #[arg(long, env = "MAILBEACON_RETENTION_DAYS", global = true, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub retention_days: Option<u32>,

    /// API requests a second allowed per API token and per client address, in bursts of ten times
    /// that; beyond it `429` with `Retry-After` (default 100). The tracking endpoints have no limit.
    #[arg(long, env = "MAILBEACON_API_RATE_LIMIT", global = true, value_name = "PER_SECOND",
          value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub api_rate_limit: Option<u32>,

    /// Serve HTTPS with this PEM certificate chain (with --tls-key); the files are read again when
    /// they change, so a renewed certificate needs no restart.
    #[arg(long, env = "MAILBEACON_TLS_CERT", global = true, value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "MAILBEACON_TLS_KEY", global = true, value_name = "FILE")]
    pub tls_key: Option<PathBuf>,

    /// Also serve HTTPS on this address (e.g. 0.0.0.0:443) with certificates obtained by ACME
    /// for every tracking domain that passed its check and for the public URL's host; --listen
    /// then stays plain HTTP for ACME's challenges, pixels and clicks, and sends the dashboard on
    /// to HTTPS.
    #[arg(
        long,
        env = "MAILBEACON_HTTPS_LISTEN",
        global = true,
        value_name = "ADDR"
    )]
    pub https_listen: Option<SocketAddr>,

    /// The ACME directory certificates are ordered from (default Let's Encrypt's).
    #[arg(
        long,
        env = "MAILBEACON_ACME_DIRECTORY",
        global = true,
        value_name = "URL"
    )]
    pub acme_directory: Option<String>,

    /// A contact address the ACME server may write to about the certificates (optional).
    #[arg(
        long,
        env = "MAILBEACON_ACME_EMAIL",
        global = true,
        value_name = "ADDR"
    )]
    pub acme_email: Option<String>,

    /// Trust only this PEM CA for the ACME directory's own HTTPS (a private ACME server).
    #[arg(
        long,
        env = "MAILBEACON_ACME_CA_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub acme_ca_file: Option<PathBuf>,

    /// Seconds before a failed certificate order is tried again; each later try waits twice as
    /// long, up to a day (default 60).
    #[arg(long, env = "MAILBEACON_ACME_RETRY_BASE", global = true, value_name = "SECONDS",
          value_parser = parse_retry_base)]
    #[serde(default, deserialize_with = "deserialize_retry_base")]
    pub acme_retry_base: Option<f64>,

    /// How the ACME server validates a name: `http-01` (plain HTTP on port 80, --listen; the
    /// default) or `tls-alpn-01` (a TLS handshake on port 443, --https-listen).
    #[arg(
        long,
        env = "MAILBEACON_ACME_CHALLENGE",
        global = true,
        value_name = "KIND"
    )]
    pub acme_challenge: Option<Challenge>,

    /// NAME=ADDR: the domain check reaches NAME at ADDR instead of what DNS says (like curl's
    /// --resolve), for a server that cannot reach its own public address or a record not yet
    /// public. Repeat the flag, or separate with commas in the environment variable.
    #[arg(long, env = "MAILBEACON_RESOLVE", global = true, value_name = "NAME=ADDR",
          value_delimiter = ',', value_parser = Pinned::parse)]
    #[serde(default)]
    pub resolve: Vec<Pinned>,

    /// Days after a click in which a conversion reported with its reference counts (default 30).
    #[arg(long, env = "MAILBEACON_CONVERSION_WINDOW_DAYS", global = true, value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=365))]
    pub conversion_window_days: Option<u32>,

    /// A mailbox provider whose readers open less than this share of its trailing average in a
    /// campaign's first day is reported (webhook `provider_drop`, metrics, log); 0 turns it off
    /// (default 0.5).
    #[arg(long, env = "MAILBEACON_PROVIDER_DROP_RATIO", global = true, value_name = "RATIO",
          value_parser = parse_ratio)]
    #[serde(default, deserialize_with = "deserialize_ratio")]
    pub provider_drop_ratio: Option<f64>,

    /// Seconds a webhook receiver has to answer before the attempt counts as failed (default 10).
    #[arg(long, env = "MAILBEACON_WEBHOOK_TIMEOUT", global = true, value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=300))]
    pub webhook_timeout: Option<u64>,

    /// Attempts at delivering a webhook notice before it becomes a dead letter (default 12; about
    /// six hours of retries with the default --webhook-retry-base).
    #[arg(long, env = "MAILBEACON_WEBHOOK_MAX_ATTEMPTS", global = true, value_name = "N",
          value_parser = clap::value_parser!(u32).range(1..=100))]
    pub webhook_max_attempts: Option<u32>,

    /// Seconds before the first retry of a failed webhook notice; each later retry waits twice as
    /// long (up to 4 hours), less a random part of up to half (default 10).
    #[arg(long, env = "MAILBEACON_WEBHOOK_RETRY_BASE", global = true, value_name = "SECONDS",
          value_parser = parse_retry_base)]
    #[serde(default, deserialize_with = "deserialize_retry_base")]
    pub webhook_retry_base: Option<f64>,

    /// Allow webhook receivers on loopback, private and link-local addresses (default false: such
    /// URLs are refused, and names that resolve only to such addresses fail).
    #[arg(long, env = "MAILBEACON_WEBHOOK_ALLOW_PRIVATE", global = true, value_name = "BOOL",
          num_args = 0..=1, default_missing_value = "true")]
    pub webhook_allow_private: Option<bool>,

    /// A recipient whose events are flagged `internal` (test sends): an exact id or `@domain`.
    /// Repeat the flag, or separate with commas in the environment variable.
    #[arg(
        long,
        env = "MAILBEACON_INTERNAL_RECIPIENT",
        global = true,
        value_name = "RID",
        value_delimiter = ','
    )]
    #[serde(default)]
    pub internal_recipient: Vec<String>,

    /// An address or CIDR range of the sender's own (office, VPN): events from there are flagged
    /// `internal`. Repeat the flag, or separate with commas in the environment variable.
    #[arg(long, env = "MAILBEACON_INTERNAL_NETWORK", global = true, value_name = "CIDR",
          value_delimiter = ',', value_parser = parse_cidr)]
    #[serde(default, deserialize_with = "deserialize_cidrs")]
    pub internal_network: Vec<IpNet>,
}

impl Settings {
    /// Reads a TOML config file with the same keys as the long flags (`public-url = "…"`).
    pub fn from_file(path: &Path) -> Result<Settings, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read config file {}: {e}", path.display()))?;
        Settings::from_toml(&text).map_err(|e| format!("config file {}: {e}", path.display()))
    }

    /// Parses the text of a TOML config file.
    pub fn from_toml(text: &str) -> Result<Settings, toml::de::Error> {
        toml::from_str(text)
    }

    /// Fills every setting not given on the command line or in the environment from `file`.
    pub fn or_file(mut self, file: Settings) -> Settings {
        self.database = self.database.or(file.database);
        self.listen = self.listen.or(file.listen);
        self.metrics_listen = self.metrics_listen.or(file.metrics_listen);
        self.public_url = self.public_url.or(file.public_url);
        self.proxy_header = self.proxy_header.or(file.proxy_header);
        if self.trusted_proxy.is_empty() {
            self.trusted_proxy = file.trusted_proxy;
        }
        self.client_ip = self.client_ip.or(file.client_ip);
        self.user_agent = self.user_agent.or(file.user_agent);
        self.fsync = self.fsync.or(file.fsync);
        self.max_batch = self.max_batch.or(file.max_batch);
        self.max_database_mb = self.max_database_mb.or(file.max_database_mb);
        self.journal_dir = self.journal_dir.or(file.journal_dir);
        self.max_journal_mb = self.max_journal_mb.or(file.max_journal_mb);
        self.max_recipients_per_call = self
            .max_recipients_per_call
            .or(file.max_recipients_per_call);
        self.max_links = self.max_links.or(file.max_links);
        if self.signing_key.is_empty() {
            self.signing_key = file.signing_key;
        }
        self.honeypot_link = self.honeypot_link.or(file.honeypot_link);
        self.require_consent = self.require_consent.or(file.require_consent);
        self.without_consent = self.without_consent.or(file.without_consent);
        self.max_tracking_level = self.max_tracking_level.or(file.max_tracking_level);
        self.stop_tracking_link = self.stop_tracking_link.or(file.stop_tracking_link);
        self.geoip = self.geoip.or(file.geoip);
        self.header_timeout = self.header_timeout.or(file.header_timeout);
        self.body_timeout = self.body_timeout.or(file.body_timeout);
        self.retention_days = self.retention_days.or(file.retention_days);
        self.api_rate_limit = self.api_rate_limit.or(file.api_rate_limit);
        self.provider_drop_ratio = self.provider_drop_ratio.or(file.provider_drop_ratio);
        self.conversion_window_days = self.conversion_window_days.or(file.conversion_window_days);
        self.tls_cert = self.tls_cert.or(file.tls_cert);
        self.tls_key = self.tls_key.or(file.tls_key);
        self.https_listen = self.https_listen.or(file.https_listen);
        self.acme_directory = self.acme_directory.or(file.acme_directory);
        self.acme_email = self.acme_email.or(file.acme_email);
        self.acme_ca_file = self.acme_ca_file.or(file.acme_ca_file);
        self.acme_retry_base = self.acme_retry_base.or(file.acme_retry_base);
        self.acme_challenge = self.acme_challenge.or(file.acme_challenge);
        if self.resolve.is_empty() {
            self.resolve = file.resolve;
        }
        self.webhook_timeout = self.webhook_timeout.or(file.webhook_timeout);
        self.webhook_max_attempts = self.webhook_max_attempts.or(file.webhook_max_attempts);
        self.webhook_retry_base = self.webhook_retry_base.or(file.webhook_retry_base);
        self.webhook_allow_private = self.webhook_allow_private.or(file.webhook_allow_private);
        if self.internal_recipient.is_empty() {
            self.internal_recipient = file.internal_recipient;
        }
        if self.internal_network.is_empty() {
            self.internal_network = file.internal_network;
        }
        self
    }
}

fn parse_cidr(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| format!("'{s}' is not an IP address or CIDR range (e.g. 10.0.0.0/8)"))
}

fn parse_retry_base(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| (0.01..=3600.0).contains(v))
        .ok_or_else(|| format!("'{s}' is not a number of seconds from 0.01 to 3600"))
}

fn deserialize_retry_base<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    parse_retry_base(&v.to_string())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn parse_ratio(s: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|v| (0.0..=1.0).contains(v))
        .ok_or_else(|| format!("'{s}' is not a ratio from 0 to 1"))
}

fn deserialize_ratio<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let v = f64::deserialize(d)?;
    parse_ratio(&v.to_string())
        .map(Some)
        .map_err(serde::de::Error::custom)
}

fn parse_signing_key(s: &str) -> Result<SigningKey, String> {
    SigningKey::parse(s)
}

fn deserialize_cidrs<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<IpNet>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| parse_cidr(s).map_err(serde::de::Error::custom))
        .collect()
}

fn deserialize_signing_keys<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<SigningKey>, D::Error> {
    let raw = Vec::<String>::deserialize(d)?;
    raw.iter()
        .map(|s| SigningKey::parse(s).map_err(serde::de::Error::custom))
        .collect()
}

pub use crate::domain::PublicUrl;
pub use crate::store::DatabaseUrl;

mod acme;
mod modes;
mod resolved;
pub use acme::{AcmeSettings, Challenge, LETS_ENCRYPT};
pub use modes::{ClientIpMode, Pinned, ProxyHeader, TrustedProxies, UserAgentMode};
pub use resolved::Resolved;

#[cfg(test)]
mod tests;
