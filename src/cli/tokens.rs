//! `mailbeacon token`: API tokens made, listed and revoked from the command line (admin work;
//! each is in the audit log).

use crate::credentials::api_tokens as auth;
use crate::domain::AuditAction;
use crate::startup::Context;
use crate::store::Scope;
use anyhow::bail;
use chrono::{Duration, Utc};
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Create an API token and print it (it is stored hashed and cannot be shown again).
    Create {
        #[arg(long, value_enum)]
        scope: Scope,
        /// The token stops working this many days from now (default: never).
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=36_500))]
        expires_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// List the API tokens: id, scope, when made, when they expire (never the tokens themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke an API token by its id (from `token list`): it stops working at once, and dashboard
    /// sessions started with it end.
    Revoke { id: i64 },
}

pub async fn run(ctx: &Context, command: TokenCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create {
            scope,
            expires_days,
            json,
        } => {
            ctx.audit_cli(AuditAction::CreateToken, scope.as_str())
                .await?;
            let token = auth::generate_token();
            let expires_at = expires_days.map(|d| Utc::now() + Duration::days(i64::from(d)));
            ctx.store
                .create_api_token(auth::hash_token(&token), scope, expires_at)
                .await?;
            if json {
                serde_json::to_writer(
                    &mut *out,
                    &serde_json::json!({"token": token, "scope": scope, "expires_at": expires_at}),
                )?;
                writeln!(out)?;
            } else {
                writeln!(out, "{token}")?;
            }
        }
        TokenCommand::List { json } => {
            let tokens = ctx.store.api_tokens().await?;
            if json {
                serde_json::to_writer(&mut *out, &tokens)?;
                writeln!(out)?;
            } else {
                writeln!(out, "{:>6}  {:<8} {:<26} expires", "id", "scope", "created")?;
                for t in &tokens {
                    let expires = t
                        .expires_at
                        .map_or("never".to_string(), |at| at.to_rfc3339());
                    let created = t.created_at.to_rfc3339();
                    writeln!(
                        out,
                        "{:>6}  {:<8} {created:<26} {expires}",
                        t.id,
                        t.scope.as_str()
                    )?;
                }
            }
        }
        TokenCommand::Revoke { id } => {
            ctx.audit_cli(AuditAction::RevokeToken, &id.to_string())
                .await?;
            if !ctx.store.revoke_api_token(id).await? {
                bail!("there is no API token {id} (see `mailbeacon token list`)");
            }
            writeln!(out, "revoked API token {id}")?;
        }
    }
    Ok(())
}
