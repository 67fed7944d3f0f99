-- The cluster's shared state (DESIGN §6): its nodes with their failover state, and where every user lives.

CREATE TABLE cluster_nodes (
    -- Numbered in the order nodes first joined: the order of slots (1A, 2A, 1B ...) and of group numbers.
    id             smallserial PRIMARY KEY,
    name           text NOT NULL UNIQUE,
    grp            text NOT NULL,
    advertise_xmpp text,
    advertise_sip  text,
    -- Incremented on every start, so the peer notices a quick reboot.
    epoch          bigint NOT NULL DEFAULT 0,
    state          text,
    reason         text,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE cluster_placement (
    jid  text PRIMARY KEY,
    -- The node the assignment mode gave the user.
    home text NOT NULL,
    -- The node serving the user now (differs from home after a failover); NULL while nobody does.
    host text
);

CREATE INDEX cluster_placement_host ON cluster_placement (host);
