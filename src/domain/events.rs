//! What a tracking request was (an open or a click) and who or what made it (its class).

use serde::{Deserialize, Serialize};

#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    #[default]
    Open,
    Click,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Open => "open",
            EventKind::Click => "click",
        }
    }

    pub fn parse(kind: &str) -> Option<EventKind> {
        match kind {
            "open" => Some(EventKind::Open),
            "click" => Some(EventKind::Click),
            _ => None,
        }
    }
}

/// Who (or what) made a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Human,
    AppleMpp,
    GmailProxy,
    YahooProxy,
    MicrosoftProxy,
    OtherProxy,
    Scanner,
    Bot,
}

impl Class {
    pub const ALL: [Class; 8] = [
        Class::Human,
        Class::AppleMpp,
        Class::GmailProxy,
        Class::YahooProxy,
        Class::MicrosoftProxy,
        Class::OtherProxy,
        Class::Scanner,
        Class::Bot,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Human => "human",
            Class::AppleMpp => "apple_mpp",
            Class::GmailProxy => "gmail_proxy",
            Class::YahooProxy => "yahoo_proxy",
            Class::MicrosoftProxy => "microsoft_proxy",
            Class::OtherProxy => "other_proxy",
            Class::Scanner => "scanner",
            Class::Bot => "bot",
        }
    }

    pub fn parse(s: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// Machine activity is not a person reading: Apple's prefetch, scanners and bots. Image
    /// proxies fetch on a reader's behalf, so they count as readers.
    pub fn is_machine(self) -> bool {
        matches!(self, Class::AppleMpp | Class::Scanner | Class::Bot)
    }
}
