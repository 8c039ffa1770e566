-- rollcall's database. Applied to an empty file on first start; the version lives in PRAGMA user_version.
-- Each resource keeps its SCIM attributes as one JSON document (`doc`, without id, meta and the
-- membership lists) plus the columns that lookups, uniqueness and sorting need indexed.

CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    user_name      TEXT NOT NULL,
    user_name_key  TEXT NOT NULL,          -- userName case-folded: uniqueness and `userName eq` lookups
    external_id    TEXT,
    display_name   TEXT,
    active         INTEGER NOT NULL DEFAULT 1,
    doc            TEXT NOT NULL,
    created        TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_user_name_key ON users (user_name_key);
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX users_last_modified ON users (last_modified);

CREATE TABLE groups (
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    display_name_key  TEXT NOT NULL,       -- displayName case-folded: uniqueness and `displayName eq`
    external_id       TEXT,
    doc               TEXT NOT NULL,
    created           TEXT NOT NULL,
    last_modified     TEXT NOT NULL,
    version           INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (display_name_key);
CREATE INDEX groups_external_id ON groups (external_id);
CREATE INDEX groups_last_modified ON groups (last_modified);

-- Membership has its own table, indexed both ways, so adding the 100,000th member costs what the
-- first did and a user's groups are found without scanning groups.
CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added     TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_user ON group_members (user_id, group_id);

-- Bearer tokens, stored only as SHA-256 hashes (they are 256-bit random, so a slow hash buys nothing).
CREATE TABLE tokens (
    name        TEXT PRIMARY KEY,
    hash        TEXT NOT NULL UNIQUE,
    created     TEXT NOT NULL,
    revoked     TEXT
);

-- The organization's roster: the users who are members right now, with their role. It is derived
-- from users and role-group memberships and kept in step inside the same transaction as every
-- change, so that joins, departures and role changes can be recorded as events when they happen.
CREATE TABLE roster (
    user_id    TEXT PRIMARY KEY,
    user_name  TEXT NOT NULL,
    role       TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    since      TEXT NOT NULL
) WITHOUT ROWID;

-- The change feed, oldest first. Written in the transaction of the change it describes.
CREATE TABLE events (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    at       TEXT NOT NULL,
    type     TEXT NOT NULL,
    actor    TEXT NOT NULL,              -- the name of the token that made the request
    user_id  TEXT,
    group_id TEXT,
    data     TEXT NOT NULL               -- JSON: the event's own fields
);
CREATE INDEX events_by_user ON events (user_id, seq) WHERE user_id IS NOT NULL;

-- Small facts about the database itself, such as the role rules the roster was last derived with.
CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
) WITHOUT ROWID;

-- Webhook endpoints (push). Each one keeps its own cursor over the events table: `cursor` is the seq of the last
-- event it has been handed (delivered, or skipped as not matching its patterns). The events are written in the
-- transaction of the change they describe, so the cursor makes them an outbox per endpoint with nothing to copy.
-- The secret is kept in clear: it signs every delivery (HMAC), so it cannot be stored as a hash.
CREATE TABLE IF NOT EXISTS webhooks (
    id                    INTEGER PRIMARY KEY AUTOINCREMENT,
    url                   TEXT NOT NULL,
    events                TEXT NOT NULL,       -- JSON list of event-type patterns, e.g. ["member.*"]
    description           TEXT NOT NULL DEFAULT '',
    secret                TEXT NOT NULL,       -- whsec_<base64>, Standard Webhooks
    created               TEXT NOT NULL,
    cursor                INTEGER NOT NULL,    -- the seq of the last event handled
    state                 TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'failing')),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    failing_since         REAL,                -- unix time of the first failure in the current run of failures
    retry_at              REAL,                -- unix time before which the next attempt waits
    revision              INTEGER NOT NULL DEFAULT 0  -- bumped by an admin change the worker must not overwrite
);

-- Recent delivery attempts, kept per endpoint for `rollcall webhook deliveries` (the oldest are pruned).
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id  INTEGER NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL,
    at          TEXT NOT NULL,
    status      INTEGER,                       -- the HTTP status, or NULL when no answer came
    latency_ms  INTEGER NOT NULL,
    error       TEXT                           -- why it failed, when it did
);
CREATE INDEX IF NOT EXISTS webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
