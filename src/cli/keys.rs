//! `mailbeacon key`: the signing keys kept in the database, rotated and retired.

use crate::domain::AuditAction;
use crate::startup::Context;
use crate::token::SigningKey;
use anyhow::bail;
use clap::Subcommand;
use std::io::Write;

#[derive(Subcommand, Debug)]
pub enum KeyCommand {
    /// Add a new signing key that signs from now on; older keys keep verifying mail already sent.
    /// Restart running servers to pick it up.
    Rotate,
    /// Delete an older signing key: pixels and clicks of mail it signed answer 404 from then on
    /// (restart running servers). The key that signs cannot be retired.
    Retire {
        id: u8,
        /// Confirms that mail signed with the key stops being tracked.
        #[arg(long)]
        yes: bool,
    },
    /// Print a new random key in the ID:SECRET form of --signing-key, without storing it.
    Generate {
        #[arg(long, default_value_t = 1)]
        id: u8,
    },
}

/// Prints a new key in the ID:SECRET form of --signing-key (needs no database).
pub fn generate(id: u8, out: &mut dyn Write) -> anyhow::Result<()> {
    if id == 0 {
        bail!("key id must be from 1 to 255");
    }
    writeln!(out, "{}", SigningKey::generate(id).to_spec())?;
    Ok(())
}

pub async fn run(ctx: &Context, command: KeyCommand, out: &mut dyn Write) -> anyhow::Result<()> {
    match command {
        KeyCommand::Retire { id, yes } => {
            if !ctx.settings.signing_keys.is_empty() {
                bail!(
                    "signing keys come from --signing-key / MAILBEACON_SIGNING_KEY here: remove it there"
                );
            }
            if !yes {
                bail!(
                    "retiring signing key {id} stops tracking every mail it signed (their pixels and clicks answer 404): add --yes to do it"
                );
            }
            ctx.audit_cli(AuditAction::RetireSigningKey, &id.to_string())
                .await?;
            if !ctx.store.retire_signing_key(id).await? {
                bail!("there is no signing key {id}");
            }
            writeln!(
                out,
                "signing key {id} retired: mail it signed is no longer tracked. Restart running servers."
            )?;
        }
        KeyCommand::Rotate => {
            if !ctx.settings.signing_keys.is_empty() {
                bail!(
                    "signing keys come from --signing-key / MAILBEACON_SIGNING_KEY here: add a new ID:SECRET there (`mailbeacon key generate --id N` makes one) and keep the old ones"
                );
            }
            let id = ctx
                .store
                .add_signing_key(SigningKey::generate(1).secret)
                .await?;
            writeln!(
                out,
                "signing key {id} signs from now on; keys {:?} keep verifying mail already sent. Restart running servers.",
                ctx.keys.key_ids().collect::<Vec<_>>()
            )?;
        }
        KeyCommand::Generate { id } => generate(id, out)?,
    }
    Ok(())
}
