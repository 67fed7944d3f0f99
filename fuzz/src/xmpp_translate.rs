//! Properties of the `xmpp_translate` target: client stanzas into engine inputs
//! (`server_xmpp::translate::from_client`, called as the connection calls it).
//!
//! The input is the body of a client stream whose header is fixed ([`HEADER`]); every stanza the
//! parser yields is translated for the bound session `alice@example.com/phone`.
//!
//! Checked: nothing panics; every engine input names the sending session (and no other); every
//! reply is a stanza in `jabber:client` addressed to the client, answering the stanza's id, and
//! serializes to XML that parses back to the same stanza.

use presence_core::time::Timestamp;
use presence_core::{FullJid, Input, SessionId};
use server_xmpp::translate::{Features, FromClient, Me, from_client};
use xmpp_codec::{
    Element, StreamEvent, StreamHeader, StreamParser, StreamWriter, ns, write_stream_close,
};

/// The stream header the client's bytes follow.
pub const HEADER: &[u8] = b"<stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0'>";

const SESSION: SessionId = SessionId(7);
const DOMAIN: &str = "example.com";

/// What one input produced, so unit tests can tell a check ran from a check skipped.
#[derive(Debug, Default)]
pub struct TranslateOutcome {
    /// The engine inputs, in order.
    pub inputs: Vec<Input>,
    /// The replies, in order.
    pub replies: Vec<Element>,
    /// Stanzas that needed nothing.
    pub nothing: usize,
    /// Archive queries.
    pub archive_queries: usize,
}

/// The session an engine input is from, `None` for inputs that are not a session's.
pub fn session_of(input: &Input) -> Option<SessionId> {
    match input {
        Input::OpenSession { session, .. }
        | Input::CloseSession { session }
        | Input::Presence { session, .. }
        | Input::Reachable { session, .. }
        | Input::Subscription { session, .. }
        | Input::Message { session, .. }
        | Input::Request { session, .. }
        | Input::Iq { session, .. } => Some(*session),
        _ => None,
    }
}

/// An input translated for `session` must come from it.
pub fn check_input(input: &Input, session: SessionId) {
    assert_eq!(
        session_of(input),
        Some(session),
        "input does not name the sending session: {input:?}"
    );
}

/// A reply must be a stanza to the client that serializes and parses back unchanged.
pub fn check_reply(reply: &Element, request: &Element, client: &str) {
    assert_eq!(reply.ns, ns::CLIENT, "{reply:?}");
    assert!(
        matches!(reply.name.as_str(), "iq" | "message" | "presence"),
        "reply is not a stanza: {reply:?}"
    );
    assert_eq!(reply.attr("to"), Some(client), "{reply:?}");
    assert_eq!(reply.attr("id"), request.attr("id"), "{reply:?}");
    let header = StreamHeader::new(ns::CLIENT);
    let mut out = Vec::new();
    header.write(&mut out);
    StreamWriter::new(&header).write_element(reply, &mut out);
    write_stream_close(&mut out);
    let mut parser = StreamParser::new();
    parser.feed(&out);
    let text = String::from_utf8_lossy(&out);
    let mut stanzas = Vec::new();
    loop {
        match parser.next_event() {
            Ok(Some(StreamEvent::Stanza(s))) => stanzas.push(s.into_element()),
            Ok(Some(_)) => {}
            Ok(None) => break,
            Err(e) => panic!("reply does not parse back: {e}\n{text}"),
        }
    }
    assert_eq!(stanzas, std::slice::from_ref(reply), "{text}");
}

/// Translates every stanza of `body` (after [`HEADER`]); panics on a broken property.
pub fn check_xmpp_translate(body: &[u8]) -> TranslateOutcome {
    let jid = FullJid::new("alice@example.com/phone").expect("valid JID");
    let client = jid.to_string();
    let me = Me {
        session: SESSION,
        jid: &jid,
        domain: DOMAIN,
        features: &Features::standard(),
    };
    let mut parser = StreamParser::new();
    parser.feed(HEADER);
    parser.feed(body);
    let mut outcome = TranslateOutcome::default();
    // Stop at the first error, as the connection does (it closes the stream).
    while let Ok(Some(event)) = parser.next_event() {
        let StreamEvent::Stanza(stanza) = event else {
            continue;
        };
        let request = stanza.element().clone();
        match from_client(stanza, &me, Timestamp(1_700_000_000_000)) {
            FromClient::Engine(input) => {
                check_input(&input, SESSION);
                outcome.inputs.push(input);
            }
            FromClient::Reply(reply) => {
                check_reply(&reply, &request, &client);
                outcome.replies.push(reply);
            }
            FromClient::Nothing => outcome.nothing += 1,
            // A query of the session's own archive, with a page bounded by the server whatever was asked.
            FromClient::Archive(request) => {
                assert!(
                    request.query.max <= server_xmpp::translate::features::mam::MAX_PAGE,
                    "an archive page over the cap: {request:?}"
                );
                outcome.archive_queries += 1;
            }
            // Upload slots, registration and directory search are off in the standard features, so nothing
            // asks for them.
            other @ (FromClient::Upload(_) | FromClient::Register(_) | FromClient::Search(_)) => {
                panic!("a feature that is off answered: {other:?}")
            }
        }
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use presence_core::BareJid;

    #[test]
    fn requests_become_inputs_of_the_session() {
        let o = check_xmpp_translate(
            b"<presence/><iq type='get' id='r1'><query xmlns='jabber:iq:roster'/></iq>\
              <message to='bob@example.com' type='chat'><body>hi</body></message>\
              <presence to='bob@example.com' type='subscribe'/>\
              <iq type='set' id='b1'><block xmlns='urn:xmpp:blocking'><item jid='x@y'/></block></iq>",
        );
        assert_eq!(o.inputs.len(), 5, "{o:?}");
        assert!(o.inputs.iter().all(|i| session_of(i) == Some(SESSION)));
        assert!(o.replies.is_empty());
    }

    #[test]
    fn answers_and_errors_are_replies_to_the_client() {
        let o = check_xmpp_translate(
            b"<iq type='get' id='p'><ping xmlns='urn:xmpp:ping'/></iq>\
              <iq type='get' id='d' to='example.com'><query xmlns='http://jabber.org/protocol/disco#info'/></iq>\
              <message to='not a jid@@'/>\
              <iq type='bogus' id='x'/><iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>\
              <iq type='result' id='r'/>",
        );
        let ids: Vec<Option<&str>> = o.replies.iter().map(|r| r.attr("id")).collect();
        assert_eq!(ids, [Some("p"), Some("d"), None, Some("x"), None]);
        assert_eq!(o.nothing, 1);
    }

    #[test]
    #[should_panic(expected = "does not name the sending session")]
    fn an_input_of_no_session_is_reported() {
        check_input(
            &Input::SetManualStatus {
                user: BareJid::new("alice@example.com").expect("valid"),
                status: None,
            },
            SESSION,
        );
    }

    #[test]
    #[should_panic(expected = "does not name the sending session")]
    fn an_input_of_another_session_is_reported() {
        check_input(
            &Input::CloseSession {
                session: SessionId(8),
            },
            SESSION,
        );
    }

    #[test]
    #[should_panic]
    fn a_reply_to_someone_else_is_reported() {
        let request = Element::new(ns::CLIENT, "iq").with_attr("id", "1");
        let reply = Element::new(ns::CLIENT, "iq")
            .with_attr("id", "1")
            .with_attr("to", "mallory@example.com");
        check_reply(&reply, &request, "alice@example.com/phone");
    }
}
