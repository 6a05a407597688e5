-- Memberships that ended (the user left or was removed), one per user and
-- group: the devices that were away still get the end of it at their next
-- sync. `left_id` is the group event that ended it, whose sender, time and
-- body are kept so that it reaches them even once the log purged it.
CREATE TABLE departures (
    user_id         text COLLATE "C" NOT NULL,
    conversation_id text COLLATE "C" NOT NULL,
    joined          int8 NOT NULL,
    left_id         int8 NOT NULL,
    by_user         text COLLATE "C" NOT NULL,
    ts              int8 NOT NULL,
    body            text NOT NULL,
    PRIMARY KEY (user_id, conversation_id)
);
