-- Gateway buffer, version 5: the Telegram bot.

-- Where the bot's long poll resumes, per bot (update ids belong to one bot): updates below
-- update_offset were handled. An offset older than a day is not used (Telegram keeps updates
-- for 24 hours, and numbers them afresh after a week without any).
CREATE TABLE telegram_state (
    bot_id        INTEGER PRIMARY KEY,
    update_offset INTEGER NOT NULL,
    updated_ms    INTEGER NOT NULL
);

-- Alarm notifications the bot sent, so it can edit them (outcome added, buttons removed or
-- changed) when the alarm is acknowledged, shelved or cleared. `shown` is the alarm status the
-- message shows now ('' as sent); `final` = 1 once it has no buttons left and is never edited
-- again. Rows are removed 30 days after they were sent.
CREATE TABLE telegram_notices (
    chat_id    INTEGER NOT NULL,
    message_id INTEGER NOT NULL,
    alarm_id   INTEGER NOT NULL,
    outbox_id  INTEGER NOT NULL,
    text       TEXT NOT NULL,
    lang       TEXT NOT NULL,
    shown      TEXT NOT NULL DEFAULT '',
    final      INTEGER NOT NULL DEFAULT 0,
    sent_ms    INTEGER NOT NULL,
    PRIMARY KEY (chat_id, message_id)
) WITHOUT ROWID;
CREATE INDEX telegram_notices_open ON telegram_notices (alarm_id) WHERE final = 0;
