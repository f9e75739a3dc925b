//! The page frame and the little formatting every page needs.

use crate::store::Scope;

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
