-- Version 2: each conversation's log of entries with a conditional head,
-- delivery and read state as cursors (per user and per device) instead of
-- one pending row per recipient, members with roles and join points, bans,
-- invites, devices and blocks (docs/storage.md).
--
-- Upgrades a version 1 schema in place, keeping its data:
-- - messages become text entries, numbered (seq) in id order per
--   conversation; each conversation gets its head;
-- - dedup keys move onto their entries (a unique index on the sender and
--   client_msg_id of entries replaces the dedup table, so a key lives
--   exactly as long as its entry: purges and removes drop it with it);
-- - read and delivered cursors become user cursors (read_seq computed);
--   pending rows are dropped: a user with pending messages in a
--   conversation gets the delivered cursor just below the oldest of them
--   (so sync sends them again), a member with none has everything;
-- - accounts stay; conversations get the default join policy and history
--   visibility; members become plain members since the start, except each
--   group's creator, who becomes its owner.
--
-- Message ids keep their top bit flipped (src/ids.rs), in every column
-- that holds one (message_id, last_id, ref_id, in_reply_to, joined,
-- delivered, read).
--
-- Entry kinds, as `kind`: 0 text, 1 edit, 2 delete, 3 reaction,
-- 4 group event (src/rows.rs maps them).

-- The log. `seq` is the head's seq at this entry: the number of text
-- entries up to and including it, for every kind (an event carries the
-- count of the text entries before it), so the newest entry at or below
-- any id gives the read_seq of a read cursor there, from the primary key
-- alone (INCLUDE (seq): an index-only scan).
CREATE TABLE entries (
    conversation_id text COLLATE "C" NOT NULL,
    message_id      bigint NOT NULL,
    kind            smallint NOT NULL CHECK (kind BETWEEN 0 AND 4),
    sender_id       text COLLATE "C" NOT NULL,
    body            text NOT NULL,
    ts              bigint NOT NULL,
    ref_id          bigint,
    in_reply_to     bigint,
    seq             bigint NOT NULL,
    edited          boolean NOT NULL DEFAULT false,
    deleted         boolean NOT NULL DEFAULT false,
    -- The sender's idempotency key (see entries_dedup).
    client_msg_id   text COLLATE "C",
    PRIMARY KEY (conversation_id, message_id) INCLUDE (seq)
);

-- A message keeps its key only if the dedup table names it (the table is
-- what version 1 deduplicated by).
INSERT INTO entries (conversation_id, message_id, kind, sender_id, body, ts, seq, client_msg_id)
SELECT m.conversation_id, m.message_id, 0, m.sender_id, m.body, m.ts,
       row_number() OVER (PARTITION BY m.conversation_id ORDER BY m.message_id),
       d.client_msg_id
FROM messages m
LEFT JOIN dedup d
  ON d.sender_id = m.sender_id AND d.client_msg_id = m.client_msg_id
 AND d.conversation_id = m.conversation_id AND d.message_id = m.message_id
ORDER BY m.conversation_id, m.message_id;

-- The dedup keys: (sender, client_msg_id) names one entry. A second append
-- with the same key finds the first here; two racing ones meet on this
-- index, where the second waits for the first to commit.
CREATE UNIQUE INDEX entries_dedup ON entries (sender_id, client_msg_id)
    WHERE client_msg_id IS NOT NULL;

-- One row per conversation that ever had an entry. Only appends change it,
-- each holding its row lock (which serialises appends per conversation).
-- No indexed column ever changes, and half of each page stays free, so its
-- updates are HOT (no index writes).
CREATE TABLE heads (
    conversation_id text COLLATE "C" PRIMARY KEY,
    last_id         bigint,
    seq             bigint NOT NULL DEFAULT 0,
    version         bigint NOT NULL DEFAULT 0
) WITH (fillfactor = 50);

INSERT INTO heads (conversation_id, last_id, seq, version)
SELECT conversation_id, max(message_id), count(*), 0
FROM messages
GROUP BY conversation_id;

-- The seq of the newest text entry purged so far, per conversation: a read
-- cursor over purged entries still gets its read_seq. Apart from heads so
-- that a purge never waits for (or blocks) the appends' head lock.
CREATE TABLE purged (
    conversation_id text COLLATE "C" PRIMARY KEY,
    seq             bigint NOT NULL
);

