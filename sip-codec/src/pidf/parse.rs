//! Reading PIDF documents. Unknown elements and namespaces are skipped, as RFC 3863 §4.1 requires.

use super::{Activity, Basic, Person, Presence, Tuple};
use crate::xml::{DocumentError, Ns, XmlEvent, attr, read_events};

pub(crate) fn parse(doc: &[u8], limit: usize) -> Result<Presence, DocumentError> {
    let events = read_events(doc, limit)?;
    let mut stack: Vec<(Ns, String)> = Vec::new();
    let mut text = String::new();
    let mut presence: Option<Presence> = None;
    let mut tuple: Option<Tuple> = None;
    let mut person: Option<Person> = None;
    for ev in events {
        match ev {
            XmlEvent::Start { ns, name, attrs } => {
                text.clear();
                let path: Vec<(Ns, &str)> = stack.iter().map(|(n, s)| (*n, s.as_str())).collect();
                match (path.as_slice(), ns, name.as_str()) {
                    ([], Ns::Pidf, "presence") => {
                        let entity = attr(&attrs, "entity")
                            .ok_or(DocumentError::Invalid("presence without entity"))?;
                        presence = Some(Presence::new(entity));
                    }
                    ([], _, _) => {
                        return Err(DocumentError::Invalid("root is not a PIDF <presence>"));
                    }
                    ([_], Ns::Pidf, "tuple") => {
                        let id =
                            attr(&attrs, "id").ok_or(DocumentError::Invalid("tuple without id"))?;
                        tuple = Some(Tuple {
                            id: id.to_owned(),
                            ..Tuple::default()
                        });
                    }
                    ([_, (Ns::Pidf, "tuple")], Ns::Pidf, "contact") => {
                        if let (Some(t), Some(p)) = (tuple.as_mut(), attr(&attrs, "priority")) {
                            let q: f32 = p.trim().parse().map_err(|_| {
                                DocumentError::Invalid("contact priority is not a number")
                            })?;
                            if !(0.0..=1.0).contains(&q) {
                                return Err(DocumentError::Invalid("contact priority outside 0-1"));
                            }
                            t.priority = Some(q);
                        }
                    }
                    ([_], Ns::DataModel, "person") => {
                        person = Some(Person {
                            id: attr(&attrs, "id").map(str::to_owned),
                            ..Person::default()
                        });
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
                    [
                        _,
                        (Ns::Pidf, "tuple"),
                        (Ns::Pidf, "status"),
                        (Ns::Pidf, "basic"),
                    ] => {
                        let b = match value {
                            "open" => Basic::Open,
                            "closed" => Basic::Closed,
                            _ => {
                                return Err(DocumentError::Invalid(
                                    "basic is neither open nor closed",
                                ));
                            }
                        };
                        if let Some(t) = tuple.as_mut() {
                            t.basic = Some(b);
                        }
                    }
                    [_, (Ns::Pidf, "tuple"), (Ns::Pidf, "contact")] => {
                        if let Some(t) = tuple.as_mut() {
                            t.contact = Some(value.to_owned());
                        }
                    }
                    [_, (Ns::Pidf, "tuple"), (Ns::Pidf, "note")] => {
                        if let Some(t) = tuple.as_mut().filter(|t| t.note.is_none()) {
                            t.note = Some(value.to_owned());
                        }
                    }
                    [_, (Ns::Pidf, "tuple"), (Ns::Pidf, "timestamp")] => {
                        if let Some(t) = tuple.as_mut() {
                            t.timestamp = Some(value.to_owned());
                        }
                    }
                    [_, (Ns::Pidf, "tuple")] => {
                        if let (Some(p), Some(t)) = (presence.as_mut(), tuple.take()) {
                            p.tuples.push(t);
                        }
                    }
                    [_, (Ns::Pidf, "note")] => {
                        if let Some(p) = presence.as_mut() {
                            p.notes.push(value.to_owned());
                        }
                    }
                    [
                        _,
                        (Ns::DataModel, "person"),
                        (Ns::Rpid, "activities"),
                        (Ns::Rpid, name),
                    ] => {
                        let a = match Activity::from_element(name) {
                            Some(a) => a,
                            None if *name == "other" => Activity::Other(value.to_owned()),
                            // An activity from a later extension: keep its name rather than drop it.
                            None => Activity::Other((*name).to_owned()),
                        };
                        if let Some(p) = person.as_mut() {
                            p.activities.push(a);
                        }
                    }
                    [_, (Ns::DataModel, "person"), (Ns::DataModel, "note")] => {
                        if let Some(p) = person.as_mut().filter(|p| p.note.is_none()) {
                            p.note = Some(value.to_owned());
                        }
                    }
                    [_, (Ns::DataModel, "person")] => {
                        if let (Some(pr), Some(pe)) = (presence.as_mut(), person.take())
                            && pr.person.is_none()
                        {
                            pr.person = Some(pe);
                        }
                    }
                    _ => {}
                }
                text.clear();
                stack.pop();
            }
        }
    }
    presence.ok_or(DocumentError::Invalid("no <presence> element"))
}
