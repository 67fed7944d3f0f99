//! The on-disk encoding of store records: a version byte, then fields in a fixed order. Integers are big-endian,
//! strings and byte strings carry a `u32` length, optional fields a presence byte, lists a `u32` count.
//!
//! Hand-written rather than a serialization crate so the format is spelled out in one place and cannot change
//! under us with a dependency upgrade. Decoding never panics: every shortfall becomes [`StoreError::Corrupt`].

use presence_core::archive::ArchivedMessage;
use presence_core::message::{Marks, Message, MessageKind};
use presence_core::policy::{DefaultRule, PolicyEntry, UserPolicy};
use presence_core::rooms::{Affiliation, HistoryEntry, RoomConfig, RoomRecord, Subject, WhoIs};
use presence_core::roster::{ItemDetails, Link, RosterEntry, Subscription};
use presence_core::store::{
    Account, DigestHash, DigestSecret, ScramCredentials, ScramHash, StoreError, StoredMessage,
};
use presence_core::time::Timestamp;
use presence_core::{BareJid, Jid};

/// The format version written today; readers reject any other.
const VERSION: u8 = 1;

/// Account records gained SIP digest secrets in version 2; version 1 accounts (SCRAM only) still read.
const ACCOUNT_VERSION: u8 = 2;

/// Held messages gained their marks (`Message::marks`) in version 2 and their archive id in version 3; older
/// messages read with none.
pub(crate) const MESSAGE_VERSION: u8 = 3;

/// Builds one encoded record.
pub(crate) struct Writer(Vec<u8>);

impl Writer {
    fn new() -> Self {
        Writer(vec![VERSION])
    }

