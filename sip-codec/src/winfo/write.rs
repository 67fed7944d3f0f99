//! Writing watcher-info documents.

use std::fmt::Write as _;

use super::{State, WatcherInfo};
use crate::xml::{NS_WINFO, esc};

pub(crate) fn write(w: &WatcherInfo) -> String {
    let mut out = String::with_capacity(256);
    let state = match w.state {
        State::Full => "full",
        State::Partial => "partial",
    };
    let _ = write!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<watcherinfo xmlns="{NS_WINFO}" version="{}" state="{state}">"#,
        w.version
    );
    for l in &w.lists {
        let _ = write!(
            out,
            r#"<watcher-list resource="{}" package="{}">"#,
            esc(&l.resource),
            esc(&l.package)
        );
        for x in &l.watchers {
            let _ = write!(
                out,
                r#"<watcher id="{}" status="{}" event="{}""#,
                esc(&x.id),
                x.status.as_str(),
                esc(x.event.as_str())
            );
            if let Some(d) = &x.display_name {
                let _ = write!(out, r#" display-name="{}""#, esc(d));
            }
            if let Some(d) = x.duration_subscribed {
                let _ = write!(out, r#" duration-subscribed="{d}""#);
            }
            let _ = write!(out, ">{}</watcher>", esc(&x.uri));
        }
        out.push_str("</watcher-list>");
    }
    out.push_str("</watcherinfo>\n");
    out
}
