//! The classification rules, in the order they are tried: the first that fires decides the class.
//! Each names its reason code and the public evidence it rests on. Change a rule here, then run
//! `mailbeacon reclassify` so that stored events and reports follow.
//!
//! 1. `ua:<list reason>`: the user agent matches `data/user-agents/mail-machines.tsv`: email image
//!    proxies (Gmail's `GoogleImageProxy`, `YahooMailProxy`, Fastmail's, HEY's, ...), Apple's
//!    prefetch (the bare agent `Mozilla/5.0`) and security scanners, each row with the URL of its
//!    evidence. Proxies and prefetchers only load images, so a click with such an agent is a `bot`.
//!    Apple's prefetch comes from Apple's network or its Private Relay egress: a bare `Mozilla/5.0`
//!    from another public address is a script (`ua:bare-mozilla-not-apple`, `bot`); from a
//!    private one (an untrusted proxy in front) the address says nothing.
//! 2. `ip:<list>`: the client address is in a published range (`data/ip-ranges/`, source and date
//!    in each file), tried in the order of [`ADDRESS_RULES`]: Microsoft's Exchange Online
//!    Protection and Barracuda's gateway ranges are the mail filtering tier, where nobody reads
//!    mail: `scanner` for opens and clicks. From Exchange Online (Outlook on the web) an open is
//!    `microsoft_proxy` and a click a `scanner` (Safe Links sends the reader's own browser on).
//!    An open from Google's image-proxy ranges is `gmail_proxy`, from Mail.ru's `other_proxy`,
//!    from Apple's own network `apple_mpp`, and from Apple's Private Relay egress ranges
//!    `apple_mpp` unless the agent is Safari's (a Safari user behind Private Relay is a reader).
//!    Google's image proxy sends `GoogleImageProxy` (rule 1): an open from Google's network is
//!    `gmail_proxy` only when its agent names no browser and the address is not Google Cloud's
//!    (customers' machines); a click from Google's network is one of its fetchers
//!    (`ip:google-fetcher`, `bot`): readers' browsers click from their own addresses.
//!    `ip:security-gateway`: an address in a security vendor's network (Proofpoint, Mimecast,
//!    Cisco, Broadcom, Trend Micro, Forcepoint, Fortinet, Hornetsecurity, Cloudflare's email
//!    security; for clicks also all of Microsoft's) within [`DELIVERY_WINDOW_SECONDS`] of the send
//!    is the gateway's own scan: `scanner`, with `timing:delivery-window`. Later, the same
//!    networks carry people (browser isolation, web proxies, cloud desktops), so they decide
//!    nothing then.
//! 3. `honeypot:followed`: a click on the hidden link `--honeypot-link` adds to every mail, which
//!    no person can see or reach (`display:none`, `aria-hidden`): `scanner`.
//!    Likewise `token:altered-before`: a token of this message failed its signature check shortly before
//!    (within [`ALTERED_TOKEN_WINDOW_SECONDS`]): security scanners probe variants of a link before
//!    following the real one; recipients' mail clients never alter a URL: `scanner`.
//! 4. `header:sec-purpose-prefetch`: browsers mark speculative loads with `Sec-Purpose: prefetch`
//!    (Fetch metadata, <https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Purpose>; older
//!    `Purpose: prefetch` / `X-Moz: prefetch`, also `prerender`): nobody looked, so `bot`.
//! 5. `method:head`: a HEAD request only checks that a link or image exists: link checkers and
//!    scanners (clicks) or bots (opens). Mail clients and browsers load images and follow links with GET.
//! 6. `ua:crawler`: the user agent matches the crawler-user-agents list (crawlers, monitoring, link
//!    unfurlers such as Slackbot): `bot`.
//! 7. `ua:http-library`: an HTTP library or command-line tool ([`HTTP_LIBRARIES`]), not a mail
//!    client or browser: `bot`.
//! 8. `ua:headless`: `HeadlessChrome` and similar automation: `bot`.
//! 9. `timing:seconds-after-send`: a click less than [`SCANNER_CLICK_SECONDS`] after the message
//!    was sent: security gateways follow links on delivery (2 s in gophish#973, 12 s in
//!    resend#901, mautic#16263), people take longer to open a mail and click: `scanner`. A fast
//!    reader of a transactional mail can be caught by this; campaign mail rarely is.
//! 10. `burst:links`: a click on a link when another link of the same message was clicked less
//!     than [`BURST_WINDOW_MS`] earlier: scanners follow every link at once, a person clicks one
//!     and reads. The earlier clicks of the burst are relabelled `scanner` too.
//! 11. `ua:outdated-browser`: the agent names a browser version first released more than
//!     [`OUTDATED_BROWSER_DAYS`] before the event (caniuse's release dates, `versions`): browsers
//!     update themselves, scripts copy old agents. Mail clients that carry an old engine's token
//!     (Outlook's `MSIE 7.0`) are not browsers here: `bot`.
//! 12. `ip:datacenter`: a cloud or hosting network (`data/ip-ranges/cloud-*.txt`, Google's own)
//!     with an agent that names a browser (or a bare `Mozilla/5.0`): scripts, link checkers and
//!     preview services run there, readers' browsers do not. `scanner` within the delivery window
//!     (with `timing:delivery-window`), `bot` later. A mail client's agent from there (a cloud
//!     desktop, a VPN) stays `human`.
//! 13. `ua:empty`: no user agent at all; every browser and mail client sends one: `bot`.
//!
//! Otherwise: `human`. A scanner's reasons also say `timing:no-open-before-click` when nothing of
//! the message was opened before the click (a weak sign alone: images are often blocked).
//!
//! `duplicate`: an event of the same kind (for clicks, the same link) of the same message within
//! [`DUPLICATE_WINDOW_SECONDS`] before it: a reload or a client fetching twice; it stays in the
//! totals and is flagged so reports can leave it out.

