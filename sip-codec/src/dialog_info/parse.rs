//! Reading dialog-info documents. Unknown elements and namespaces are skipped (RFC 4235 §4.1 lets
//! extensions add them); what the schema requires is checked, and the dialog count is bounded.

use super::{Dialog, DialogInfo, DialogInfoError, DialogState, Direction, Participant, State};
use crate::xml::{DocumentError, Ns, XmlEvent, attr, read_events, required};

/// A `<dialog>` being read: its `<state>` is required but comes as a child.
struct Partial {
    dialog: Dialog,
    has_state: bool,
}

pub(crate) fn parse(
    doc: &[u8],
    limit: usize,
    max_dialogs: usize,
) -> Result<DialogInfo, DialogInfoError> {
    let events = read_events(doc, limit)?;
    let mut stack: Vec<(Ns, String)> = Vec::new();
    let mut text = String::new();
    let mut info: Option<DialogInfo> = None;
    let mut dialog: Option<Partial> = None;
    for ev in events {
        match ev {
            XmlEvent::Start { ns, name, attrs } => {
                text.clear();
                let path: Vec<(Ns, &str)> = stack.iter().map(|(n, s)| (*n, s.as_str())).collect();
                match (path.as_slice(), ns, name.as_str()) {
                    ([], Ns::DialogInfo, "dialog-info") => {
                        let version = required(&attrs, "version", "dialog-info without version")?
                            .trim()
                            .parse()
                            .map_err(|_| DocumentError::Invalid("version is not a number"))?;
                        let state = match required(&attrs, "state", "dialog-info without state")? {
                            "full" => State::Full,
                            "partial" => State::Partial,
                            _ => {
                                return Err(DocumentError::Invalid(
                                    "state is neither full nor partial",
                                )
                                .into());
                            }
                        };
                        let entity = required(&attrs, "entity", "dialog-info without entity")?;
                        info = Some(DialogInfo {
                            version,
                            state,
                            entity: entity.to_owned(),
                            dialogs: Vec::new(),
                        });
                    }
                    ([], _, _) => {
                        return Err(DocumentError::Invalid("root is not <dialog-info>").into());
                    }
                    ([_], Ns::DialogInfo, "dialog") => {
                        let count = info.as_ref().map_or(0, |i| i.dialogs.len());
                        if count >= max_dialogs {
                            return Err(DialogInfoError::TooManyDialogs { limit: max_dialogs });
                        }
                        let direction = match attr(&attrs, "direction") {
                            None => None,
                            Some("initiator") => Some(Direction::Initiator),
                            Some("recipient") => Some(Direction::Recipient),
                            Some(_) => {
                                return Err(DocumentError::Invalid(
                                    "direction is neither initiator nor recipient",
                                )
                                .into());
                            }
                        };
                        let owned = |n: &str| attr(&attrs, n).map(str::to_owned);
                        dialog = Some(Partial {
                            dialog: Dialog {
                                id: required(&attrs, "id", "dialog without id")?.to_owned(),
                                call_id: owned("call-id"),
                                local_tag: owned("local-tag"),
                                remote_tag: owned("remote-tag"),
                                direction,
                                state: DialogState::Trying,
                                event: None,
                                code: None,
                                duration: None,
                                local: None,
                                remote: None,
                            },
                            has_state: false,
                        });
                    }
                    ([_, (Ns::DialogInfo, "dialog")], Ns::DialogInfo, "state") => {
                        if let Some(d) = dialog.as_mut() {
                            d.dialog.event = attr(&attrs, "event").map(str::to_owned);
                            d.dialog.code =
                                attr(&attrs, "code")
                                    .map(|c| {
                                        c.trim().parse::<u16>().ok().filter(|c| *c > 0).ok_or(
                                            DocumentError::Invalid("state code is not a number"),
                                        )
                                    })
                                    .transpose()?;
                        }
                    }
                    (
                        [_, (Ns::DialogInfo, "dialog")],
                        Ns::DialogInfo,
                        side @ ("local" | "remote"),
                    ) => {
                        if let Some(d) = dialog.as_mut() {
                            let slot = if side == "local" {
                                &mut d.dialog.local
                            } else {
                                &mut d.dialog.remote
                            };
                            slot.get_or_insert_with(Participant::default);
                        }
                    }
                    (
                        [_, (Ns::DialogInfo, "dialog"), (Ns::DialogInfo, side)],
                        Ns::DialogInfo,
                        child @ ("identity" | "target"),
                    ) => {
                        if let Some(p) = dialog
                            .as_mut()
                            .and_then(|d| participant(&mut d.dialog, side))
                        {
                            if child == "identity" {
                                p.display = attr(&attrs, "display").map(str::to_owned);
                            } else {
                                p.target =
                                    Some(required(&attrs, "uri", "target without uri")?.to_owned());
                            }
                        }
                    }
                    _ => {}
                }
                stack.push((ns, name));
            }
            XmlEvent::Text(t) => text.push_str(&t),
            XmlEvent::End => {
                let path: Vec<(Ns, &str)> = stack.iter().map(|(n, s)| (*n, s.as_str())).collect();
                let value = text.trim();
                match path.as_slice() {
                    [_, (Ns::DialogInfo, "dialog"), (Ns::DialogInfo, "state")] => {
                        let state = DialogState::parse(value)
                            .ok_or(DocumentError::Invalid("unknown dialog state"))?;
                        if let Some(d) = dialog.as_mut() {
                            d.dialog.state = state;
                            d.has_state = true;
                        }
                    }
                    [_, (Ns::DialogInfo, "dialog"), (Ns::DialogInfo, "duration")] => {
                        let secs = value
                            .parse()
                            .map_err(|_| DocumentError::Invalid("duration is not a number"))?;
                        if let Some(d) = dialog.as_mut() {
                            d.dialog.duration = Some(secs);
                        }
                    }
                    [
                        _,
                        (Ns::DialogInfo, "dialog"),
                        (Ns::DialogInfo, side),
                        (Ns::DialogInfo, "identity"),
                    ] => {
                        if let Some(p) = dialog
                            .as_mut()
                            .and_then(|d| participant(&mut d.dialog, side))
                        {
                            p.identity = Some(value.to_owned());
                        }
                    }
                    [_, (Ns::DialogInfo, "dialog")] => {
                        if let Some(d) = dialog.take() {
                            if !d.has_state {
                                return Err(DocumentError::Invalid("dialog without state").into());
                            }
                            if let Some(i) = info.as_mut() {
                                i.dialogs.push(d.dialog);
                            }
                        }
                    }
                    _ => {}
                }
                text.clear();
                stack.pop();
            }
        }
    }
    info.ok_or_else(|| DocumentError::Invalid("no <dialog-info> element").into())
}

/// The `<local>` or `<remote>` side a child element belongs to.
fn participant<'a>(dialog: &'a mut Dialog, side: &str) -> Option<&'a mut Participant> {
    match side {
        "local" => dialog.local.as_mut(),
        "remote" => dialog.remote.as_mut(),
        _ => None,
    }
}
