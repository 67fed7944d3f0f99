-- 0003: users' documents, the small XML records account features keep (private XML storage, the vCard, PEP
-- nodes and items) under a key of the feature's choosing. The document is the store codec's encoding.

CREATE TABLE documents (
    owner    text  NOT NULL,
    key      text  NOT NULL,
    document bytea NOT NULL,
    PRIMARY KEY (owner, key)
);
