//! XEP-0156 discovery over HTTP: `/.well-known/host-meta` (an XRD document, RFC 6415) and its JSON form
//! `/.well-known/host-meta.json`, each naming the WebSocket endpoint with the link relation
//! `urn:xmpp:alt-connections:websocket`. Both are served with `Access-Control-Allow-Origin: *`, since web clients
//! fetch them from pages of other origins.

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// XEP-0156's link relation for XMPP over WebSocket.
pub const REL_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";

/// The XRD document advertising `websocket_url`.
pub fn xrd(websocket_url: &str) -> String {
    let mut href = Vec::new();
    xmpp_codec::escape_attr(websocket_url, &mut href);
    format!(
        "<?xml version='1.0' encoding='utf-8'?>\n\
         <XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  \
         <Link rel='{REL_WEBSOCKET}' href='{}'/>\n\
         </XRD>\n",
        String::from_utf8_lossy(&href)
    )
}

/// The JSON document (RFC 6415 §3.2) advertising `websocket_url`.
pub fn json(websocket_url: &str) -> String {
    format!(
        "{{\"links\":[{{\"rel\":\"{REL_WEBSOCKET}\",\"href\":\"{}\"}}]}}\n",
        json_escape(websocket_url)
    )
}

/// `s` as the inside of a JSON string.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out
}

/// The two documents' routes; they are made once, here.
pub fn routes(websocket_url: &str) -> Router {
    let xml = xrd(websocket_url);
    let json = json(websocket_url);
    Router::new()
        .route(
            "/.well-known/host-meta",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/xrd+xml; charset=utf-8"),
                        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                    ],
                    xml,
                )
            }),
        )
        .route(
            "/.well-known/host-meta.json",
            get(move || async move {
                (
                    [
                        (header::CONTENT_TYPE, "application/json"),
                        (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                    ],
                    json,
                )
            }),
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_documents_name_the_endpoint_escaped() {
        let url = "wss://chat.example.com/xmpp-websocket?a='1'&b=\"2\"";
        let xml = xrd(url);
        assert!(xml.contains(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='wss://chat.example.com/xmpp-websocket?a=&apos;1&apos;&amp;b=&quot;2&quot;'/>"
        ), "{xml}");
        assert_eq!(
            json(url),
            "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"wss://chat.example.com/xmpp-websocket?a='1'&b=\\\"2\\\"\"}]}\n"
        );
    }
}