-- Reactions: one emoji per user and message, set and removed by reaction
-- entries, dropped by a delete of the message. A table rather than a map
-- on the message row, so that a reaction writes one small row whatever
-- the message's reaction count.
CREATE TABLE reactions (
    conversation_id text COLLATE "C" NOT NULL,
    message_id      bigint NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    emoji           text NOT NULL,
    PRIMARY KEY (conversation_id, message_id, user_id)
);

-- Delivered and read cursors per user and conversation. The cursors are not
-- indexed, so moving them is a HOT update.
CREATE TABLE user_cursors (
    user_id         text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    delivered       bigint,
    read            bigint,
    read_seq        bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, conversation_id)
) WITH (fillfactor = 80);
-- conversation_cursors: the low-water mark of until_delivered retention.
CREATE INDEX user_cursors_by_conversation ON user_cursors (conversation_id);

INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq)
SELECT k.user_id, k.conversation_id, k.delivered, k.read,
       COALESCE((
           SELECT e.seq FROM entries e
           WHERE e.conversation_id = k.conversation_id AND e.message_id <= k.read
           ORDER BY e.message_id DESC LIMIT 1
       ), 0)
FROM (
    SELECT u.user_id, u.conversation_id, c.read,
           CASE
               -- Pending messages: delivered up to the entry before the oldest.
               WHEN p.oldest IS NOT NULL THEN (
                   SELECT max(e.message_id) FROM entries e
                   WHERE e.conversation_id = u.conversation_id AND e.message_id < p.oldest
               )
               -- A member with nothing pending had everything.
               WHEN m.user_id IS NOT NULL THEN GREATEST(c.delivered, h.last_id)
               ELSE c.delivered
           END AS delivered
    FROM (
        SELECT user_id, conversation_id FROM cursors
        UNION SELECT user_id, conversation_id FROM members
        UNION SELECT user_id, conversation_id FROM pending
    ) u
    LEFT JOIN cursors c ON c.user_id = u.user_id AND c.conversation_id = u.conversation_id
    LEFT JOIN members m ON m.user_id = u.user_id AND m.conversation_id = u.conversation_id
    LEFT JOIN heads h ON h.conversation_id = u.conversation_id
    LEFT JOIN (
        SELECT user_id, conversation_id, min(message_id) AS oldest
        FROM pending GROUP BY user_id, conversation_id
    ) p ON p.user_id = u.user_id AND p.conversation_id = u.conversation_id
) k
WHERE k.delivered IS NOT NULL OR k.read IS NOT NULL;

-- Delivered cursors per device and conversation (user_id is the device's).
CREATE TABLE device_cursors (
    device_id       text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    delivered       bigint NOT NULL,
    PRIMARY KEY (device_id, conversation_id)
) WITH (fillfactor = 80);
-- conversation_cursors: the low-water mark of until_delivered retention.
CREATE INDEX device_cursors_by_conversation ON device_cursors (conversation_id);

DROP TABLE pending;
DROP TABLE cursors;
DROP TABLE messages;
DROP TABLE dedup;

-- Groups' settings, and a member count kept by the membership calls (so
-- that counting a 100,000-member group reads one row).
ALTER TABLE conversations
    ADD COLUMN join_policy text NOT NULL DEFAULT 'invite' CHECK (join_policy IN ('invite', 'open')),
    ADD COLUMN history text NOT NULL DEFAULT 'since_join' CHECK (history IN ('since_join', 'all')),
    ADD COLUMN member_count bigint NOT NULL DEFAULT 0;

-- Roles and join points. `joined` is a message id (flipped): the
-- default is MessageId(0), a founding member.
ALTER TABLE members
    ADD COLUMN role text NOT NULL DEFAULT 'member' CHECK (role IN ('member', 'admin', 'owner')),
    ADD COLUMN joined bigint NOT NULL DEFAULT -9223372036854775808,
    ADD COLUMN joined_at bigint NOT NULL DEFAULT 0;

UPDATE members m
SET joined_at = c.created_at,
    role = CASE WHEN c.kind = 'group' AND m.user_id = c.created_by THEN 'owner' ELSE 'member' END
FROM conversations c
WHERE c.id = m.conversation_id;

UPDATE conversations c
SET member_count = n.count
FROM (SELECT conversation_id, count(*) AS count FROM members GROUP BY conversation_id) n
WHERE n.conversation_id = c.id;

-- A user's memberships with everything `memberships` answers, read from
-- the index alone.
DROP INDEX members_by_user;
CREATE INDEX members_by_user ON members (user_id, conversation_id) INCLUDE (role, joined, joined_at);

