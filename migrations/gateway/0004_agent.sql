-- Gateway buffer, version 4: conversations with the on-site assistant.

-- One conversation per chat (a Telegram chat, a LAN page browser, a CLI user).
CREATE TABLE chat_sessions (
    session    TEXT PRIMARY KEY,
    channel    TEXT NOT NULL,
    actor      TEXT NOT NULL,
    lang       TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

-- The questions and answers of a conversation (tool results are not kept: they go stale).
-- tokens is the message's size as the LLM server counted it (or an estimate), so history can be
-- cut to a token budget without counting again.
CREATE TABLE chat_messages (
    id      INTEGER PRIMARY KEY,
    session TEXT NOT NULL,
    ts      INTEGER NOT NULL,
    role    TEXT NOT NULL,
    content TEXT NOT NULL,
    tokens  INTEGER NOT NULL
);
CREATE INDEX chat_messages_session ON chat_messages (session, id);
