-- 0004: each user's message archive (XEP-0313). id is the user's archive id (a u64 kept below 2^63); peer and stamp
-- are the columns queries filter on; the record is the store codec's encoding of the archived message.

CREATE TABLE archive (
    owner  text   NOT NULL,
    id     bigint NOT NULL CHECK (id >= 0),
    peer   text   NOT NULL,
    stamp  bigint NOT NULL,
    record bytea  NOT NULL,
    PRIMARY KEY (owner, id)
);

CREATE INDEX archive_peer ON archive (owner, peer, id);
