//! Email HTML instrumentation: rewrites tracked links to click URLs and adds the open pixel.
//!
//! lol_html is used only as a tokenizer that *locates* things (href values, the first
//! `</body>`, comments); the output is spliced together from the original input. Nothing
//! is re-serialized, so every byte outside the rewritten href values and the pixel is kept
//! exactly (attribute order, quoting, whitespace, case, entities, comments).

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use lol_html::errors::RewritingError;
use lol_html::html_content::{Comment, Element, EndTag};
use lol_html::{HandlerResult, HtmlRewriter, Settings, doc_comments, element};

/// Options for one message.
pub struct InstrumentOptions<'a> {
    /// Absolute URL of the 1x1 pixel for this message.
    pub pixel_url: &'a str,
    /// Builds the click URL for link number `n` (1-based, in document order).
    pub click_url: &'a dyn Fn(u32) -> String,
    /// Maximum number of rewritten links; more is an error.
    pub max_links: u32,
    /// A click URL for a link hidden from people (`display:none`, `aria-hidden`), added beside the
    /// pixel: only machines that follow every link in a mail ever request it.
    pub honeypot_url: Option<&'a str>,
    /// The recipient's signed "stop tracking me" link, added as a small line before the pixel.
    pub stop_tracking_url: Option<&'a str>,
}

