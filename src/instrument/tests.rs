use super::*;

mod properties;

const PIXEL: &str = "https://trk.test/o/abc.gif?m=1&s=x";

fn click(n: u32) -> String {
    format!("https://trk.test/c/{n}?m=1&s=sig")
}

fn click_attr(n: u32) -> String {
    format!("https://trk.test/c/{n}?m=1&amp;s=sig")
}

fn pixel_tag() -> String {
    "<img src=\"https://trk.test/o/abc.gif?m=1&amp;s=x\" width=\"1\" height=\"1\" alt=\"\" \
     style=\"display:block;width:1px;height:1px;border:0\" />"
        .to_string()
}

fn run_max(html: &str, max_links: u32) -> Result<Instrumented, InstrumentError> {
    let opts = InstrumentOptions {
        pixel_url: PIXEL,
        click_url: &click,
        max_links,
        honeypot_url: None,
        stop_tracking_url: None,
    };
    instrument(html, &opts)
}

fn run(html: &str) -> Instrumented {
    run_max(html, 1000).expect("instrument failed")
}

/// Asserts `html` comes out unchanged apart from the pixel appended at the end.
fn assert_untouched(html: &str) {
    let out = run(html);
    assert_eq!(out.html, format!("{html}{}", pixel_tag()), "input: {html}");
    assert!(out.links.is_empty());
}

/// Checks the output is the input with only href values replaced (by the click URLs, in
/// order, each replaced value decoding to the stored destination) plus exactly one pixel.
fn assert_only_hrefs_changed(input: &str, out: &Instrumented) {
    let pixel = pixel_tag();
    assert_eq!(out.html.matches(&pixel).count(), 1, "exactly one pixel");
    let o = out.html.replacen(&pixel, "", 1);
    let (mut i, mut j) = (0, 0);
    for (n, dest) in (1..).zip(&out.links) {
        let url = click_attr(n);
        let p = j + o[j..].find(&url).expect("click URL in output");
        let len = p - j;
        assert_eq!(&input[i..i + len], &o[j..p], "text before link {n}");
        i += len;
        j = p + url.len();
        let quote = input.as_bytes()[i - 1] as char;
        assert!(quote == '"' || quote == '\'', "link {n} was quoted");
        let end = i + input[i..].find(quote).unwrap();
        let raw = &input[i..end];
        let decoded = html_escape::decode_html_entities(raw);
        let expected: String = decoded
            .trim_matches(|c: char| c <= ' ')
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect();
        assert_eq!(expected, *dest, "destination of link {n}");
        i = end;
    }
    assert_eq!(&input[i..], &o[j..], "rest of the document");
}

#[test]
fn rewrites_and_numbers_links_in_document_order() {
    let html = r#"<p><a href="https://a.test/x">A</a> <a class="b" href="http://b.test/">B</a> <a href="https://a.test/x">A again</a></p>"#;
    let out = run(html);
    assert_eq!(
        out.html,
        format!(
            r#"<p><a href="{}">A</a> <a class="b" href="{}">B</a> <a href="{}">A again</a></p>{}"#,
            click_attr(1),
            click_attr(2),
            click_attr(3),
            pixel_tag()
        )
    );
    assert_eq!(
        out.links,
        ["https://a.test/x", "http://b.test/", "https://a.test/x"]
    );
}

