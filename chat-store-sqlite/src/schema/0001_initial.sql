-- Schema version 1: the data model of docs/storage.md in one file.
--
-- Message ids (message_id, ref_id, in_reply_to, last_id, cursors, joined)
-- are stored with their top bit flipped (src/ids.rs), so that they sort as
-- the u64 ids do. Kinds, roles and policies are the wire names ('text',
-- 'owner', 'since_join'), readable in the sqlite3 shell.
--
-- Tables keyed by text are WITHOUT ROWID: the row lives in its primary
-- key's b-tree, so a lookup by key is one b-tree search, not two.

CREATE TABLE accounts (
    user_id       TEXT NOT NULL PRIMARY KEY,
    -- The canonical (NFKC case-folded) name: the unique login key.
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    display_name  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE devices (
    device_id  TEXT NOT NULL PRIMARY KEY,
    user_id    TEXT NOT NULL,
    name       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    -- NULL until it first connects.
    last_seen  INTEGER
) WITHOUT ROWID;
-- A user's devices, oldest first.
CREATE INDEX devices_by_user ON devices (user_id, created_at, device_id);

CREATE TABLE blocks (
    blocker TEXT NOT NULL,
    blocked TEXT NOT NULL,
    since   INTEGER NOT NULL,
    PRIMARY KEY (blocker, blocked)
) WITHOUT ROWID;

CREATE TABLE conversations (
    conversation_id TEXT NOT NULL PRIMARY KEY,
    kind            TEXT NOT NULL,
    name            TEXT,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    join_policy     TEXT NOT NULL,
    history         TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE members (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    role            TEXT NOT NULL,
    joined          INTEGER NOT NULL,
    joined_at       INTEGER NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
-- A user's conversations.
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE bans (
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;

-- Invites by the SHA-256 of their code; the code itself is never stored.
CREATE TABLE invites (
    code_hash       TEXT NOT NULL PRIMARY KEY,
    conversation_id TEXT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    max_uses        INTEGER,
    uses            INTEGER NOT NULL,
    expires_at      INTEGER,
    revoked         INTEGER NOT NULL
) WITHOUT ROWID;

-- Each conversation's head: moved only by an append, in the same
-- transaction as its entry. purged_up_to and purged_seq remember how far
-- until_delivered retention deleted, so that a read cursor over deleted
-- entries still gets its seq.
CREATE TABLE heads (
    conversation_id TEXT NOT NULL PRIMARY KEY,
    last_id         INTEGER,
    seq             INTEGER NOT NULL,
    version         INTEGER NOT NULL,
    purged_up_to    INTEGER,
    purged_seq      INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

-- Each conversation's log, in id order. An edit, delete or reaction is an
-- entry of its own and also changes its target's body, edited, deleted and
-- reactions (JSON {user_id: emoji}, NULL when none) in the same step.
-- seq is the head's seq after this entry (the number of text entries up to
-- and including it), so the read_seq of any cursor is one step back in the
-- primary key.
CREATE TABLE entries (
    conversation_id TEXT NOT NULL,
    message_id      INTEGER NOT NULL,
    sender_id       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    body            TEXT NOT NULL,
    ts              INTEGER NOT NULL,
    ref_id          INTEGER,
    in_reply_to     INTEGER,
    edited          INTEGER NOT NULL DEFAULT 0,
    deleted         INTEGER NOT NULL DEFAULT 0,
    reactions       TEXT,
    seq             INTEGER NOT NULL,
    client_msg_id   TEXT,
    PRIMARY KEY (conversation_id, message_id)
) WITHOUT ROWID;
-- The dedup key (sender, client_msg_id) lives in its entry's row, so it
-- goes exactly when the entry goes (remove, purge).
CREATE UNIQUE INDEX entries_dedup ON entries (sender_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

CREATE TABLE user_cursors (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    delivered       INTEGER,
    read            INTEGER,
    read_seq        INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
-- The low-water mark of one conversation.
CREATE INDEX user_cursors_by_conversation ON user_cursors (conversation_id);

CREATE TABLE device_cursors (
    device_id       TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    delivered       INTEGER NOT NULL,
    PRIMARY KEY (device_id, conversation_id)
) WITHOUT ROWID;
CREATE INDEX device_cursors_by_conversation ON device_cursors (conversation_id);
