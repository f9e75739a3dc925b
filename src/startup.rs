//! Start-up: open the database, assemble the key ring, and run the server until SIGTERM or ctrl-c.
//! The CLI's other commands share [`Context::open`] so they see exactly what the server sees.

use crate::api::auth;
use crate::app::AppState;
use crate::classify::{Classifier, Internal, ranges};
use crate::config::{PublicUrl, Resolved};
use crate::domain::{Actor, AuditAction};
use crate::geo::Geo;
use crate::ingest::directory::Directory;
use crate::ingest::worker::{JournalDir, StoreWorker, WorkerSetup};
use crate::ingest::{JournalStatus, JournalWriter};
use crate::messages::Registrar;
use crate::server;
use crate::store::{self, OpenReport, Scope, Store};
use crate::token::{KeyRing, SigningKey};
use crate::webhook_delivery::Wake;
use anyhow::Context as _;
use std::sync::Arc;
use std::time::Duration;

/// An open database with the key ring that goes with it.
pub struct Context {
    pub store: Arc<dyn Store>,
    pub keys: Arc<KeyRing>,
    pub settings: Resolved,
    pub opened: OpenReport,
    /// Said once at start-up: where the signing keys came from.
    pub key_notice: String,
}

impl Context {
    pub async fn open(settings: Resolved) -> anyhow::Result<Context> {
        let max_bytes = settings.max_database_mb.map(|mb| u64::from(mb) * 1_000_000);
        let (store, opened) = store::open(&settings.database, settings.fsync, max_bytes).await?;
        let (keys, key_notice) = if settings.signing_keys.is_empty() {
            let (stored, created) = store
                .signing_keys_or_create(SigningKey::generate(1).secret)
                .await
                .context("cannot read the signing keys from the database")?;
            let keys: Vec<SigningKey> = stored
                .into_iter()
                .map(|(id, secret)| SigningKey { id, secret })
                .collect();
            let ring = KeyRing::new(&keys).map_err(anyhow::Error::msg)?;
            let notice = match created {
                Some(id) => format!(
                    "generated signing key {id} and stored it in the database (back the database up: mail already sent needs this key)"
                ),
                None => format!(
                    "{} signing key(s) from the database, key {} signs",
                    keys.len(),
                    ring.active_key_id()
                ),
            };
            (ring, notice)
        } else {
            let ring = KeyRing::new(&settings.signing_keys).map_err(anyhow::Error::msg)?;
            let notice = format!(
                "{} signing key(s) from configuration, key {} signs",
                settings.signing_keys.len(),
                ring.active_key_id()
            );
            (ring, notice)
        };
        Ok(Context {
            store,
            keys: Arc::new(keys),
            settings,
            opened,
            key_notice,
        })
    }

    pub fn registrar(&self, public_url: PublicUrl) -> Registrar {
        Registrar {
            keys: self.keys.clone(),
            public_url,
            max_links: self.settings.max_links,
            honeypot: self.settings.honeypot_link,
            stop_tracking: self.settings.stop_tracking_link,
            directory: Arc::new(Directory::new(self.store.clone())),
            require_consent: self.settings.require_consent,
            max_tracking: self.settings.max_tracking_level,
        }
    }

    /// The classifier with the shipped data, the address lists imported into the database in
    /// place of shipped ones, and the configured internal recipients and networks.
    pub async fn classifier(&self) -> anyhow::Result<Classifier> {
        let mut classifier = Classifier::builtin(Internal {
            recipients: self.settings.internal_recipients.clone(),
            networks: self.settings.internal_networks.clone(),
        });
        for imported in self.store.address_lists().await? {
            let Some(tag) = ranges::known_list(&imported.list) else {
                tracing::warn!(
                    "ignoring imported address list {:?}: no rule reads it",
                    imported.list
                );
                continue;
            };
            let nets = ranges::parse_list(&imported.cidrs)
                .with_context(|| format!("imported address list {tag}"))?;
            classifier.ranges.set(tag, &nets);
        }
        Ok(classifier)
    }

    /// The campaign with this id, or an error that says there is none.
    pub async fn campaign(
        &self,
        id: crate::store::CampaignId,
    ) -> anyhow::Result<crate::store::Campaign> {
        self.store
            .campaign(id)
            .await?
            .with_context(|| format!("campaign {id} does not exist"))
    }

