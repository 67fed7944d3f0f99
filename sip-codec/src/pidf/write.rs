//! Writing PIDF documents with the data-model and RPID namespaces declared on the root.

use std::fmt::Write as _;

use super::{Basic, Presence};
use crate::xml::{NS_DM, NS_PIDF, NS_RPID, esc};

pub(crate) fn write(p: &Presence) -> String {
    let mut out = String::with_capacity(512);
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="{NS_PIDF}" xmlns:dm="{NS_DM}" xmlns:rpid="{NS_RPID}" entity="{}">"#,
        esc(&p.entity)
    );
    for t in &p.tuples {
        let _ = write!(out, r#"<tuple id="{}">"#, esc(&t.id));
        match t.basic {
            Some(Basic::Open) => out.push_str("<status><basic>open</basic></status>"),
            Some(Basic::Closed) => out.push_str("<status><basic>closed</basic></status>"),
            None => out.push_str("<status/>"),
        }
        if let Some(c) = &t.contact {
            match t.priority {
                Some(q) => {
                    let _ = write!(out, r#"<contact priority="{q}">{}</contact>"#, esc(c));
                }
                None => {
                    let _ = write!(out, "<contact>{}</contact>", esc(c));
                }
            }
        }
        if let Some(n) = &t.note {
            let _ = write!(out, "<note>{}</note>", esc(n));
        }
        if let Some(ts) = &t.timestamp {
            let _ = write!(out, "<timestamp>{}</timestamp>", esc(ts));
        }
        out.push_str("</tuple>");
    }
    for n in &p.notes {
        let _ = write!(out, "<note>{}</note>", esc(n));
    }
    if let Some(person) = &p.person {
        // The data model requires an id on <person>; supply one when the value has none.
        let _ = write!(
            out,
            r#"<dm:person id="{}">"#,
            esc(person.id.as_deref().unwrap_or("p1"))
        );
        if !person.activities.is_empty() {
            out.push_str("<rpid:activities>");
            for a in &person.activities {
                match a {
                    super::Activity::Other(text) => {
                        let _ = write!(out, "<rpid:other>{}</rpid:other>", esc(text));
                    }
                    a => {
                        let _ = write!(out, "<rpid:{}/>", a.element());
                    }
                }
            }
            out.push_str("</rpid:activities>");
        }
        if let Some(n) = &person.note {
            let _ = write!(out, "<dm:note>{}</dm:note>", esc(n));
        }
        out.push_str("</dm:person>");
    }
    out.push_str("</presence>\n");
    out
}
