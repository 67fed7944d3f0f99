//! Reading watcher-info documents; unknown elements are skipped.

use super::{State, Status, Watcher, WatcherEvent, WatcherInfo, WatcherList};
use crate::xml::{DocumentError, Ns, XmlEvent, attr, read_events, required};

pub(crate) fn parse(doc: &[u8], limit: usize) -> Result<WatcherInfo, DocumentError> {
    let events = read_events(doc, limit)?;
    let mut depth_names: Vec<(Ns, String)> = Vec::new();
    let mut info: Option<WatcherInfo> = None;
    let mut watcher: Option<Watcher> = None;
    let mut text = String::new();
    for ev in events {
        match ev {
            XmlEvent::Start { ns, name, attrs } => {
                text.clear();
                match (depth_names.len(), ns, name.as_str()) {
                    (0, Ns::Watcherinfo, "watcherinfo") => {
                        let version = required(&attrs, "version", "watcherinfo without version")?
                            .parse()
                            .map_err(|_| DocumentError::Invalid("version is not a number"))?;
                        let state = match required(&attrs, "state", "watcherinfo without state")? {
                            "full" => State::Full,
                            "partial" => State::Partial,
                            _ => {
                                return Err(DocumentError::Invalid(
                                    "state is neither full nor partial",
                                ));
                            }
                        };
                        info = Some(WatcherInfo {
                            version,
                            state,
                            lists: Vec::new(),
                        });
                    }
                    (0, _, _) => return Err(DocumentError::Invalid("root is not <watcherinfo>")),
                    (1, Ns::Watcherinfo, "watcher-list") => {
                        let list = WatcherList {
                            resource: required(
                                &attrs,
                                "resource",
                                "watcher-list without resource",
                            )?
                            .to_owned(),
                            package: required(&attrs, "package", "watcher-list without package")?
                                .to_owned(),
                            watchers: Vec::new(),
                        };
                        if let Some(i) = info.as_mut() {
                            i.lists.push(list);
                        }
                    }
                    (2, Ns::Watcherinfo, "watcher") if depth_names[1].1 == "watcher-list" => {
                        let status = match required(&attrs, "status", "watcher without status")? {
                            "pending" => Status::Pending,
                            "active" => Status::Active,
                            "waiting" => Status::Waiting,
                            "terminated" => Status::Terminated,
                            _ => return Err(DocumentError::Invalid("unknown watcher status")),
                        };
                        let duration_subscribed = attr(&attrs, "duration-subscribed")
                            .map(|d| {
                                d.parse().map_err(|_| {
                                    DocumentError::Invalid("duration-subscribed is not a number")
                                })
                            })
                            .transpose()?;
                        watcher = Some(Watcher {
                            id: required(&attrs, "id", "watcher without id")?.to_owned(),
                            status,
                            event: WatcherEvent::parse(required(
                                &attrs,
                                "event",
                                "watcher without event",
                            )?),
                            uri: String::new(),
                            display_name: attr(&attrs, "display-name").map(str::to_owned),
                            duration_subscribed,
                        });
                    }
                    _ => {}
                }
                depth_names.push((ns, name));
            }
            XmlEvent::Text(t) => text.push_str(&t),
            XmlEvent::End => {
                if depth_names.len() == 3
                    && let Some(mut w) = watcher.take()
                {
                    w.uri = text.trim().to_owned();
                    if let Some(list) = info.as_mut().and_then(|i| i.lists.last_mut()) {
                        list.watchers.push(w);
                    }
                }
                text.clear();
                depth_names.pop();
            }
        }
    }
    info.ok_or(DocumentError::Invalid("no <watcherinfo> element"))
}
