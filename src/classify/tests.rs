use super::replay::{Derived, StoredEvent, replay};
use super::*;
use crate::domain::MessageId;
use chrono::Duration;
use std::sync::LazyLock;

static CLASSIFIER: LazyLock<Classifier> = LazyLock::new(|| {
    let mut c = Classifier::builtin(Internal {
        recipients: vec!["@example.com".into(), "qa-inbox".into()],
        networks: vec!["198.51.100.0/24".parse().unwrap()],
    });
    // Test lists, so these tests do not depend on what the shipped files hold.
    c.ranges.set(
        "apple-mpp-egress",
        &ranges::parse_list("172.224.226.0/23").unwrap(),
    );
    c.ranges.set(
        "microsoft-eop",
        &ranges::parse_list("40.92.0.0/15").unwrap(),
    );
    c.ranges.set(
        "google-image-proxy",
        &ranges::parse_list("66.249.80.0/20").unwrap(),
    );
    c
});

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const IPHONE_MAIL: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
const GMAIL: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

fn t0() -> DateTime<Utc> {
    "2026-11-23T09:00:00Z".parse().unwrap()
}

struct Req {
    kind: EventKind,
    link_no: Option<u16>,
    method: &'static str,
    ua: Option<&'static str>,
    ip: &'static str,
    headers: Option<&'static str>,
    secs: i64,
    rid: &'static str,
}

fn open(ua: &'static str, ip: &'static str, secs: i64) -> Req {
    Req {
        kind: EventKind::Open,
        link_no: None,
        method: "GET",
        ua: Some(ua),
        ip,
        headers: None,
        secs,
        rid: "alice@customer.test",
    }
}

fn click(link: u16, ua: &'static str, ip: &'static str, secs: i64) -> Req {
    Req {
        kind: EventKind::Click,
        link_no: Some(link),
        ..open(ua, ip, secs)
    }
}

fn classify(r: &Req, history: &[Prior]) -> (Verdict, ClientInfo) {
    let ip: IpAddr = r.ip.parse().unwrap();
    let tags = CLASSIFIER.ranges.tags(ip).join(" ");
    StoredHit {
        kind: r.kind,
        link_no: r.link_no,
        method: r.method,
        user_agent: r.ua,
        client_ip: Some(r.ip),
        headers: r.headers,
        ip_tags: &tags,
        received_at: t0() + Duration::seconds(r.secs),
        sent_at: t0(),
        failed_check_at: None,
        recipient_id: r.rid,
    }
    .classify(&CLASSIFIER, history)
}

fn class_of(r: Req) -> (Class, Vec<&'static str>) {
    let (v, _) = classify(&r, &[]);
    (v.class, v.reasons)
}

#[test]
fn readers_are_human_with_client_details() {
    let (v, info) = classify(&open(CHROME, "203.0.113.9", 3600), &[]);
    assert_eq!((v.class, v.reasons.len()), (Class::Human, 0));
    assert_eq!(info.client.as_deref(), Some("Chrome"));
    assert_eq!(info.os.as_deref(), Some("Windows"));
    assert_eq!(info.device, DeviceType::Desktop);
    let (v, info) = classify(&open(IPHONE_MAIL, "203.0.113.9", 600), &[]);
    assert_eq!(v.class, Class::Human);
    assert_eq!(info.os.as_deref(), Some("iOS"));
    assert_eq!(info.device, DeviceType::Mobile);
}

