//! API tokens: listing and revoking them (creating one is a single INSERT in queries.rs).

use super::*;

pub(super) fn list(c: &mut dyn Conn) -> StoreResult<Vec<ApiTokenInfo>> {
    c.query(
        "SELECT id, scope, created_at, expires_at FROM api_tokens ORDER BY id",
        params![],
    )?
    .iter()
    .map(|r| {
        let scope: String = r.get(1)?;
        Ok(ApiTokenInfo {
            id: r.get(0)?,
            scope: Scope::parse(&scope)
                .ok_or_else(|| StoreError::Other(format!("unknown token scope {scope:?}")))?,
            created_at: r.get(2)?,
            expires_at: r.get(3)?,
        })
    })
    .collect()
}

pub(super) fn revoke(c: &mut dyn Conn, id: i64) -> StoreResult<bool> {
    // Sessions started with the token end with it.
    c.execute("DELETE FROM sessions WHERE token_id = ?1", params![id])?;
    Ok(c.execute("DELETE FROM api_tokens WHERE id = ?1", params![id])? == 1)
}
