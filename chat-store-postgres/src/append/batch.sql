-- A whole batch of appends as one set-based statement: all of it is
-- written, or the statement fails and nothing is (src/append/mod.rs then
-- writes the batch with append_entries, one append at a time, which
-- answers each refusal exactly). It fails when any append would be
-- refused: a head that moved (batch_refused), a missing target
-- (batch_refused), a taken dedup key or id, a cursor created meanwhile
-- (unique violation); the caller sends only batches whose appends agree
-- among themselves (src/append/batch.rs).
-- Parameters: eleven arrays, one element per append, in order.
WITH input AS (
    SELECT * FROM unnest($1::text[], $2::int8[], $3::int2[], $4::text[], $5::text[], $6::int8[],
                         $7::int8[], $8::int8[], $9::text[], $10::text[], $11::int8[])
        WITH ORDINALITY AS t(conversation_id, id, kind, sender, body, ts, ref, reply, key, device, expected, n)
), conv AS (
    -- Per conversation: its first append, its last id, what it adds to the head.
    SELECT conversation_id, min(n) AS first_n, max(id) AS last_id,
           count(*) FILTER (WHERE kind = 0) AS texts, count(*) FILTER (WHERE kind = 4) AS events
    FROM input GROUP BY conversation_id
), locked AS (
    -- The heads, locked in one order (no deadlock between batches), as
    -- they are now (a row lock waits for, and then reads, the newest).
    SELECT h.conversation_id, h.last_id, h.seq, h.version FROM heads h
    WHERE h.conversation_id IN (SELECT conversation_id FROM conv)
    ORDER BY h.conversation_id
    FOR UPDATE
), numbered AS (
    -- Each entry's seq (text entries counted from the head's) and prev
    -- (the entry before it in the batch, or the head's last).
    SELECT i.*,
           COALESCE(l.seq, 0)
             + count(*) FILTER (WHERE i.kind = 0) OVER (PARTITION BY i.conversation_id ORDER BY i.n) AS seq,
           COALESCE(lag(i.id) OVER (PARTITION BY i.conversation_id ORDER BY i.n), l.last_id) AS prev
    FROM input i LEFT JOIN locked l ON l.conversation_id = i.conversation_id
), bad AS (
    -- A conversation whose first append does not follow its head (the
    -- later ones follow the first: the caller checked).
    SELECT 1 FROM conv c JOIN input f ON f.n = c.first_n
    LEFT JOIN locked l ON l.conversation_id = c.conversation_id
    WHERE f.expected <> COALESCE(l.version, 0) OR f.id <= l.last_id
), targets AS (
    -- The targets of edits, deletes and reactions, locked against a purge.
    SELECT e.conversation_id, e.message_id, e.deleted FROM entries e
    JOIN input i ON e.conversation_id = i.conversation_id AND e.message_id = i.ref
    WHERE i.kind IN (1, 2, 3)
    FOR NO KEY UPDATE OF e
), stored AS (
    -- Plain insert: a taken key (entries_dedup) or id fails the statement.
    INSERT INTO entries (conversation_id, message_id, kind, sender_id, body, ts, ref_id,
                         in_reply_to, seq, client_msg_id)
    SELECT conversation_id, id, kind, sender, body, ts, ref, reply, seq, key FROM numbered
), moved AS (
    UPDATE heads h SET last_id = c.last_id, seq = h.seq + c.texts, version = h.version + c.events
    FROM conv c WHERE h.conversation_id = c.conversation_id
), created AS (
    -- New conversations; one created meanwhile fails the statement.
    INSERT INTO heads (conversation_id, last_id, seq, version)
    SELECT c.conversation_id, c.last_id, c.texts, c.events FROM conv c
    WHERE NOT EXISTS (SELECT 1 FROM locked l WHERE l.conversation_id = c.conversation_id)
), edited AS (
    UPDATE entries e SET body = i.body, edited = true FROM input i
    WHERE i.kind = 1 AND e.conversation_id = i.conversation_id AND e.message_id = i.ref
      AND NOT e.deleted
), deleted AS (
    UPDATE entries e SET body = '', deleted = true, edited = false FROM input i
    WHERE i.kind = 2 AND e.conversation_id = i.conversation_id AND e.message_id = i.ref
), unreacted AS (
    DELETE FROM reactions r USING input i
    WHERE r.conversation_id = i.conversation_id AND r.message_id = i.ref
      AND (i.kind = 2 OR (i.kind = 3 AND i.body = '' AND r.user_id = i.sender))
), reacted AS (
    INSERT INTO reactions AS r (conversation_id, message_id, user_id, emoji)
    SELECT i.conversation_id, i.ref, i.sender, i.body FROM input i
    JOIN targets t ON t.conversation_id = i.conversation_id AND t.message_id = i.ref
    WHERE i.kind = 3 AND i.body <> '' AND NOT t.deleted
    ON CONFLICT (conversation_id, message_id, user_id) DO UPDATE SET emoji = EXCLUDED.emoji
), users_moved AS (
    -- The sender has read what it writes; its delivered cursor moves only
    -- when it covered the entry before (a sender appends at most once per
    -- conversation in a batch given here, see batch.rs).
    UPDATE user_cursors c
    SET delivered = CASE WHEN x.prev IS NULL OR c.delivered >= x.prev
                         THEN GREATEST(c.delivered, x.id) ELSE c.delivered END,
        read = GREATEST(c.read, x.id),
        read_seq = GREATEST(c.read_seq, x.seq)
    FROM numbered x
    WHERE c.user_id = x.sender AND c.conversation_id = x.conversation_id
), users_new AS (
    -- A sender's first cursor there; one created meanwhile fails the statement.
    INSERT INTO user_cursors (user_id, conversation_id, delivered, read, read_seq)
    SELECT x.sender, x.conversation_id, CASE WHEN x.prev IS NULL THEN x.id END, x.id, x.seq
    FROM numbered x
    WHERE NOT EXISTS (SELECT 1 FROM user_cursors c
                      WHERE c.user_id = x.sender AND c.conversation_id = x.conversation_id)
), devices_moved AS (
    -- The sending device's cursor, on the same condition.
    UPDATE device_cursors c SET delivered = GREATEST(c.delivered, x.id), user_id = x.sender
    FROM numbered x
    WHERE c.device_id = x.device AND c.conversation_id = x.conversation_id
      AND (x.prev IS NULL OR c.delivered >= x.prev)
), devices_new AS (
    INSERT INTO device_cursors (device_id, conversation_id, user_id, delivered)
    SELECT x.device, x.conversation_id, x.sender, x.id FROM numbered x
    WHERE x.device IS NOT NULL AND x.prev IS NULL
      AND NOT EXISTS (SELECT 1 FROM device_cursors c
                      WHERE c.device_id = x.device AND c.conversation_id = x.conversation_id)
)
-- One row per append: its position and prev; the refusal, if any, fails
-- the whole statement (and so every write above).
SELECT n::int4, prev,
       (SELECT batch_refused('a head moved or a target is missing') FROM (
            SELECT 1 FROM bad
            UNION ALL
            SELECT 1 WHERE (SELECT count(*) FROM targets)
                         <> (SELECT count(*) FROM input WHERE kind IN (1, 2, 3))
        ) AS refused LIMIT 1)
FROM numbered
ORDER BY n