#[test]
fn proxies_and_apple_prefetch() {
    assert_eq!(
        class_of(open(GMAIL, "66.249.84.1", 600)).0,
        Class::GmailProxy
    );
    // Google's address says Gmail's proxy for an agent that names no browser; a browser's agent
    // from there is one of Google's other fetchers, and a click from there too.
    assert_eq!(
        class_of(open(IPHONE_MAIL, "66.249.84.1", 600)),
        (Class::GmailProxy, vec!["ip:google-image-proxy"])
    );
    assert_eq!(
        class_of(open(CHROME, "66.249.84.1", 600)),
        (Class::Bot, vec!["ip:datacenter"])
    );
    assert_eq!(
        class_of(click(1, CHROME, "66.249.84.1", 600)),
        (Class::Bot, vec!["ip:google-fetcher"])
    );
    assert_eq!(
        class_of(open(IPHONE_MAIL, "172.224.226.9", 5)),
        (Class::AppleMpp, vec!["ip:apple-egress"])
    );
    assert_eq!(
        class_of(open(IPHONE_MAIL, "17.58.1.1", 5)),
        (Class::AppleMpp, vec!["ip:apple-network"])
    );
    let safari = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";
    assert_eq!(
        class_of(open(safari, "172.224.226.9", 900)).0,
        Class::Human,
        "a Safari reader behind Private Relay"
    );
    assert_eq!(
        class_of(open("Mozilla/5.0", "172.224.226.9", 5)),
        (Class::AppleMpp, vec!["ua:bare-mozilla"])
    );
    assert_eq!(
        class_of(open(CHROME, "40.93.1.1", 600)).0,
        Class::Scanner,
        "Exchange Online Protection fetches are the filter, not a reader"
    );
    assert_eq!(
        class_of(open(CHROME, "40.97.1.1", 1600)),
        (Class::MicrosoftProxy, vec!["ip:microsoft-exchange-online"])
    );
    let (_, info) = classify(&open(GMAIL, "66.249.84.1", 600), &[]);
    assert_eq!(info.device, DeviceType::Proxy);
}

