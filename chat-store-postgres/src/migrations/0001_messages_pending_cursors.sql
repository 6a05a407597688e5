CREATE TABLE messages (
    conversation_id text COLLATE "C" NOT NULL,
    -- The message id with its top bit flipped (see src/ids.rs).
    message_id      bigint NOT NULL,
    sender_id       text COLLATE "C" NOT NULL,
    body            text NOT NULL,
    ts              bigint NOT NULL,
    -- Kept so that deleting a message finds its dedup key by primary key.
    client_msg_id   text COLLATE "C",
    PRIMARY KEY (conversation_id, message_id)
);

CREATE TABLE dedup (
    sender_id       text COLLATE "C" NOT NULL,
    client_msg_id   text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    message_id      bigint NOT NULL,
    PRIMARY KEY (sender_id, client_msg_id)
);

-- The conversation is part of the key so that two conversations may hold
-- the same message id, as the reference store allows.
CREATE TABLE pending (
    user_id         text COLLATE "C" NOT NULL,
    message_id      bigint NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    sender_id       text COLLATE "C" NOT NULL,
    PRIMARY KEY (user_id, message_id, conversation_id)
);
-- ack and clear_pending: one user's deliveries in one conversation.
CREATE INDEX pending_by_user_conversation ON pending (user_id, conversation_id, message_id);
-- remove and purge_delivered: who still waits for a message.
CREATE INDEX pending_by_message ON pending (conversation_id, message_id);

CREATE TABLE cursors (
    user_id         text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    delivered       bigint,
    read            bigint,
    PRIMARY KEY (user_id, conversation_id)
);

CREATE TABLE conversations (
    id          text COLLATE "C" PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('direct', 'group')),
    name        text,
    created_by  text COLLATE "C" NOT NULL,
    created_at  bigint NOT NULL
);

CREATE TABLE members (
    conversation_id text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX members_by_user ON members (user_id, conversation_id);

CREATE TABLE accounts (
    user_id       text COLLATE "C" PRIMARY KEY,
    username      text COLLATE "C" NOT NULL UNIQUE,
    password_hash text NOT NULL,
    display_name  text NOT NULL,
    created_at    bigint NOT NULL
);
