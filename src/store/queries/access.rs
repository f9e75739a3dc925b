//! Who may do what: signing keys, API tokens, the audit log, dashboard passwords and sessions.

use super::*;

#[async_trait]
impl<E: Engine> Access for SqlStore<E> {
    async fn signing_keys_or_create(
        &self,
        new_secret: [u8; 32],
    ) -> StoreResult<(Vec<(u8, [u8; 32])>, Option<u8>)> {
        self.write(move |c| {
            in_tx(c, |c| {
                let mut created = None;
                let count: i64 = c.query_one("SELECT count(*) FROM signing_keys", params![])?;
                if count == 0 {
                    c.execute(
                        "INSERT INTO signing_keys (id, secret, created_at) VALUES (1, ?1, ?2)",
                        params![&new_secret, Utc::now()],
                    )?;
                    created = Some(1);
                }
                Ok((read_keys(c)?, created))
            })
        })
        .await
    }

    async fn add_signing_key(&self, secret: [u8; 32]) -> StoreResult<u8> {
        self.write(move |c| {
            in_tx(c, |c| {
                let next: i64 = c.query_one(
                    "SELECT coalesce(max(id), 0) + 1 FROM signing_keys",
                    params![],
                )?;
                c.execute(
                    "INSERT INTO signing_keys (id, secret, created_at) VALUES (?1, ?2, ?3)",
                    params![next, &secret, Utc::now()],
                )?;
                Ok(next as u8)
            })
        })
        .await
    }

    async fn retire_signing_key(&self, id: u8) -> StoreResult<bool> {
        self.write(move |c| {
            in_tx(c, |c| {
                let newest: Option<i64> =
                    c.query_one("SELECT max(id) FROM signing_keys", params![])?;
                if newest == Some(i64::from(id)) {
                    return Err(StoreError::Other(format!(
                        "signing key {id} is the one that signs: rotate first (`mailbeacon key rotate`)"
                    )));
                }
                Ok(c.execute("DELETE FROM signing_keys WHERE id = ?1", params![id])? == 1)
            })
        })
        .await
    }

