//! `mailbeacon dashboard-password`: the password that signs in to the dashboard with a scope.

use crate::domain::AuditAction;
use crate::startup::Context;
use crate::store::Scope;
use anyhow::{Context as _, bail};
use std::io::Write;

/// Read from stdin (one line, at least 12 characters), so that it is not in the shell history.
pub async fn set(ctx: &Context, scope: Scope, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut password = String::new();
    std::io::stdin()
        .read_line(&mut password)
        .context("reading the password from stdin")?;
    let password = password.trim_end_matches(['\r', '\n']);
    if password.chars().count() < 12 {
        bail!(
            "the password must be at least 12 characters long (give it on stdin: echo 'PASSWORD' | mailbeacon dashboard-password --scope {})",
            scope.as_str()
        );
    }
    ctx.audit_cli(AuditAction::SetDashboardPassword, scope.as_str())
        .await?;
    let hash = crate::credentials::sessions::hash_password(password)?;
    ctx.store.set_dashboard_password(scope, hash).await?;
    writeln!(
        out,
        "dashboard password for scope {} set; sign in at /login",
        scope.as_str()
    )?;
    Ok(())
}
