//! What a user keeps with a campaign besides its mail: a name, the subject line, tags. Each
//! parser trims what it is given and says what is wrong with it.

/// The longest campaign name, in characters.
pub const MAX_CAMPAIGN_NAME: usize = 200;

/// The longest subject line, in characters: RFC 5322's limit for a header line.
pub const MAX_SUBJECT: usize = 998;

/// At most this many tags per campaign, each at most [`MAX_TAG`] characters.
pub const MAX_TAGS: usize = 20;
pub const MAX_TAG: usize = 50;

/// A campaign name as a user gives it: trimmed, 1 to 200 characters.
pub fn parse_campaign_name(name: &str) -> Result<&str, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("name must not be empty".into());
    }
    if name.chars().count() > MAX_CAMPAIGN_NAME {
        return Err(format!(
            "name must be at most {MAX_CAMPAIGN_NAME} characters"
        ));
    }
    Ok(name)
}

/// A subject line: trimmed, 1 to 998 characters, one line. An empty one is refused rather than
/// stored, so "no subject" is always `null`.
pub fn parse_subject(subject: &str) -> Result<&str, String> {
    let subject = subject.trim();
    if subject.is_empty() {
        return Err("subject must not be empty (send null to remove it)".into());
    }
    if subject.chars().count() > MAX_SUBJECT {
        return Err(format!("subject must be at most {MAX_SUBJECT} characters"));
    }
    if subject.chars().any(char::is_control) {
        return Err("subject must be one line without control characters".into());
    }
    Ok(subject)
}

/// Tags as given: each trimmed, 1 to 50 characters without control characters or commas (the
/// CLI and the list's `?tag=` take them comma-separated); duplicates are kept once, in the order
/// first given; at most 20.
pub fn parse_tags<S: AsRef<str>>(tags: &[S]) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for tag in tags {
        let tag = parse_tag(tag.as_ref())?;
        if !out.iter().any(|t| t == tag) {
            out.push(tag.to_string());
        }
    }
    if out.len() > MAX_TAGS {
        return Err(format!("a campaign has at most {MAX_TAGS} tags"));
    }
    Ok(out)
}

/// One tag, as [`parse_tags`] takes each.
pub fn parse_tag(tag: &str) -> Result<&str, String> {
    let tag = tag.trim();
    if tag.is_empty() {
        return Err("a tag must not be empty".into());
    }
    if tag.chars().count() > MAX_TAG {
        return Err(format!("tag {tag:?} is longer than {MAX_TAG} characters"));
    }
    if tag.chars().any(|c| c.is_control() || c == ',') {
        return Err(format!(
            "tag {tag:?} must not hold commas or control characters"
        ));
    }
    Ok(tag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_subjects_and_tags_are_trimmed_and_bounded() {
        assert_eq!(parse_campaign_name("  Spring sale "), Ok("Spring sale"));
        assert!(parse_campaign_name(" ").is_err());
        assert_eq!(parse_subject(" Hello, Ada "), Ok("Hello, Ada"));
        assert!(
            parse_subject("two\nlines")
                .unwrap_err()
                .contains("one line")
        );
        assert!(parse_subject(&"x".repeat(999)).is_err());
        assert_eq!(
            parse_tags(&[" spring ", "ab-test", "spring"]),
            Ok(vec!["spring".to_string(), "ab-test".to_string()])
        );
        assert!(parse_tags(&["a,b"]).unwrap_err().contains("commas"));
        assert!(parse_tags(&[""]).is_err());
        let many: Vec<String> = (0..21).map(|i| format!("t{i}")).collect();
        assert!(parse_tags(&many).unwrap_err().contains("at most 20"));
    }
}
