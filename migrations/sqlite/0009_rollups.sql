-- Rollups (src/analytics/rollup.rs): counters kept current by the writer in the same transaction
-- as the events, so reports cost the same at ten thousand and at a hundred million events.
-- "reader" columns leave out machine activity (Apple's prefetch, scanners, bots). Existing events
-- are rolled up by the program right after this migration.
CREATE TABLE campaign_totals (
    campaign_id         INTEGER PRIMARY KEY REFERENCES campaigns(id),
    sent                INTEGER NOT NULL DEFAULT 0,
    opens               INTEGER NOT NULL DEFAULT 0,
    clicks              INTEGER NOT NULL DEFAULT 0,
    reader_open_events  INTEGER NOT NULL DEFAULT 0,
    reader_click_events INTEGER NOT NULL DEFAULT 0,
    unique_opens        INTEGER NOT NULL DEFAULT 0,
    unique_clicks       INTEGER NOT NULL DEFAULT 0,
    reader_opens        INTEGER NOT NULL DEFAULT 0,
    reader_pixel_opens  INTEGER NOT NULL DEFAULT 0,
    reader_clicks       INTEGER NOT NULL DEFAULT 0,
    first_at            TEXT,
    last_at             TEXT
);

-- hour: whole hours since 1970-01-01T00:00Z. firsts: messages whose first event of the kind it was.
CREATE TABLE rollup_hours (
    campaign_id INTEGER NOT NULL,
    hour        INTEGER NOT NULL,
    kind        TEXT NOT NULL,
    class       TEXT NOT NULL,
    events      INTEGER NOT NULL DEFAULT 0,
    firsts      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, hour, kind, class)
) WITHOUT ROWID;

CREATE TABLE rollup_links (
    campaign_id     INTEGER NOT NULL,
    link_no         INTEGER NOT NULL,
    clicks          INTEGER NOT NULL DEFAULT 0,
    reader_clicks   INTEGER NOT NULL DEFAULT 0,
    messages        INTEGER NOT NULL DEFAULT 0,
    reader_messages INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, link_no)
) WITHOUT ROWID;

-- dim: client, os, device, country or class; value '' when unknown.
CREATE TABLE rollup_dims (
    campaign_id     INTEGER NOT NULL,
    dim             TEXT NOT NULL,
    value           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    events          INTEGER NOT NULL DEFAULT 0,
    reader_events   INTEGER NOT NULL DEFAULT 0,
    messages        INTEGER NOT NULL DEFAULT 0,
    reader_messages INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, dim, value, kind)
) WITHOUT ROWID;
