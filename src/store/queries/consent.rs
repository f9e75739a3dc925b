//! Consent records, opt-outs and making a message anonymous.

use super::*;

/// Makes a stored message anonymous: a new random name in place of the recipient id, and no client
/// address or agent string left on its events (their parsed client, OS and device stay). Returns
/// the new name. Its counts are untouched: it is the same message.
pub(super) fn anonymize_message(c: &mut dyn Conn, message: MessageId) -> StoreResult<String> {
    let name = format!(
        "{ANONYMOUS_RECIPIENT}{:016x}",
        getrandom::u64().map_err(|e| StoreError::Other(format!("no randomness: {e}")))?
    );
    c.execute(
        "UPDATE messages SET recipient_id = ?2 WHERE id = ?1",
        params![message, &name],
    )?;
    c.execute(
        "UPDATE events SET client_ip = NULL, ua_reduced = 1,
             user_agent = NULL
         WHERE message_id = ?1",
        params![message],
    )?;
    Ok(name)
}

pub(super) fn consent_records(
    c: &mut dyn Conn,
    recipient_id: &str,
) -> StoreResult<Vec<ConsentRecord>> {
    c.query(
        "SELECT id, recipient_id, given_at, source, text, withdrawn_at FROM consents
         WHERE recipient_id = ?1 ORDER BY id",
        params![recipient_id],
    )?
    .iter()
    .map(|r| {
        Ok(ConsentRecord {
            id: r.get(0)?,
            recipient_id: r.get(1)?,
            given_at: r.get(2)?,
            source: r.get(3)?,
            text: r.get(4)?,
            withdrawn_at: r.get(5)?,
        })
    })
    .collect()
}

/// Which of `recipients` have a consent that is not withdrawn.
pub(super) fn standing_consents(
    c: &mut dyn Conn,
    recipients: &[String],
) -> StoreResult<Vec<String>> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT DISTINCT recipient_id FROM consents
         WHERE withdrawn_at IS NULL AND recipient_id {}",
        sql::in_json_array(c.dialect(), false)
    );
    c.query(&sql, params![json_array(recipients)])?
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// Which of `recipients` have opted out.
pub(super) fn opted_out(c: &mut dyn Conn, recipients: &[String]) -> StoreResult<Vec<String>> {
    if recipients.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT recipient_id FROM opt_outs WHERE recipient_id {}",
        sql::in_json_array(c.dialect(), false)
    );
    c.query(&sql, params![json_array(recipients)])?
        .iter()
        .map(|r| r.get(0))
        .collect()
}
