//! Tracking domains as the API, the dashboard and the CLI change them: the same checks, answers
//! and audit entries from each (only admins change them; anyone signed in lists them).

use crate::domain::{Actor, AuditAction, Scope, parse_tracking_domain};
use crate::error::{ApiError, Invalid};
use crate::store::{AuditEntry, DomainRemoval, Store, TrackingDomain};

/// Who asks for a change, as the audit log names them.
#[derive(Debug, Clone, Copy)]
pub struct Changer {
    pub actor: Actor,
    pub scope: Scope,
}

impl Changer {
    fn require_admin(self) -> Result<(), ApiError> {
        match self.scope {
            Scope::Admin => Ok(()),
            other => Err(ApiError::Forbidden(other.as_str())),
        }
    }

    async fn audit(
        self,
        store: &dyn Store,
        action: AuditAction,
        target: String,
    ) -> Result<(), ApiError> {
        store
            .audit(AuditEntry {
                at: chrono::Utc::now(),
                actor: self.actor,
                scope: self.scope.as_str().into(),
                action,
                target,
            })
            .await?;
        Ok(())
    }
}

/// The name a request gives, as stored (lower case, no trailing dot).
fn name(domain: &str) -> String {
    domain.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// Adds a host name (links use HTTPS) or a base URL, and checks at once whether it reaches this
/// installation (the answer says so; a domain that does not yet is listed all the same).
pub async fn add(
    store: &dyn Store,
    by: Changer,
    check: Check<'_>,
    input: &str,
) -> Result<TrackingDomain, ApiError> {
    by.require_admin()?;
    let new = parse_tracking_domain(input)
        .map_err(|e| ApiError::Invalid(Invalid::TrackingDomain, format!("domain: {e}")))?;
    let domain = new.domain.clone();
    store
        .add_tracking_domain(new)
        .await?
        .ok_or_else(|| ApiError::Conflict(format!("tracking domain {domain} is listed already")))?;
    by.audit(store, AuditAction::AddTrackingDomain, domain.clone())
        .await?;
    check_now(store, by, check, &domain).await
}

/// Retires a domain for new mail (`true`), or takes it back into use.
pub async fn retire(
    store: &dyn Store,
    by: Changer,
    domain: &str,
    retired: bool,
) -> Result<TrackingDomain, ApiError> {
    by.require_admin()?;
    let domain = name(domain);
    let edited = store
        .retire_tracking_domain(domain.clone(), retired)
        .await?
        .ok_or_else(|| ApiError::TrackingDomainNotFound(domain.clone()))?;
    let what = if retired { "retired" } else { "in use" };
    by.audit(
        store,
        AuditAction::RetireTrackingDomain,
        format!("{domain} {what}"),
    )
    .await?;
    Ok(edited)
}

/// Removes a retired domain.
pub async fn remove(store: &dyn Store, by: Changer, domain: &str) -> Result<(), ApiError> {
    by.require_admin()?;
    let domain = name(domain);
    match store.remove_tracking_domain(domain.clone()).await? {
        DomainRemoval::Removed => {
            by.audit(store, AuditAction::RemoveTrackingDomain, domain)
                .await
        }
        DomainRemoval::NotFound => Err(ApiError::TrackingDomainNotFound(domain)),
        DomainRemoval::NotRetired => Err(ApiError::Conflict(format!(
            "tracking domain {domain} is in use: retire it first, then remove it once no mail \
             under it needs answering"
        ))),
    }
}

/// Makes a domain's certificate due for renewal now: the servers with `--https-listen` order a
/// new one within seconds.
pub async fn renew_certificate(
    store: &dyn Store,
    by: Changer,
    domain: &str,
) -> Result<(), ApiError> {
    by.require_admin()?;
    let domain = name(domain);
    if !store.renew_certificate_now(domain.clone()).await? {
        existing(store, &domain).await?;
        return Err(ApiError::Conflict(format!(
            "{domain} has no certificate yet: one is ordered once the name passes its domain \
             check, by a server started with --https-listen"
        )));
    }
    by.audit(store, AuditAction::RenewCertificate, domain).await
}

/// One domain; 404 when it is not listed.
pub async fn existing(store: &dyn Store, domain: &str) -> Result<TrackingDomain, ApiError> {
    let domain = name(domain);
    store
        .tracking_domain(domain.clone())
        .await?
        .ok_or(ApiError::TrackingDomainNotFound(domain))
}

/// A tracking domain a campaign may name for new mail: listed and not retired.
pub async fn usable(store: &dyn Store, domain: &str) -> Result<String, ApiError> {
    let domain = name(domain);
    let invalid = |why: String| ApiError::Invalid(Invalid::TrackingDomain, why);
    match store.tracking_domain(domain.clone()).await? {
        None => Err(invalid(format!(
            "tracking_domain: {domain} is not listed (an admin adds it: POST /api/tracking-domains)"
        ))),
        Some(d) if d.retired_at.is_some() => Err(invalid(format!(
            "tracking_domain: {domain} is retired for new mail"
        ))),
        Some(d) => Ok(d.domain),
    }
}

/// A campaign's choice as given: `None` for none (the public URL), else a usable domain.
pub async fn chosen(store: &dyn Store, domain: Option<&str>) -> Result<Option<String>, ApiError> {
    match domain {
        Some(d) => usable(store, d).await.map(Some),
        None => Ok(None),
    }
}

/// What a domain check needs: the keys whose proof it looks for, and the public URL whose host
/// the DNS record to create points at.
#[derive(Clone, Copy)]
pub struct Check<'a> {
    pub keys: &'a crate::token::KeyRing,
    pub public_url: &'a crate::domain::PublicUrl,
    /// `--resolve`: names reached at a fixed address.
    pub resolve: &'a [crate::config::Pinned],
}