use super::agents::Agents;
use super::{Class, Hit, Prior};
use crate::domain::EventKind;

pub const SCANNER_CLICK_SECONDS: i64 = 30;
pub const BURST_WINDOW_MS: i64 = 2_000;
pub const DUPLICATE_WINDOW_SECONDS: i64 = 60;
pub const ALTERED_TOKEN_WINDOW_SECONDS: i64 = 600;
/// How long after the send a gateway's or a datacenter's fetch counts as the scan on delivery:
/// gateways fetch within seconds (1-25 s in the corpus' sources), a queue of a large send can
/// delay delivery by minutes.
pub const DELIVERY_WINDOW_SECONDS: i64 = 300;
/// Ten years: the devices stuck on old browsers (iPads on iOS 12, Android 4.4) stop at versions
/// from 2018-2020; what names a browser from a decade before is a copied agent.
pub const OUTDATED_BROWSER_DAYS: i64 = 3652;

pub const REASON_BURST: &str = "burst:links";

/// (address list, class for an open, class for a click, reason), first match wins.
pub const ADDRESS_RULES: &[(&str, Option<Class>, Option<Class>, &str)] = &[
    (
        "microsoft-eop",
        Some(Class::Scanner),
        Some(Class::Scanner),
        "ip:microsoft-eop",
    ),
    (
        "barracuda-egd",
        Some(Class::Scanner),
        Some(Class::Scanner),
        "ip:barracuda-egd",
    ),
    (
        "microsoft-exchange-online",
        Some(Class::MicrosoftProxy),
        Some(Class::Scanner),
        "ip:microsoft-exchange-online",
    ),
    (
        "google-image-proxy",
        Some(Class::GmailProxy),
        None,
        "ip:google-image-proxy",
    ),
    (
        "google-image-proxy",
        None,
        Some(Class::Bot),
        "ip:google-fetcher",
    ),
    (
        "mailru-image-proxy",
        Some(Class::OtherProxy),
        None,
        "ip:mailru-image-proxy",
    ),
    (
        "apple-network",
        Some(Class::AppleMpp),
        None,
        "ip:apple-network",
    ),
    (
        "apple-mpp-egress",
        Some(Class::AppleMpp),
        None,
        "ip:apple-egress",
    ),
];

