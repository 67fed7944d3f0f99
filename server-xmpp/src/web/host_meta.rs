//! XEP-0156 discovery over HTTP: `/.well-known/host-meta` (an XRD document, RFC 6415) and its JSON form
//! `/.well-known/host-meta.json`, each naming the WebSocket endpoint with the link relation
//! `urn:xmpp:alt-connections:websocket` and the BOSH endpoint with `urn:xmpp:alt-connections:xbosh`. Both are served with `Access-Control-Allow-Origin: *`, since web clients
//! fetch them from pages of other origins.

use axum::Router;
use axum::http::header;
use axum::routing::get;

/// XEP-0156's link relation for XMPP over WebSocket.
pub const REL_WEBSOCKET: &str = "urn:xmpp:alt-connections:websocket";

/// XEP-0156's link relation for XMPP over BOSH.
pub const REL_BOSH: &str = "urn:xmpp:alt-connections:xbosh";

/// The XRD document advertising `websocket_url` and `bosh_url`.
pub fn xrd(websocket_url: &str, bosh_url: &str) -> String {
    let escaped = |url: &str| {
        let mut href = Vec::new();
        xmpp_codec::escape_attr(url, &mut href);
        String::from_utf8_lossy(&href).into_owned()
    };
    format!(
        "<?xml version='1.0' encoding='utf-8'?>\n\
         <XRD xmlns='http://docs.oasis-open.org/ns/xri/xrd-1.0'>\n  \
         <Link rel='{REL_WEBSOCKET}' href='{}'/>\n  \
         <Link rel='{REL_BOSH}' href='{}'/>\n\
         </XRD>\n",
        escaped(websocket_url),
        escaped(bosh_url)
    )
}

/// The JSON document (RFC 6415 §3.2) advertising `websocket_url` and `bosh_url`.
pub fn json(websocket_url: &str, bosh_url: &str) -> String {
    format!(
        "{{\"links\":[{{\"rel\":\"{REL_WEBSOCKET}\",\"href\":\"{}\"}},{{\"rel\":\"{REL_BOSH}\",\"href\":\"{}\"}}]}}\n",
        json_escape(websocket_url),
        json_escape(bosh_url)
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
pub fn routes(websocket_url: &str, bosh_url: &str) -> Router {
    let xml = xrd(websocket_url, bosh_url);
    let json = json(websocket_url, bosh_url);
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
        let xml = xrd(url, "https://chat.example.com/http-bind");
        assert!(xml.contains(
            "<Link rel='urn:xmpp:alt-connections:websocket' href='wss://chat.example.com/xmpp-websocket?a=&apos;1&apos;&amp;b=&quot;2&quot;'/>"
        ), "{xml}");
        assert!(
            xml.contains(
                "<Link rel='urn:xmpp:alt-connections:xbosh' href='https://chat.example.com/http-bind'/>"
            ),
            "{xml}"
        );
        assert_eq!(
            json(url, "https://chat.example.com/http-bind"),
            "{\"links\":[{\"rel\":\"urn:xmpp:alt-connections:websocket\",\"href\":\"wss://chat.example.com/xmpp-websocket?a='1'&b=\\\"2\\\"\"},{\"rel\":\"urn:xmpp:alt-connections:xbosh\",\"href\":\"https://chat.example.com/http-bind\"}]}\n"
        );
    }
}