#[test]
fn scanners_and_bots() {
    assert_eq!(
        class_of(click(1, CHROME, "40.93.1.1", 3600)),
        (
            Class::Scanner,
            vec!["ip:microsoft-eop", "timing:no-open-before-click"]
        )
    );
    let head = Req {
        method: "HEAD",
        ..click(1, CHROME, "203.0.113.9", 3600)
    };
    assert_eq!(class_of(head).1[0], "method:head");
    assert_eq!(
        class_of(click(1, CHROME, "203.0.113.9", 12)).1[0],
        "timing:seconds-after-send"
    );
    let empty = Req {
        ua: None,
        ..open(CHROME, "203.0.113.9", 600)
    };
    assert_eq!(class_of(empty), (Class::Bot, vec!["ua:empty"]));
    assert_eq!(
        class_of(click(1, "python-requests/2.31.0", "203.0.113.9", 600)).0,
        Class::Bot
    );
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36";
    assert_eq!(
        class_of(click(1, headless, "203.0.113.9", 600)).0,
        Class::Bot
    );
    let prefetch = Req {
        headers: Some(r#"{"sec-purpose":"prefetch;prerender"}"#),
        ..click(1, CHROME, "203.0.113.9", 600)
    };
    assert_eq!(
        class_of(prefetch),
        (Class::Bot, vec!["header:sec-purpose-prefetch"])
    );
}

#[test]
fn duplicates_and_internal() {
    let first = Prior {
        id: EventId(1),
        kind: EventKind::Open,
        link_no: None,
        received_at: t0() + Duration::seconds(600),
        class: Class::Human,
    };
    let (v, _) = classify(
        &open(CHROME, "203.0.113.9", 630),
        std::slice::from_ref(&first),
    );
    assert!(v.duplicate);
    let (v, _) = classify(&open(CHROME, "203.0.113.9", 700), &[first]);
    assert!(!v.duplicate, "a minute later it is a new open");
    let (v, _) = classify(&open(CHROME, "198.51.100.20", 700), &[]);
    assert!(v.internal, "office network");
    let staff = Req {
        rid: "Bob@Example.com",
        ..open(CHROME, "203.0.113.9", 700)
    };
    assert!(classify(&staff, &[]).0.internal);
    assert!(!classify(&open(CHROME, "203.0.113.9", 700), &[]).0.internal);
}

fn stored(id: EventId, r: &Req) -> StoredEvent {
    let tags = CLASSIFIER.ranges.tags(r.ip.parse().unwrap()).join(" ");
    StoredEvent {
        id,
        kind: r.kind,
        link_no: r.link_no,
        method: r.method.into(),
        user_agent: r.ua.map(Into::into),
        client_ip: Some(r.ip.into()),
        headers: r.headers.map(Into::into),
        ip_tags: tags,
        received_at: t0() + Duration::seconds(r.secs),
        ua_reduced: false,
        derived: Derived {
            class: Class::Human,
            reasons: String::new(),
            duplicate: false,
            internal: false,
            client: None,
            os: None,
            device: "unknown".into(),
        },
    }
}

#[test]
fn a_burst_of_links_makes_every_click_of_it_a_scanner() {
    let mut events: Vec<StoredEvent> = [
        open(CHROME, "203.0.113.9", 100),
        click(1, CHROME, "203.0.113.9", 3600),
        click(2, CHROME, "203.0.113.9", 3601),
        click(3, CHROME, "203.0.113.9", 3601),
        click(1, CHROME, "203.0.113.9", 7200),
    ]
    .iter()
    .enumerate()
    .map(|(i, r)| stored(EventId(i as i64 + 1), r))
    .collect();
    let message = replay::MessageFacts {
        id: MessageId(1),
        recipient_id: "alice@customer.test".into(),
        sent_at: t0(),
        failed_check_at: None,
    };
    let changed = replay(&CLASSIFIER, &message, &mut events);
    let classes: Vec<Class> = events.iter().map(|e| e.derived.class).collect();
    assert_eq!(
        classes,
        [
            Class::Human,
            Class::Scanner,
            Class::Scanner,
            Class::Scanner,
            Class::Human
        ]
    );
    assert_eq!(events[1].derived.reasons, "burst:links");
    assert_eq!(
        changed,
        [0, 1, 2, 3, 4],
        "client details filled in everywhere"
    );
    // Replaying again changes nothing: the function is stable.
    assert!(replay(&CLASSIFIER, &message, &mut events).is_empty());
}

#[test]
fn gateways_datacenters_and_old_browsers() {
    // A security vendor's network on delivery: the gateway's scan, opens and clicks alike.
    let proofpoint = "148.163.137.20";
    assert_eq!(
        class_of(open(CHROME, proofpoint, 5)),
        (
            Class::Scanner,
            vec!["ip:security-gateway", "timing:delivery-window"]
        )
    );
    // Later, a person behind the vendor's browser isolation.
    assert_eq!(class_of(click(1, CHROME, proofpoint, 5400)).0, Class::Human);
    // Microsoft's whole network: its clicks on delivery, never its opens (Outlook.com's proxy).
    let microsoft = "20.65.8.21";
    assert_eq!(class_of(click(1, CHROME, microsoft, 40)).0, Class::Scanner);
    assert_eq!(class_of(open(CHROME, microsoft, 40)).0, Class::Human);
    // A cloud network with a browser's agent: a scan on delivery, a script later; a mail
    // client's agent from there (a cloud desktop) stays a reader.
    let aws = "34.201.72.208";
    assert_eq!(class_of(open(CHROME, aws, 60)).0, Class::Scanner);
    assert_eq!(
        class_of(click(1, CHROME, aws, 3600)),
        (Class::Bot, vec!["ip:datacenter"])
    );
    assert_eq!(class_of(open(IPHONE_MAIL, aws, 3600)).0, Class::Human);
    // Apple's bare agent outside Apple's networks is a script.
    assert_eq!(
        class_of(open("Mozilla/5.0", aws, 8)),
        (Class::Bot, vec!["ua:bare-mozilla-not-apple"])
    );
    assert_eq!(
        class_of(open("Mozilla/5.0", "172.224.226.9", 8)).0,
        Class::AppleMpp
    );
    // A browser from a decade before the event; Outlook's old engine token is not one.
    assert_eq!(
        class_of(open(
            "Mozilla/4.0 (compatible; MSIE 6.0; Windows NT 5.1; SV1)",
            "203.0.113.9",
            3600
        )),
        (Class::Bot, vec!["ua:outdated-browser"])
    );
    let outlook = "Mozilla/4.0 (compatible; MSIE 7.0; Windows NT 10.0; WOW64; Trident/7.0; Microsoft Outlook 16.0.4266; ms-office; MSOffice 16)";
    assert_eq!(class_of(open(outlook, "203.0.113.9", 3600)).0, Class::Human);
}