-- Users an owner or admin removed and nobody added since.
CREATE TABLE bans (
    conversation_id text COLLATE "C" NOT NULL,
    user_id         text COLLATE "C" NOT NULL,
    PRIMARY KEY (conversation_id, user_id)
);

-- Invites by the SHA-256 of their code (the code itself is never stored).
CREATE TABLE invites (
    code_hash       text COLLATE "C" PRIMARY KEY,
    conversation_id text COLLATE "C" NOT NULL,
    created_by      text COLLATE "C" NOT NULL,
    created_at      bigint NOT NULL,
    max_uses        integer CHECK (max_uses >= 0),
    uses            integer NOT NULL DEFAULT 0,
    expires_at      bigint,
    revoked         boolean NOT NULL DEFAULT false
);

CREATE TABLE devices (
    device_id  text COLLATE "C" PRIMARY KEY,
    user_id    text COLLATE "C" NOT NULL,
    name       text NOT NULL,
    created_at bigint NOT NULL,
    last_seen  bigint
);
-- A user's devices, oldest first.
CREATE INDEX devices_by_user ON devices (user_id, created_at, device_id);

CREATE TABLE blocks (
    blocker text COLLATE "C" NOT NULL,
    blocked text COLLATE "C" NOT NULL,
    since   bigint NOT NULL,
    PRIMARY KEY (blocker, blocked)
);

-- Raised by the set-based append statement (src/append/batch.sql) when
-- its batch cannot be written whole: nothing of it is then written, and
-- the batch is written again by append_entries, one append at a time.
CREATE FUNCTION batch_refused(reason text) RETURNS integer
LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION USING ERRCODE = 'CH409', MESSAGE = 'append batch refused: ' || reason;
END
$$;

