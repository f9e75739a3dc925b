//! TLS to PostgreSQL, with rustls, chosen by the URL as libpq's `sslmode` does:
//!
//! - `disable`, `prefer` (the default) or none: plain TCP (the driver's `prefer` falls back to it
//!   without a TLS implementation, which is how a local server is reached without cost);
//! - `require`: encrypted; the certificate is not checked unless `sslrootcert` names a CA
//!   file (then as `verify-ca`), as libpq does;
//! - `verify-ca`: encrypted, the certificate must chain to a CA in `sslrootcert`;
//! - `verify-full`: as `verify-ca`, and it must name the host connected to.
//!
//! The driver knows only `disable`, `prefer` and `require`: the verify modes and `sslrootcert`
//! are taken off the URL here and the rest handed to it with `sslmode=require`.

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use std::sync::Arc;
use tokio_postgres_rustls::MakeRustlsConnect;

/// The URL for the driver, and the TLS connector when the URL asks for TLS.
pub fn from_url(url: &str) -> anyhow::Result<(String, Option<MakeRustlsConnect>)> {
    let Ok(mut parsed) = url::Url::parse(url) else {
        // A key=value connection string: the driver reads its sslmode (require works).
        return Ok((url.to_string(), None));
    };
    let (mut mode, mut root) = (None, None);
    let rest: Vec<(String, String)> = parsed
        .query_pairs()
        .filter_map(|(k, v)| match k.as_ref() {
            "sslmode" => {
                mode = Some(v.into_owned());
                None
            }
            "sslrootcert" => {
                root = Some(v.into_owned());
                None
            }
            _ => Some((k.into_owned(), v.into_owned())),
        })
        .collect();
    let verify = match mode.as_deref() {
        None | Some("disable" | "prefer" | "allow") => return Ok((url.to_string(), None)),
        Some("require") if root.is_none() => Check::Nothing,
        Some("require" | "verify-ca") => Check::Chain,
        Some("verify-full") => Check::ChainAndName,
        Some(other) => anyhow::bail!(
            "sslmode={other} is not one of disable, prefer, require, verify-ca, verify-full"
        ),
    };
    {
        let mut query = parsed.query_pairs_mut();
        query.clear();
        for (k, v) in &rest {
            query.append_pair(k, v);
        }
        query.append_pair("sslmode", "require");
    }
    let roots = match (&verify, root) {
        (Check::Nothing, _) => RootCertStore::empty(),
        (_, None) => anyhow::bail!(
            "sslmode={} needs sslrootcert=PATH: the CA certificate(s) the server's certificate \
             must chain to (PEM)",
            mode.unwrap_or_default()
        ),
        (_, Some(path)) => {
            let mut roots = RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(&path)
                .map_err(|e| anyhow::anyhow!("sslrootcert={path}: {e}"))?
            {
                let cert = cert.map_err(|e| anyhow::anyhow!("sslrootcert={path}: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| anyhow::anyhow!("sslrootcert={path}: {e}"))?;
            }
            if roots.is_empty() {
                anyhow::bail!("sslrootcert={path} holds no certificate");
            }
            roots
        }
    };
    let _ = rustls::crypto::ring::default_provider().install_default();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("TLS: {e}"))?;
    let config = match verify {
        Check::ChainAndName => builder.with_root_certificates(roots),
        check => {
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build();
            let verifier = Lenient {
                chain: (check == Check::Chain)
                    .then_some(webpki.as_ref().ok().cloned())
                    .flatten(),
                schemes: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            };
            if check == Check::Chain && verifier.chain.is_none() {
                anyhow::bail!(
                    "TLS: {}",
                    webpki.err().map(|e| e.to_string()).unwrap_or_default()
                );
            }
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(verifier))
        }
    }
    .with_no_client_auth();
    Ok((parsed.to_string(), Some(MakeRustlsConnect::new(config))))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Check {
    Nothing,
    Chain,
    ChainAndName,
}

/// `require` (no check) and `verify-ca` (the chain, not the name).
#[derive(Debug)]
struct Lenient {
    chain: Option<Arc<WebPkiServerVerifier>>,
    schemes: rustls::crypto::WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Lenient {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.schemes)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.schemes)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.supported_schemes()
    }
}
