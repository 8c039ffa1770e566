-- rollcall's database on PostgreSQL, at schema version 4: the same tables as schema.sql plus SQLite's migration
-- steps 2-4, written once for a database that never held an older version. The version lives in the one-row table
-- rollcall_schema; app/storage/postgres/migrations.py applies this to an empty database and then every later step
-- (numbered as SQLite's are: a release that adds step 5 to SQLite adds a step 5 here).
-- Differences from SQLite, each for a reason: documents are jsonb; `doc_folded` is the document with every string
-- value case-folded by app/protocol/folding.py (written by rollcall, not by SQL: PostgreSQL's lower() is not
-- Unicode case folding), so that a case-insensitive filter compares folded text exactly as SQLite's scim_fold does;
-- `rowid` is an identity column, the stable order of keyset pages (SQLite's rowid). Timestamps stay ISO-8601 text
-- in one fixed format, so they compare as strings exactly as on SQLite.

CREATE TABLE users (
    rowid          BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id             TEXT PRIMARY KEY,
    user_name      TEXT NOT NULL,
    user_name_key  TEXT NOT NULL,          -- userName case-folded: uniqueness and `userName eq` lookups
    external_id    TEXT,
    display_name   TEXT,
    active         INTEGER NOT NULL DEFAULT 1,
    doc            JSONB NOT NULL,
    doc_folded     JSONB NOT NULL,
    created        TEXT NOT NULL,
    last_modified  TEXT NOT NULL,
    version        INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX users_user_name_key ON users (user_name_key);
CREATE INDEX users_external_id ON users (external_id);
CREATE INDEX users_last_modified ON users (last_modified);

CREATE TABLE groups (
    rowid             BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    id                TEXT PRIMARY KEY,
    display_name      TEXT NOT NULL,
    display_name_key  TEXT NOT NULL,       -- displayName case-folded: uniqueness and `displayName eq`
    external_id       TEXT,
    doc               JSONB NOT NULL,
    doc_folded        JSONB NOT NULL,
    created           TEXT NOT NULL,
    last_modified     TEXT NOT NULL,
    version           INTEGER NOT NULL DEFAULT 1
);
CREATE UNIQUE INDEX groups_display_name_key ON groups (display_name_key);
CREATE INDEX groups_external_id ON groups (external_id);
CREATE INDEX groups_last_modified ON groups (last_modified);

CREATE TABLE group_members (
    group_id  TEXT NOT NULL REFERENCES groups (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    added     TEXT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id, group_id);

-- Bearer tokens, stored only as SHA-256 hashes. Read on every request, never cached per process: a revocation made
-- through one instance is refused by every other on its next request.
CREATE TABLE tokens (
    name            TEXT PRIMARY KEY,
    hash            TEXT NOT NULL UNIQUE,
    created         TEXT NOT NULL,
    revoked         TEXT,
    scopes          TEXT NOT NULL DEFAULT 'scim roster',
    expires         TEXT,
    last_used       TEXT,
    previous_hash   TEXT UNIQUE,
    previous_until  TEXT
);

CREATE TABLE user_emails (
    email_key  TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    PRIMARY KEY (email_key, user_id)
);
CREATE INDEX user_emails_by_user ON user_emails (user_id);

CREATE TABLE roster (
    user_id        TEXT PRIMARY KEY,
    user_name      TEXT NOT NULL,
    role           TEXT NOT NULL CHECK (role IN ('admin', 'member', 'guest')),
    since          TEXT NOT NULL,
    user_name_key  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX roster_by_name ON roster (user_name_key, user_id);

-- The change feed, oldest first, written in the transaction of the change it describes. Appends take a
-- transaction-scoped advisory lock (app/storage/postgres), so events commit in seq order and a webhook cursor that
-- has passed seq N never misses an event below N that committed later.
CREATE TABLE events (
    seq      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       TEXT NOT NULL,
    type     TEXT NOT NULL,
    actor    TEXT NOT NULL,
    user_id  TEXT,
    group_id TEXT,
    data     JSONB NOT NULL,
    user_name_key TEXT           -- data.userName folded (fold_case), when it names one: the roster at a moment
);
CREATE INDEX events_by_user ON events (user_id, seq) WHERE user_id IS NOT NULL;
CREATE INDEX events_members_by_time ON events (type, at) WHERE type IN ('member.joined', 'member.left');
CREATE INDEX events_member_at ON events (at, seq) WHERE type IN ('member.joined', 'member.left', 'member.role_changed');

CREATE TABLE settings (
    key    TEXT PRIMARY KEY,
    value  TEXT NOT NULL
);

CREATE TABLE holds (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    opened     TEXT NOT NULL,
    cause      TEXT NOT NULL CHECK (cause IN ('mass-removal', 'last-admin')),
    actor      TEXT NOT NULL,
    change     JSONB NOT NULL,
    state      TEXT NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'approved', 'cancelled')),
    closed     TEXT,
    closed_by  TEXT
);
CREATE INDEX holds_open ON holds (id) WHERE state = 'open';
CREATE TABLE held (
    hold_id    BIGINT NOT NULL REFERENCES holds (id),
    user_id    TEXT NOT NULL,
    user_name  TEXT NOT NULL,
    role       TEXT NOT NULL,
    becomes    TEXT,
    reason     TEXT NOT NULL,
    outcome    TEXT CHECK (outcome IN ('applied', 'released')),
    PRIMARY KEY (hold_id, user_id)
);
CREATE UNIQUE INDEX held_now ON held (user_id) WHERE outcome IS NULL;

-- Webhook endpoints, each with its cursor over the events table (an outbox per endpoint). A worker claims an
-- endpoint with SELECT ... FOR UPDATE SKIP LOCKED, so one instance at a time delivers its events, in order.
CREATE TABLE webhooks (
    id                    BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    url                   TEXT NOT NULL,
    events                JSONB NOT NULL,
    description           TEXT NOT NULL DEFAULT '',
    secret                TEXT NOT NULL,
    created               TEXT NOT NULL,
    cursor                BIGINT NOT NULL,
    state                 TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'failing')),
    consecutive_failures  INTEGER NOT NULL DEFAULT 0,
    failing_since         DOUBLE PRECISION,
    retry_at              DOUBLE PRECISION,
    revision              INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE webhook_deliveries (
    id          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id  BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    seq         BIGINT NOT NULL,
    at          TEXT NOT NULL,
    status      INTEGER,
    latency_ms  INTEGER NOT NULL,
    error       TEXT
);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, id);
