-- Memberships that ended (the user left or was removed), one per user and
-- group: the devices that were away still get the end of it at their next
-- sync. `left_id` is the group event that ended it, whose sender, time and
-- body are kept so that it reaches them even once the log purged it.
CREATE TABLE departures (
    user_id         TEXT NOT NULL,
    conversation_id TEXT NOT NULL,
    joined          INTEGER NOT NULL,
    left_id         INTEGER NOT NULL,
    by_user         TEXT NOT NULL,
    ts              INTEGER NOT NULL,
    body            TEXT NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
) WITHOUT ROWID;
