-- Central schema, version 6: every table keyed by gateway carries gateway_id in every key, so the
-- schema can be distributed by gateway_id (Citus) without change to the upload protocol.
-- docs/central-schema.md, section 9, has the layout and tests/tests/distribution.rs checks it.

-- An alarm comment belongs to one gateway's alarm; its key now says so (comment_id stays unique
-- on one server: it is an identity).
ALTER TABLE markoff.alarm_comments DROP CONSTRAINT alarm_comments_pkey;
ALTER TABLE markoff.alarm_comments ADD PRIMARY KEY (gateway_id, comment_id);
