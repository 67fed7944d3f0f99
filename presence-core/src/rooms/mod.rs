//! Group chat (XEP-0045, DESIGN §5): the room service of a node, sans-IO like the rest of the engine.
//!
//! - [`affiliation`]: the affiliation and role ladders; [`permissions`]: who may do what, as tables.
//! - [`config`]: a room's configuration and what a submitted form changes; [`limits`]: the service's limits.
//! - [`occupants`]: who is in a room, one per nickname; [`history`]: what newcomers are sent.
//! - [`room`]: one room's state machine; [`service`]: the rooms of the node, creation, persistence, limits.
//! - [`request`] and [`stanza`]: what sessions ask and what rooms send, typed, so that no shell can take room
//!   traffic for anything else (`Stanza::Room` is its own variant; the SIP shell ignores it).
//! - [`forward`]: IQs between occupants, with the ids the room gave them.
//! - [`nick`]: nicknames as the room keeps them (PRECIS Nickname).
//! - [`invite`]: the messages a room sends users outside it (mediated invitations and declines).
//! - [`record`]: what the store keeps of a persistent room; [`occupant_id`]: XEP-0421 ids.
//! - [`archive`]: a room's message archive (XEP-0313 on rooms), which is also where its history lives.
//! - [`directory`]: the public rooms other engines (shards, nodes) serve, for the service's disco#items.
//!
//! The engine routes by domain: a shell hands it `Input::Room` for anything addressed to the service's domain,
//! and the engine answers with `Stanza::Room` deliveries and `StoreWrite::RoomPut`/`RoomRemove` for persistent
//! rooms and `RoomArchivePut`/`RoomArchiveTrim` for their archives, which the shell loads back with
//! [`crate::store::load_rooms`] at start.

pub mod affiliation;
pub mod archive;
pub mod config;
pub mod directory;
pub mod forward;
pub mod history;
pub mod invite;
pub mod limits;
pub mod nick;
pub mod occupant_id;
pub mod occupants;
pub mod permissions;
pub mod record;
pub mod request;
pub mod room;
pub mod service;
pub mod stanza;

pub use affiliation::{Affiliation, Role};
pub use archive::{ArchiveRead, RoomQuery};
pub use config::{ConfigChange, ConfigError, RoomConfig, WhoIs};
pub use history::{HistoryEntry, HistoryRequest};
pub use limits::RoomLimits;
pub use occupant_id::OccupantIdKey;
pub use occupants::OccupantPresence;
pub use record::{RoomRecord, Subject};
pub use request::{
    Affiliate, AffiliationChange, Invite, JoinOptions, Mediated, RoleChange, RoomCall, RoomRequest,
};
pub use service::{RoomEffect, Rooms, Sender};
pub use stanza::{Destroyed, Item, RoomAnswer, RoomInfo, RoomStanza, StatusCode};

/// How the room service is set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomsConfig {
    /// The service's domain (`conference.<domain>`); never one of the IM domains.
    pub domain: String,
    /// Its limits.
    pub limits: RoomLimits,
    /// The key of XEP-0421 occupant ids.
    pub key: OccupantIdKey,
}

impl RoomsConfig {
    /// The service at `domain` with the default limits and `key`.
    pub fn new(domain: &str, key: OccupantIdKey) -> Self {
        RoomsConfig {
            domain: domain.to_ascii_lowercase(),
            limits: RoomLimits::default(),
            key,
        }
    }
}