#[test]
fn area_links_are_rewritten() {
    let html = r#"<map name="m"><area shape="rect" coords="0,0,1,1" href="https://a.test/area" alt=""></map>"#;
    let out = run(html);
    assert_eq!(out.links, ["https://a.test/area"]);
    assert!(
        out.html
            .contains(&format!(r#"href="{}" alt="""#, click_attr(1)))
    );
    assert_only_hrefs_changed(html, &out);
}

#[test]
fn destinations_are_entity_decoded_and_trimmed() {
    let html = concat!(
        r#"<a href="https://x.test/?a=1&amp;b=2">1</a>"#,
        r#"<a href="  &#x68;ttps://x.test/&#233;t&eacute;  ">2</a>"#,
        r#"<a href="https://x.test/?a=1&copy=2&amp=3">3</a>"#,
        "<a href=\"\n\thttps://x.test/long/\n  path\">4</a>",
        r#"<a href="HTTPS://X.test/Up">5</a>"#,
        r#"<a href="https://x.test/über?q=日本">6</a>"#,
    );
    let out = run(html);
    assert_eq!(
        out.links,
        [
            "https://x.test/?a=1&b=2",
            "https://x.test/été",
            // No `;`: not a character reference in an attribute, the browser keeps it.
            "https://x.test/?a=1&copy=2&amp=3",
            "https://x.test/long/  path",
            "HTTPS://X.test/Up",
            "https://x.test/über?q=日本",
        ]
    );
    assert_only_hrefs_changed(html, &out);
}

#[test]
fn non_tracked_links_are_left_alone() {
    for html in [
        r#"<a href="mailto:hi@x.test">m</a>"#,
        r#"<a href="tel:+4912345">t</a>"#,
        r##"<a href="#top">f</a>"##,
        r#"<a href="/relative/path">r</a>"#,
        r#"<a href="relative.html">r</a>"#,
        r#"<a href="//x.test/protocol-relative">r</a>"#,
        r#"<a href="javascript:alert(1)">j</a>"#,
        r#"<a href="ftp://x.test/file">f</a>"#,
        r#"<a href="httpsx://x.test/">f</a>"#,
        r#"<a href="">empty</a>"#,
        r#"<a href>no value</a>"#,
        r#"<a name="anchor">no href</a>"#,
        r#"<a href="https://x.test/" data-mailbeacon="off">off</a>"#,
        r#"<a data-mailbeacon=" OFF " href="https://x.test/">off</a>"#,
        r#"<a href="https://x.test/u" data-mailbeacon="Unsubscribe">u</a>"#,
        r#"<a href="https://x.test/unsubscribe?u=1">u</a>"#,
        r#"<a href="https://x.test/UnSubscribe">u</a>"#,
        r#"<a href="https://x.test/optout">u</a>"#,
        r#"<a href="https://x.test/?action=Opt-Out">u</a>"#,
        r#"<a href="https://x.test/&#117;nsubscribe">encoded u</a>"#,
        r#"<link rel="stylesheet" href="https://x.test/s.css"><img src="https://x.test/i.png">"#,
        r#"<script>var s = '<a href="https://x.test/">';</script>"#,
        r#"<textarea><a href="https://x.test/"></textarea>"#,
        r#"<!-- <a href="https://x.test/">commented out</a> -->"#,
        r#"<!-- [iffy] <a href="https://x.test/">commented out</a> -->"#,
    ] {
        assert_untouched(html);
    }
}

/// Found by fuzzing (`fuzz/`, target `instrument`): lol_html 3.0.3 panicked ("Tag should be a
/// start tag at this point") in the scan of a conditional comment holding a raw-text element
/// whose start tag ends in an empty unquoted attribute value, with a tag inside.
#[test]
fn raw_text_after_an_empty_attribute_value_in_a_conditional_comment() {
    for html in [
        "\n<!--[if <script y=><a </a>href",
        "<!--[if a]><script y=><a </a></script>href-->",
        "<!--[if mso]><style y=><a </a>href-->",
        "<!--[if mso]><textarea y=><a </a>href-->",
    ] {
        assert_untouched(html);
    }
    let html =
        r#"<!--[if mso]><style y=><a </a></style><a href="https://x.test/">x</a><![endif]-->"#;
    let out = run(html);
    assert_eq!(out.links, ["https://x.test/"]);
    assert_only_hrefs_changed(html, &out);
}

#[test]
fn data_mailbeacon_other_values_do_not_disable_tracking() {
    let html = r#"<a data-mailbeacon="on" href="https://x.test/">x</a>"#;
    let out = run(html);
    assert_eq!(out.links, ["https://x.test/"]);
    assert!(out.html.contains(r#"data-mailbeacon="on""#));
}

#[test]
fn uppercase_tags_and_attributes() {
    let html = r#"<HTML><BODY><A HREF="https://x.test/A" TARGET=_blank>X</A><AREA HREF="https://x.test/B"></BODY></HTML>"#;
    let out = run(html);
    assert_eq!(out.links, ["https://x.test/A", "https://x.test/B"]);
    assert_eq!(
        out.html,
        format!(
            r#"<HTML><BODY><A HREF="{}" TARGET=_blank>X</A><AREA HREF="{}">{}</BODY></HTML>"#,
            click_attr(1),
            click_attr(2),
            pixel_tag()
        )
    );
}

#[test]
fn single_quoted_and_unquoted_hrefs() {
    let html =
        "<a href='https://x.test/?a=\"1\"&amp;b=2'>s</a><a href=https://x.test/u?a=1 id=u>u</a>";
    let opts = InstrumentOptions {
        pixel_url: PIXEL,
        click_url: &|n| format!("https://trk.test/c/{n}?q='\"&x"),
        max_links: 10,
        honeypot_url: None,
        stop_tracking_url: None,
    };
    let out = instrument(html, &opts).unwrap();
    assert_eq!(
        out.links,
        ["https://x.test/?a=\"1\"&b=2", "https://x.test/u?a=1"]
    );
    let esc = |n: u32| format!("https://trk.test/c/{n}?q=&#x27;&quot;&amp;x");
    assert_eq!(
        out.html,
        format!(
            "<a href='{}'>s</a><a href=\"{}\" id=u>u</a>{}",
            esc(1),
            esc(2),
            pixel_tag()
        )
    );
}

#[test]
fn first_of_duplicate_href_attributes_is_used() {
    let html = r#"<a href="https://x.test/first" href="https://x.test/second">x</a>"#;
    let out = run(html);
    assert_eq!(out.links, ["https://x.test/first"]);
    assert_eq!(
        out.html,
        format!(
            r#"<a href="{}" href="https://x.test/second">x</a>{}"#,
            click_attr(1),
            pixel_tag()
        )
    );
}

#[test]
fn mso_conditional_comments_are_rewritten_and_continue_numbering() {
    let html = concat!(
        "<body><a href=\"https://x.test/1\">1</a>\n",
        "<!--[if mso]><table><tr><td><a href=\"https://x.test/mso?a=1&amp;b=2\" ",
        "style=\"color:#fff\">Outlook</a> <A HREF='https://x.test/mso2'>2</A>",
        "<a href=\"mailto:x@x.test\">m</a></td></tr></table><![endif]-->\n",
        "<!--[if !mso]><!--><a href=\"https://x.test/non-mso\">btn</a><!--<![endif]-->\n",
        "<!-- plain comment: see https://x.test/ href -->\n",
        "<!--[if mso]><a href=\"https://x.test/unsubscribe\">u</a><![endif]-->\n",
        "<a href=\"https://x.test/last\">last</a></body>",
    );
    let out = run(html);
    assert_eq!(
        out.links,
        [
            "https://x.test/1",
            "https://x.test/mso?a=1&b=2",
            "https://x.test/mso2",
            "https://x.test/non-mso",
            "https://x.test/last",
        ]
    );
    assert!(out.html.contains(&format!(
        "<!--[if mso]><table><tr><td><a href=\"{}\" style=\"color:#fff\">Outlook</a> <A HREF='{}'>2</A>",
        click_attr(2),
        click_attr(3)
    )));
    assert!(
        out.html
            .contains("<!-- plain comment: see https://x.test/ href -->")
    );
    assert!(
        out.html
            .contains("<a href=\"https://x.test/unsubscribe\">u</a>")
    );
    assert!(
        out.html
            .ends_with(&format!("last</a>{}</body>", pixel_tag()))
    );
    assert_only_hrefs_changed(html, &out);
}

#[test]
fn comment_links_count_towards_the_limit() {
    let html = r#"<a href="https://x.test/1">1</a><!--[if mso]><a href="https://x.test/2">2</a><![endif]-->"#;
    assert_eq!(
        run_max(html, 1).err(),
        Some(InstrumentError::TooManyLinks { max: 1 })
    );
    assert_eq!(run_max(html, 2).unwrap().links.len(), 2);
}

#[test]
fn pixel_goes_before_body_end_tag() {
    let html = "<html><body><p>Hi</p></body></html>";
    let out = run(html);
    assert_eq!(
        out.html,
        format!("<html><body><p>Hi</p>{}</body></html>", pixel_tag())
    );
    let html = "<html><body class=x><p>Hi</p></BODY >\n</html>\n";
    let out = run(html);
    assert_eq!(
        out.html,
        format!(
            "<html><body class=x><p>Hi</p>{}</BODY >\n</html>\n",
            pixel_tag()
        )
    );
}

#[test]
fn pixel_goes_before_the_first_of_several_body_end_tags() {
    let html = "<body><p>1</p></body><body><p>2</p></body><a href=\"https://x.test/after\">a</a>";
    let out = run(html);
    assert_eq!(
        out.html,
        format!(
            "<body><p>1</p>{}</body><body><p>2</p></body><a href=\"{}\">a</a>",
            pixel_tag(),
            click_attr(1)
        )
    );
}

#[test]
fn body_end_inside_comments_or_scripts_is_ignored() {
    let html = "<body><!--[if mso]></body><![endif]--><script>document.write('</body>')</script><p>x</p></body>";
    let out = run(html);
    assert!(
        out.html
            .ends_with(&format!("<p>x</p>{}</body>", pixel_tag()))
    );
    assert_eq!(out.html.matches("<img").count(), 1);
}

#[test]
fn fragment_without_body_gets_pixel_at_end() {
    let html = r#"<p>Hi <a href="https://x.test/">x</a></p>"#;
    let out = run(html);
    assert_eq!(
        out.html,
        format!(
            r#"<p>Hi <a href="{}">x</a></p>{}"#,
            click_attr(1),
            pixel_tag()
        )
    );
    // `</body>` without a `<body>` start tag is not recognised: pixel at the end.
    let html = "<html><p>x</p></body></html>";
    assert_eq!(run(html).html, format!("{html}{}", pixel_tag()));
}

#[test]
fn pixel_url_is_attribute_escaped() {
    let opts = InstrumentOptions {
        pixel_url: "https://trk.test/o?a=1&b=\"2\"",
        click_url: &click,
        max_links: 10,
        honeypot_url: None,
        stop_tracking_url: None,
    };
    let out = instrument("<p>x</p>", &opts).unwrap();
    assert!(
        out.html
            .starts_with("<p>x</p><img src=\"https://trk.test/o?a=1&amp;b=&quot;2&quot;\" ")
    );
}

#[test]
fn the_honeypot_link_is_hidden_beside_the_pixel() {
    let opts = InstrumentOptions {
        pixel_url: PIXEL,
        click_url: &click,
        max_links: 10,
        honeypot_url: Some("https://trk.test/c/0?a=1&b=2"),
        stop_tracking_url: None,
    };
    let out = instrument("<html><body><p>x</p></body></html>", &opts).unwrap();
    assert_eq!(
        out.html,
        format!(
            "<html><body><p>x</p>{}<a href=\"https://trk.test/c/0?a=1&amp;b=2\" \
             style=\"display:none;font-size:0;line-height:0;max-height:0;overflow:hidden;mso-hide:all\" \
             aria-hidden=\"true\" tabindex=\"-1\"></a></body></html>",
            pixel_tag()
        )
    );
    assert!(
        out.links.is_empty(),
        "the honeypot is not one of the message's links"
    );
}

#[test]
fn errors() {
    assert_eq!(run_max("", 10).err(), Some(InstrumentError::Empty));
    assert_eq!(run_max(" \r\n\t ", 10).err(), Some(InstrumentError::Empty));
    assert_eq!(
        run_max("<p>a\0b</p>", 10).err(),
        Some(InstrumentError::NulByte)
    );
    for text in [
        "Hello, just plain text.",
        r#"{"html": "nope", "n": 1}"#,
        "if a < b and b > c then 1 <2",
        "<",
        "a <= b",
    ] {
        assert_eq!(
            run_max(text, 10).err(),
            Some(InstrumentError::NotHtml),
            "{text}"
        );
    }
    for html in ["<p>", "x </b>", "<!doctype html>", "<!-- x -->"] {
        assert!(run_max(html, 10).is_ok(), "{html}");
    }
}

#[test]
fn too_many_links() {
    let html = r#"<a href="https://x.test/1">1</a><a href="https://x.test/2">2</a><a href="mailto:a@x.test">m</a>"#;
    assert_eq!(run_max(html, 2).unwrap().links.len(), 2);
    assert_eq!(
        run_max(html, 1).err(),
        Some(InstrumentError::TooManyLinks { max: 1 })
    );
    assert_eq!(
        run_max(html, 0).err(),
        Some(InstrumentError::TooManyLinks { max: 0 })
    );
    assert_eq!(
        run_max("<p>no links</p>", 0).unwrap().html,
        format!("<p>no links</p>{}", pixel_tag())
    );
}

#[test]
fn ambiguous_markup_does_not_fail() {
    let html = r#"<select><xmp><script>"x"</script></select><a href="https://x.test/">x</a>"#;
    assert!(run_max(html, 10).is_ok());
}

#[test]
fn error_messages() {
    assert_eq!(
        InstrumentError::TooManyLinks { max: 5 }.to_string(),
        "the message has more than 5 links to track"
    );
}

const EMAIL: &str = r##"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office" lang="de">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=UTF-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0"/>
<title>Grüße aus Berlin — 日本 &amp; mehr</title>
<!--[if gte mso 9]><xml><o:OfficeDocumentSettings><o:AllowPNG/><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml><![endif]-->
<style type="text/css">
  body { margin:0; padding:0; } /* <a href="https://not.a.link/"> */
  a[x-apple-data-detectors] { color: inherit !important; }
  @media only screen and (max-width:600px) { .col { width:100% !important; } }
</style>
</head>
<BODY style="margin:0;padding:0;background:#f4f4f4" bgcolor='#f4f4f4'>
<div style="display:none;max-height:0;overflow:hidden">Vorschau: Grüße — 日本 &nbsp;&zwnj;&nbsp;</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0">
  <tr>
<td align="center" style="padding:20px 0">
  <a href="https://shop.test/?utm_source=mail&amp;utm_medium=email"   target="_blank"
     style="text-decoration:none"><img src="https://cdn.shop.test/logo.png" alt="Shop &amp; Co." width="120" height="40" border="0"></a>
</td>
  </tr>
  <tr>
<td class="col" style="font-family:Arial,sans-serif;font-size:16px;line-height:24px;color:#333">
  <h1 style="margin:0">Hallo Jürgen,</h1>
  <p>Ihre Bestellung &#8470;&nbsp;12345 ist unterwegs. Über <a href='https://shop.test/track?id=12345&amp;lang=de' style='color:#06c'>Sendungsverfolgung</a> sehen Sie den Status.</p>
  <p>Fragen? <a href="mailto:hilfe@shop.test?subject=Bestellung%2012345">Schreiben Sie uns</a> oder rufen Sie an: <a href="tel:+49301234567">030 1234567</a>.</p>
  <!-- Produktliste -->
  <table role="presentation" width="100%"><tr>
    <td><a href="https://shop.test/p/1"><img src="https://cdn.shop.test/p1.jpg" alt="Produkt 1"></a><br>Teekanne „Kyōto“ – 29,90&nbsp;€</td>
    <td><a href="https://shop.test/p/2" title="Produkt &quot;2&quot;"><img src="https://cdn.shop.test/p2.jpg" alt=""></a><br>日本茶 (緑茶) – 9,90&nbsp;€</td>
    <td><A HREF="HTTPS://SHOP.TEST/P/3">Produkt 3</A><br>Tasse &lt;klein&gt;</td>
  </tr></table>
  <div><!--[if mso]>
    <v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" xmlns:w="urn:schemas-microsoft-com:office:word" href="https://shop.test/sale" style="height:40px;v-text-anchor:middle;width:200px;" arcsize="10%" stroke="f" fillcolor="#d62828">
      <w:anchorlock/><center><a href="https://shop.test/sale?src=mso&amp;x=1" style="color:#ffffff">Zum Sale</a></center>
    </v:roundrect>
  <![endif]--><!--[if !mso]><!-- -->
    <a href="https://shop.test/sale?src=web" style="background:#d62828;color:#fff;display:inline-block;padding:10px 20px">Zum Sale</a>
  <!--<![endif]--></div>
  <p><a href="#oben">Nach oben</a> · <a href="/konto">Konto</a> · <a href="https://shop.test/p/1">Produkt 1 nochmal</a></p>
  <map name="karte"><area shape="rect" coords="0,0,50,50" href="https://shop.test/filialen/berlin" alt="Berlin"><area shape="rect" coords="50,0,100,50" href="#" alt=""></map>
</td>
  </tr>
  <tr>
<td style="font-size:12px;color:#999">
  © 2024 Shop GmbH · Straße des 17. Juni 1 · 10623 Berlin<br>
  <a href="https://shop.test/abmelden?u=abc" data-mailbeacon="unsubscribe">Abmelden</a> ·
  <a href="https://shop.test/newsletter/unsubscribe?u=abc&amp;t=1">Newsletter abbestellen</a> ·
  <a href="https://shop.test/datenschutz" data-mailbeacon="off">Datenschutz</a> ·
  <a href="https://shop.test/impressum">Impressum</a>
</td>
  </tr>
</table>
<script type="text/template"><a href="https://shop.test/in-script">x</a></script>
</BODY>
</html>
"##;

#[test]
fn realistic_email_is_byte_identical_except_hrefs_and_pixel() {
    let out = run(EMAIL);
    assert_eq!(
        out.links,
        [
            "https://shop.test/?utm_source=mail&utm_medium=email",
            "https://shop.test/track?id=12345&lang=de",
            "https://shop.test/p/1",
            "https://shop.test/p/2",
            "HTTPS://SHOP.TEST/P/3",
            "https://shop.test/sale?src=mso&x=1",
            "https://shop.test/sale?src=web",
            "https://shop.test/p/1",
            "https://shop.test/filialen/berlin",
            "https://shop.test/impressum",
        ]
    );
    assert_only_hrefs_changed(EMAIL, &out);
    assert!(
        out.html
            .ends_with(&format!("</script>\n{}</BODY>\n</html>\n", pixel_tag()))
    );
}

#[test]
fn a_link_longer_than_8_kb_is_refused_with_its_length() {
    let long = format!("https://shop.example.com/?q={}", "a".repeat(MAX_URL_LEN));
    let html = format!("<p><a href=\"{long}\">x</a></p>");
    match run_max(&html, 100) {
        Err(e @ InstrumentError::LinkTooLong { len, max }) => {
            assert_eq!((len, max), (long.len(), MAX_URL_LEN));
            assert!(e.to_string().contains("bytes long"), "{e}");
        }
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("instrumented"),
    }
    let fits = format!(
        "https://shop.example.com/?q={}",
        "a".repeat(MAX_URL_LEN - 100)
    );
    assert!(run_max(&format!("<p><a href=\"{fits}\">x</a></p>"), 100).is_ok());
}
