//! The event packages (RFC 6665 §7) the core serves, behind one trait and registered in one place
//! ([`PACKAGES`]), as Kamailio's presence module keeps its `pres_ev_t` list: what a SUBSCRIBE to a package opens
//! in the engine, how a PUBLISH of it is taken, and the document its NOTIFYs carry. Allow-Events, Accept and the
//! `489 Bad Event` checks are all read from here.

use presence_core::{WatchKind, WatchView, WatcherStatus};

use crate::presence_map::pidf_from_composed;

/// How a package's PUBLISHes are kept (each kind has its own entity tags, RFC 3903 §4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishAs {
    /// RFC 3863 PIDF: the user's presence (or a trusted peer's line and calendar state for them).
    Presence,
    /// RFC 4235 dialog-info: phone lines.
    Dialog,
}

/// One event package.
pub trait EventPackage: Sync {
    /// The Event header token.
    fn name(&self) -> &'static str;
    /// The body type its documents have (for Accept).
    fn content_type(&self) -> &'static str;
    /// The engine watch a SUBSCRIBE to it opens; `None`: not served to subscribers.
    fn watch(&self) -> Option<WatchKind> {
        None
    }
    /// How a PUBLISH of it is taken; `None`: not taken by PUBLISH.
    fn publish(&self) -> Option<PublishAs> {
        None
    }
    /// The NOTIFY body for the engine's view of the watch: content type and document. `version` is the
    /// dialog's document counter (RFC 3857 §5.3), bumped by packages that number their documents.
    fn notify_body(
        &self,
        _view: &WatchView,
        _entity: &str,
        _version: &mut u32,
    ) -> Option<(&'static str, String)> {
        None
    }
}

/// `presence` (RFC 3856): composed presence as PIDF, to subscribers and from publishers.
pub struct Presence;
/// `presence.winfo` (RFC 3857): who watches the subscriber, to subscribers.
pub struct WatcherInfo;
/// `dialog` (RFC 4235): phone state, from publishers.
pub struct Dialog;

/// Every package served, in the order Allow-Events lists them.
pub static PACKAGES: [&dyn EventPackage; 3] = [&Presence, &WatcherInfo, &Dialog];

impl EventPackage for Presence {
    fn name(&self) -> &'static str {
        "presence"
    }
    fn content_type(&self) -> &'static str {
        sip_codec::pidf::CONTENT_TYPE
    }
    fn watch(&self) -> Option<WatchKind> {
        Some(WatchKind::Presence)
    }
    fn publish(&self) -> Option<PublishAs> {
        Some(PublishAs::Presence)
    }
    fn notify_body(
        &self,
        view: &WatchView,
        entity: &str,
        _version: &mut u32,
    ) -> Option<(&'static str, String)> {
        match view {
            WatchView::Presence(composed) => Some((
                sip_codec::pidf::CONTENT_TYPE,
                pidf_from_composed(entity, composed).to_xml(),
            )),
            WatchView::Watchers(_) => None,
        }
    }
}

impl EventPackage for WatcherInfo {
    fn name(&self) -> &'static str {
        "presence.winfo"
    }
    fn content_type(&self) -> &'static str {
        sip_codec::winfo::CONTENT_TYPE
    }
    fn watch(&self) -> Option<WatchKind> {
        Some(WatchKind::Watchers)
    }
    fn notify_body(
        &self,
        view: &WatchView,
        entity: &str,
        version: &mut u32,
    ) -> Option<(&'static str, String)> {
        use sip_codec::winfo::{self, State, Status, Watcher, WatcherEvent, WatcherList};
        let WatchView::Watchers(list) = view else {
            return None;
        };
        let doc = winfo::WatcherInfo {
            version: *version,
            state: State::Full,
            lists: vec![WatcherList {
                resource: entity.to_owned(),
                package: "presence".into(),
                watchers: list
                    .iter()
                    .enumerate()
                    .map(|(i, w)| Watcher {
                        id: format!("w{i}"),
                        status: match w.status {
                            WatcherStatus::Pending => Status::Pending,
                            WatcherStatus::Active => Status::Active,
                        },
                        event: match w.status {
                            WatcherStatus::Pending => WatcherEvent::Subscribe,
                            WatcherStatus::Active => WatcherEvent::Approved,
                        },
                        uri: format!("sip:{}", w.watcher),
                        display_name: None,
                        duration_subscribed: None,
                    })
                    .collect(),
            }],
        };
        *version += 1;
        Some((winfo::CONTENT_TYPE, doc.to_xml()))
    }
}

impl EventPackage for Dialog {
    fn name(&self) -> &'static str {
        "dialog"
    }
    fn content_type(&self) -> &'static str {
        sip_codec::dialog_info::CONTENT_TYPE
    }
    fn publish(&self) -> Option<PublishAs> {
        Some(PublishAs::Dialog)
    }
}

/// The package named `name` (tokens compare case-insensitively, RFC 6665 §8.2.1).
pub fn find(name: &str) -> Option<&'static dyn EventPackage> {
    PACKAGES
        .iter()
        .copied()
        .find(|p| p.name().eq_ignore_ascii_case(name))
}

/// The package a watch kind belongs to.
pub fn for_watch(kind: WatchKind) -> &'static dyn EventPackage {
    match kind {
        WatchKind::Presence => &Presence,
        WatchKind::Watchers => &WatcherInfo,
    }
}

/// The names of the packages that `keep` selects, for an Allow-Events header.
pub fn names(keep: impl Fn(&dyn EventPackage) -> bool) -> String {
    PACKAGES
        .iter()
        .filter(|p| keep(**p))
        .map(|p| p.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Allow-Events for SUBSCRIBE: the packages served to subscribers.
pub fn subscribable() -> String {
    names(|p| p.watch().is_some())
}

/// Allow-Events for PUBLISH: the packages taken by PUBLISH.
pub fn publishable() -> String {
    names(|p| p.publish().is_some())
}

/// Every package, for OPTIONS.
pub fn all() -> String {
    names(|_| true)
}

/// Accept for OPTIONS: every package's document type, and text for MESSAGE.
pub fn accept() -> String {
    let mut types: Vec<&str> = PACKAGES.iter().map(|p| p.content_type()).collect();
    types.push("text/plain");
    types.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_list_the_registered_packages() {
        assert_eq!(all(), "presence, presence.winfo, dialog");
        assert_eq!(subscribable(), "presence, presence.winfo");
        assert_eq!(publishable(), "presence, dialog");
        assert_eq!(
            accept(),
            "application/pidf+xml, application/watcherinfo+xml, application/dialog-info+xml, text/plain"
        );
        assert!(find("PRESENCE").is_some_and(|p| p.watch() == Some(WatchKind::Presence)));
        assert!(find("dialog").is_some_and(|p| p.watch().is_none()));
        assert!(find("message-summary").is_none());
    }
}
