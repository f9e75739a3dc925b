//! The campaign page's segments and mailbox providers cards, and a segment's recipients as a page (analysts and admins:
//! per-recipient data, audited as the API's list is).

use crate::analytics::providers::ProviderRow;
use crate::analytics::segments::{MessageActivity, Segment, SegmentCounts};
use crate::app::AppState;
use crate::domain::{Actor, AuditAction, MessageId, Scope};
use crate::error::{ApiError, Invalid};
use crate::html::{esc, num, page, pct};
use crate::reports::{SEGMENT_SCAN, segment_members, segments_and_providers};
use crate::store::{AuditEntry, Campaign};
use std::fmt::Write;

/// Rows a segment's page shows at a time.
const PAGE_ROWS: usize = 500;

const LABELS: [(Segment, &str, &str); 6] = [
    (Segment::Opened, "Opened", "a reader opened or clicked"),
    (
        Segment::Clicked,
        "Clicked",
        "a reader clicked (part of opened)",
    ),
    (
        Segment::MachineOnly,
        "Machines only",
        "Apple's prefetch, scanners, bots; no reader",
    ),
    (Segment::NotOpened, "Not opened", "nothing fetched: resend"),
    (
        Segment::Untracked,
        "Untracked",
        "tracked anonymously: counted, naming no one",
    ),
    (
        Segment::Converted,
        "Converted",
        "the shop reported a conversion",
    ),
];

/// The cards: each segment's count, with links to its recipients for those who may see them, and
/// readers per mailbox provider (one pass over the campaign's messages for both).
pub async fn cards(app: &AppState, scope: Scope, campaign: &Campaign) -> Result<String, ApiError> {
    let (counts, providers) = segments_and_providers(&*app.store, campaign.id).await?;
    Ok(format!(
        "{}{}",
        segments_card(scope, campaign, &counts),
        providers_card(campaign, &providers)
    ))
}

fn segments_card(scope: Scope, campaign: &Campaign, counts: &SegmentCounts) -> String {
    let mut rows = String::new();
    for (segment, label, note) in LABELS {
        // A campaign that tracks no conversions has none to show.
        if segment == Segment::Converted && !campaign.conversions && counts.converted == 0 {
            continue;
        }
        let name = segment.as_str();
        let links = if scope == Scope::Viewer || !segment.lists_recipients() {
            String::new()
        } else {
            format!(
                "<a href=\"/campaigns/{id}/segments/{name}\">recipients</a> · \
                 <a download href=\"/api/campaigns/{id}/segments/{name}?format=csv&amp;limit=10000\">CSV</a>",
                id = campaign.id
            )
        };
        let _ = write!(
            rows,
            "<tr data-segment=\"{name}\"><th scope=\"row\">{label}<br><small class=\"hint\">{note}</small></th>\
             <td class=\"n\" data-value=\"{value}\">{shown}</td><td>{links}</td></tr>",
            value = count_of(counts, segment),
            shown = num(count_of(counts, segment) as i64),
        );
    }
    format!(
        "<section class=\"card\" id=\"segments\"><h2>Segments</h2>\
         <p class=\"hint\">Of {sent} messages: opened, machines only, not opened and untracked add up to it.</p>\
         <div class=\"scroll\" tabindex=\"0\"><table><thead><tr><th scope=\"col\">Segment</th>\
         <th scope=\"col\" class=\"n\">Messages</th><th scope=\"col\">Recipients</th>\
         </tr></thead><tbody>{rows}</tbody></table></div></section>",
        sent = num(counts.sent as i64),
    )
}

