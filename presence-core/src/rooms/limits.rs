//! The room service's limits (DESIGN §5), each with the documented default.

/// Numeric limits of the room service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoomLimits {
    /// A new room's occupant limit (DESIGN §5: 50).
    pub default_max_occupants: usize,
    /// The most occupants any room may be configured for (DESIGN §5: 1000).
    pub max_occupants: usize,
    /// Rooms on this node, ad hoc and persistent together (DESIGN §5: 16,500).
    pub max_rooms: usize,
    /// Persistent rooms on this node (DESIGN §5: 1500).
    pub max_persistent_rooms: usize,
    /// How many messages a new room keeps and sends on join (DESIGN §5: 15).
    pub default_history: usize,
    /// The most a room may be configured to keep and send (DESIGN §5: 100).
    pub max_history: usize,
    /// The largest body plus subject a room message may carry, in bytes.
    pub max_message_bytes: usize,
    /// The most messages one room's archive keeps (`[muc] max_archive_per_room`); older ones are trimmed in
    /// steps. 0: rooms archive nothing.
    pub max_archive_per_room: u64,
}

impl Default for RoomLimits {
    fn default() -> Self {
        RoomLimits {
            default_max_occupants: 50,
            max_occupants: 1000,
            max_rooms: 16_500,
            max_persistent_rooms: 1500,
            default_history: 15,
            max_history: 100,
            // Generous for chat text; the stream's own stanza limit bounds everything else.
            max_message_bytes: 16 * 1024,
            max_archive_per_room: 10_000,
        }
    }
}
