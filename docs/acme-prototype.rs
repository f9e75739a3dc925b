//! Throwaway prototype: instant-acme against Debian's pebble, HTTP-01 and TLS-ALPN-01,
//! per-SNI certificates served by rustls.
use anyhow::{Context, anyhow, bail};
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, ChallengeType, Identifier, NewAccount,
    NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

#[derive(Debug, Default)]
struct Resolver {
    certs: RwLock<HashMap<String, Arc<CertifiedKey>>>,
    alpn: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl ResolvesServerCert for Resolver {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let name = hello.server_name()?.to_ascii_lowercase();
        let acme = hello
            .alpn()
            .is_some_and(|mut protos| protos.any(|p| p == ACME_TLS_ALPN));
        eprintln!("resolve: sni={name} acme-tls/1={acme}");
        if acme {
            self.alpn.read().unwrap().get(&name).cloned()
        } else {
            self.certs.read().unwrap().get(&name).cloned()
        }
    }
}

type Tokens = Arc<RwLock<HashMap<String, String>>>;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let _ = rustls::crypto::ring::default_provider().install_default();
    let resolver = Arc::new(Resolver::default());
    let tokens: Tokens = Default::default();

    // HTTP-01 responder on pebble's httpPort.
    let t = tokens.clone();
    let app = axum::Router::new().route(
        "/.well-known/acme-challenge/{token}",
        axum::routing::get(
            move |axum::extract::Path(token): axum::extract::Path<String>| {
                let t = t.clone();
                async move {
                    eprintln!("http-01 request for {token}");
                    t.read()
                        .unwrap()
                        .get(&token)
                        .cloned()
                        .ok_or(axum::http::StatusCode::NOT_FOUND)
                }
            },
        ),
    );
    let http = tokio::net::TcpListener::bind("127.0.0.1:5002").await?;
    tokio::spawn(async move { axum::serve(http, app).await });

    // TLS listener on pebble's tlsPort: TLS-ALPN-01 and the issued certificates.
    let mut config = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_cert_resolver(resolver.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec(), ACME_TLS_ALPN.to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let tls = tokio::net::TcpListener::bind("127.0.0.1:5001").await?;
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = tls.accept().await else { continue };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                match acceptor.accept(tcp).await {
                    Ok(mut s) => {
                        let (_, conn) = s.get_ref();
                        if conn.alpn_protocol() == Some(ACME_TLS_ALPN) {
                            eprintln!("tls-alpn-01 handshake done for {:?}", conn.server_name());
                            let _ = s.shutdown().await;
                            return;
                        }
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").await;
                        let _ = s.shutdown().await;
                    }
                    Err(e) => eprintln!("tls accept: {e}"),
                }
            });
        }
    });

    // Account: created, serialised, restored.
    let directory = "https://127.0.0.1:14000/dir".to_owned();
    let (_, creds) = Account::builder_with_root("/tmp/pebtest/ca.pem")?
        .create(
            &NewAccount {
                contact: &[],
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            directory,
            None,
        )
        .await?;
    let json = serde_json::to_string(&creds)?;
    println!("credentials json: {}", json.replace(|c: char| c.is_ascii_alphanumeric() && false, ""));
    let creds: AccountCredentials = serde_json::from_str(&json)?;
    let account = Account::builder_with_root("/tmp/pebtest/ca.pem")?
        .from_credentials(creds)
        .await?;
    println!("account id {}", account.id());

    for (domain, ty) in [("a.test", ChallengeType::Http01), ("b.test", ChallengeType::TlsAlpn01)] {
        let ids = [Identifier::Dns(domain.to_owned())];
        let mut order = account.new_order(&NewOrder::new(&ids)).await?;
        let url = order.url().to_owned(); println!("{domain}: order {url} status {:?}", order.state().status);
        let mut authzs = order.authorizations();
        while let Some(a) = authzs.next().await {
            let mut authz = a?;
            match authz.status {
                AuthorizationStatus::Pending => {}
                AuthorizationStatus::Valid => continue,
                s => bail!("authz {s:?}"),
            }
            let mut ch = authz
                .challenge(ty.clone())
                .ok_or_else(|| anyhow!("no {ty:?} challenge"))?;
            let ka = ch.key_authorization();
            match ty {
                ChallengeType::Http01 => {
                    tokens
                        .write()
                        .unwrap()
                        .insert(ch.token.clone(), ka.as_str().to_owned());
                }
                ChallengeType::TlsAlpn01 => {
                    let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
                    params.custom_extensions =
                        vec![rcgen::CustomExtension::new_acme_identifier(ka.digest().as_ref())];
                    let kp = rcgen::KeyPair::generate()?;
                    let cert = params.self_signed(&kp)?;
                    // Not CertifiedKey::from_der: its keys_match() parses the certificate with
                    // webpki, which refuses the critical acmeIdentifier extension.
                    let key = provider.key_provider.load_private_key(PrivateKeyDer::Pkcs8(
                        PrivatePkcs8KeyDer::from(kp.serialize_der()),
                    ))?;
                    let ck = CertifiedKey::new(vec![cert.der().clone()], key);
                    resolver.alpn.write().unwrap().insert(domain.to_owned(), Arc::new(ck));
                }
                _ => unreachable!(),
            }
            ch.set_ready().await?;
        }
        let retry = RetryPolicy::new().initial_delay(Duration::from_millis(200)).timeout(Duration::from_secs(60));
        let status = order.poll_ready(&retry).await?;
        if status != OrderStatus::Ready {
            bail!("{domain}: order {status:?}");
        }
        // Our own key and CSR (rcgen), so the key never leaves our hands as PEM text.
        let kp = rcgen::KeyPair::generate()?; // ECDSA P-256
        let mut params = rcgen::CertificateParams::new(vec![domain.to_owned()])?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&kp)?;
        order.finalize_csr(csr.der()).await?;
        let chain_pem = order.poll_certificate(&retry).await?;
        let chain: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(chain_pem.as_bytes()).collect::<Result<_, _>>()?;
        println!("{domain}: got chain of {} certs via {ty:?}", chain.len());
        std::fs::write(format!("/tmp/pebtest/{domain}.chain.pem"), &chain_pem)?;
        let ck = CertifiedKey::from_der(
            chain,
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(kp.serialize_der())),
            &provider,
        )?;
        resolver.certs.write().unwrap().insert(domain.to_owned(), Arc::new(ck));
    }

    // Pebble's issuing root, from the management interface.
    let root_pem = https_get("127.0.0.1:15000", "/roots/0").await?;
    let root = CertificateDer::from_pem_slice(root_pem.as_bytes()).context("root pem")?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(root)?;
    let client = Arc::new(
        rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    for domain in ["a.test", "b.test"] {
        let tcp = tokio::net::TcpStream::connect("127.0.0.1:5001").await?;
        let mut s = tokio_rustls::TlsConnector::from(client.clone())
            .connect(ServerName::try_from(domain.to_owned())?, tcp)
            .await?;
        let subject = s.get_ref().1.peer_certificates().map(|c| c.len());
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.ok();
        println!("{domain}: verified TLS to pebble root OK, peer chain len {subject:?}, body {buf:?}");
    }
    Ok(())
}

/// GET over HTTPS to pebble's management port, trusting the CA that signed its listener cert.
async fn https_get(addr: &str, path: &str) -> anyhow::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter("/tmp/pebtest/ca.pem")? {
        roots.add(c?)?;
    }
    let cfg = rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let mut s = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(ServerName::try_from("localhost")?, tcp)
        .await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes()).await?;
    let mut out = String::new();
    let _ = s.read_to_string(&mut out).await;
    let body = out.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("").to_owned();
    Ok(body)
}
