//! The classification rules, in the order they are tried: the first that fires decides the class.
//! Each names its reason code and the public evidence it rests on. Change a rule here, then run
//! `mailbeacon reclassify` so that stored events and reports follow.
//!
//! 1. `ua:<list reason>`: the user agent matches `data/user-agents/mail-machines.tsv`: email image
//!    proxies (Gmail's `GoogleImageProxy`, `YahooMailProxy`, ...) and security scanners, each row
//!    with the URL of its evidence.
//! 2. `ip:<list>`: the client address is in a published range (`data/ip-ranges/`, source and date
//!    in each file): an open from Google's image-proxy ranges is `gmail_proxy`; an open from
//!    Apple's Mail Privacy Protection egress ranges is `apple_mpp`; from Microsoft's Exchange
//!    Online Protection ranges an open is `microsoft_proxy` and a click `scanner` (Safe Links
//!    follows links from there before delivery).
//! 3. `header:sec-purpose-prefetch`: browsers mark speculative loads with `Sec-Purpose: prefetch`
//!    (Fetch metadata, <https://developer.mozilla.org/docs/Web/HTTP/Headers/Sec-Purpose>; older
//!    `Purpose: prefetch` / `X-Moz: prefetch`): nobody looked, so `bot`.
//! 4. `method:head`: a HEAD request only checks that a link or image exists: link checkers and
//!    scanners (clicks) or bots (opens). Mail clients and browsers load images and follow links with GET.
//! 5. `ua:empty`: no user agent at all; every browser and mail client sends one: `bot`.
//! 6. `ua:crawler`: the user agent matches the crawler-user-agents list (crawlers, HTTP libraries,
//!    monitoring, link unfurlers such as Slackbot): `bot`.
//! 7. `ua:headless`: `HeadlessChrome` and similar automation: `bot`.
//! 8. `ua:apple-mpp`: an open whose user agent is exactly `Mozilla/5.0`, the bare agent Apple's Mail
//!    Privacy Protection prefetch sends: `apple_mpp`.
//! 9. `timing:seconds-after-send`: a click less than [`SCANNER_CLICK_SECONDS`] after the message
//!    was sent: security gateways follow links on delivery, people take longer to open a mail and
//!    click: `scanner`.
//! 10. `burst:links`: a click on a link when another link of the same message was clicked less
//!     than [`BURST_WINDOW_MS`] earlier: scanners follow every link at once, a person clicks one
//!     and reads. The earlier clicks of the burst are relabelled `scanner` too.
//!
//! Otherwise: `human`. A scanner's reasons also say `timing:no-open-before-click` when nothing of
//! the message was opened before the click (a weak sign alone: images are often blocked).
//!
//! `duplicate`: an event of the same kind (for clicks, the same link) of the same message within
//! [`DUPLICATE_WINDOW_SECONDS`] before it: a reload or a client fetching twice; it stays in the
//! totals and is flagged so reports can leave it out.

use super::agents::Agents;
use super::{Class, Hit, Prior};
use crate::store::EventKind;

pub const SCANNER_CLICK_SECONDS: i64 = 10;
pub const BURST_WINDOW_MS: i64 = 2_000;
pub const DUPLICATE_WINDOW_SECONDS: i64 = 60;

pub const REASON_BURST: &str = "burst:links";

pub fn decide(agents: &Agents, hit: &Hit, history: &[Prior]) -> (Class, Vec<&'static str>) {
    let (class, reason) = first_rule(agents, hit, history);
    let mut reasons = Vec::with_capacity(2);
    if let Some(r) = reason {
        reasons.push(r);
    }
    if class == Class::Scanner
        && hit.kind == EventKind::Click
        && !history.iter().any(|p| p.kind == EventKind::Open)
    {
        reasons.push("timing:no-open-before-click");
    }
    (class, reasons)
}

fn first_rule(agents: &Agents, hit: &Hit, history: &[Prior]) -> (Class, Option<&'static str>) {
    let ua = hit.user_agent.unwrap_or("").trim();
    let open = hit.kind == EventKind::Open;

    if let Some((class, reason)) = agents.mail_machine(ua) {
        return (class, Some(reason));
    }
    for tag in hit.ip_tags {
        match (*tag, open) {
            ("google-image-proxy", true) => {
                return (Class::GmailProxy, Some("ip:google-image-proxy"));
            }
            ("apple-mpp-egress", true) => return (Class::AppleMpp, Some("ip:apple-egress")),
            ("microsoft-eop", true) => return (Class::MicrosoftProxy, Some("ip:microsoft-eop")),
            ("microsoft-eop", false) => return (Class::Scanner, Some("ip:microsoft-eop")),
            _ => {}
        }
    }
    if hit.headers.iter().any(|(name, value)| {
        matches!(name.as_str(), "sec-purpose" | "purpose" | "x-moz")
            && value.to_ascii_lowercase().contains("prefetch")
    }) {
        return (Class::Bot, Some("header:sec-purpose-prefetch"));
    }
    if hit.method.eq_ignore_ascii_case("HEAD") {
        let class = if open { Class::Bot } else { Class::Scanner };
        return (class, Some("method:head"));
    }
    if ua.is_empty() {
        return (Class::Bot, Some("ua:empty"));
    }
    if agents.is_crawler(ua) {
        return (Class::Bot, Some("ua:crawler"));
    }
    if ua.contains("Headless") || ua.contains("PhantomJS") {
        return (Class::Bot, Some("ua:headless"));
    }
    if open && ua == "Mozilla/5.0" {
        return (Class::AppleMpp, Some("ua:apple-mpp"));
    }
    if !open {
        let after_send = (hit.received_at - hit.sent_at).num_seconds();
        if (0..SCANNER_CLICK_SECONDS).contains(&after_send) {
            return (Class::Scanner, Some("timing:seconds-after-send"));
        }
        if in_burst(hit, history) {
            return (Class::Scanner, Some(REASON_BURST));
        }
    }
    (Class::Human, None)
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
