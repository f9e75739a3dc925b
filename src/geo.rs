//! Country and region of a client address, from a MaxMind or DB-IP `.mmdb` file the user supplies
//! (`--geoip FILE`). Looked up from the full address before it is reduced for storage.

use maxminddb::{Reader, geoip2};
use std::net::IpAddr;
use std::path::Path;

pub struct Geo {
    reader: Reader<Vec<u8>>,
}

/// Where an address is, as ISO codes: country ("DE") and, when known, region ("BY").
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Place {
    pub country: Option<String>,
    pub region: Option<String>,
}

impl Geo {
    pub fn open(path: &Path) -> Result<Geo, String> {
        let reader = Reader::open_readfile(path)
            .map_err(|e| format!("--geoip {}: not a readable .mmdb file: {e}", path.display()))?;
        let kind = &reader.metadata().database_type;
        if !(kind.contains("City") || kind.contains("Country")) {
            return Err(format!(
                "--geoip {}: a {kind} database has no countries; use a City or Country database",
                path.display()
            ));
        }
        Ok(Geo { reader })
    }

    /// A description for the start-up message.
    pub fn describe(&self) -> String {
        let m = self.reader.metadata();
        let built = chrono::DateTime::from_timestamp(m.build_epoch as i64, 0)
            .map(|t| t.format("%Y-%m-%d").to_string())
            .unwrap_or_default();
        format!("{} built {built}", m.database_type)
    }

    pub fn lookup(&self, ip: IpAddr) -> Place {
        let found = self
            .reader
            .lookup(ip)
            .and_then(|r| r.decode::<geoip2::City>());
        match found {
            Ok(Some(city)) => Place {
                country: city.country.iso_code.map(str::to_owned),
                region: city
                    .subdivisions
                    .first()
                    .and_then(|s| s.iso_code)
                    .map(str::to_owned),
            },
            _ => Place::default(),
        }
    }
}
