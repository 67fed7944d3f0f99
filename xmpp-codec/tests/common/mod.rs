//! Helpers shared by the integration tests.
#![allow(dead_code)]

use xmpp_codec::{Limits, StreamError, StreamEvent, StreamParser};

/// The client-to-server header most tests start with.
pub const HEADER: &str = "<?xml version='1.0'?><stream:stream xmlns='jabber:client' \
    xmlns:stream='http://etherx.jabber.org/streams' to='example.com' version='1.0' xml:lang='en'>";

/// Feeds `chunks` in order, draining events after each, and stops at the first error.
pub fn parse_chunks<'a>(
    limits: Limits,
    chunks: impl IntoIterator<Item = &'a [u8]>,
) -> (Vec<StreamEvent>, Option<StreamError>) {
    let mut parser = StreamParser::with_limits(limits);
    let mut events = Vec::new();
    for chunk in chunks {
        parser.feed(chunk);
        loop {
            match parser.next_event() {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return (events, Some(e)),
            }
        }
    }
    (events, None)
}

/// Feeds `input` whole.
pub fn parse(input: &[u8]) -> (Vec<StreamEvent>, Option<StreamError>) {
    parse_chunks(Limits::default(), [input])
}

/// The error a stream made of `HEADER` + `body` ends with.
pub fn error_of(body: &str) -> StreamError {
    let input = format!("{HEADER}{body}");
    match parse(input.as_bytes()) {
        (_, Some(e)) => e,
        (events, None) => panic!("no error for {body:?}; events: {events:?}"),
    }
}

/// The condition name the stream made of `HEADER` + `body` fails with.
pub fn condition_of(body: &str) -> &'static str {
    error_of(body).condition_name()
}
