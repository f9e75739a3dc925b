//! [`Settings::resolve`]: every default applied, into what the rest of the program reads.

use super::*;

/// Settings with every default applied: what the rest of the program reads.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub database: DatabaseUrl,
    pub listen: SocketAddr,
    pub metrics_listen: Option<SocketAddr>,
    pub public_url: Option<PublicUrl>,
    pub trusted_proxies: TrustedProxies,
    pub client_ip: ClientIpMode,
    pub user_agent: UserAgentMode,
    pub fsync: bool,
    pub max_database_mb: Option<u32>,
    pub journal_dir: PathBuf,
    pub max_journal_bytes: u64,
    pub max_batch: usize,
    pub max_recipients_per_call: usize,
    pub max_links: u16,
    pub signing_keys: Vec<SigningKey>,
    pub internal_recipients: Vec<String>,
    pub internal_networks: Vec<IpNet>,
    pub honeypot_link: bool,
    pub stop_tracking_link: bool,
    pub require_consent: bool,
    pub without_consent: crate::domain::WithoutConsent,
    pub max_tracking_level: crate::domain::TrackingLevel,
    pub geoip: Option<PathBuf>,
    pub header_timeout: std::time::Duration,
    pub body_timeout: std::time::Duration,
    pub retention_days: Option<u32>,
    pub api_rate_limit: u32,
    pub provider_drop_ratio: f64,
    pub conversion_window_days: u32,
    pub webhooks: crate::webhook_delivery::DeliverySettings,
    /// `--tls-cert` and `--tls-key`, when both are given.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// `--https-listen` and how its certificates are ordered.
    pub acme: Option<AcmeSettings>,
    pub resolve: Vec<Pinned>,
}

impl Settings {
    pub fn resolve(self) -> Resolved {
        let database = self.database.unwrap_or_default();
        let journal_dir = match self.journal_dir {
            Some(dir) => PathBuf::from(dir),
            None => default_journal_dir(&database),
        };
        Resolved {
            journal_dir,
            max_journal_bytes: u64::from(self.max_journal_mb.unwrap_or(1024)) << 20,
            database,
            listen: self
                .listen
                .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
            metrics_listen: self.metrics_listen,
            public_url: self.public_url,
            trusted_proxies: TrustedProxies {
                nets: self.trusted_proxy,
                header: self.proxy_header.unwrap_or_default(),
            },
            client_ip: self.client_ip.unwrap_or_default(),
            user_agent: self.user_agent.unwrap_or_default(),
            fsync: self.fsync.unwrap_or(false),
            max_database_mb: self.max_database_mb,
            max_batch: self.max_batch.unwrap_or(2048) as usize,
            max_recipients_per_call: self.max_recipients_per_call.unwrap_or(10_000) as usize,
            max_links: self.max_links.unwrap_or(500),
            signing_keys: self.signing_key,
            internal_recipients: self.internal_recipient,
            internal_networks: self.internal_network,
            honeypot_link: self.honeypot_link.unwrap_or(false),
            require_consent: self.require_consent.unwrap_or(false),
            without_consent: self.without_consent.unwrap_or_default(),
            max_tracking_level: self
                .max_tracking_level
                .unwrap_or(crate::domain::TrackingLevel::Individual),
            stop_tracking_link: self.stop_tracking_link.unwrap_or(false),
            geoip: self.geoip,
            header_timeout: std::time::Duration::from_secs(self.header_timeout.unwrap_or(10)),
            body_timeout: std::time::Duration::from_secs(self.body_timeout.unwrap_or(30)),
            retention_days: self.retention_days,
            api_rate_limit: self.api_rate_limit.unwrap_or(100).max(1),
            provider_drop_ratio: self.provider_drop_ratio.unwrap_or(0.5),
            conversion_window_days: self.conversion_window_days.unwrap_or(30),
            webhooks: crate::webhook_delivery::DeliverySettings {
                timeout: std::time::Duration::from_secs(self.webhook_timeout.unwrap_or(10)),
                max_attempts: self.webhook_max_attempts.unwrap_or(12),
                retry_base: std::time::Duration::from_secs_f64(
                    self.webhook_retry_base.unwrap_or(10.0),
                ),
                allow_private: self.webhook_allow_private.unwrap_or(false),
            },
            tls_cert: self.tls_cert,
            tls_key: self.tls_key,
            acme: self.https_listen.map(|listen| AcmeSettings {
                listen,
                directory: self
                    .acme_directory
                    .unwrap_or_else(|| LETS_ENCRYPT.to_string()),
                email: self.acme_email,
                ca_file: self.acme_ca_file,
                retry_base: std::time::Duration::from_secs_f64(
                    self.acme_retry_base.unwrap_or(60.0),
                ),
                challenge: self.acme_challenge.unwrap_or_default(),
            }),
            resolve: self.resolve,
        }
    }
}

/// `mailbeacon-journal` next to the SQLite database (in the working directory with PostgreSQL),
/// or the `mailbeacon-spool` an earlier build made there: its events are the journal's.
fn default_journal_dir(database: &DatabaseUrl) -> PathBuf {
    let base = match database {
        DatabaseUrl::Sqlite(path) => path.parent().map_or_else(PathBuf::new, Path::to_path_buf),
        DatabaseUrl::Postgres(_) => PathBuf::new(),
    };
    let legacy = base.join("mailbeacon-spool");
    match legacy.is_dir() {
        true => legacy,
        false => base.join("mailbeacon-journal"),
    }
}
