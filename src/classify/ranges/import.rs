//! `mailbeacon ranges import`: a list downloaded from its publisher, read in the publisher's own
//! format (detected by content), so that refreshing a shipped list needs no conversion by hand.

use super::{RangeError, parse_list};
use ipnet::IpNet;
use serde_json::Value;

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Range(#[from] RangeError),
    #[error("{0}")]
    Format(String),
}

/// Microsoft 365 endpoint sets that make up a list, for imports of Microsoft's endpoints JSON.
fn microsoft_endpoint_ids(list: &str) -> &'static [u64] {
    match list {
        "microsoft-eop" => &[9, 10],
        "microsoft-exchange-online" => &[1],
        _ => &[],
    }
}

/// Reads a downloaded list in any of the formats its publisher uses: a plain list (one address or
/// CIDR per line), a CSV whose first column is the prefix (Apple's `egress-ip-ranges.csv`, RFC 8805
/// geofeeds), Google's `goog.json`-style JSON, Microsoft's endpoints JSON (the entries that make
/// up `list`), AWS's `ip-ranges.json` (service EC2), Oracle's `public_ip_ranges.json`, or a per-ASN
/// JSON of `ipverse/asn-ip`. Returns the ranges and the format's name.
pub fn parse_import(list: &str, text: &str) -> Result<(Vec<IpNet>, &'static str), ImportError> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        let json: Value = serde_json::from_str(text)
            .map_err(|e| ImportError::Format(format!("not valid JSON: {e}")))?;
        let (raw, format) = from_json(list, &json)?;
        let nets = parse_list(&raw.join("\n"))?;
        return Ok((nets, format));
    }
    let csv = text
        .lines()
        .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .is_some_and(|l| l.contains(','));
    if csv {
        // Apple's egress-ip-ranges.csv (prefix,country,region,city,) and geofeeds alike.
        let firsts: String = text
            .lines()
            .map(|l| l.split(',').next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        return Ok((parse_list(&firsts)?, "CSV (first column)"));
    }
    Ok((parse_list(text)?, "plain list"))
}

fn strings<'a>(values: impl IntoIterator<Item = &'a Value>) -> Vec<String> {
    values
        .into_iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect()
}