-- Appends, in order, in one call: each is checked and written as
-- MessageStore::append promises (src/append/mod.rs explains the steps).
-- One row per append comes back:
--   status 0 stored (r_prev: the head's last_id before it),
--          1 duplicate (the first entry's columns),
--          2 conflict (r_last, r_seq, r_version: the head as it is),
--          3 the target of an event is not in the conversation,
--          4 the key's holder vanished while this append ran (retry).
-- Nothing is written for statuses 1 to 4.
CREATE FUNCTION append_entries(
    p_conversation text[], p_id bigint[], p_kind smallint[], p_sender text[],
    p_body text[], p_ts bigint[], p_ref bigint[], p_reply bigint[],
    p_key text[], p_device text[], p_expected bigint[])
RETURNS TABLE (
    r_n integer, r_status smallint, r_prev bigint,
    r_last bigint, r_seq bigint, r_version bigint,
    e_conversation text, e_id bigint, e_kind smallint, e_sender text, e_body text,
    e_ts bigint, e_ref bigint, e_reply bigint, e_edited boolean, e_deleted boolean,
    e_reactions jsonb)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
DECLARE
    a record;
    v_last bigint;
    v_seq bigint;
    v_version bigint;
    v_deleted boolean;
    v_new_seq bigint;
BEGIN
    FOR a IN
        SELECT * FROM unnest(p_conversation, p_id, p_kind, p_sender, p_body, p_ts, p_ref,
                             p_reply, p_key, p_device, p_expected)
            WITH ORDINALITY AS t(conversation_id, id, kind, sender, body, ts, ref, reply,
                                 key, device, expected, n)
        ORDER BY n
    LOOP
        -- 1. The head, locked until commit: appends to one conversation
        --    take turns here, so each sees the one before it.
        SELECT h.last_id, h.seq, h.version INTO v_last, v_seq, v_version
        FROM heads h WHERE h.conversation_id = a.conversation_id FOR UPDATE;
        IF NOT FOUND THEN
            INSERT INTO heads (conversation_id) VALUES (a.conversation_id) ON CONFLICT DO NOTHING;
            SELECT h.last_id, h.seq, h.version INTO v_last, v_seq, v_version
            FROM heads h WHERE h.conversation_id = a.conversation_id FOR UPDATE;
        END IF;

        -- 2. A known key answers its first entry, before any head check
        --    (under the lock: a racing append of the same key into this
        --    conversation has committed by now).
        IF a.key IS NOT NULL THEN
            RETURN QUERY
                SELECT a.n::integer, 1::smallint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                       e.conversation_id::text, e.message_id, e.kind, e.sender_id::text, e.body, e.ts,
                       e.ref_id, e.in_reply_to, e.edited, e.deleted,
                       (SELECT jsonb_object_agg(r.user_id, r.emoji) FROM reactions r
                        WHERE r.conversation_id = e.conversation_id AND r.message_id = e.message_id)
                FROM entries e
                WHERE e.sender_id = a.sender AND e.client_msg_id = a.key;
            IF FOUND THEN
                CONTINUE;
            END IF;
        END IF;

        -- 3. The condition: an id above the head, at the head's version.
        IF (v_last IS NOT NULL AND a.id <= v_last) OR v_version <> a.expected THEN
            RETURN QUERY SELECT a.n::integer, 2::smallint, NULL::bigint, v_last, v_seq, v_version,
                NULL::text, NULL::bigint, NULL::smallint, NULL::text, NULL::text, NULL::bigint,
                NULL::bigint, NULL::bigint, NULL::boolean, NULL::boolean, NULL::jsonb;
            CONTINUE;
        END IF;

        -- 4. An event's target, locked against a purge or remove until commit.
        IF a.kind IN (1, 2, 3) THEN
            SELECT e.deleted INTO v_deleted FROM entries e
            WHERE e.conversation_id = a.conversation_id AND e.message_id = a.ref
            FOR NO KEY UPDATE;
            IF NOT FOUND THEN
                RETURN QUERY SELECT a.n::integer, 3::smallint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                    NULL::text, NULL::bigint, NULL::smallint, NULL::text, NULL::text, NULL::bigint,
                    NULL::bigint, NULL::bigint, NULL::boolean, NULL::boolean, NULL::jsonb;
                CONTINUE;
            END IF;
        END IF;

        -- 5. The entry, with its key. The key is taken here only by an
        --    append of the same key into another conversation (this one
        --    was checked under the lock): the insert waits for it to
        --    commit, stores nothing, and this append answers that entry.
        v_new_seq := v_seq + (a.kind = 0)::integer;
        INSERT INTO entries (conversation_id, message_id, kind, sender_id, body, ts, ref_id,
                             in_reply_to, seq, client_msg_id)
        VALUES (a.conversation_id, a.id, a.kind, a.sender, a.body, a.ts, a.ref, a.reply,
                v_new_seq, a.key)
        ON CONFLICT (sender_id, client_msg_id) WHERE client_msg_id IS NOT NULL DO NOTHING;
        IF NOT FOUND THEN
            RETURN QUERY
                SELECT a.n::integer, 1::smallint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                       e.conversation_id::text, e.message_id, e.kind, e.sender_id::text, e.body, e.ts,
                       e.ref_id, e.in_reply_to, e.edited, e.deleted,
                       (SELECT jsonb_object_agg(r.user_id, r.emoji) FROM reactions r
                        WHERE r.conversation_id = e.conversation_id AND r.message_id = e.message_id)
                FROM entries e
                WHERE e.sender_id = a.sender AND e.client_msg_id = a.key;
            IF NOT FOUND THEN
                RETURN QUERY SELECT a.n::integer, 4::smallint, NULL::bigint, NULL::bigint, NULL::bigint, NULL::bigint,
                    NULL::text, NULL::bigint, NULL::smallint, NULL::text, NULL::text, NULL::bigint,
                    NULL::bigint, NULL::bigint, NULL::boolean, NULL::boolean, NULL::jsonb;
            END IF;
            CONTINUE;
        END IF;

        -- 6. Every check passed, the entry is in: the event's effect on its target
        --    (chat_core::Message::apply) ...
        IF a.kind = 1 THEN
            UPDATE entries SET body = a.body, edited = true
            WHERE conversation_id = a.conversation_id AND message_id = a.ref AND NOT deleted;
        ELSIF a.kind = 2 THEN
            UPDATE entries SET body = '', deleted = true, edited = false
            WHERE conversation_id = a.conversation_id AND message_id = a.ref;
            DELETE FROM reactions WHERE conversation_id = a.conversation_id AND message_id = a.ref;
        ELSIF a.kind = 3 AND NOT v_deleted THEN
            IF a.body = '' THEN
                DELETE FROM reactions
                WHERE conversation_id = a.conversation_id AND message_id = a.ref AND user_id = a.sender;
            ELSE
                INSERT INTO reactions AS r (conversation_id, message_id, user_id, emoji)
                VALUES (a.conversation_id, a.ref, a.sender, a.body)
                ON CONFLICT (conversation_id, message_id, user_id) DO UPDATE SET emoji = EXCLUDED.emoji;
            END IF;
        END IF;

        -- ... the head ...
        UPDATE heads SET last_id = a.id, seq = v_new_seq, version = v_version + (a.kind = 4)::integer
        WHERE conversation_id = a.conversation_id;

        -- ... and the sender's cursors. It has read what it writes (read
        -- moves); its delivered cursors (the user's, the device's) move only
        -- when they covered the entry before this one: a device behind on
        -- others' entries must not skip them (it gets its own entry back at
        -- its next sync).
        INSERT INTO user_cursors AS c (user_id, conversation_id, delivered, read, read_seq)
        VALUES (a.sender, a.conversation_id, CASE WHEN v_last IS NULL THEN a.id END, a.id, v_new_seq)
        ON CONFLICT (user_id, conversation_id) DO UPDATE
        SET delivered = CASE WHEN v_last IS NULL OR c.delivered >= v_last
                             THEN GREATEST(c.delivered, a.id) ELSE c.delivered END,
            read = GREATEST(c.read, EXCLUDED.read),
            read_seq = GREATEST(c.read_seq, EXCLUDED.read_seq);
        IF a.device IS NOT NULL THEN
            IF v_last IS NULL THEN
                INSERT INTO device_cursors AS c (device_id, conversation_id, user_id, delivered)
                VALUES (a.device, a.conversation_id, a.sender, a.id)
                ON CONFLICT (device_id, conversation_id) DO UPDATE
                SET delivered = GREATEST(c.delivered, EXCLUDED.delivered), user_id = EXCLUDED.user_id;
            ELSE
                UPDATE device_cursors c SET delivered = GREATEST(c.delivered, a.id), user_id = a.sender
                WHERE c.device_id = a.device AND c.conversation_id = a.conversation_id
                  AND c.delivered >= v_last;
            END IF;
        END IF;

        RETURN QUERY SELECT a.n::integer, 0::smallint, v_last, NULL::bigint, NULL::bigint, NULL::bigint,
            NULL::text, NULL::bigint, NULL::smallint, NULL::text, NULL::text, NULL::bigint,
            NULL::bigint, NULL::bigint, NULL::boolean, NULL::boolean, NULL::jsonb;
    END LOOP;
