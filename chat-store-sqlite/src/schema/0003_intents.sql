-- Sends to two shards that began (chat_core::store::Intent): written
-- before a mirrored direct conversation's first copy, deleted once the
-- second has the entry; the sharded store's reconciler pages through what
-- a crashed process left, by id.
CREATE TABLE intents (
    message_id      INTEGER NOT NULL,
    conversation_id TEXT NOT NULL,
    PRIMARY KEY (message_id, conversation_id)
) WITHOUT ROWID;
