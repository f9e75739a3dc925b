//! `mailbeacon migrate-data`: an installation moved from SQLite to PostgreSQL, verified.

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::sync::Arc;

/// `mailbeacon migrate-data`: SQLite to PostgreSQL, verified (src/store/migrate_data.rs).
pub async fn run(from: &str, to: &str, out: &mut dyn Write) -> anyhow::Result<()> {
    use crate::config::DatabaseUrl;
    use crate::store::migrate_data::{self, Outcome};
    let source = match from.parse::<DatabaseUrl>() {
        Ok(DatabaseUrl::Sqlite(path)) => path,
        Ok(DatabaseUrl::Postgres(_)) => bail!(
            "--from must be the SQLite database to move (sqlite://PATH): migrate-data copies from SQLite to PostgreSQL"
        ),
        Err(e) => bail!("--from: {e}"),
    };
    let target = match to.parse::<DatabaseUrl>() {
        Ok(DatabaseUrl::Postgres(url)) => url,
        Ok(DatabaseUrl::Sqlite(_)) => bail!(
            "--to must be the PostgreSQL database to move to (postgres://USER@HOST/DB): migrate-data copies from SQLite to PostgreSQL"
        ),
        Err(e) => bail!("--to: {e}"),
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{msg:<28} {bar:40} {pos}/{len} rows ({per_sec}, {eta} left)")
            .expect("valid progress template"),
    );
    let shown = bar.clone();
    let started = std::time::Instant::now();
    let result = migrate_data::migrate(
        source.clone(),
        target,
        Arc::new(move |what, done, total| {
            shown.set_length(total);
            shown.set_position(done);
            shown.set_message(what.to_string());
        }),
    )
    .await;
    bar.finish_and_clear();
    let report = match result? {
        Outcome::Refused(occupied) => {
            let held: Vec<String> = occupied
                .iter()
                .map(|(table, rows)| format!("{table} ({rows} rows)"))
                .collect();
            bail!(
                "the target database already holds data: {}. migrate-data copies only into an empty database: \
                 use a new database, or a new schema (CREATE SCHEMA mailbeacon; then add \
                 ?options=-csearch_path%3Dmailbeacon to --to). Nothing was copied",
                held.join(", ")
            );
        }
        Outcome::Copied(report) => report,
    };
    let seconds = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "{:<20} {:>12} {:>12} {:>21}  content",
        "table", "source rows", "target rows", "highest id src / dst"
    )?;
    for t in &report.tables {
        let id = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
        writeln!(
            out,
            "{:<20} {:>12} {:>12} {:>21}  {}",
            t.table,
            t.source_rows,
            t.target_rows,
            format!("{} / {}", id(t.source_max_id), id(t.target_max_id)),
            if t.equal() { "equal" } else { "DIFFER" }
        )?;
    }
    let campaigns_differing = report
        .campaigns
        .iter()
        .filter(|c| c.source_events != c.target_events)
        .count();
    writeln!(
        out,
        "events per campaign: {} campaigns with events, {}",
        report.campaigns.len(),
        match campaigns_differing {
            0 => "all equal".to_string(),
            n => format!("{n} differ"),
        }
    )?;
    let differences = report.differences();
    if !differences.is_empty() {
        for d in &differences {
            writeln!(out, "  {d}")?;
        }
        bail!(
            "verification failed: the copy differs from the source ({} difference(s) above); nothing was kept in the target",
            differences.len()
        );
    }
    if report.source_changed {
        bail!(
            "the source database was written to during the copy (is mailbeacon still running on {}?): \
             the copy would miss what was written, so nothing was kept in the target. Stop every \
             mailbeacon process using it and run migrate-data again",
            source.display()
        );
    }
    if !report.next_ids.is_empty() {
        let next: Vec<String> = report
            .next_ids
            .iter()
            .map(|(t, id)| format!("{t} {id}"))
            .collect();
        writeln!(out, "next ids: {}", next.join(", "))?;
    }
    writeln!(
        out,
        "verified: {} rows copied in {seconds:.1} s ({:.0} rows/s); both sides hold the same rows. \
         Start mailbeacon with --database set to the PostgreSQL URL",
        report.rows,
        report.rows as f64 / seconds.max(0.001)
    )?;
    Ok(())
}
