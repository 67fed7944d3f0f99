//! A room's recent messages, sent to newcomers (XEP-0045 §7.2.15): bounded by the room's history length.

use std::collections::VecDeque;

use crate::jid::BareJid;
use crate::message::Message;
use crate::time::Timestamp;

/// One message kept for newcomers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct HistoryEntry {
    /// The sender's nickname when they sent it.
    pub nick: String,
    /// The sender's real address (for occupant ids and non-anonymous rooms).
    pub sender: BareJid,
    /// The message, stamped with when the room got it.
    pub message: Message,
}

/// How much history a joining client asks for (XEP-0045 §7.2.15); unset fields do not limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct HistoryRequest {
    /// At most this many messages (`maxstanzas`).
    pub max_stanzas: Option<usize>,
    /// Only messages of the last this many seconds (`seconds`).
    pub seconds: Option<u64>,
    /// Only messages since then (`since`).
    pub since: Option<Timestamp>,
    /// `maxchars='0'`: no history at all. Other character counts are not applied (the XEP leaves counting to
    /// the service; clients use `maxstanzas`).
    pub none: bool,
}

/// The kept messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct History {
    entries: VecDeque<HistoryEntry>,
}

impl History {
    /// History from stored entries, keeping the newest `keep`.
    pub fn from_entries(entries: Vec<HistoryEntry>, keep: usize) -> Self {
        let mut h = History {
            entries: entries.into(),
        };
        h.trim(keep);
        h
    }

    /// Adds a message, dropping the oldest beyond `keep`.
    pub fn push(&mut self, entry: HistoryEntry, keep: usize) {
        self.entries.push_back(entry);
        self.trim(keep);
    }

    /// Drops the oldest beyond `keep`.
    pub fn trim(&mut self, keep: usize) {
        while self.entries.len() > keep {
            self.entries.pop_front();
        }
    }

    /// Every kept entry, oldest first.
    pub fn entries(&self) -> impl Iterator<Item = &HistoryEntry> {
        self.entries.iter()
    }

    /// What to send a newcomer who asked `request` at `now`, oldest first.
    pub fn select(&self, request: &HistoryRequest, now: Timestamp) -> Vec<&HistoryEntry> {
        if request.none {
            return Vec::new();
        }
        let after = |e: &&HistoryEntry| {
            let stamp = e.message.stamp;
            request.since.is_none_or(|s| stamp >= s)
                && request.seconds.is_none_or(|secs| {
                    stamp.as_millis() >= now.as_millis().saturating_sub(secs.saturating_mul(1000))
                })
        };
        let picked: Vec<&HistoryEntry> = self.entries.iter().filter(after).collect();
        let skip = request
            .max_stanzas
            .map_or(0, |n| picked.len().saturating_sub(n));
        picked.into_iter().skip(skip).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: u64) -> HistoryEntry {
        HistoryEntry {
            nick: "n".into(),
            sender: BareJid::new("a@x").expect("valid"),
            message: Message {
                body: Some(at.to_string()),
                stamp: Timestamp(at),
                ..Message::default()
            },
        }
    }

    #[test]
    fn keeps_the_newest_and_selects_by_count_and_time() {
        let mut h = History::default();
        for at in 1..=20 {
            h.push(entry(at * 1000), 15);
        }
        assert_eq!(h.entries().count(), 15);
        let all = h.select(&HistoryRequest::default(), Timestamp(20_000));
        assert_eq!(all.first().map(|e| e.message.stamp), Some(Timestamp(6000)));
        let three = HistoryRequest {
            max_stanzas: Some(3),
            ..HistoryRequest::default()
        };
        let got: Vec<u64> = h
            .select(&three, Timestamp(20_000))
            .iter()
            .map(|e| e.message.stamp.0)
            .collect();
        assert_eq!(got, vec![18_000, 19_000, 20_000]);
        let recent = HistoryRequest {
            seconds: Some(2),
            ..HistoryRequest::default()
        };
        assert_eq!(h.select(&recent, Timestamp(20_000)).len(), 3);
        let none = HistoryRequest {
            none: true,
            ..HistoryRequest::default()
        };
        assert!(h.select(&none, Timestamp(20_000)).is_empty());
    }
}
