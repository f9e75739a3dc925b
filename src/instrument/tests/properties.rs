//! Properties of instrumenting, over generated HTML.

use super::*;
use proptest::prelude::*;

/// A piece of a generated document.
#[derive(Debug, Clone)]
enum Part {
    Text(String),
    /// An http(s) link: its quote character ('"', '\'' or none) and path.
    Link(&'static str, u16),
    Mailto,
    Off,
    Markup(&'static str),
}

fn part() -> impl Strategy<Value = Part> {
    prop_oneof![
        "[a-zA-Z0-9 äöüß日本.,!?-]{0,12}".prop_map(Part::Text),
        (prop::sample::select(vec!["\"", "'", ""]), any::<u16>())
            .prop_map(|(q, n)| Part::Link(q, n)),
        Just(Part::Mailto),
        Just(Part::Off),
        prop::sample::select(vec![
            "<p>",
            "</p>",
            "<br/>",
            "<!-- note -->",
            "<td class=x>"
        ])
        .prop_map(Part::Markup),
    ]
}

/// The document, and what instrumenting it must give (links numbered in order).
fn render(parts: &[Part]) -> (String, String, usize) {
    let (mut html, mut want, mut links) = (String::from("<div>"), String::from("<div>"), 0);
    for p in parts {
        match p {
            Part::Text(t) => {
                html.push_str(t);
                want.push_str(t);
            }
            Part::Link(q, n) => {
                links += 1;
                html.push_str(&format!("<a href={q}https://e.test/{n}{q}>go</a>"));
                let q = if q.is_empty() { "\"" } else { q };
                want.push_str(&format!(
                    "<a href={q}{}{q}>go</a>",
                    click_attr(links as u32)
                ));
            }
            Part::Mailto => {
                html.push_str("<a href=\"mailto:a@e.test\">mail</a>");
                want.push_str("<a href=\"mailto:a@e.test\">mail</a>");
            }
            Part::Off => {
                let a = "<a data-mailbeacon=\"off\" href=\"https://e.test/off\">x</a>";
                html.push_str(a);
                want.push_str(a);
            }
            Part::Markup(m) => {
                html.push_str(m);
                want.push_str(m);
            }
        }
    }
    html.push_str("</div>");
    want.push_str("</div>");
    want.push_str(&pixel_tag());
    (html, want, links)
}

proptest! {
    #[test]
    fn every_web_link_is_rewritten_once_and_nothing_else_changes(
        parts in prop::collection::vec(part(), 0..40)
    ) {
        let (html, want, links) = render(&parts);
        let out = run(&html);
        prop_assert_eq!(out.links.len(), links);
        prop_assert_eq!(out.html, want);
    }
}
