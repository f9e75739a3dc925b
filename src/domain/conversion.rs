//! Conversions, the third signal after opens and clicks: what a campaign adds to its links (UTM
//! parameters, a signed click reference) and what a sender's site reports back (a goal, a value
//! and its currency), each checked here.

use serde::{Deserialize, Serialize};

/// The query parameter a click's signed reference travels in to the sender's site.
pub const REFERENCE_PARAM: &str = "mb_ref";

/// UTM parameters added to a campaign's tracked destinations when its mail is registered, so
/// that the sender's web analytics attributes the visits. A destination that has a parameter
/// already keeps its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Utm {
    pub source: String,
    pub medium: String,
    pub campaign: String,
}

impl Utm {
    /// The defaults for a campaign: `mailbeacon`, `email`, and the campaign's name as a slug.
    pub fn for_campaign(name: &str) -> Utm {
        let slug: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_alphanumeric() { c } else { '-' })
            .collect();
        let slug = slug
            .split('-')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        Utm {
            source: "mailbeacon".into(),
            medium: "email".into(),
            campaign: if slug.is_empty() {
                "campaign".into()
            } else {
                slug
            },
        }
    }

    /// Each value trimmed, 1 to 100 characters, without control characters.
    pub fn checked(self) -> Result<Utm, String> {
        let check = |name: &str, v: String| {
            let v = v.trim().to_string();
            if v.is_empty() || v.chars().count() > 100 || v.chars().any(char::is_control) {
                Err(format!(
                    "utm.{name} must be 1 to 100 characters without control characters"
                ))
            } else {
                Ok(v)
            }
        };
        Ok(Utm {
            source: check("source", self.source)?,
            medium: check("medium", self.medium)?,
            campaign: check("campaign", self.campaign)?,
        })
    }

    /// `url` with `utm_source`, `utm_medium`, `utm_campaign` and `utm_content` (`link-N`) added
    /// where absent, before any `#fragment`; every other byte kept. Only http(s) URLs change.
    pub fn apply(&self, url: &str, link_no: usize) -> String {
        let lower = url.get(..8).unwrap_or(url).to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return url.to_string();
        }
        let query = split_fragment(url).0.split_once('?').map_or("", |(_, q)| q);
        let present: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        let content = format!("link-{link_no}");
        let mut added = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("utm_source", self.source.as_str()),
            ("utm_medium", &self.medium),
            ("utm_campaign", &self.campaign),
            ("utm_content", &content),
        ] {
            if !present.iter().any(|p| p == k) {
                added.append_pair(k, v);
            }
        }
        match added.finish() {
            added if added.is_empty() => url.to_string(),
            added => with_query(url, &added),
        }
    }
}

/// `url` with the click's reference added as [`REFERENCE_PARAM`], before any `#fragment`.
pub fn with_reference(url: &str, reference: &str) -> String {
    with_query(url, &format!("{REFERENCE_PARAM}={reference}"))
}

/// `url` with `pairs` (encoded) added to its query, before any `#fragment`.
fn with_query(url: &str, pairs: &str) -> String {
    let (base, fragment) = split_fragment(url);
    let joiner = match (
        base.contains('?'),
        base.ends_with('?') || base.ends_with('&'),
    ) {
        (false, _) => "?",
        (true, true) => "",
        (true, false) => "&",
    };
    format!("{base}{joiner}{pairs}{fragment}")
}

fn split_fragment(url: &str) -> (&str, &str) {
    match url.find('#') {
        Some(i) => url.split_at(i),
        None => (url, ""),
    }
}

/// A goal's name: 1 to 64 characters of letters, digits, `_`, `-` and `.` (`purchase`,
/// `signup`, `trial.started`).
pub fn parse_goal(goal: &str) -> Result<&str, String> {
    let goal = goal.trim();
    if goal.is_empty()
        || goal.len() > 64
        || !goal
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
    {
        return Err(format!(
            "goal '{goal}' must be 1 to 64 letters, digits, '_', '-' or '.'"
        ));
    }
    Ok(goal)
}

/// A conversion's value in millionths of its currency's unit (exact sums), and the currency
/// (ISO 4217: three letters, upper-cased). A value needs a currency; a currency alone is refused.
pub fn parse_value(
    value: Option<f64>,
    currency: Option<&str>,
) -> Result<Option<(i64, String)>, String> {
    match (value, currency) {
        (None, None) => Ok(None),
        (Some(_), None) => Err("a value needs its currency (ISO 4217, such as EUR)".into()),
        (None, Some(_)) => Err("a currency needs a value".into()),
        (Some(v), Some(c)) => {
            let c = c.trim().to_ascii_uppercase();
            if c.len() != 3 || !c.chars().all(|ch| ch.is_ascii_uppercase()) {
                return Err(format!(
                    "currency '{c}' is not an ISO 4217 code such as EUR or USD"
                ));
            }
            if !v.is_finite() || !(0.0..=1e12).contains(&v) {
                return Err("value must be a number from 0 to 1,000,000,000,000".into());
            }
            Ok(Some(((v * 1e6).round() as i64, c)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utm_parameters_are_added_where_absent_and_the_rest_is_kept() {
        let utm = Utm::for_campaign("Spring Sale 2027!");
        assert_eq!(utm.campaign, "spring-sale-2027");
        assert_eq!(
            utm.apply("https://shop.example.com/a?x=1#top", 2),
            "https://shop.example.com/a?x=1&utm_source=mailbeacon&utm_medium=email&utm_campaign=spring-sale-2027&utm_content=link-2#top"
        );
        assert_eq!(
            utm.apply("https://shop.example.com/?utm_source=crm", 1),
            "https://shop.example.com/?utm_source=crm&utm_medium=email&utm_campaign=spring-sale-2027&utm_content=link-1"
        );
        assert_eq!(utm.apply("mailto:a@example.com", 1), "mailto:a@example.com");
        assert_eq!(
            with_reference("https://shop.example.com/a#b", "XYZ"),
            "https://shop.example.com/a?mb_ref=XYZ#b"
        );
    }

    #[test]
    fn goals_values_and_currencies_are_checked() {
        assert_eq!(parse_goal(" purchase "), Ok("purchase"));
        assert!(parse_goal("buy now").is_err());
        assert_eq!(
            parse_value(Some(12.5), Some("eur")),
            Ok(Some((12_500_000, "EUR".into())))
        );
        assert!(parse_value(Some(1.0), None).is_err());
        assert!(parse_value(Some(-1.0), Some("EUR")).is_err());
        assert!(parse_value(Some(1.0), Some("EURO")).is_err());
        assert_eq!(parse_value(None, None), Ok(None));
    }
}
