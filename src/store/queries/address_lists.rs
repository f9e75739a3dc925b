//! Imported address lists that replace the shipped ones.

use super::*;

pub(super) async fn address_lists<E: Engine>(store: &SqlStore<E>) -> StoreResult<Vec<AddressList>> {
    store
        .read(|c| {
            c.query(
                "SELECT list, source, format, imported_at, cidrs FROM address_lists ORDER BY list",
                params![],
            )?
            .iter()
            .map(|r| {
                Ok(AddressList {
                    list: r.get(0)?,
                    source: r.get(1)?,
                    format: r.get(2)?,
                    imported_at: r.get(3)?,
                    cidrs: r.get(4)?,
                })
            })
            .collect()
        })
        .await
}

pub(super) async fn save_address_list<E: Engine>(
    store: &SqlStore<E>,
    list: AddressList,
) -> StoreResult<()> {
    store
        .write(move |c| {
            c.execute(
                "INSERT INTO address_lists (list, source, format, imported_at, cidrs)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (list) DO UPDATE SET source = excluded.source,
                     format = excluded.format, imported_at = excluded.imported_at,
                     cidrs = excluded.cidrs",
                params![
                    list.list,
                    list.source,
                    list.format,
                    list.imported_at,
                    list.cidrs
                ],
            )
            .map(drop)
        })
        .await
}

pub(super) async fn delete_address_list<E: Engine>(
    store: &SqlStore<E>,
    name: String,
) -> StoreResult<bool> {
    store
        .write(move |c| {
            c.execute("DELETE FROM address_lists WHERE list = ?1", params![name])
                .map(|n| n > 0)
        })
        .await
}
