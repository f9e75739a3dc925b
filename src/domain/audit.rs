//! What the audit log records: who acted ([`Actor`]) and what they did ([`AuditAction`]).

use std::fmt;

/// Defines the audit actions with their stored names, once.
macro_rules! actions {
    ($($variant:ident => $name:literal: $doc:literal,)*) => {
        /// Something done to recipients' data or to access, noted in the audit log.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum AuditAction {
            $(#[doc = $doc] $variant,)*
        }

        impl AuditAction {
            /// Every action, in the order the documentation lists them.
            pub const ALL: &[AuditAction] = &[$(AuditAction::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(AuditAction::$variant => $name,)*
                }
            }

            pub fn parse(name: &str) -> Option<AuditAction> {
                match name {
                    $($name => Some(AuditAction::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

actions! {
    ReadEvents => "read_events": "Per-recipient events read through the API.",
    ReadTimeline => "read_timeline": "A recipient's timeline read.",
    ReadSegment => "read_segment": "The recipients of a campaign's segment listed.",
    ReadConversions => "read_conversions": "A campaign's conversions listed.",
    ReadSendTimes => "read_send_times": "A recipient's best hour to send, or a campaign's recipients', read.",
    ReadEngagement => "read_engagement": "A recipient's engagement, or every recipient's, read.",
    ExportEvents => "export_events": "A campaign's events exported.",
    ExportRecipient => "export_recipient": "Everything stored about a recipient exported.",
    OptOut => "opt_out": "A recipient opted out (API, CLI or the stop link).",
    EraseRecipient => "erase_recipient": "A recipient erased.",
    DeleteCampaign => "delete_campaign": "A campaign deleted with everything stored of it.",
    PurgeEvents => "purge_events": "Events older than a date deleted.",
    RecordConsent => "record_consent": "A recipient's consent recorded.",
    ReadConsent => "read_consent": "A recipient's consent records read.",
    WithdrawConsent => "withdraw_consent": "A recipient's consent withdrawn.",
    CreateToken => "create_token": "An API token created.",
    RevokeToken => "revoke_token": "An API token revoked.",
    SetDashboardPassword => "set_dashboard_password": "The dashboard password set.",
    RetireSigningKey => "retire_signing_key": "A signing key retired.",
    CreateWebhook => "create_webhook": "A webhook endpoint registered.",
    DeleteWebhook => "delete_webhook": "A webhook endpoint deleted.",
    ReplayWebhook => "replay_webhook": "A webhook's notices sent again.",
    AddTrackingDomain => "add_tracking_domain": "A tracking domain added.",
    RetireTrackingDomain => "retire_tracking_domain": "A tracking domain retired for new mail, or taken back into use.",
    RemoveTrackingDomain => "remove_tracking_domain": "A retired tracking domain removed.",
    RenewCertificate => "renew_certificate": "A domain's certificate made due for renewal now.",
    ChangeSettings => "change_settings": "Started with settings about recipients' data that differ from the last start's.",
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Who did it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    /// A caller of the API with this token (`token:ID`).
    Token(i64),
    /// Someone signed in to the dashboard with its password.
    DashboardPassword,
    /// Someone at the command line.
    Cli,
    /// The server as it started (`change_settings`).
    Startup,
    /// The recipient, through the stop link in their mail.
    Recipient,
}

impl Actor {
    pub fn parse(name: &str) -> Option<Actor> {
        match name {
            "dashboard-password" => Some(Actor::DashboardPassword),
            "cli" => Some(Actor::Cli),
            "startup" => Some(Actor::Startup),
            "recipient" => Some(Actor::Recipient),
            _ => name
                .strip_prefix("token:")
                .and_then(|id| id.parse().ok())
                .map(Actor::Token),
        }
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Token(id) => write!(f, "token:{id}"),
            Actor::DashboardPassword => f.write_str("dashboard-password"),
            Actor::Cli => f.write_str("cli"),
            Actor::Startup => f.write_str("startup"),
            Actor::Recipient => f.write_str("recipient"),
        }
    }
}

impl serde::Serialize for Actor {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_as_written() {
        for action in AuditAction::ALL {
            assert_eq!(AuditAction::parse(action.as_str()), Some(*action));
        }
        for actor in [
            Actor::Token(17),
            Actor::DashboardPassword,
            Actor::Cli,
            Actor::Startup,
            Actor::Recipient,
        ] {
            assert_eq!(Actor::parse(&actor.to_string()), Some(actor));
        }
        assert_eq!(Actor::parse("token:x"), None);
        assert_eq!(AuditAction::parse("drop_tables"), None);
    }
}