/// Security vendors' networks (`data/ip-ranges/`), and whether an open from there is the gateway's
/// too: Microsoft's whole network holds Outlook.com's image proxy, so only its clicks are.
pub const GATEWAY_NETWORKS: &[(&str, bool)] = &[
    ("proofpoint", true),
    ("mimecast", true),
    ("mimecast-mta", true),
    ("cisco-secure-email", true),
    ("broadcom-messagelabs", true),
    ("trend-micro", true),
    ("forcepoint", true),
    ("fortinet", true),
    ("hornetsecurity", true),
    ("cloudflare-email-security", true),
    ("microsoft-network", false),
];

/// Cloud and hosting networks, and Google's (whose own fetchers share it with the image proxy).
pub const DATACENTER_NETWORKS: &[&str] = &[
    "cloud-aws",
    "cloud-gcp",
    "cloud-oracle",
    "cloud-digitalocean",
    "cloud-linode",
    "cloud-vultr",
    "cloud-hetzner",
    "cloud-ovh",
    "cloud-contabo",
    "cloud-scaleway",
    "cloud-alibaba",
    "cloud-tencent",
    "google-image-proxy",
];

/// User-agent prefixes or fragments of HTTP libraries and command-line clients (lower case).
/// Sources: tests/corpus/README.md (skuz-ko/php-email-open-bot-detection, warmbly abuse.rs).
pub const HTTP_LIBRARIES: &[&str] = &[
    "curl/",
    "wget/",
    "python-requests",
    "python-urllib",
    "aiohttp",
    "go-http-client",
    "okhttp",
    "java/",
    "apache-httpclient",
    "axios/",
    "node-fetch",
    "libwww-perl",
    "postmanruntime",
];

pub fn decide(agents: &Agents, hit: &Hit, history: &[Prior]) -> (Class, Vec<&'static str>) {
    let mut reasons = Vec::with_capacity(3);
    let class = first_rule(agents, hit, history, &mut reasons);
    if class == Class::Scanner
        && hit.kind == EventKind::Click
        && !history.iter().any(|p| p.kind == EventKind::Open)
    {
        reasons.push("timing:no-open-before-click");
    }
    (class, reasons)
}

