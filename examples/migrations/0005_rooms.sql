-- 0005: persistent group chat rooms (XEP-0045). One row per room; record is the store codec's encoding of the
-- room (configuration, affiliations, subject and history), written whole on every change.

CREATE TABLE rooms (
    jid    text  PRIMARY KEY,
    record bytea NOT NULL
);
