-- rollcall's database at schema version 1, applied to an empty file on first start; the version lives in
-- PRAGMA user_version, and MIGRATIONS in app/storage/database.py bring it (and any older file) up to date.
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
-- Migration 3 (database.MIGRATIONS) adds to tokens: scopes ('scim roster' by default, space-separated), expires,
-- last_used (written at most once a minute per token), previous_hash and previous_until (a rotated-out value
-- that works until then); the table user_emails (email_key: an e-mail address case-folded, user_id), kept in step
-- with every write of a user, for forward auth's point lookup; and the index events_member_at, for the roster at
-- a moment. Version 1 stays as it shipped: a new file gets it, then each migration in turn.

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
