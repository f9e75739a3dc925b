//! What an API token or a dashboard password may do.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything, including tokens and settings.
    Admin,
    /// Campaigns, reports and per-recipient data.
    Analyst,
    /// Aggregate reports only.
    Viewer,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Admin => "admin",
            Scope::Analyst => "analyst",
            Scope::Viewer => "viewer",
        }
    }

    pub fn parse(s: &str) -> Option<Scope> {
        match s {
            "admin" => Some(Scope::Admin),
            "analyst" => Some(Scope::Analyst),
            "viewer" => Some(Scope::Viewer),
            _ => None,
        }
    }
}