fn array(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

fn from_json(list: &str, json: &Value) -> Result<(Vec<String>, &'static str), ImportError> {
    if let Some(prefixes) = json["prefixes"].as_array() {
        if prefixes.iter().any(|p| p.get("ip_prefix").is_some())
            || json.get("ipv6_prefixes").is_some()
        {
            // AWS: a prefix once per service; EC2 is customers' machines (AMAZON adds CloudFront).
            let ec2 = |p: &&Value| p["service"] == "EC2";
            let v4 = prefixes.iter().filter(ec2).map(|p| &p["ip_prefix"]);
            let v6 = array(&json["ipv6_prefixes"])
                .iter()
                .filter(ec2)
                .map(|p| &p["ipv6_prefix"]);
            return Ok((strings(v4.chain(v6)), "AWS JSON (service EC2)"));
        }
        let raw = prefixes
            .iter()
            .filter_map(|p| p["ipv4Prefix"].as_str().or(p["ipv6Prefix"].as_str()))
            .map(String::from)
            .collect();
        return Ok((raw, "Google JSON"));
    }
    if let Some(regions) = json["regions"].as_array() {
        let cidrs = regions
            .iter()
            .flat_map(|r| array(&r["cidrs"]))
            .map(|c| &c["cidr"]);
        return Ok((strings(cidrs), "Oracle JSON"));
    }
    let subnets = if json.get("subnets").is_some() {
        &json["subnets"]
    } else {
        json
    };
    if subnets.get("ipv4").is_some() || subnets.get("ipv6").is_some() {
        let all = array(&subnets["ipv4"])
            .iter()
            .chain(array(&subnets["ipv6"]));
        return Ok((strings(all), "per-ASN JSON"));
    }
    if let Some(entries) = json.as_array() {
        let ids = microsoft_endpoint_ids(list);
        if ids.is_empty() {
            return Err(ImportError::Format(format!(
                "Microsoft endpoints JSON only feeds microsoft-eop or microsoft-exchange-online, not {list}"
            )));
        }
        let ips = entries
            .iter()
            .filter(|e| e["id"].as_u64().is_some_and(|id| ids.contains(&id)))
            .flat_map(|e| array(&e["ips"]));
        return Ok((strings(ips), "Microsoft endpoints JSON"));
    }
    Err(ImportError::Format(
        "JSON in none of the known shapes (Google's or AWS's {\"prefixes\": [...]}, Oracle's \
         {\"regions\": [...]}, a per-ASN {\"subnets\": {\"ipv4\": [...]}}, Microsoft's endpoints array)"
            .into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_read_each_publishers_format() {
        let apple =
            "172.224.226.0/27,GB,GB-EN,London,\n2a02:26f7:b3c0:4000::/64,FR,FR-IDF,Paris,\n";
        let (nets, format) = parse_import("apple-mpp-egress", apple).unwrap();
        assert_eq!(format, "CSV (first column)");
        assert_eq!(nets.len(), 2);
        let google = r#"{"syncToken": "1", "creationTime": "2026-11-01T00:00:00", "prefixes": [{"ipv4Prefix": "66.249.80.0/20"}, {"ipv6Prefix": "2001:4860::/32"}]}"#;
        assert_eq!(
            parse_import("google-image-proxy", google).unwrap().0.len(),
            2
        );
        let microsoft = r#"[{"id": 1, "ips": ["40.96.0.0/13"]}, {"id": 9, "ips": ["40.92.0.0/15", "2a01:111:f403::/48"]}, {"id": 10, "ips": ["104.47.0.0/17"]}]"#;
        assert_eq!(parse_import("microsoft-eop", microsoft).unwrap().0.len(), 3);
        assert_eq!(
            parse_import("microsoft-exchange-online", microsoft)
                .unwrap()
                .0
                .len(),
            1
        );
        assert!(parse_import("apple-network", microsoft).is_err());
        let plain = "# mine\n17.0.0.0/8\n";
        assert_eq!(
            parse_import("apple-network", plain).unwrap(),
            (vec!["17.0.0.0/8".parse().unwrap()], "plain list")
        );
        assert!(matches!(
            parse_import("apple-network", "17.0.0.0/8\nnonsense\n"),
            Err(ImportError::Range(RangeError { line: 2, .. }))
        ));
    }

    #[test]
    fn cloud_publishers_formats_are_read() {
        let aws = r#"{"syncToken": "1", "createDate": "2025-07-24-20-23-14",
            "prefixes": [{"ip_prefix": "3.5.140.0/22", "service": "AMAZON"},
                         {"ip_prefix": "3.5.140.0/22", "service": "EC2"},
                         {"ip_prefix": "13.32.0.0/15", "service": "CLOUDFRONT"}],
            "ipv6_prefixes": [{"ipv6_prefix": "2600:1f00::/24", "service": "EC2"}]}"#;
        let (nets, format) = parse_import("cloud-aws", aws).unwrap();
        assert_eq!(format, "AWS JSON (service EC2)");
        assert_eq!(
            nets,
            [
                "3.5.140.0/22".parse().unwrap(),
                "2600:1f00::/24".parse().unwrap()
            ]
        );
        let oracle = r#"{"last_updated_timestamp": "2025-07-01T00:00:00",
            "regions": [{"region": "us-phoenix-1", "cidrs": [{"cidr": "129.146.0.0/21", "tags": ["OCI"]}]},
                        {"region": "eu-frankfurt-1", "cidrs": [{"cidr": "130.61.0.0/16", "tags": ["OCI"]}]}]}"#;
        assert_eq!(
            parse_import("cloud-oracle", oracle).unwrap(),
            (
                vec![
                    "129.146.0.0/21".parse().unwrap(),
                    "130.61.0.0/16".parse().unwrap()
                ],
                "Oracle JSON"
            )
        );
        let asn = r#"{"asn": 24940, "handle": "HETZNER-AS", "subnets": {"ipv4": ["5.9.0.0/16"], "ipv6": ["2a01:4f8::/29"]}}"#;
        assert_eq!(parse_import("cloud-hetzner", asn).unwrap().0.len(), 2);
        let geofeed = "# Last modified: 2025-07-01\n139.59.0.0/18,IN,IN-KA,Bengaluru,560100\n2400:6180::/48,IN,IN-KA,Bengaluru,\n";
        assert_eq!(
            parse_import("cloud-digitalocean", geofeed).unwrap().0.len(),
            2
        );
        let err = parse_import("cloud-aws", r#"{"nothing": 1}"#).unwrap_err();
        assert!(
            err.to_string().contains("none of the known shapes"),
            "{err}"
        );
    }
}