pub struct Instrumented {
    pub html: String,
    /// Destinations (entity-decoded, exactly as the browser would follow them), links[i] is link number i+1.
    pub links: Vec<String>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum InstrumentError {
    #[error("the HTML is empty")]
    Empty,
    #[error("this does not look like HTML: no tags found")]
    NotHtml,
    #[error("the HTML contains a NUL byte")]
    NulByte,
    #[error("the message has more than {max} links to track")]
    TooManyLinks { max: u32 },
    #[error("a link is {len} bytes long; links of at most {max} bytes are tracked")]
    LinkTooLong { len: usize, max: usize },
    #[error("the HTML could not be rewritten: {0}")]
    Rewrite(String),
}

const PIXEL_PREFIX: &str = "<img src=\"";
const PIXEL_SUFFIX: &str =
    "\" width=\"1\" height=\"1\" alt=\"\" style=\"display:block;width:1px;height:1px;border:0\" />";

const HONEYPOT_PREFIX: &str = "<a href=\"";
const HONEYPOT_SUFFIX: &str = "\" style=\"display:none;font-size:0;line-height:0;max-height:0;overflow:hidden;mso-hide:all\" aria-hidden=\"true\" tabindex=\"-1\"></a>";
/// The "stop tracking me" line: small, plain, readable in every client.
const STOP_PREFIX: &str =
    "<p style=\"font-size:11px;line-height:1.4;color:#6b7280;text-align:center\"><a href=\"";
const STOP_SUFFIX: &str = "\" style=\"color:#6b7280\">Stop tracking my opens and clicks</a></p>";

/// One href value to replace: `input[start..end]` becomes the click URL of the next link.
struct Edit {
    start: usize,
    end: usize,
    /// The original value was quoted; an unquoted one gets double quotes added.
    quoted: bool,
}

/// State shared by all handlers of one `instrument` call (including nested comment scans).
struct Scan {
    max_links: u32,
    links: Vec<String>,
    edits: Vec<Edit>,
    too_many: bool,
    /// The length of a destination over [`MAX_URL_LEN`].
    too_long: Option<usize>,
}

/// The longest destination tracked: links are stored and cached per message, and browsers and
/// servers commonly stop at 8 KB too.
pub const MAX_URL_LEN: usize = 8 * 1024;

/// Instruments one HTML message: rewrites trackable links and inserts the open pixel.
pub fn instrument(html: &str, opts: &InstrumentOptions) -> Result<Instrumented, InstrumentError> {
    check_html(html)?;

    let scan = RefCell::new(Scan {
        max_links: opts.max_links,
        links: Vec::new(),
        edits: Vec::new(),
        too_many: false,
        too_long: None,
    });
    let body_end = Rc::new(Cell::new(None));
    if let Err(e) = scan_links(html, 0, &scan, Some(&body_end)) {
        let scan = scan.borrow();
        return Err(if let Some(len) = scan.too_long {
            InstrumentError::LinkTooLong {
                len,
                max: MAX_URL_LEN,
            }
        } else if scan.too_many {
            InstrumentError::TooManyLinks {
                max: scan.max_links,
            }
        } else {
            InstrumentError::Rewrite(e.to_string())
        });
    }
    let Scan { links, edits, .. } = scan.into_inner();

    // Click URLs are built up front so the output can be allocated once.
    let urls: Vec<String> = (1..=links.len() as u32).map(opts.click_url).collect();
    let extra: usize = urls.iter().map(|u| u.len() + u.len() / 8 + 2).sum();
    let mut out = String::with_capacity(
        html.len() + extra + PIXEL_PREFIX.len() + PIXEL_SUFFIX.len() + opts.pixel_url.len() + 16,
    );

    // Pixel goes before the first `</body>`, or at the very end of a fragment.
    let pixel_at = body_end.get().unwrap_or(html.len());
    let mut pixel_done = false;
    let mut pos = 0;
    for (edit, url) in edits.iter().zip(&urls) {
        if !pixel_done && pixel_at <= edit.start {
            out.push_str(&html[pos..pixel_at]);
            push_pixel(&mut out, opts);
            pixel_done = true;
            pos = pixel_at;
        }
        out.push_str(&html[pos..edit.start]);
        if edit.quoted {
            html_escape::encode_quoted_attribute_to_string(url, &mut out);
        } else {
            out.push('"');
            html_escape::encode_quoted_attribute_to_string(url, &mut out);
            out.push('"');
        }
        pos = edit.end;
    }
    if !pixel_done {
        out.push_str(&html[pos..pixel_at]);
        push_pixel(&mut out, opts);
        pos = pixel_at;
    }
    out.push_str(&html[pos..]);

    Ok(Instrumented { html: out, links })
}

/// The checks `instrument` makes before rewriting, for HTML stored to be instrumented later.
pub fn check_html(html: &str) -> Result<(), InstrumentError> {
    if html.trim().is_empty() {
        return Err(InstrumentError::Empty);
    }
    if html.as_bytes().contains(&0) {
        return Err(InstrumentError::NulByte);
    }
    if !has_tag(html.as_bytes()) {
        return Err(InstrumentError::NotHtml);
    }
    Ok(())
}

fn push_pixel(out: &mut String, opts: &InstrumentOptions) {
    if let Some(url) = opts.stop_tracking_url {
        out.push_str(STOP_PREFIX);
        html_escape::encode_double_quoted_attribute_to_string(url, out);
        out.push_str(STOP_SUFFIX);
    }
    out.push_str(PIXEL_PREFIX);
    html_escape::encode_double_quoted_attribute_to_string(opts.pixel_url, out);
    out.push_str(PIXEL_SUFFIX);
    if let Some(url) = opts.honeypot_url {
        out.push_str(HONEYPOT_PREFIX);
        html_escape::encode_double_quoted_attribute_to_string(url, out);
        out.push_str(HONEYPOT_SUFFIX);
    }
}

/// True when there is a `<` followed by an ASCII letter, `!` or `/`.
fn has_tag(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .any(|w| w[0] == b'<' && (w[1].is_ascii_alphabetic() || w[1] == b'!' || w[1] == b'/'))
}

/// Runs lol_html over `src` (which starts at byte `base` of the whole document) and records
/// the links to rewrite. The top-level call (`body_end` is `Some`) also records the first
/// `</body>` and scans comments (Outlook conditional comments) with a nested call.
fn scan_links(
    src: &str,
    base: usize,
    scan: &RefCell<Scan>,
    body_end: Option<&Rc<Cell<Option<usize>>>>,
) -> Result<(), RewritingError> {
    let mut settings = Settings::new()
        // Email HTML is often sloppy: take lol_html's best guess instead of failing.
        .with_strict(false)
        .append_element_content_handler(element!("a[href], area[href]", |el: &mut Element| {
            on_link(el, src, base, scan)
        }));
    if let Some(body_end) = body_end {
        settings = settings
            .append_element_content_handler(element!("body", |el: &mut Element| {
                // End-tag handlers must be 'static, hence the Rc<Cell>.
                let body_end = Rc::clone(body_end);
                if let Some(handlers) = el.end_tag_handlers() {
                    handlers.push(Box::new(move |end: &mut EndTag| {
                        if body_end.get().is_none() {
                            body_end.set(Some(end.source_location().bytes().start));
                        }
                        Ok(())
                    }));
                }
                Ok(())
            }))
            .append_document_content_handler(doc_comments!(|c: &mut Comment| {
                on_comment(c, src, scan)
            }));
    } else {
        // A comment handler keeps lol_html on its full lexer from start to end, as in the
        // top-level scan. Without one it hands over between a fast tag scanner and the lexer,
        // and lol_html 3.0.3 panics there on `<script y=><a </a>` (found by fuzzing).
        settings =
            settings.append_document_content_handler(doc_comments!(|_: &mut Comment| Ok(())));
    }
    let mut rewriter = HtmlRewriter::new(settings, |_: &[u8]| {});
    rewriter.write(src.as_bytes())?;
    rewriter.end()
}

/// Conditional comments with links (`<!--[if mso]>...<a href=...>...<![endif]-->`) are scanned
/// as HTML of their own, continuing the link numbering.
fn on_comment(c: &Comment, html: &str, scan: &RefCell<Scan>) -> HandlerResult {
    let loc = c.source_location().bytes();
    let raw = &html[loc.clone()];
    let Some(inner) = raw.strip_prefix("<!--") else {
        return Ok(()); // bogus comment (`<![if !mso]>`, `<?xml ..>`): no links inside
    };
    if !is_conditional(inner) || !contains_ignore_ascii_case(inner, "href") {
        return Ok(());
    }
    let text = c.text();
    if !inner.starts_with(text.as_str()) {
        return Ok(()); // cannot map the text back to the source; leave it alone
    }
    scan_links(&inner[..text.len()], loc.start + 4, scan, None)?;
    Ok(())
}

fn on_link(el: &Element, src: &str, base: usize, scan: &RefCell<Scan>) -> HandlerResult {
    // Attribute names and values are read from the source: no allocation per attribute.
    let mut href = None;
    for attr in el.attributes() {
        let (Some(name), value) = (attr.name_source_location(), attr.value_source_location())
        else {
            continue;
        };
        let name = &src[name.bytes()];
        if name.eq_ignore_ascii_case("href") {
            // The first href wins, as in browsers; `<a href>` has no value.
            href.get_or_insert(value.map(|v| v.bytes()));
        } else if name.eq_ignore_ascii_case("data-mailbeacon") {
            let v = value.map_or("", |v| src[v.bytes()].trim());
            if v.eq_ignore_ascii_case("off") || v.eq_ignore_ascii_case("unsubscribe") {
                return Ok(());
            }
        }
    }
    let Some(Some(range)) = href else {
        return Ok(());
    };
    let Some(dest) = destination(&src[range.clone()]) else {
        return Ok(());
    };
    let mut scan = scan.borrow_mut();
    if dest.len() > MAX_URL_LEN {
        scan.too_long = Some(dest.len());
        return Err("link too long".into());
    }
    if scan.links.len() as u32 >= scan.max_links {
        scan.too_many = true;
        return Err("too many links".into());
    }
    let quoted = range.start > 0 && matches!(src.as_bytes()[range.start - 1], b'"' | b'\'');
    scan.links.push(dest);
    scan.edits.push(Edit {
        start: base + range.start,
        end: base + range.end,
        quoted,
    });
    Ok(())
}

/// The destination a browser would follow for a raw href value, if it is to be tracked.
fn destination(raw: &str) -> Option<String> {
    let decoded = html_escape::decode_html_entities(raw);
    // The URL parser strips leading/trailing C0 controls and spaces, and tabs/newlines anywhere.
    let trimmed = decoded.trim_matches(|c: char| c <= ' ');
    let dest: String = if trimmed.contains(['\t', '\n', '\r']) {
        trimmed
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect()
    } else {
        trimmed.to_owned()
    };
    let b = dest.as_bytes();
    let web = (b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://"))
        || (b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://"));
    if !web || is_unsubscribe(b) {
        return None;
    }
    Some(dest)
}

/// `[if mso]...`, `[if (gte mso 9)|(IE)]...`: rendered by Outlook (or IE), so links there count.
/// Other comments are not rendered anywhere, so commented-out links are left alone.
fn is_conditional(comment_text: &str) -> bool {
    let t = comment_text.trim_start().as_bytes();
    t.len() > 3 && t[..3].eq_ignore_ascii_case(b"[if") && t[3].is_ascii_whitespace()
}

/// Contains "unsubscribe", "optout" or "opt-out" (ASCII case-insensitive); one pass.
fn is_unsubscribe(url: &[u8]) -> bool {
    let starts = |i: usize, m: &[u8]| {
        url.len() - i >= m.len() && url[i..i + m.len()].eq_ignore_ascii_case(m)
    };
    (0..url.len()).any(|i| match url[i] | 0x20 {
        b'u' => starts(i, b"unsubscribe"),
        b'o' => starts(i, b"optout") || starts(i, b"opt-out"),
        _ => false,
    })
}

/// `needle` must be lowercase ASCII.
fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let n = needle.as_bytes();
    haystack
        .as_bytes()
        .windows(n.len())
        .any(|w| w[0].to_ascii_lowercase() == n[0] && w.eq_ignore_ascii_case(n))
}

#[cfg(test)]
mod tests;