END
$$;

-- An ack: the device's cursor and the user's delivered cursor move forward
-- (never back), locked in the order appends lock them (user, then device),
-- so an ack and an append never deadlock. Answers both before, and the
-- user's after.
CREATE FUNCTION ack_cursors(
    p_user text, p_device text, p_conversation text, p_up_to bigint,
    OUT device_before bigint, OUT user_before bigint, OUT user_after bigint)
LANGUAGE plpgsql
SET search_path FROM CURRENT
AS $$
BEGIN
    SELECT c.delivered INTO user_before FROM user_cursors c
    WHERE c.user_id = p_user AND c.conversation_id = p_conversation FOR UPDATE;
    IF FOUND THEN
        user_after := GREATEST(user_before, p_up_to);
        IF user_before IS DISTINCT FROM user_after THEN
            UPDATE user_cursors c SET delivered = user_after
            WHERE c.user_id = p_user AND c.conversation_id = p_conversation;
        END IF;
    ELSE
        INSERT INTO user_cursors AS c (user_id, conversation_id, delivered)
        VALUES (p_user, p_conversation, p_up_to)
        ON CONFLICT (user_id, conversation_id) DO UPDATE
        SET delivered = GREATEST(c.delivered, EXCLUDED.delivered)
        RETURNING c.delivered INTO user_after;
    END IF;

    SELECT c.delivered INTO device_before FROM device_cursors c
    WHERE c.device_id = p_device AND c.conversation_id = p_conversation FOR UPDATE;
    IF NOT FOUND THEN
        INSERT INTO device_cursors AS c (device_id, conversation_id, user_id, delivered)
        VALUES (p_device, p_conversation, p_user, p_up_to)
        ON CONFLICT (device_id, conversation_id) DO UPDATE
        SET delivered = GREATEST(c.delivered, EXCLUDED.delivered);
    ELSIF device_before < p_up_to THEN
        UPDATE device_cursors c SET delivered = p_up_to
        WHERE c.device_id = p_device AND c.conversation_id = p_conversation;
    END IF;
END
$$;
