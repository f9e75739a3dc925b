//! The page frame and the little formatting every page needs (the dashboard's, and the pages
//! the tracker shows readers), and the headers every page is answered with.

use crate::store::Scope;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// An HTML page with the headers every page has.
pub fn answer(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    r
}

pub fn esc(s: &str) -> String {
    html_escape::encode_safe(s).into_owned()
}

pub fn pct(rate: Option<f64>) -> String {
    rate.map_or("–".to_string(), |r| format!("{:.1}%", r * 100.0))
}

/// Thousands separated by a thin space, as analysts read them.
pub fn num(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('\u{2009}');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

/// A whole page: `title`, the signed-in scope (for the header), and the body.
pub fn page(title: &str, scope: Option<Scope>, body: &str) -> String {
    let nav = match scope {
        Some(scope) => format!(
            "<nav><a href=\"/\">Campaigns</a><span class=\"who\">{}</span>\
             <form method=\"post\" action=\"/logout\"><button type=\"submit\">Sign out</button></form></nav>",
            scope.as_str()
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · mailbeacon</title><link rel=\"stylesheet\" href=\"/assets/style.css\">\
         <script src=\"/assets/live.js\" defer></script></head>\
         <body><header><a class=\"brand\" href=\"/\">mailbeacon</a>{nav}</header><main>{body}</main></body></html>\n",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn numbers_are_grouped_by_thousands() {
        assert_eq!(super::num(0), "0");
        assert_eq!(super::num(1234567), "1\u{2009}234\u{2009}567");
        assert_eq!(super::num(-1000), "-1\u{2009}000");
    }
}