    pub(crate) fn with_version(version: u8) -> Self {
        Writer(vec![version])
    }

    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn i8(&mut self, v: i8) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }

    pub(crate) fn len(&mut self, n: usize) {
        // Every field comes from a bounded engine value (a JID part, a stanza), far below 4 GiB.
        self.u32(u32::try_from(n).expect("field shorter than 4 GiB"));
    }

    fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.0.extend_from_slice(v);
    }

    pub(crate) fn str(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    pub(crate) fn opt_str(&mut self, v: Option<&str>) {
        match v {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    pub(crate) fn strs(&mut self, v: &[String]) {
        self.len(v.len());
        for s in v {
            self.str(s);
        }
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.0
    }
}

/// Reads one encoded record, naming it in every error.
pub(crate) struct Reader<'a> {
    what: &'a str,
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(what: &'a str, data: &'a [u8]) -> Result<Self, StoreError> {
        Self::versioned(what, data, 1..=VERSION).map(|(r, _)| r)
    }

    /// A reader for a record kind that has had several formats; returns the one found.
    pub(crate) fn versioned(
        what: &'a str,
        data: &'a [u8],
        readable: std::ops::RangeInclusive<u8>,
    ) -> Result<(Self, u8), StoreError> {
        let mut r = Reader { what, rest: data };
        let version = r.u8()?;
        if !readable.contains(&version) {
            return Err(r.corrupt(format!(
                "format version {version}, this build reads {readable:?}"
            )));
        }
        Ok((r, version))
    }

    fn corrupt(&self, detail: String) -> StoreError {
        StoreError::Corrupt {
            what: self.what.to_owned(),
            detail,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], StoreError> {
        if self.rest.len() < n {
            return Err(self.corrupt(format!(
                "needs {n} more bytes, only {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], StoreError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoreError> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn i8(&mut self) -> Result<i8, StoreError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    fn u32(&mut self) -> Result<u32, StoreError> {
        Ok(u32::from_be_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoreError> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    pub(crate) fn bool(&mut self) -> Result<bool, StoreError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.corrupt(format!("flag byte {b} is neither 0 nor 1"))),
        }
    }

    pub(crate) fn len(&mut self) -> Result<usize, StoreError> {
        let n = self.u32()? as usize;
        // A count can never exceed the bytes left (each item takes at least one), so a bad one fails here instead
        // of reserving a huge vector.
        if n > self.rest.len() {
            return Err(self.corrupt(format!(
                "length {n} exceeds the {} bytes left",
                self.rest.len()
            )));
        }
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, StoreError> {
        let n = self.len()?;
        Ok(self.take(n)?.to_vec())
    }

    pub(crate) fn str(&mut self) -> Result<String, StoreError> {
        let n = self.len()?;
        let raw = self.take(n)?;
        std::str::from_utf8(raw)
            .map(str::to_owned)
            .map_err(|e| self.corrupt(format!("text is not UTF-8: {e}")))
    }

    pub(crate) fn opt_str(&mut self) -> Result<Option<String>, StoreError> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            b => Err(self.corrupt(format!("option tag {b} is neither 0 nor 1"))),
        }
    }

    pub(crate) fn strs(&mut self) -> Result<Vec<String>, StoreError> {
        let n = self.len()?;
        (0..n).map(|_| self.str()).collect()
    }

    fn bare_jid(&mut self) -> Result<BareJid, StoreError> {
        let s = self.str()?;
        BareJid::new(&s).map_err(|e| self.corrupt(format!("bad address: {e}")))
    }

    fn jid(&mut self) -> Result<Jid, StoreError> {
        let s = self.str()?;
        Jid::new(&s).map_err(|e| self.corrupt(format!("bad address: {e}")))
    }

    pub(crate) fn end(self) -> Result<(), StoreError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.corrupt(format!("{} bytes left over", self.rest.len())))
        }
    }
}

/// Encodes an account with its verifiers.
pub fn encode_account(a: &Account) -> Vec<u8> {
    let mut w = Writer::with_version(ACCOUNT_VERSION);
    w.str(a.jid.as_str());
    w.len(a.credentials.len());
    for c in &a.credentials {
        w.u8(match c.hash {
            ScramHash::Sha1 => 1,
            ScramHash::Sha256 => 2,
        });
        w.bytes(&c.salt);
        w.u32(c.iterations);
        w.bytes(&c.stored_key);
        w.bytes(&c.server_key);
    }
    w.len(a.digest.len());
    for d in &a.digest {
        w.u8(match d.hash {
            DigestHash::Md5 => 1,
            DigestHash::Sha256 => 2,
        });
        w.str(&d.realm);
        w.str(&d.ha1);
    }
    w.finish()
}

/// Decodes what [`encode_account`] wrote.
pub fn decode_account(what: &str, data: &[u8]) -> Result<Account, StoreError> {
    let (mut r, version) = Reader::versioned(what, data, 1..=ACCOUNT_VERSION)?;
    let jid = r.bare_jid()?;
    let n = r.len()?;
    let mut credentials = Vec::with_capacity(n);
    for _ in 0..n {
        let hash = match r.u8()? {
            1 => ScramHash::Sha1,
            2 => ScramHash::Sha256,
            b => return Err(r.corrupt(format!("unknown SCRAM hash tag {b}"))),
        };
        credentials.push(ScramCredentials {
            hash,
            salt: r.bytes()?,
            iterations: r.u32()?,
            stored_key: r.bytes()?,
            server_key: r.bytes()?,
        });
    }
    let mut digest = Vec::new();
    if version >= 2 {
        for _ in 0..r.len()? {
            let hash = match r.u8()? {
                1 => DigestHash::Md5,
                2 => DigestHash::Sha256,
                b => return Err(r.corrupt(format!("unknown digest hash tag {b}"))),
            };
            digest.push(DigestSecret {
                hash,
                realm: r.str()?,
                ha1: r.str()?,
            });
        }
    }
    r.end()?;
    Ok(Account {
        jid,
        credentials,
        digest,
    })
}

pub(crate) fn link_tag(l: Link) -> u8 {
    match l {
        Link::Off => 0,
        Link::Pending => 1,
        Link::On => 2,
        Link::PreApproved => 3,
    }
}

fn read_link(r: &mut Reader<'_>) -> Result<Link, StoreError> {
    match r.u8()? {
        0 => Ok(Link::Off),
        1 => Ok(Link::Pending),
        2 => Ok(Link::On),
        3 => Ok(Link::PreApproved),
        b => Err(r.corrupt(format!("unknown subscription link tag {b}"))),
    }
}

/// Encodes one roster entry (the contact is in the key).
pub fn encode_roster_entry(e: &RosterEntry) -> Vec<u8> {
    let mut w = Writer::new();
    match e {
        RosterEntry::Requested => w.u8(0),
        RosterEntry::Listed {
            details,
            subscription,
        } => {
            w.u8(1);
            w.opt_str(details.name.as_deref());
            w.strs(&details.groups);
            w.u8(link_tag(subscription.outbound));
            w.u8(link_tag(subscription.inbound));
        }
    }
    w.finish()
}

/// Decodes what [`encode_roster_entry`] wrote.
pub fn decode_roster_entry(what: &str, data: &[u8]) -> Result<RosterEntry, StoreError> {
    let mut r = Reader::new(what, data)?;
    let entry = match r.u8()? {
        0 => RosterEntry::Requested,
        1 => RosterEntry::Listed {
            details: ItemDetails {
                name: r.opt_str()?,
                groups: r.strs()?,
            },
            subscription: Subscription {
                outbound: read_link(&mut r)?,
                inbound: read_link(&mut r)?,
            },
        },
        b => return Err(r.corrupt(format!("unknown roster entry tag {b}"))),
    };
    r.end()?;
    Ok(entry)
}

pub(crate) fn write_policy_entries(w: &mut Writer, entries: &[PolicyEntry]) {
    w.len(entries.len());
    for e in entries {
        match e {
            PolicyEntry::Jid(j) => {
                w.u8(0);
                w.str(j.as_str());
            }
            PolicyEntry::Domain(d) => {
                w.u8(1);
                w.str(d);
            }
        }
    }
}

fn read_policy_entries(r: &mut Reader<'_>) -> Result<Vec<PolicyEntry>, StoreError> {
    let n = r.len()?;
    (0..n)
        .map(|_| match r.u8()? {
            0 => r.bare_jid().map(PolicyEntry::Jid),
            1 => r.str().map(PolicyEntry::Domain),
            b => Err(r.corrupt(format!("unknown policy entry tag {b}"))),
        })
        .collect()
}

/// Encodes an archived message: its id, the peer, the addresses, then the message as a held message has it.
pub fn encode_archived(m: &ArchivedMessage) -> Vec<u8> {
    let mut w = Writer::new();
    w.u64(m.id);
    w.str(m.with.as_str());
    w.str(&m.from.to_string());
    w.str(&m.to.to_string());
    write_message(&mut w, &m.message);
    w.finish()
}

/// Decodes what [`encode_archived`] wrote.
pub fn decode_archived(what: &str, data: &[u8]) -> Result<ArchivedMessage, StoreError> {
    let mut r = Reader::new(what, data)?;
    let id = r.u64()?;
    let with = r.str()?;
    let with = BareJid::new(&with).map_err(|e| r.corrupt(format!("bad peer {with:?}: {e}")))?;
    let from = r.jid()?;
    let to = r.jid()?;
    let message = read_message(&mut r, MESSAGE_VERSION)?;
    r.end()?;
    Ok(ArchivedMessage {
        id,
        with,
        from,
        to,
        message,
    })
}

/// Encodes a user's document (XML text a feature wrote): the version byte, then the text.
pub fn encode_document(document: &str) -> Vec<u8> {
    let mut w = Writer::new();
    w.str(document);
    w.finish()
}

/// Decodes what [`encode_document`] wrote.
pub fn decode_document(what: &str, data: &[u8]) -> Result<String, StoreError> {
    let mut r = Reader::new(what, data)?;
    let document = r.str()?;
    r.end()?;
    Ok(document)
}

/// Encodes a user's privacy policy.
pub fn encode_policy(p: &UserPolicy) -> Vec<u8> {
    let mut w = Writer::new();
    write_policy_entries(&mut w, &p.allow);
    write_policy_entries(&mut w, &p.block);
    w.u8(match p.default {
        DefaultRule::AllowAll => 0,
        DefaultRule::BlockAll => 1,
    });
    w.bool(p.ask_federated);
    w.bool(p.share_availability);
    w.bool(p.dnd_on_phone);
    w.bool(p.dnd_in_meeting);
    w.finish()
}

/// Decodes what [`encode_policy`] wrote.
pub fn decode_policy(what: &str, data: &[u8]) -> Result<UserPolicy, StoreError> {
    let mut r = Reader::new(what, data)?;
    let allow = read_policy_entries(&mut r)?;
    let block = read_policy_entries(&mut r)?;
    let default = match r.u8()? {
        0 => DefaultRule::AllowAll,
        1 => DefaultRule::BlockAll,
        b => return Err(r.corrupt(format!("unknown default rule tag {b}"))),
    };
    let policy = UserPolicy {
        allow,
        block,
        default,
        ask_federated: r.bool()?,
        share_availability: r.bool()?,
        dnd_on_phone: r.bool()?,
        dnd_in_meeting: r.bool()?,
    };
    r.end()?;
    Ok(policy)
}

fn kind_tag(k: MessageKind) -> u8 {
    match k {
        MessageKind::Chat => 0,
        MessageKind::Normal => 1,
        MessageKind::Headline => 2,
        MessageKind::Groupchat => 3,
        MessageKind::Error => 4,
    }
}

/// Encodes a held message.
pub fn encode_message(m: &StoredMessage) -> Vec<u8> {
    let mut w = Writer::with_version(MESSAGE_VERSION);
    w.u64(m.seq);
    w.str(&m.from.to_string());
    w.str(&m.to.to_string());
    write_message(&mut w, &m.message);
    w.finish()
}

/// Writes the fields of a message (the part of a held message after its addresses).
pub(crate) fn write_message(w: &mut Writer, msg: &Message) {
    w.opt_str(msg.id.as_deref());
    w.u8(kind_tag(msg.kind));
    w.opt_str(msg.body.as_deref());
    w.opt_str(msg.subject.as_deref());
    w.opt_str(msg.thread.as_deref());
    w.u64(msg.stamp.as_millis());
    w.strs(&msg.extensions);
    w.u8(msg.marks.bits());
    w.bool(msg.archive_id.is_some());
    if let Some(id) = msg.archive_id {
        w.u64(id.get());
    }
}

/// Decodes what [`encode_message`] wrote.
pub fn decode_message(what: &str, data: &[u8]) -> Result<StoredMessage, StoreError> {
    let (mut r, version) = Reader::versioned(what, data, 1..=MESSAGE_VERSION)?;
    let seq = r.u64()?;
    let from = r.jid()?;
    let to = r.jid()?;
    let message = read_message(&mut r, version)?;
    r.end()?;
    Ok(StoredMessage {
        seq,
        from,
        to,
        message,
    })
}

/// Reads what [`write_message`] wrote in message record version `version` (marks from 2, the archive id from 3).
pub(crate) fn read_message(r: &mut Reader<'_>, version: u8) -> Result<Message, StoreError> {
    let id = r.opt_str()?;
    let kind = match r.u8()? {
        0 => MessageKind::Chat,
        1 => MessageKind::Normal,
        2 => MessageKind::Headline,
        3 => MessageKind::Groupchat,
        4 => MessageKind::Error,
        b => return Err(r.corrupt(format!("unknown message kind tag {b}"))),
    };
    Ok(Message {
        id,
        kind,
        body: r.opt_str()?,
        subject: r.opt_str()?,
        thread: r.opt_str()?,
        stamp: Timestamp::from_millis(r.u64()?),
        extensions: r.strs()?,
        marks: if version >= 2 {
            Marks::from_bits(r.u8()?)
        } else {
            Marks::default()
        },
        archive_id: if version >= 3 && r.bool()? {
            Some(
                std::num::NonZeroU64::new(r.u64()?)
                    .ok_or_else(|| r.corrupt("archive id 0".into()))?,
            )
        } else {
            None
        },
    })
}

/// Room records (XEP-0045 persistent rooms); version 1 is the first. Version 2 adds, after the history (so that
/// version 1 records still read), whether the room archives (a version 1 room does, the default) and the
/// configuration's `allow_invites` (off in a version 1 room).
const ROOM_VERSION: u8 = 2;

/// Encodes a persistent room: address, configuration, affiliations, subject, then history. The history's messages
/// are written in the held-message format, whose version is recorded after the room's own, so either can grow.
pub fn encode_room(room: &RoomRecord) -> Vec<u8> {
    let mut w = Writer::with_version(ROOM_VERSION);
    w.u8(MESSAGE_VERSION);
    w.str(room.jid.as_str());
    let c = &room.config;
    w.str(&c.name);
    w.str(&c.description);
    for flag in [
        c.persistent,
        c.public,
        c.members_only,
        c.moderated,
        c.allow_private_messages,
        c.change_subject,
    ] {
        w.bool(flag);
    }
    w.opt_str(c.password.as_deref());
    w.u64(c.max_occupants as u64);
    w.u8(match c.whois {
        WhoIs::Anyone => 0,
        WhoIs::Moderators => 1,
    });
    w.u64(c.history_length as u64);
    w.len(room.affiliations.len());
    for (jid, a) in &room.affiliations {
        w.str(jid.as_str());
        w.str(a.name());
    }
    w.bool(room.subject.is_some());
    if let Some(s) = &room.subject {
        w.str(&s.text);
        w.str(&s.nick);
        w.u64(s.stamp.as_millis());
    }
    w.len(room.history.len());
    for h in &room.history {
        w.str(&h.nick);
        w.str(h.sender.as_str());
        write_message(&mut w, &h.message);
    }
    w.bool(room.config.archiving);
    w.bool(c.allow_invites);
    w.finish()
}

/// Decodes what [`encode_room`] wrote.
pub fn decode_room(what: &str, data: &[u8]) -> Result<RoomRecord, StoreError> {
    let (mut r, version) = Reader::versioned(what, data, 1..=ROOM_VERSION)?;
    let message_version = r.u8()?;
    if !(1..=MESSAGE_VERSION).contains(&message_version) {
        return Err(r.corrupt(format!("history in message format {message_version}")));
    }
    let jid = r.bare_jid()?;
    let name = r.str()?;
    let description = r.str()?;
    let mut flags = [false; 6];
    for f in &mut flags {
        *f = r.bool()?;
    }
    let [
        persistent,
        public,
        members_only,
        moderated,
        allow_private_messages,
        change_subject,
    ] = flags;
    let password = r.opt_str()?;
    let count = |r: &mut Reader<'_>, v: u64| {
        usize::try_from(v).map_err(|_| r.corrupt(format!("count {v} does not fit")))
    };
    let max = r.u64()?;
    let max_occupants = count(&mut r, max)?;
    let whois = match r.u8()? {
        0 => WhoIs::Anyone,
        1 => WhoIs::Moderators,
        b => return Err(r.corrupt(format!("unknown whois tag {b}"))),
    };
    let length = r.u64()?;
    let history_length = count(&mut r, length)?;
    let mut affiliations = Vec::new();
    for _ in 0..r.len()? {
        let jid = r.bare_jid()?;
        let name = r.str()?;
        let a = Affiliation::from_name(&name)
            .ok_or_else(|| r.corrupt(format!("unknown affiliation {name:?}")))?;
        affiliations.push((jid, a));
    }
    let subject = if r.bool()? {
        Some(Subject {
            text: r.str()?,
            nick: r.str()?,
            stamp: Timestamp::from_millis(r.u64()?),
        })
    } else {
        None
    };
    let mut history = Vec::new();
    for _ in 0..r.len()? {
        history.push(HistoryEntry {
            nick: r.str()?,
            sender: r.bare_jid()?,
            message: read_message(&mut r, message_version)?,
        });
    }
    let (archiving, allow_invites) = if version >= 2 {
        (r.bool()?, r.bool()?)
    } else {
        (true, false)
    };
    r.end()?;
    Ok(RoomRecord {
        jid,
        config: RoomConfig {
            name,
            description,
            persistent,
            public,
            members_only,
            moderated,
            password,
            max_occupants,
            whois,
            history_length,
            allow_private_messages,
            change_subject,
            archiving,
            allow_invites,
        },
        affiliations,
        subject,
        history,
        // The archive, not the record, knows it.
        archive_head: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_room_written_before_allow_invites_reads_with_invitations_off() {
        let limits = presence_core::rooms::RoomLimits::default();
        let room = RoomRecord {
            jid: BareJid::new("r@conference.example.com").expect("valid"),
            config: RoomConfig::new(&limits),
            affiliations: vec![(
                BareJid::new("a@example.com").expect("valid"),
                Affiliation::Owner,
            )],
            subject: None,
            history: Vec::new(),
            archive_head: 0,
        };
        let mut v2 = encode_room(&room);
        assert_eq!(decode_room("room", &v2).expect("v2"), room);
        // Version 1 is version 2 without the two trailing flags.
        v2[0] = 1;
        v2.truncate(v2.len() - 2);
        assert_eq!(decode_room("room", &v2).expect("v1"), room);
        let mut invites = room.clone();
        invites.config.allow_invites = true;
        assert_eq!(
            decode_room("room", &encode_room(&invites)).expect("v2"),
            invites
        );
    }

    fn account() -> Account {
        Account {
            jid: BareJid::new("alice@example.com").expect("valid"),
            credentials: vec![ScramCredentials {
                hash: ScramHash::Sha256,
                salt: vec![1, 2, 3],
                iterations: 4096,
                stored_key: vec![7; 32],
                server_key: vec![6; 32],
            }],
            digest: vec![DigestSecret {
                hash: DigestHash::Md5,
                realm: "example.com".into(),
                ha1: "0123456789abcdef0123456789abcdef".into(),
            }],
        }
    }

    #[test]
    fn version_1_accounts_still_read_without_digest_secrets() {
        let mut a = account();
        let mut data = encode_account(&a);
        // A version 1 record is the version 2 one up to the digest section.
        data[0] = 1;
        let digest_section = 4 + 1 + (4 + 11) + (4 + 32);
        data.truncate(data.len() - digest_section);
        a.digest.clear();
        assert_eq!(decode_account("account", &data).expect("v1 decodes"), a);
    }

    #[test]
    fn version_1_rooms_still_read_with_their_history_and_archiving_on() {
        use presence_core::rooms::{HistoryEntry, RoomConfig, RoomLimits};
        let mut config = RoomConfig::new(&RoomLimits::default());
        config.persistent = true;
        config.archiving = false;
        let room = RoomRecord {
            jid: BareJid::new("r@conference.example.com").expect("valid"),
            config,
            affiliations: Vec::new(),
            subject: None,
            history: vec![HistoryEntry {
                nick: "alice".into(),
                sender: BareJid::new("alice@example.com").expect("valid"),
                message: presence_core::message::Message {
                    body: Some("kept in the record".into()),
                    ..Default::default()
                },
            }],
            archive_head: 0,
        };
        let mut data = encode_room(&room);
        assert_eq!(decode_room("r", &data), Ok(room.clone()));
        // What version 1 wrote: the same without the trailing archiving and invitation flags.
        data[0] = 1;
        data.truncate(data.len() - 2);
        let old = decode_room("r", &data).expect("version 1 reads");
        assert_eq!(old.history, room.history, "the history inside still loads");
        assert!(old.config.archiving, "a version 1 room archives by default");
    }

    #[test]
    fn every_truncation_is_corrupt_not_a_panic() {
        let data = encode_account(&account());
        for cut in 0..data.len() {
            let err = decode_account("account", &data[..cut]).expect_err("truncated");
            assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        }
        assert_eq!(decode_account("account", &data), Ok(account()));
    }

    #[test]
    fn unknown_version_and_trailing_bytes_are_corrupt() {
        let mut data = encode_account(&account());
        data.push(0);
        assert!(
            decode_account("account", &data)
                .expect_err("trailing")
                .to_string()
                .contains("left over")
        );
        data[0] = 9;
        assert!(
            decode_account("account", &data)
                .expect_err("version")
                .to_string()
                .contains("version 9")
        );
    }

    #[test]
    fn bad_tags_are_corrupt() {
        let mut data = encode_roster_entry(&RosterEntry::Requested);
        data[1] = 7;
        assert!(matches!(
            decode_roster_entry("roster entry", &data),
            Err(StoreError::Corrupt { .. })
        ));
        let mut data = encode_policy(&UserPolicy::default());
        let last = data.len() - 1;
        data[last] = 2;
        assert!(matches!(
            decode_policy("policy", &data),
            Err(StoreError::Corrupt { .. })
        ));
    }
}
