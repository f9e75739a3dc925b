//! The HTTPS listener's certificates, chosen by the name the client asks for (SNI). A name with
//! no certificate yet gets a self-signed stand-in: the handshake completes, so the domain check
//! (which trusts its signed proof, not the certificate) reaches the name before its first order.
//! A handshake that offers only `acme-tls/1` is ACME's TLS-ALPN-01 validation (RFC 8737): it gets
//! the name's challenge certificate.

use crate::store::IssuedCertificate;
use chrono::{DateTime, Utc};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio_rustls::TlsAcceptor;

/// One name's certificate in use, and when it was issued (a newer one in the database replaces it).
#[derive(Debug)]
struct InUse {
    key: Arc<CertifiedKey>,
    issued_at: DateTime<Utc>,
}

/// The ALPN protocol of TLS-ALPN-01 validation; such a connection closes after its handshake.
pub const ACME_TLS: &[u8] = b"acme-tls/1";

#[derive(Debug)]
pub struct Certs {
    provider: Arc<CryptoProvider>,
    by_name: RwLock<HashMap<String, InUse>>,
    stand_in: Arc<CertifiedKey>,
    /// TLS-ALPN-01 challenge certificates by name, with the key authorization each stands for.
    challenges: RwLock<HashMap<String, (String, Arc<CertifiedKey>)>>,
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        if hello
            .alpn()
            .is_some_and(|mut offered| offered.any(|p| p == ACME_TLS))
        {
            let name = hello.server_name()?.to_ascii_lowercase();
            let challenges = self.challenges.read().unwrap_or_else(|e| e.into_inner());
            return challenges.get(&name).map(|(_, cert)| cert.clone());
        }
        let found = hello.server_name().and_then(|name| {
            let by_name = self.by_name.read().unwrap_or_else(|e| e.into_inner());
            by_name
                .get(&name.to_ascii_lowercase())
                .map(|c| c.key.clone())
        });
        Some(found.unwrap_or_else(|| self.stand_in.clone()))
    }
}

impl Certs {
    pub fn new() -> Result<Arc<Certs>, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let stand_in = rcgen::generate_simple_self_signed(vec!["mailbeacon.invalid".to_string()])
            .map_err(|e| format!("TLS: cannot make the stand-in certificate: {e}"))?;
        let key = PrivateKeyDer::Pkcs8(stand_in.signing_key.serialize_der().into());
        let stand_in = CertifiedKey::from_der(vec![stand_in.cert.der().clone()], key, &provider)
            .map_err(|e| format!("TLS: the stand-in certificate: {e}"))?;
        Ok(Arc::new(Certs {
            provider,
            by_name: RwLock::default(),
            stand_in: Arc::new(stand_in),
            challenges: RwLock::default(),
        }))
    }

    pub fn acceptor(self: &Arc<Certs>) -> Result<TlsAcceptor, String> {
        let mut config = rustls::ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS.to_vec()];
        Ok(TlsAcceptor::from(Arc::new(config)))
    }

    /// When the certificate in use for `name` was issued.
    pub fn issued_at(&self, name: &str) -> Option<DateTime<Utc>> {
        let by_name = self.by_name.read().unwrap_or_else(|e| e.into_inner());
        by_name.get(name).map(|c| c.issued_at)
    }

    /// Stops serving the names not in `kept` (a removed tracking domain's).
    pub fn keep_only(&self, kept: &[&str]) {
        let mut by_name = self.by_name.write().unwrap_or_else(|e| e.into_inner());
        by_name.retain(|name, _| kept.contains(&name.as_str()));
    }

    /// Serves `issued` for `name` from now on.
    pub fn install(&self, name: &str, issued: &IssuedCertificate) -> Result<(), String> {
        let key = certified_key(issued, &self.provider)?;
        self.by_name
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                name.to_string(),
                InUse {
                    key: Arc::new(key),
                    issued_at: issued.issued_at,
                },
            );
        Ok(())
    }
}

impl Certs {
    /// Answers TLS-ALPN-01 validation for exactly these (name, key authorization) pairs.
    pub fn set_challenges(&self, pending: &[(String, String)]) -> Result<(), String> {
        let mut challenges = self.challenges.write().unwrap_or_else(|e| e.into_inner());
        challenges.retain(|name, (key_authorization, _)| {
            pending
                .iter()
                .any(|(n, k)| n == name && k == key_authorization)
        });
        for (name, key_authorization) in pending {
            if !challenges.contains_key(name) {
                let cert = self.challenge_cert(name, key_authorization)?;
                challenges.insert(name.clone(), (key_authorization.clone(), Arc::new(cert)));
            }
        }
        Ok(())
    }

    /// A self-signed certificate for `name` carrying the key authorization's SHA-256 digest in
    /// its critical acmeIdentifier extension.
    fn challenge_cert(&self, name: &str, key_authorization: &str) -> Result<CertifiedKey, String> {
        let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
        let mut params =
            rcgen::CertificateParams::new(vec![name.to_string()]).map_err(|e| e.to_string())?;
        params.custom_extensions =
            vec![rcgen::CustomExtension::new_acme_identifier(digest.as_ref())];
        let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
        let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
        let signing = (self.provider.key_provider)
            .load_private_key(PrivateKeyDer::Pkcs8(key.serialize_der().into()))
            .map_err(|e| e.to_string())?;
        // Not `from_der`: webpki refuses the critical extension when it checks the pair.
        Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
    }
}

fn certified_key(
    issued: &IssuedCertificate,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, String> {
    let chain = CertificateDer::pem_slice_iter(issued.chain_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the stored certificate chain: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes())
        .map_err(|e| format!("the stored certificate key: {e}"))?;
    CertifiedKey::from_der(chain, key, provider)
        .map_err(|e| format!("the stored certificate and key: {e}"))
}
