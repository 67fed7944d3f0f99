-- 0001: the tables behind the presence-core store traits (accounts, rosters, policies, held messages).
-- Addresses are text so an operator can read them with psql; the records themselves are the store codec's
-- binary encoding (examples/src/store/codec.rs), the same bytes the embedded redb store keeps.

CREATE TABLE accounts (
    jid    text PRIMARY KEY,
    record bytea NOT NULL
);

CREATE TABLE roster (
    owner   text  NOT NULL,
    contact text  NOT NULL,
    entry   bytea NOT NULL,
    PRIMARY KEY (owner, contact)
);

CREATE TABLE policies (
    owner  text PRIMARY KEY,
    policy bytea NOT NULL
);

-- One row per held message; seq is the engine's per-user sequence number (a u64 kept below 2^63).
CREATE TABLE offline (
    owner   text   NOT NULL,
    seq     bigint NOT NULL CHECK (seq >= 0),
    message bytea  NOT NULL,
    PRIMARY KEY (owner, seq)
);
