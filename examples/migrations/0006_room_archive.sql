-- 0006: each persistent room's message archive (XEP-0313 on rooms). The same shape as the user archive: owner is the
-- room's address, id the room's archive id (its stanza-id), peer the sender's nickname (what a room query's 'with'
-- = room/nick filters on), and record the store codec's encoding of the archived message. A room's rows go with
-- the room (the store deletes them with its row in rooms). Since this table, a room's history is no longer kept
-- in its rooms row: a message is one insert here instead of a rewrite of the room.

CREATE TABLE room_archive (
    owner  text   NOT NULL,
    id     bigint NOT NULL CHECK (id >= 0),
    peer   text   NOT NULL,
    stamp  bigint NOT NULL,
    record bytea  NOT NULL,
    PRIMARY KEY (owner, id)
);

CREATE INDEX room_archive_peer ON room_archive (owner, peer, id);