    async fn create_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
        expires_at: Option<DateTime<Utc>>,
    ) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO api_tokens (token_hash, scope, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4)",
                params![&token_hash, scope.as_str(), Utc::now(), expires_at],
            )
            .map(drop)
        })
        .await
    }

    async fn api_tokens(&self) -> StoreResult<Vec<ApiTokenInfo>> {
        self.read(tokens::list).await
    }

    async fn revoke_api_token(&self, id: i64) -> StoreResult<bool> {
        self.write(move |c| in_tx(c, |c| tokens::revoke(c, id)))
            .await
    }

    async fn create_first_api_token(
        &self,
        token_hash: [u8; 32],
        scope: Scope,
    ) -> StoreResult<bool> {
        self.write(move |c| {
            in_tx(c, |c| {
                if c.query_one::<i64>("SELECT count(*) FROM api_tokens", params![])? > 0 {
                    return Ok(false);
                }
                c.execute(
                    "INSERT INTO api_tokens (token_hash, scope, created_at) VALUES (?1, ?2, ?3)",
                    params![&token_hash, scope.as_str(), Utc::now()],
                )?;
                Ok(true)
            })
        })
        .await
    }

    async fn api_token_scope(&self, token_hash: [u8; 32]) -> StoreResult<Option<(i64, Scope)>> {
        self.read(move |c| {
            let Some(r) = c.query_row(
                "SELECT id, scope FROM api_tokens
                 WHERE token_hash = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
                params![&token_hash, Utc::now()],
            )?
            else {
                return Ok(None);
            };
            Ok(Scope::parse(&r.get::<String>(1)?).map(|scope| (r.get(0).unwrap_or(0), scope)))
        })
        .await
    }

    async fn audit(&self, entry: AuditEntry) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "INSERT INTO audit_log (at, actor, scope, action, target) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    entry.at,
                    entry.actor.to_string(),
                    entry.scope,
                    entry.action.as_str(),
                    entry.target
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn audit_log(&self, after: i64, limit: usize) -> StoreResult<Vec<(i64, AuditEntry)>> {
        self.read(move |c| {
            c.query(
                "SELECT id, at, actor, scope, action, target FROM audit_log
                 WHERE id > ?1 ORDER BY id LIMIT ?2",
                params![after, limit],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.get(0)?,
                    AuditEntry {
                        at: r.get(1)?,
                        actor: audit_actor(&r.get::<String>(2)?)?,
                        scope: r.get(3)?,
                        action: audit_action(&r.get::<String>(4)?)?,
                        target: r.get(5)?,
                    },
                ))
            })
            .collect()
        })
        .await
    }

    async fn last_audit_target(&self, action: AuditAction) -> StoreResult<Option<String>> {
        self.read(move |c| {
            c.query_value(
                "SELECT target FROM audit_log WHERE action = ?1 ORDER BY id DESC LIMIT 1",
                params![action.as_str()],
            )
        })
        .await
    }

    async fn set_dashboard_password(&self, scope: Scope, hash: String) -> StoreResult<()> {
        self.write(move |c| {
            in_tx(c, |c| {
                c.execute(
                    "INSERT INTO dashboard_passwords (scope, hash, set_at) VALUES (?1, ?2, ?3)
                     ON CONFLICT (scope) DO UPDATE SET hash = excluded.hash, set_at = excluded.set_at",
                    params![scope.as_str(), hash, Utc::now()],
                )?;
                // Whoever signed in with the old password is signed out.
                c.execute(
                    "DELETE FROM sessions WHERE token_id IS NULL AND scope = ?1",
                    params![scope.as_str()],
                )
                .map(drop)
            })
        })
        .await
    }

    async fn dashboard_passwords(&self) -> StoreResult<Vec<(Scope, String)>> {
        self.read(|c| {
            let mut out = Vec::new();
            for r in c.query("SELECT scope, hash FROM dashboard_passwords", params![])? {
                if let Some(scope) = Scope::parse(&r.get::<String>(0)?) {
                    out.push((scope, r.get(1)?));
                }
            }
            Ok(out)
        })
        .await
    }

    async fn create_session(&self, session: Session) -> StoreResult<()> {
        self.write(move |c| {
            let now = Utc::now();
            // Expired sessions go as new ones come.
            c.execute("DELETE FROM sessions WHERE expires_at < ?1", params![now])?;
            c.execute(
                "INSERT INTO sessions (session_hash, token_id, scope, created_at, expires_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    &session.session_hash,
                    session.token_id,
                    session.scope.as_str(),
                    now,
                    session.expires_at
                ],
            )
            .map(drop)
        })
        .await
    }

    async fn session(&self, session_hash: [u8; 32]) -> StoreResult<Option<Session>> {
        self.read(move |c| {
            let Some(r) = c.query_row(
                "SELECT token_id, scope, expires_at FROM sessions s
                 WHERE session_hash = ?1 AND expires_at > ?2
                   AND (token_id IS NULL OR EXISTS (
                        SELECT 1 FROM api_tokens t WHERE t.id = s.token_id
                            AND (t.expires_at IS NULL OR t.expires_at > ?2)))",
                params![&session_hash, Utc::now()],
            )?
            else {
                return Ok(None);
            };
            let Some(scope) = Scope::parse(&r.get::<String>(1)?) else {
                return Ok(None);
            };
            Ok(Some(Session {
                session_hash,
                token_id: r.get(0)?,
                scope,
                expires_at: r.get(2)?,
            }))
        })
        .await
    }

    async fn delete_session(&self, session_hash: [u8; 32]) -> StoreResult<()> {
        self.write(move |c| {
            c.execute(
                "DELETE FROM sessions WHERE session_hash = ?1",
                params![&session_hash],
            )
            .map(drop)
        })
        .await
    }
}
