//! The statements over delivery and read cursors: `user_cursors` (per user
//! and conversation) and `device_cursors` (per device and conversation).
//! Each is one statement that touches the rows of its arguments only: by
//! primary key, by the device (the primary key's prefix) or by the
//! conversation (`*_by_conversation`). Cursors only move forward
//! (`GREATEST`, or a `WHERE` that refuses to go back).

/// One user's cursors in one conversation, with one device's (`$3`, may be
/// NULL) beside them.
pub(crate) const CURSORS: &str = r#"
SELECT u.delivered, u.read, u.read_seq,
       (SELECT d.delivered FROM device_cursors d
        WHERE d.device_id = $3::text AND d.conversation_id = $2::text)
FROM (SELECT 1) AS one
LEFT JOIN user_cursors u ON u.user_id = $1::text AND u.conversation_id = $2::text
"#;

/// One user's cursors in a list of conversations, in its order (no row
/// where it has none): one probe of the primary key per element, as
/// `log::HEADS`.
pub(crate) const USER_CURSORS: &str = "SELECT c.n, u.delivered, u.read, u.read_seq \
     FROM unnest($2::text[]) WITH ORDINALITY AS c(id, n) \
     CROSS JOIN LATERAL (SELECT delivered, read, read_seq FROM user_cursors \
                         WHERE user_id = $1::text AND conversation_id = c.id LIMIT 1) AS u";

/// Every cursor of one device: the primary key's prefix.
pub(crate) const DEVICE_CURSORS: &str = "SELECT conversation_id, delivered FROM device_cursors \
     WHERE device_id = $1::text ORDER BY conversation_id";

/// Every device cursor and every user's delivered cursor in one
/// conversation, by the `*_by_conversation` indexes (device_id '' for the
/// users' own).
pub(crate) const CONVERSATION_CURSORS: &str = r#"
SELECT user_id, device_id, delivered FROM device_cursors WHERE conversation_id = $1::text
UNION ALL
SELECT user_id, '', delivered FROM user_cursors
WHERE conversation_id = $1::text AND delivered IS NOT NULL
"#;

/// The schema's `ack_cursors` function: both cursors forward, locked in
/// the order appends lock them, with their values before.
pub(crate) const ACK: &str = "SELECT device_before, user_before, user_after \
     FROM ack_cursors($1::text, $2::text, $3::text, $4::int8)";

/// The read cursor forward to `$3` with its read_seq, and the cursor it
/// had. The read_seq is the head's seq when `$3` is at or past the head,
/// else the `seq` of the newest entry at or below `$3` (every entry carries
/// the count of text entries up to it: one step backwards in the primary
/// key, whose INCLUDE (seq) answers it without the table), or the seq
/// purged so far when that is higher.
pub(crate) const MARK_READ: &str = r#"
WITH before AS (
    SELECT read FROM user_cursors WHERE user_id = $1::text AND conversation_id = $2::text
    FOR UPDATE
), seq AS (
    SELECT CASE
        WHEN h.last_id IS NOT NULL AND $3::int8 >= h.last_id THEN h.seq
        ELSE GREATEST(
            (SELECT e.seq FROM entries e
             WHERE e.conversation_id = $2::text AND e.message_id <= $3::int8
             ORDER BY e.message_id DESC LIMIT 1),
            (SELECT p.seq FROM purged p WHERE p.conversation_id = $2::text),
            0)
        END AS seq
    FROM (SELECT 1) AS one
    LEFT JOIN heads h ON h.conversation_id = $2::text
), moved AS (
    INSERT INTO user_cursors AS c (user_id, conversation_id, read, read_seq)
    SELECT $1::text, $2::text, $3::int8, seq FROM seq
    ON CONFLICT (user_id, conversation_id) DO UPDATE
    SET read = EXCLUDED.read, read_seq = GREATEST(c.read_seq, EXCLUDED.read_seq)
    WHERE c.read IS NULL OR c.read < EXCLUDED.read
    RETURNING 1
)
SELECT (SELECT read FROM before), EXISTS (SELECT 1 FROM moved)
"#;

/// The read_seq lookup of [`MARK_READ`] on its own, for its plan.
pub(crate) const READ_SEQ: &str = "SELECT e.seq FROM entries e \
     WHERE e.conversation_id = $1::text AND e.message_id <= $2::int8 \
     ORDER BY e.message_id DESC LIMIT 1";

/// A (re)joining member's delivered and read cursors forward to the head
/// it joined at (`$3` may be NULL: a head with no entry).
pub(crate) const START_MEMBER: &str = r#"
INSERT INTO user_cursors AS c (user_id, conversation_id, delivered, read, read_seq)
VALUES ($1::text, $2::text, $3::int8, $3::int8, $4::int8)
ON CONFLICT (user_id, conversation_id) DO UPDATE
SET delivered = GREATEST(c.delivered, EXCLUDED.delivered),
    read = GREATEST(c.read, EXCLUDED.read),
    read_seq = GREATEST(c.read_seq, EXCLUDED.read_seq)
"#;

/// A new device's cursors, copied from its user's delivered cursors in one
/// statement.
pub(crate) const START_DEVICE: &str = r#"
INSERT INTO device_cursors AS c (device_id, conversation_id, user_id, delivered)
SELECT $2::text, u.conversation_id, u.user_id, u.delivered
FROM user_cursors u
WHERE u.user_id = $1::text AND u.delivered IS NOT NULL
ON CONFLICT (device_id, conversation_id) DO UPDATE
SET delivered = GREATEST(c.delivered, EXCLUDED.delivered)
"#;

/// Every cursor of a removed device: the primary key's prefix.
pub(crate) const FORGET_DEVICE: &str = "DELETE FROM device_cursors WHERE device_id = $1::text";