fn providers_card(campaign: &Campaign, providers: &[ProviderRow]) -> String {
    let mut rows = String::new();
    for p in providers {
        let _ = write!(
            rows,
            "<tr data-provider=\"{name}\"><th scope=\"row\">{name}</th><td class=\"n\">{sent}</td>\
             <td class=\"n\">{opened}</td><td class=\"n\">{open_rate}</td><td class=\"n\">{click_rate}</td></tr>",
            name = esc(&p.provider),
            sent = num(p.sent as i64),
            opened = num(p.opened as i64),
            open_rate = pct(p.open_rate),
            click_rate = pct(p.click_rate),
        );
    }
    if providers.is_empty() {
        rows.push_str("<tr><td colspan=\"5\">No messages yet.</td></tr>");
    }
    format!(
        "<section class=\"card\" id=\"providers\"><h2>Mailbox providers</h2>\
         <p class=\"hint\">Readers per provider of the recipients' addresses: one far below the others \
         often means its spam folder.</p>\
         <div class=\"scroll\" tabindex=\"0\"><table class=\"providers\"><thead><tr><th scope=\"col\">Provider</th>\
         <th scope=\"col\" class=\"n\">Sent</th><th scope=\"col\" class=\"n\">Readers</th>\
         <th scope=\"col\" class=\"n\">Open rate</th><th scope=\"col\" class=\"n\">Click rate</th>\
         </tr></thead><tbody>{rows}</tbody></table></div>\
         <a class=\"download\" download href=\"/api/campaigns/{id}/providers?format=csv\">CSV</a></section>",
        id = campaign.id
    )
}

fn count_of(counts: &SegmentCounts, segment: Segment) -> u64 {
    match segment {
        Segment::Opened => counts.opened,
        Segment::Clicked => counts.clicked,
        Segment::MachineOnly => counts.machine_only,
        Segment::NotOpened => counts.not_opened,
        Segment::Untracked => counts.untracked,
        Segment::Converted => counts.converted,
    }
}

/// `/campaigns/{id}/segments/{segment}?after=CURSOR`: a page of the segment's recipients.
pub async fn list(
    app: &AppState,
    scope: Scope,
    actor: Actor,
    id: &str,
    segment: &str,
    after: Option<&str>,
) -> Result<String, ApiError> {
    if scope == Scope::Viewer {
        return Err(ApiError::Forbidden("viewer"));
    }
    let campaign = crate::app::existing_campaign(app, id).await?;
    let Some((segment, label, note)) = LABELS
        .into_iter()
        .find(|(s, ..)| s.as_str() == segment && s.lists_recipients())
    else {
        return Err(ApiError::Invalid(
            Invalid::Segment,
            format!("'{segment}' is not a segment whose recipients can be listed"),
        ));
    };
    let after = match after {
        None | Some("") => MessageId(0),
        Some(c) => c.parse().map_err(|_| {
            ApiError::Invalid(
                Invalid::Cursor,
                format!("'{c}' is not a cursor from this page"),
            )
        })?,
    };
    app.store
        .audit(AuditEntry {
            at: chrono::Utc::now(),
            actor,
            scope: scope.as_str().into(),
            action: AuditAction::ReadSegment,
            target: format!("campaign {} segment {}", campaign.id, segment.as_str()),
        })
        .await?;
    let (members, next) = segment_members(
        &*app.store,
        campaign.id,
        segment,
        after,
        PAGE_ROWS,
        SEGMENT_SCAN,
    )
    .await?;
    let rows: String = members.iter().map(row).collect();
    let rows = if rows.is_empty() {
        "<tr><td colspan=\"4\">Nobody on this page.</td></tr>".to_string()
    } else {
        rows
    };
    let base = format!("/campaigns/{}/segments/{}", campaign.id, segment.as_str());
    let next = next.map_or(String::new(), |n| {
        format!("<a class=\"next\" href=\"{base}?after={n}\">Next page</a>")
    });
    let body = format!(
        "<h1>{name}: {label}</h1><p class=\"sub\">{note} · <a href=\"/campaigns/{id}#segments\">back to the campaign</a></p>\
         <section class=\"card\"><div class=\"scroll\" tabindex=\"0\"><table class=\"segment\"><thead><tr>\
         <th scope=\"col\">Recipient</th><th scope=\"col\">Sent</th><th scope=\"col\">First read</th>\
         <th scope=\"col\">Last event</th></tr></thead><tbody>{rows}</tbody></table></div>{next}\
         <a class=\"download\" download href=\"/api{base}?format=csv&amp;limit=10000\">CSV</a></section>",
        name = esc(&campaign.name),
        id = campaign.id,
    );
    Ok(page(
        &format!("{} · {label}", campaign.name),
        Some(scope),
        &body,
    ))
}

fn row(m: &MessageActivity) -> String {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or("–".to_string(), |t| {
            t.format("%Y-%m-%d %H:%M UTC").to_string()
        })
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        esc(&m.recipient_id),
        time(Some(m.sent_at)),
        time(m.first_read_at),
        time(m.last_event_at)
    )
}