    /// Notes in the audit log that someone at the command line did `action` to `target`.
    pub async fn audit_cli(&self, action: AuditAction, target: &str) -> anyhow::Result<()> {
        self.store
            .audit(crate::store::AuditEntry {
                at: chrono::Utc::now(),
                actor: Actor::Cli,
                scope: "admin".into(),
                action,
                target: target.into(),
            })
            .await?;
        Ok(())
    }

    /// The public URL from the settings, or the one a server on the listen address would have
    /// (for commands that print tracking URLs without a server).
    pub fn public_url(&self) -> anyhow::Result<PublicUrl> {
        if let Some(url) = &self.settings.public_url {
            return Ok(url.clone());
        }
        if self.settings.listen.port() == 0 {
            anyhow::bail!(
                "--listen {} picks a free port when the server starts, so the URLs of mail made now \
                 cannot be known: give the URL readers will reach the server at with --public-url",
                self.settings.listen
            );
        }
        Ok(PublicUrl::for_listener(
            self.settings.listen,
            self.settings.tls_cert.is_some(),
        ))
    }
}

/// `mailbeacon serve`: everything a user sees on start-up goes to stdout, one fact per line.
pub async fn serve(settings: Resolved) -> anyhow::Result<()> {
    let metrics = crate::telemetry::install()?;
    let ctx = Context::open(settings).await?;
    println!("mailbeacon {}", env!("CARGO_PKG_VERSION"));
    println!(
        "database: {} ({}{} migration(s) applied)",
        ctx.settings.database,
        if ctx.opened.created { "created, " } else { "" },
        ctx.opened.migrations_applied
    );
    println!("signing keys: {}", ctx.key_notice);
    audit_settings(&ctx).await?;
    let token = auth::generate_token();
    if ctx
        .store
        .create_first_api_token(auth::hash_token(&token), Scope::Admin)
        .await?
    {
        println!("admin API token (shown once, keep it safe): {token}");
    } else {
        println!("API tokens: create one with `mailbeacon token create --scope admin`");
    }

    let tls = match (&ctx.settings.tls_cert, &ctx.settings.tls_key) {
        (Some(cert), Some(key)) => {
            Some(crate::tls::acceptor(cert, key).map_err(anyhow::Error::msg)?)
        }
        (None, None) => None,
        (Some(_), None) => {
            anyhow::bail!("--tls-cert needs --tls-key (the certificate's private key)")
        }
        (None, Some(_)) => {
            anyhow::bail!("--tls-key needs --tls-cert (the certificate it belongs to)")
        }
    };
    if tls.is_some() && ctx.settings.acme.is_some() {
        anyhow::bail!(
            "--https-listen obtains certificates itself; --tls-cert serves one from files on \
             --listen: choose one"
        );
    }
    let listener = tokio::net::TcpListener::bind(ctx.settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", ctx.settings.listen))?;
    let local = listener.local_addr()?;
    // Every listener is bound before the store worker starts: a port in use stops the start
    // with its error alone.
    let metrics_listener = match ctx.settings.metrics_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen for metrics on {addr}"))?,
        ),
        None => None,
    };
    let https_listener = match &ctx.settings.acme {
        Some(acme) => Some(
            tokio::net::TcpListener::bind(acme.listen)
                .await
                .with_context(|| format!("cannot listen for HTTPS on {}", acme.listen))?,
        ),
        None => None,
    };
    let public_url = ctx
        .settings
        .public_url
        .clone()
        .unwrap_or_else(|| PublicUrl::for_listener(local, tls.is_some()));

    let classifier = Arc::new(ctx.classifier().await?);
    classifier.agents.warm_up();
    println!(
        "classification: address lists {}",
        classifier
            .ranges
            .summary()
            .iter()
            .map(|(tag, n)| format!("{tag} ({n} ranges)"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let geo = match &ctx.settings.geoip {
        Some(path) => {
            let geo = Geo::open(path).map_err(anyhow::Error::msg)?;
            println!("geography: {} ({})", path.display(), geo.describe());
            Some(Arc::new(geo))
        }
        None => None,
    };
    let wake = Wake::default();
    let (opened, status) = open_journal(&ctx).await?;
    let JournalDir {
        journal,
        id: journal_id,
        lock: journal_lock,
    } = opened;
    let status = Arc::new(status);
    let journal = Arc::new(std::sync::Mutex::new(journal));
    let (writer, events) =
        JournalWriter::start(journal.clone(), status.clone(), ctx.settings.fsync);
    let worker = StoreWorker::start(WorkerSetup {
        store: ctx.store.clone(),
        classifier: classifier.clone(),
        max_batch: ctx.settings.max_batch,
        webhooks: wake.clone(),
        journal,
        journal_id,
        status,
    });
    let registrar = ctx.registrar(public_url.clone());
    let directory = registrar.directory.clone();
    let state = Arc::new(AppState {
        classifier,
        geo,
        ip_salt: Default::default(),
        registrar,
        store: ctx.store.clone(),
        keys: ctx.keys.clone(),
        events,
        directory,
        settings: ctx.settings.clone(),
        metrics: Some(metrics),
        closing: tokio::sync::watch::Sender::new(false),
        sign_in: Default::default(),
        api_limits: crate::limits::rate_limit::RateLimiter::new(ctx.settings.api_rate_limit),
        webhooks: wake.clone(),
        tls: tls.as_ref().map(|(acceptor, _)| acceptor.clone()),
    });
    if let Some((_, resolver)) = tls {
        println!(
            "TLS: serving HTTPS with {} (read again when it changes)",
            ctx.settings
                .tls_cert
                .as_ref()
                .map_or(String::new(), |p| p.display().to_string())
        );
        tokio::spawn(crate::tls::watch(resolver, state.closing.subscribe()));
    }
    let delivery = tokio::spawn(crate::webhook_delivery::run(
        ctx.store.clone(),
        ctx.settings.webhooks.clone(),
        wake,
        state.closing.subscribe(),
    ));
    tokio::spawn(crate::deliverability::run(
        ctx.store.clone(),
        ctx.settings.provider_drop_ratio,
        state.closing.subscribe(),
    ));
    if let Some(days) = ctx.settings.retention_days {
        println!("retention: raw events are deleted {days} days after they arrive (rollups stay)");
        tokio::spawn(retention(
            ctx.store.clone(),
            days,
            state.closing.subscribe(),
        ));
    }
    if let Some(listener) = metrics_listener {
        println!("metrics: http://{}/metrics", listener.local_addr()?);
        let (app, mut closing) = (
            server::metrics_router(state.clone()),
            state.closing.subscribe(),
        );
        tokio::spawn(async move {
            let stop = async move {
                let _ = closing.wait_for(|closed| *closed).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                tracing::warn!("the metrics listener stopped: {e}");
            }
        });
    }
    let https_port = match (&ctx.settings.acme, https_listener) {
        (Some(acme), Some(listener)) => Some(start_https(&state, acme, listener, &public_url)?),
        _ => None,
    };
    println!(
        "listening on {}://{local} (public URL {})",
        if state.tls.is_some() { "https" } else { "http" },
        public_url.as_str()
    );

    let serving = server::Serving {
        tls: state.tls.clone(),
        https_port,
    };
    server::serve(listener, state, serving, shutdown_signal()).await?;
    println!("shutting down: storing the journal's last events");
    writer.shutdown().await;
    worker.shutdown().await;
    drop(journal_lock);
    // Requests to receivers still open are cut; their notices are sent again after the restart.
    delivery.abort();
    println!("stopped");
    Ok(())
}

/// `--https-listen`: the HTTPS listener, serving what the certificate manager obtains; its port.
fn start_https(
    state: &Arc<AppState>,
    acme: &crate::acme::AcmeSettings,
    listener: tokio::net::TcpListener,
    public_url: &PublicUrl,
) -> anyhow::Result<u16> {
    let certs = crate::acme::Certs::new().map_err(anyhow::Error::msg)?;
    let acceptor = certs.acceptor().map_err(anyhow::Error::msg)?;
    let local = listener.local_addr()?;
    let own_host = public_url.host();
    let own_host = (own_host.parse::<std::net::IpAddr>().is_err() && own_host != "localhost")
        .then_some(own_host);
    println!(
        "HTTPS: listening on https://{local}, certificates from {} for the tracking domains that \
         pass their check{}",
        acme.directory,
        own_host
            .as_ref()
            .map_or(String::new(), |h| format!(" and for {h}"))
    );
    let manager = crate::acme::Manager {
        store: state.store.clone(),
        certs,
        settings: acme.clone(),
        own_host,
    };
    tokio::spawn(manager.run(state.closing.subscribe()));
    let rechecks = crate::acme::Rechecks {
        store: state.store.clone(),
        keys: state.keys.clone(),
        public_url: public_url.clone(),
        resolve: state.settings.resolve.clone(),
    };
    tokio::spawn(rechecks.run(state.closing.subscribe()));
    let (state, mut closing) = (state.clone(), state.closing.subscribe());
    let serving = server::Serving {
        tls: Some(acceptor),
        https_port: None,
    };
    tokio::spawn(async move {
        let stop = async move {
            let _ = closing.wait_for(|closed| *closed).await;
        };
        if let Err(e) = server::serve(listener, state, serving, stop).await {
            tracing::warn!("the HTTPS listener stopped: {e}");
        }
    });
    Ok(local.port())
}

/// Opens this process's journal and says what it holds from an earlier run.
async fn open_journal(ctx: &Context) -> anyhow::Result<(JournalDir, JournalStatus)> {
    let dir = &ctx.settings.journal_dir;
    if dir.as_os_str() == "off" {
        anyhow::bail!(
            "--journal-dir off: the journal cannot be turned off (every tracking event is written \
             to it before it is answered); give a directory"
        );
    }
    let opened = JournalDir::open(dir, ctx.settings.fsync)?;
    // What an earlier run left unstored, for the lag (read once: a journal is normally short).
    let stored = ctx
        .store
        .journal_position(opened.id.clone())
        .await
        .ok()
        .flatten()
        .map(|(segment, offset)| crate::ingest::journal::Position { segment, offset });
    let start = opened.journal.start();
    let from = stored.map_or(start, |p| p.max(start));
    let pending_events = opened.journal.count_events(from).unwrap_or(0);
    let pending_bytes = opened.journal.pending_bytes(from);
    println!(
        "journal: {} (every event is written here before it is answered{}{})",
        dir.display(),
        if ctx.settings.fsync { ", fsynced" } else { "" },
        match pending_events {
            0 => String::new(),
            n => format!("; {n} event(s) from an earlier run are stored now"),
        }
    );
    let status = JournalStatus::new(
        dir.clone(),
        ctx.settings.max_journal_bytes,
        pending_events,
        pending_bytes,
    );
    Ok((opened, status))
}

/// The settings that decide what is stored about recipients and who it reaches, as the audit log
/// records them.
pub fn privacy_settings(s: &Resolved) -> String {
    format!(
        "client-ip={:?} user-agent={:?} retention-days={} geoip={} stop-tracking-link={} \
         honeypot-link={} internal-recipients={} internal-networks={} webhook-allow-private={} tls={} \
         require-consent={} without-consent={:?} max-tracking-level={:?}",
        s.client_ip,
        s.user_agent,
        s.retention_days
            .map_or("keep".to_string(), |d| d.to_string()),
        if s.geoip.is_some() { "on" } else { "off" },
        s.stop_tracking_link,
        s.honeypot_link,
        s.internal_recipients.len(),
        s.internal_networks.len(),
        s.webhooks.allow_private,
        s.tls_cert.is_some(),
        s.require_consent,
        s.without_consent,
        s.max_tracking_level,
    )
    .to_ascii_lowercase()
}

/// Settings are read at start-up: when those about recipients' data differ from the last start's,
/// the audit log says so (actor `startup`), so a changed retention or address mode is on record.
async fn audit_settings(ctx: &Context) -> anyhow::Result<()> {
    let now = privacy_settings(&ctx.settings);
    let last = ctx
        .store
        .last_audit_target(AuditAction::ChangeSettings)
        .await?;
    if last.as_deref() != Some(now.as_str()) {
        ctx.store
            .audit(crate::store::AuditEntry {
                at: chrono::Utc::now(),
                actor: Actor::Startup,
                scope: "admin".into(),
                action: AuditAction::ChangeSettings,
                target: now.clone(),
            })
            .await?;
        println!(
            "settings: {} ({})",
            now,
            if last.is_some() {
                "changed since the last start; noted in the audit log"
            } else {
                "noted in the audit log"
            }
        );
    }
    Ok(())
}

/// `--retention-days`: deletes expired raw events now and then every hour, until the server stops.
async fn retention(
    store: Arc<dyn crate::store::Store>,
    days: u32,
    mut closing: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let before = chrono::Utc::now() - chrono::Duration::days(days.into());
        match store.purge_events(before, Arc::new(|_, _| {})).await {
            Ok(s) if s.events > 0 => tracing::info!(
                "retention: deleted {} events of {} messages received before {before}",
                s.events,
                s.messages
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("retention: could not delete expired events: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = closing.changed() => return,
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}