impl Check<'_> {
    /// What a running server checks with.
    pub fn of(app: &crate::app::AppState) -> Check<'_> {
        Check {
            keys: &app.keys,
            public_url: &app.registrar.public_url,
            resolve: &app.settings.resolve,
        }
    }
}

/// Runs the domain check of a listed domain now and notes its outcome (admins: it makes requests
/// from the server).
pub async fn check_now(
    store: &dyn Store,
    by: Changer,
    check: Check<'_>,
    domain: &str,
) -> Result<TrackingDomain, ApiError> {
    by.require_admin()?;
    let d = existing(store, domain).await?;
    let error = reaches_here(check, &d).await.err();
    store
        .record_domain_check(d.domain.clone(), chrono::Utc::now(), error)
        .await?
        .ok_or(ApiError::TrackingDomainNotFound(d.domain))
}

/// Whether the domain's name reaches a server of this installation: its check path answers the
/// proof only our keys make. Tried under the domain's URL, and for an https URL also over plain
/// HTTP on port 80 (a name whose certificate is not there yet). The error names the DNS record
/// to create.
pub async fn reaches_here(check: Check<'_>, d: &TrackingDomain) -> Result<(), String> {
    use crate::domain::DOMAIN_CHECK_PATH as PATH;
    let mut urls = vec![format!("{}{PATH}", d.url)];
    if d.url.starts_with("https://") {
        let path = d
            .url
            .splitn(4, '/')
            .nth(3)
            .map_or(String::new(), |p| format!("/{p}"));
        let host = if d.domain.contains(':') {
            format!("[{}]", d.domain)
        } else {
            d.domain.clone()
        };
        urls.push(format!("http://{host}{path}{PATH}"));
    }
    let client = client(check.resolve).map_err(|e| format!("the check could not start: {e}"))?;
    let mut reasons = Vec::new();
    for url in &urls {
        let answer = async {
            let r = client.get(url).send().await?;
            let status = r.status();
            Ok::<_, reqwest::Error>((status, r.text().await?))
        };
        match answer.await {
            Ok((status, proof))
                if status.is_success() && check.keys.is_domain_proof(&d.domain, &proof) =>
            {
                return Ok(());
            }
            Ok((status, _)) if status.is_success() => reasons.push(format!(
                "{url} answered, but not with this installation's proof (the name reaches another server)"
            )),
            Ok((status, _)) => reasons.push(format!("{url} answered {status}")),
            Err(e) => reasons.push(format!("{url}: {}", describe(&e))),
        }
    }
    let target = check.public_url.host();
    let record = match target.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => format!("`{}. A {ip}`", d.domain),
        Ok(std::net::IpAddr::V6(ip)) => format!("`{}. AAAA {ip}`", d.domain),
        Err(_) => format!(
            "`{}. CNAME {target}.` (or A/AAAA records with this server's addresses)",
            d.domain
        ),
    };
    Err(format!(
        "{domain} does not reach this installation yet ({reasons}). Create a DNS record \
         {record}, then check again once it has spread",
        domain = d.domain,
        reasons = reasons.join("; "),
    ))
}

fn client(resolve: &[crate::config::Pinned]) -> reqwest::Result<reqwest::Client> {
    // reqwest is built without a crypto provider: ring, not aws-lc (a long C build).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder = reqwest::Client::builder();
    for pin in resolve {
        builder = builder.resolve(&pin.name, std::net::SocketAddr::new(pin.addr, 0));
    }
    builder
        // The answer is trusted for its proof, which only our keys make; a name whose first
        // certificate is still to come answers with a stand-in (`crate::acme::Certs`).
        .danger_accept_invalid_certs(true)
        .timeout(std::time::Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::limited(5))
        .no_proxy()
        .user_agent(concat!(
            "mailbeacon-domain-check/",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
}

/// The innermost cause of a request's failure (the DNS or connection error), which says most.
fn describe(e: &reqwest::Error) -> String {
    let mut source: &dyn std::error::Error = e;
    while let Some(inner) = source.source() {
        source = inner;
    }
    source.to_string()
}