fn first_rule(
    agents: &Agents,
    hit: &Hit,
    history: &[Prior],
    reasons: &mut Vec<&'static str>,
) -> Class {
    let ua = hit.user_agent.unwrap_or("").trim();
    let open = hit.kind == EventKind::Open;
    let after_send = (hit.received_at - hit.sent_at).num_seconds();
    let on_delivery = (0..DELIVERY_WINDOW_SECONDS).contains(&after_send);
    let tagged = |tag: &str| hit.ip_tags.contains(&tag);
    let mut decided = |class: Class, why: &[&'static str]| {
        reasons.extend_from_slice(why);
        class
    };

    if let Some((class, reason)) = agents.mail_machine(ua) {
        let elsewhere = ![
            "apple-network",
            "apple-mpp-egress",
            super::PRIVATE_ADDRESS_TAG,
        ]
        .iter()
        .any(|t| tagged(t));
        if class == Class::AppleMpp && elsewhere {
            return decided(Class::Bot, &["ua:bare-mozilla-not-apple"]);
        }
        let image_fetcher = !matches!(class, Class::Scanner | Class::Bot | Class::Human);
        let class = if image_fetcher && !open {
            Class::Bot
        } else {
            class
        };
        return decided(class, &[reason]);
    }
    // What browser the agent names, worked out when a rule first asks.
    let named = std::cell::OnceCell::new();
    let version = || *named.get_or_init(|| super::versions::browser_version(ua));
    for (tag, open_class, click_class, reason) in ADDRESS_RULES {
        if !tagged(tag) {
            continue;
        }
        let class = if open { *open_class } else { *click_class };
        // A Safari user behind iCloud Private Relay is a reader; Apple's prefetch is not Safari.
        let safari = *tag == "apple-mpp-egress" && ua.contains("Safari/");
        // Gmail's proxy says so in its agent; a browser or a Cloud customer is something else.
        let not_gmail =
            class == Some(Class::GmailProxy) && (tagged("cloud-gcp") || version().is_some());
        if let Some(class) = class
            && !safari
            && !not_gmail
        {
            return decided(class, &[reason]);
        }
    }
    if on_delivery
        && GATEWAY_NETWORKS
            .iter()
            .any(|(tag, opens)| tagged(tag) && (*opens || !open))
    {
        return decided(
            Class::Scanner,
            &["ip:security-gateway", "timing:delivery-window"],
        );
    }
    if hit.link_no == Some(crate::domain::HONEYPOT_LINK) {
        return decided(Class::Scanner, &["honeypot:followed"]);
    }
    if let Some(failed) = hit.failed_check_at {
        let since = (hit.received_at - failed).num_seconds();
        if (0..ALTERED_TOKEN_WINDOW_SECONDS).contains(&since) {
            return decided(Class::Scanner, &["token:altered-before"]);
        }
    }
    if hit.headers.iter().any(|(name, value)| {
        matches!(
            name.as_str(),
            "sec-purpose" | "purpose" | "x-purpose" | "x-moz"
        ) && {
            let v = value.to_ascii_lowercase();
            v.contains("prefetch") || v.contains("prerender")
        }
    }) {
        return decided(Class::Bot, &["header:sec-purpose-prefetch"]);
    }
    if hit.method.eq_ignore_ascii_case("HEAD") {
        let class = if open { Class::Bot } else { Class::Scanner };
        return decided(class, &["method:head"]);
    }
    if !ua.is_empty() && agents.is_crawler(ua) {
        return decided(Class::Bot, &["ua:crawler"]);
    }
    let lower = ua.to_ascii_lowercase();
    if HTTP_LIBRARIES.iter().any(|l| lower.contains(l)) {
        return decided(Class::Bot, &["ua:http-library"]);
    }
    if ua.contains("Headless") || ua.contains("PhantomJS") {
        return decided(Class::Bot, &["ua:headless"]);
    }
    if !open {
        if (0..SCANNER_CLICK_SECONDS).contains(&after_send) {
            return decided(Class::Scanner, &["timing:seconds-after-send"]);
        }
        if in_burst(hit, history) {
            return decided(Class::Scanner, &[REASON_BURST]);
        }
    }
    if let Some(released) = version().and_then(|(b, major)| super::versions::release_of(b, major))
        && (hit.received_at.date_naive() - released).num_days() > OUTDATED_BROWSER_DAYS
    {
        return decided(Class::Bot, &["ua:outdated-browser"]);
    }
    if DATACENTER_NETWORKS.iter().any(|t| tagged(t)) && (ua == "Mozilla/5.0" || version().is_some())
    {
        return if on_delivery {
            decided(Class::Scanner, &["ip:datacenter", "timing:delivery-window"])
        } else {
            decided(Class::Bot, &["ip:datacenter"])
        };
    }
    if ua.is_empty() {
        return decided(Class::Bot, &["ua:empty"]);
    }
    Class::Human
}

/// What an earlier event of a burst becomes: a scanner's, its reasons with the burst's added.
/// The writer and `reclassify` both relabel with it (and the writer's SQL with its parts).
pub fn burst_relabel(reasons: &str) -> (Class, String) {
    let reasons = format!("{reasons} {REASON_BURST}").trim().to_string();
    (Class::Scanner, reasons)
}

/// The earlier events a click found to be in a burst relabels `scanner`: clicks within the burst
/// window before it that are not already machine activity. The writer and `reclassify` both use
/// this, so they agree.
pub fn burst_members(
    received_at: chrono::DateTime<chrono::Utc>,
    history: &[Prior],
) -> impl Iterator<Item = usize> + '_ {
    let since = received_at - chrono::Duration::milliseconds(BURST_WINDOW_MS);
    history.iter().enumerate().filter_map(move |(i, p)| {
        (p.kind == EventKind::Click && p.received_at >= since && !p.class.is_machine()).then_some(i)
    })
}

/// Another link of the same message clicked within the burst window before this click.
fn in_burst(hit: &Hit, history: &[Prior]) -> bool {
    history.iter().any(|p| {
        p.kind == EventKind::Click
            && p.link_no != hit.link_no
            && (hit.received_at - p.received_at).num_milliseconds() < BURST_WINDOW_MS
    })
}

pub fn is_duplicate(hit: &Hit, history: &[Prior]) -> bool {
    history.iter().any(|p| {
        p.kind == hit.kind
            && p.link_no == hit.link_no
            && (hit.received_at - p.received_at).num_seconds() < DUPLICATE_WINDOW_SECONDS
    })
}
