-- compliance 0001: the compliance archive (the "message archiver"). One row per message the server accepted for
-- delivery or offline storage (or routed out of its domains); see README.md "Compliance archiving" for each column.

CREATE TABLE compliance_messages (
    seq        bigserial   PRIMARY KEY,
    sent_at    timestamptz NOT NULL,
    sender     text        NOT NULL,
    recipients text[]      NOT NULL,
    room       text,
    message_id text,
    kind       text        NOT NULL CHECK (kind IN ('chat', 'normal', 'groupchat')),
    body       text        NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX compliance_messages_sent_at ON compliance_messages (sent_at);
CREATE INDEX compliance_messages_sender ON compliance_messages (sender, sent_at);
CREATE INDEX compliance_messages_room ON compliance_messages (room, sent_at) WHERE room IS NOT NULL;
