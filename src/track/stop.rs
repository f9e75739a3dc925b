//! The "stop tracking me" link (`--stop-tracking-link`): `GET /u/{token}` asks the recipient to
//! confirm, `POST /u/{token}` opts them out. A GET never changes anything, because link scanners
//! follow every link in a mail; a recipient who confirms is opted out exactly as
//! `POST /api/recipients/{id}/opt-out` does (source `link`), and the audit log says so.

use crate::app::AppState;
use crate::domain::{Actor, AuditAction};
use crate::html::page;
use crate::store::AuditEntry;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use std::sync::Arc;

fn answer(status: StatusCode, title: &str, body: &str) -> Response {
    crate::html::answer(status, page(title, None, body))
}

fn unknown() -> Response {
    answer(
        StatusCode::NOT_FOUND,
        "Link not valid",
        "<section class=\"signin\"><h1>This link is not valid</h1>\
         <p>It may have been cut off when it was copied.</p></section>",
    )
}

pub async fn ask(State(app): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    if app.keys.verify_stop(&token).is_err() {
        return unknown();
    }
    answer(
        StatusCode::OK,
        "Stop tracking",
        "<section class=\"signin\"><h1>Stop tracking my opens and clicks</h1>\
         <p>From now on, when you open mail from this sender or click its links, nothing is \
         recorded about you. Images still load and links still work.</p>\
         <form method=\"post\"><button type=\"submit\">Stop tracking me</button></form></section>",
    )
}

pub async fn confirm(State(app): State<Arc<AppState>>, Path(token): Path<String>) -> Response {
    let Ok(token) = app.keys.verify_stop(&token) else {
        return unknown();
    };
    let done = async {
        let Some(recipient) = app.store.recipient_of(token.tracking_id).await? else {
            return Ok(false);
        };
        app.store
            .audit(AuditEntry {
                at: chrono::Utc::now(),
                actor: Actor::Recipient,
                scope: "link".into(),
                action: AuditAction::OptOut,
                target: crate::domain::recipient_ref(&recipient),
            })
            .await?;
        app.events
            .status()
            .stored_so_far(crate::ingest::DECISION_WAIT)
            .await;
        app.store.opt_out(recipient, "link".into()).await?;
        app.directory.forget_all();
        Ok::<bool, crate::store::StoreError>(true)
    };
    match done.await {
        Ok(true) => answer(
            StatusCode::OK,
            "Tracking stopped",
            "<section class=\"signin\"><h1>Done</h1><p>Your opens and clicks are no longer \
             recorded.</p></section>",
        ),
        Ok(false) => unknown(),
        Err(e) => {
            tracing::error!("stop-tracking link: {e}");
            answer(
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "<section class=\"signin\"><h1>Please try again in a moment</h1></section>",
            )
        }
    }
}
