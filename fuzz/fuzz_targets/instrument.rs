//! HTML instrumentation of an arbitrary email body: no panic, and when it succeeds the output is
//! the input with only the tracked href values replaced (in order) and the pixel block added once.
//! Each destination found is a web URL that becomes a Location header without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::instrument::{InstrumentError, InstrumentOptions, instrument};

/// `Z…ZQ` with one `Z` more than the longest run in the input: the input does not contain it, and
/// it cannot overlap itself, so every occurrence in the output is one the instrumenter put there.
fn marker(html: &str) -> String {
    let longest = html.split(|c| c != 'Z').map(str::len).max().unwrap_or(0);
    format!("{}Q", "Z".repeat(longest + 1))
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else {
        return;
    };
    let html = String::from_utf8_lossy(body);
    let m = marker(&html);
    let click = |n: u32| format!("{m}c{n}{m}");
    let (pixel, honeypot, stop) = (format!("{m}p{m}"), format!("{m}h{m}"), format!("{m}s{m}"));
    let max_links = [0, 1, 3, 500][usize::from(flags & 3)];
    let opts = InstrumentOptions {
        pixel_url: &pixel,
        click_url: &click,
        max_links,
        honeypot_url: (flags & 4 != 0).then_some(honeypot.as_str()),
        stop_tracking_url: (flags & 8 != 0).then_some(stop.as_str()),
    };
    let out = match instrument(&html, &opts) {
        Ok(out) => out,
        Err(InstrumentError::TooManyLinks { max }) => {
            assert_eq!(max, max_links);
            return;
        }
        Err(InstrumentError::Empty) => return assert!(html.trim().is_empty()),
        Err(InstrumentError::NulByte) => return assert!(html.contains('\0')),
        Err(InstrumentError::NotHtml) => return,
        Err(InstrumentError::LinkTooLong { len, max }) => {
            assert!(len > max && len <= html.len(), "{len} of {}", html.len());
            return;
        }
        Err(e @ InstrumentError::Rewrite(_)) => panic!("lol_html failed on email HTML: {e}"),
    };
    assert!(out.links.len() <= max_links as usize);
    for dest in &out.links {
        let b = dest.as_bytes();
        assert!(
            b.len() >= 7 && b[..7].eq_ignore_ascii_case(b"http://")
                || b.len() >= 8 && b[..8].eq_ignore_ascii_case(b"https://"),
            "not a web destination: {dest:?}"
        );
        assert!(!dest.contains(['\t', '\n', '\r']));
        let _ = mailbeacon::track::location(dest);
    }

    // The pixel block (pixel, and the honeypot and stop links when asked for), as the
    // instrumenter writes it at the end of a fragment.
    let block = instrument(
        "<b>",
        &InstrumentOptions {
            max_links: 0,
            ..opts
        },
    )
    .unwrap()
    .html;
    let block = block.strip_prefix("<b>").unwrap();
    assert_eq!(out.html.matches(&pixel).count(), 1, "one pixel");
    let at = out.html.find(block).expect("the pixel block, whole");
    let o = format!("{}{}", &out.html[..at], &out.html[at + block.len()..]);
    assert_eq!(
        o.matches(&m).count(),
        2 * out.links.len(),
        "one click URL per link"
    );

    // Cut the output at the click URLs; what lies between them must be the input's text, in order.
    // An unquoted href gets quotes added, so one `"` beside each click URL may be new.
    let mut segments = Vec::new();
    let mut j = 0;
    for n in 1..=out.links.len() as u32 {
        let url = click(n);
        let p = j + o[j..].find(&url).expect("click URLs in order");
        segments.push(&o[j..p]);
        j = p + url.len();
    }
    segments.push(&o[j..]);
    if segments.len() == 1 {
        assert_eq!(o, html, "no link: only the pixel block is added");
        return;
    }
    let last = segments.len() - 1;
    let mut i = 0;
    for (k, seg) in segments.iter().enumerate() {
        let mut seg = *seg;
        if k < last {
            seg = seg.strip_suffix('"').unwrap_or(seg);
        }
        if k > 0 {
            seg = seg.strip_prefix('"').unwrap_or(seg);
        }
        if k == 0 {
            assert!(html.starts_with(seg), "text before the first link changed");
            i = seg.len();
        } else if k == last {
            assert!(
                html.len() - i >= seg.len() && html.ends_with(seg),
                "text after the last link changed"
            );
        } else {
            let f = html[i..].find(seg).expect("text between links changed");
            i += f + seg.len();
        }
    }
});
