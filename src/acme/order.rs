//! One certificate order: the account (made once per directory and kept in the database), the
//! challenges (kept in the database, so whichever process the ACME server reaches answers them),
//! a key and CSR of our own, and the issued chain with its validity.

use super::{AcmeSettings, Certs, Challenge};
use crate::store::{IssuedCertificate, Store};
use chrono::{DateTime, Utc};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use std::time::Duration;

/// How long the ACME server gets to validate and to issue.
const PATIENCE: Duration = Duration::from_secs(90);
/// Before a TLS-ALPN-01 challenge is declared ready, every process must have read it (each reads
/// the pending challenges every [`super::manager::EVERY`]).
const SPREAD: Duration = Duration::from_secs(5);

/// The account for the settings' directory, created at the first order.
pub async fn account(store: &dyn Store, settings: &AcmeSettings) -> Result<Account, String> {
    let builder = || match &settings.ca_file {
        Some(ca) => Account::builder_with_root(ca)
            .map_err(|e| format!("--acme-ca-file {}: {e}", ca.display())),
        None => Account::builder().map_err(|e| format!("the system's CA roots: {e}")),
    };
    let directory = settings.directory.clone();
    let kept = store
        .acme_account(directory.clone())
        .await
        .map_err(|e| e.to_string())?;
    let credentials = match kept {
        Some(json) => json,
        None => {
            let contact = settings.email.as_ref().map(|e| format!("mailto:{e}"));
            let contact: Vec<&str> = contact.iter().map(String::as_str).collect();
            let (_, credentials) = builder()?
                .create(
                    &NewAccount {
                        contact: &contact,
                        terms_of_service_agreed: true,
                        only_return_existing: false,
                    },
                    directory.clone(),
                    None,
                )
                .await
                .map_err(|e| said("creating an account", e))?;
            let json = serde_json::to_string(&credentials).map_err(|e| e.to_string())?;
            // Two processes may both have created one: all use the first one kept.
            store
                .add_acme_account(directory.clone(), json)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    let credentials: AccountCredentials = serde_json::from_str(&credentials)
        .map_err(|e| format!("the stored ACME account is unreadable: {e}"))?;
    builder()?
        .from_credentials(credentials)
        .await
        .map_err(|e| said("reading the account", e))
}

/// What an order works with.
pub struct Orderer<'a> {
    pub account: &'a Account,
    pub store: &'a dyn Store,
    pub certs: &'a Certs,
    pub challenge: Challenge,
}

/// Orders a certificate for `domain` and waits for it.
pub async fn obtain(by: Orderer<'_>, domain: &str) -> Result<IssuedCertificate, String> {
    let outcome = order(&by, domain).await;
    // Answered or not, the challenges are of no further use.
    let _ = by.store.remove_acme_challenges(domain.to_string()).await;
    if let Ok(pending) = by.store.acme_challenges().await {
        let _ = by.certs.set_challenges(&pending);
    }
    outcome
}

async fn order(by: &Orderer<'_>, domain: &str) -> Result<IssuedCertificate, String> {
    let (account, store) = (by.account, by.store);
    let (kind, how) = match by.challenge {
        Challenge::Http01 => (ChallengeType::Http01, "over HTTP on port 80"),
        Challenge::TlsAlpn01 => (ChallengeType::TlsAlpn01, "over TLS on port 443"),
    };
    let ids = [Identifier::Dns(domain.to_string())];
    let mut order = account
        .new_order(&NewOrder::new(&ids))
        .await
        .map_err(|e| said("the order", e))?;
    let mut authorizations = order.authorizations();
    while let Some(authorization) = authorizations.next().await {
        let mut authorization = authorization.map_err(|e| said("the authorization", e))?;
        match authorization.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            status => return Err(format!("the authorization for {domain} is {status:?}")),
        }
        let mut challenge = authorization
            .challenge(kind.clone())
            .ok_or_else(|| format!("the ACME server offers no {kind:?} challenge for {domain}"))?;
        store
            .add_acme_challenge(
                challenge.token.clone(),
                domain.to_string(),
                challenge.key_authorization().as_str().to_string(),
            )
            .await
            .map_err(|e| e.to_string())?;
        if by.challenge == Challenge::TlsAlpn01 {
            let pending = store.acme_challenges().await.map_err(|e| e.to_string())?;
            by.certs.set_challenges(&pending)?;
            tokio::time::sleep(SPREAD).await;
        }
        challenge
            .set_ready()
            .await
            .map_err(|e| said("the challenge", e))?;
    }
    let patience = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .timeout(PATIENCE);
    let status = order
        .poll_ready(&patience)
        .await
        .map_err(|e| said(&format!("validating {domain} ({how})"), e))?;
    if status != OrderStatus::Ready {
        return Err(format!(
            "the ACME server could not validate {domain} ({status:?}): does the name reach this \
             server {how}?"
        ));
    }
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let mut params =
        rcgen::CertificateParams::new(vec![domain.to_string()]).map_err(|e| e.to_string())?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&key).map_err(|e| e.to_string())?;
    order
        .finalize_csr(csr.der())
        .await
        .map_err(|e| said("finalizing the order", e))?;
    let chain_pem = order
        .poll_certificate(&patience)
        .await
        .map_err(|e| said("waiting for the certificate", e))?;
    let (not_before, not_after) = validity(&chain_pem)?;
    Ok(IssuedCertificate {
        key_pem: key.serialize_pem(),
        chain_pem,
        not_before,
        not_after,
        renew_at: renew_at(not_before, not_after),
        issued_at: Utc::now(),
    })
}

/// An ACME step's failure: what the server said (a problem document), or why it was not reached.
fn said(step: &str, e: instant_acme::Error) -> String {
    match e {
        instant_acme::Error::Api(problem) => format!("the ACME server refused {step}: {problem}"),
        other => {
            let mut cause: &dyn std::error::Error = &other;
            while let Some(inner) = cause.source() {
                cause = inner;
            }
            format!("{step}: the ACME server could not be reached ({cause})")
        }
    }
}

/// The leaf certificate's validity period.
fn validity(chain_pem: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use x509_cert::der::Decode;
    let leaf = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .next()
        .ok_or("the ACME server sent no certificate")?
        .map_err(|e| format!("the certificate sent: {e}"))?;
    let cert = x509_cert::Certificate::from_der(&leaf)
        .map_err(|e| format!("the certificate sent: {e}"))?;
    let time = |t: x509_cert::time::Time| {
        DateTime::from_timestamp(t.to_unix_duration().as_secs() as i64, 0)
            .ok_or_else(|| "the certificate's validity is out of range".to_string())
    };
    let v = &cert.tbs_certificate.validity;
    Ok((time(v.not_before)?, time(v.not_after)?))
}

/// Renewed when a third of its lifetime is left (30 days of Let's Encrypt's 90).
pub fn renew_at(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> DateTime<Utc> {
    not_after - (not_after - not_before) / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_certificate_is_renewed_with_a_third_of_its_lifetime_left() {
        let from = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let to = from + chrono::Duration::days(90);
        assert_eq!(renew_at(from, to), from + chrono::Duration::days(60));
    }
}
