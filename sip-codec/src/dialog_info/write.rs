//! Writing dialog-info documents.

use std::fmt::Write as _;

use super::{DialogInfo, Participant, State};
use crate::xml::{NS_DIALOG_INFO, esc};

pub(crate) fn write(d: &DialogInfo) -> String {
    let mut out = String::with_capacity(256 + 256 * d.dialogs.len());
    let state = match d.state {
        State::Full => "full",
        State::Partial => "partial",
    };
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<dialog-info xmlns="{NS_DIALOG_INFO}" version="{}" state="{state}" entity="{}">"#,
        d.version,
        esc(&d.entity)
    );
    for x in &d.dialogs {
        let _ = write!(out, r#"<dialog id="{}""#, esc(&x.id));
        for (name, value) in [
            ("call-id", &x.call_id),
            ("local-tag", &x.local_tag),
            ("remote-tag", &x.remote_tag),
        ] {
            if let Some(v) = value {
                let _ = write!(out, r#" {name}="{}""#, esc(v));
            }
        }
        if let Some(dir) = x.direction {
            let _ = write!(out, r#" direction="{}""#, dir.as_str());
        }
        out.push_str("><state");
        if let Some(e) = &x.event {
            let _ = write!(out, r#" event="{}""#, esc(e));
        }
        if let Some(c) = x.code {
            let _ = write!(out, r#" code="{c}""#);
        }
        let _ = write!(out, ">{}</state>", x.state.as_str());
        if let Some(s) = x.duration {
            let _ = write!(out, "<duration>{s}</duration>");
        }
        for (name, side) in [("local", &x.local), ("remote", &x.remote)] {
            if let Some(p) = side {
                write_participant(&mut out, name, p);
            }
        }
        out.push_str("</dialog>");
    }
    out.push_str("</dialog-info>\n");
    out
}

fn write_participant(out: &mut String, name: &str, p: &Participant) {
    let _ = write!(out, "<{name}>");
    if let Some(id) = &p.identity {
        out.push_str("<identity");
        if let Some(d) = &p.display {
            let _ = write!(out, r#" display="{}""#, esc(d));
        }
        let _ = write!(out, ">{}</identity>", esc(id));
    }
    if let Some(t) = &p.target {
        let _ = write!(out, r#"<target uri="{}"/>"#, esc(t));
    }
    let _ = write!(out, "</{name}>");
}
