//! HTTPS served directly (`--tls-cert`, `--tls-key`), for a tracking domain without a proxy in
//! front. The files are read again when they change (a renewed certificate needs no restart): a
//! pair that does not load, or whose key does not match the certificate, is refused with a warning
//! and the one in use stays.

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio_rustls::TlsAcceptor;

/// How often the files are checked for changes.
const CHECK_EVERY: Duration = Duration::from_secs(1);

/// The certificate in use, replaced when its files change.
#[derive(Debug)]
pub struct Reloading {
    cert: PathBuf,
    key: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for Reloading {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// Reads a PEM certificate chain and private key and checks that they belong together.
pub fn load(cert: &Path, key: &Path, provider: &CryptoProvider) -> Result<CertifiedKey, String> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("--tls-cert {}: {e}", cert.display()))?;
    if chain.is_empty() {
        return Err(format!(
            "--tls-cert {}: no PEM certificate in the file",
            cert.display()
        ));
    }
    let private = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        format!(
            "--tls-key {}: no PEM private key in the file ({e})",
            key.display()
        )
    })?;
    CertifiedKey::from_der(chain, private, provider).map_err(|e| {
        format!(
            "--tls-key {} does not fit --tls-cert {}: {e}",
            key.display(),
            cert.display()
        )
    })
}

/// The acceptor for the listener, and the resolver to keep fresh with [`watch`].
pub fn acceptor(cert: &Path, key: &Path) -> Result<(TlsAcceptor, Arc<Reloading>), String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let first = load(cert, key, &provider)?;
    let resolver = Arc::new(Reloading {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        provider: provider.clone(),
        current: RwLock::new(Arc::new(first)),
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok((TlsAcceptor::from(Arc::new(config)), resolver))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Checks the files every second until `closing`, and loads them again when either changed.
pub async fn watch(resolver: Arc<Reloading>, mut closing: tokio::sync::watch::Receiver<bool>) {
    let stamp = |r: &Reloading| (modified(&r.cert), modified(&r.key));
    let mut seen = stamp(&resolver);
    loop {
        tokio::select! {
            () = tokio::time::sleep(CHECK_EVERY) => {}
            _ = closing.changed() => return,
        }
        let now = stamp(&resolver);
        if now == seen {
            continue;
        }
        // Said once per change; a renewal that writes the key and then the certificate passes
        // through a mismatched pair, and the second write changes the stamp again.
        seen = now;
        match load(&resolver.cert, &resolver.key, &resolver.provider) {
            Ok(fresh) => {
                *resolver.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
                metrics::counter!("mailbeacon_tls_reloads_total", "result" => "loaded")
                    .increment(1);
                tracing::info!(
                    "TLS: loaded the certificate again from {}",
                    resolver.cert.display()
                );
            }
            Err(e) => {
                metrics::counter!("mailbeacon_tls_reloads_total", "result" => "kept").increment(1);
                tracing::warn!("TLS: keeping the certificate in use: {e}");
            }
        }
    }
}
