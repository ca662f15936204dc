-- Users and credentials: one table of users for every dialect, one of credentials with
-- a `kind` per dialect (see nestbox_core::users for the meaning of every column).
-- Same conventions as 0001_init.sql (INTEGER microsecond timestamps, 0/1 booleans).

CREATE TABLE users (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    username          TEXT    NOT NULL UNIQUE,
    -- argon2 PHC string; NULL = no password login.
    password_hash     TEXT,
    is_staff          INTEGER NOT NULL DEFAULT 0 CHECK (is_staff IN (0, 1)),
    is_active         INTEGER NOT NULL DEFAULT 1 CHECK (is_active IN (0, 1)),
    -- CAPE UserProfile.subscription, `N/<s|m|h|d>`; '' = unlimited.
    subscription      TEXT    NOT NULL DEFAULT '5/m',
    -- JSON array of role names (Assemblyline-style dialects).
    roles             TEXT    NOT NULL DEFAULT '[]',
    -- Input of the derived CAPE token; bumped on revoke.
    token_generation  INTEGER NOT NULL DEFAULT 0,
    created_on        INTEGER NOT NULL
);

-- Credentials. Only the SHA-256 of a secret is stored (hex), unique across kinds.
--   kind = 'cape'   : CAPE/DRF token (derived, one live per user), name/privileges ''.
--   kind = 'apikey' : Assemblyline API key `name:secret`, privileges ⊆ 'RWE', several
--                     per user, one live per (user, name).
CREATE TABLE tokens (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind          TEXT    NOT NULL,
    name          TEXT    NOT NULL DEFAULT '',
    secret_hash   TEXT    NOT NULL UNIQUE,
    privileges    TEXT    NOT NULL DEFAULT '',
    created_on    INTEGER NOT NULL,
    last_used_on  INTEGER,
    revoked_on    INTEGER
);
CREATE INDEX tokens_user_idx ON tokens (user_id, kind);
CREATE UNIQUE INDEX tokens_live_name_idx ON tokens (user_id, kind, name)
    WHERE revoked_on IS NULL;

-- Which user created a task (CAPE `user_id`). A side table rather than a tasks column so
-- the hot task queries stay as they are; no row = 0 = anonymous.
CREATE TABLE tasks_users (
    task_id  INTEGER PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL
) WITHOUT ROWID;
