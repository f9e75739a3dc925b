-- The group commit rewrites each stored message's history (messages.history) once per batch.
-- With full pages such an UPDATE moves the row to another page and adds an entry to each of the
-- table's four indexes; with room left on each page PostgreSQL updates the row in place (a
-- heap-only tuple) and touches no index. Applies to pages written from now on.
ALTER TABLE messages SET (fillfactor = 70);
