//! Typed views of the common top-level elements that are not stanzas.

use crate::element::Element;
use crate::ns;

/// A recognised top-level non-stanza; [`Nonza::classify`] builds it from the generic element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Nonza<'a> {
    /// `<stream:features>`; inspect the element for the offered features.
    Features(&'a Element),
    /// `<starttls/>` (client asks to start TLS).
    StartTls,
    /// `<proceed/>` (server agrees to start TLS).
    TlsProceed,
    /// `<failure/>` in the TLS namespace.
    TlsFailure,
    /// SASL `<auth mechanism='...'>` with its (still base64) initial response, trimmed.
    SaslAuth {
        /// The mechanism name, e.g. `SCRAM-SHA-256`.
        mechanism: &'a str,
        /// Base64 text; empty when absent, `=` for an explicitly empty response.
        initial_response: String,
    },
    /// SASL `<challenge>` with its base64 text.
    SaslChallenge(String),
    /// SASL `<response>` with its base64 text.
    SaslResponse(String),
    /// SASL `<success>` with its (possibly empty) base64 additional data.
    SaslSuccess(String),
    /// SASL `<abort/>`.
    SaslAbort,
    /// SASL `<failure>` with its condition element name and optional text.
    SaslFailure {
        /// The first child's local name, e.g. `not-authorized`.
        condition: Option<&'a str>,
        /// The `<text>` child's content.
        text: Option<String>,
    },
    /// XEP-0198 `<enable/>`.
    SmEnable {
        /// Whether the client asks for resumption.
        resume: bool,
        /// Preferred maximum resumption time in seconds.
        max: Option<u32>,
    },
    /// XEP-0198 `<enabled/>`.
    SmEnabled {
        /// Resumption id, if resumption is allowed.
        id: Option<&'a str>,
        /// Whether resumption is allowed.
        resume: bool,
    },
    /// XEP-0198 `<r/>` (ack request).
    SmRequest,
    /// XEP-0198 `<a h='N'/>` (ack).
    SmAck {
        /// Stanzas handled so far.
        h: u32,
    },
    /// XEP-0198 `<resume previd='...' h='N'/>`.
    SmResume {
        /// The id of the session to resume.
        previd: &'a str,
        /// Stanzas the client handled.
        h: u32,
    },
    /// XEP-0198 `<failed/>`.
    SmFailed,
    /// `<stream:error>` with its condition element name and optional text.
    StreamError {
        /// The condition's local name, e.g. `policy-violation`.
        condition: Option<&'a str>,
        /// The `<text>` child's content.
        text: Option<String>,
    },
}

fn bool_attr(el: &Element, name: &str) -> bool {
    matches!(el.attr(name), Some("true" | "1"))
}

fn u32_attr(el: &Element, name: &str) -> Option<u32> {
    el.attr(name).and_then(|v| v.parse().ok())
}

/// The first child element outside `text`, and the `<text>` child, both in `ns`.
fn condition_and_text<'a>(el: &'a Element, cond_ns: &str) -> (Option<&'a str>, Option<String>) {
    let condition = el
        .elements()
        .find(|c| c.ns == cond_ns && c.name != "text")
        .map(|c| c.name.as_str());
    let text = el.child(cond_ns, "text").map(Element::text);
    (condition, text)
}

impl<'a> Nonza<'a> {
    /// Recognises `el`; `None` for other elements or ones missing a required attribute.
    pub fn classify(el: &'a Element) -> Option<Nonza<'a>> {
        let trimmed = || el.text().trim().to_owned();
        Some(match (el.ns.as_str(), el.name.as_str()) {
            (ns::STREAMS, "features") => Nonza::Features(el),
            (ns::STREAMS, "error") => {
                let (condition, text) = condition_and_text(el, ns::STREAM_ERRORS);
                Nonza::StreamError { condition, text }
            }
            (ns::TLS, "starttls") => Nonza::StartTls,
            (ns::TLS, "proceed") => Nonza::TlsProceed,
            (ns::TLS, "failure") => Nonza::TlsFailure,
            (ns::SASL, "auth") => Nonza::SaslAuth {
                mechanism: el.attr("mechanism")?,
                initial_response: trimmed(),
            },
            (ns::SASL, "challenge") => Nonza::SaslChallenge(trimmed()),
            (ns::SASL, "response") => Nonza::SaslResponse(trimmed()),
            (ns::SASL, "success") => Nonza::SaslSuccess(trimmed()),
            (ns::SASL, "abort") => Nonza::SaslAbort,
            (ns::SASL, "failure") => {
                let (condition, text) = condition_and_text(el, ns::SASL);
                Nonza::SaslFailure { condition, text }
            }
            (ns::SM, "enable") => Nonza::SmEnable {
                resume: bool_attr(el, "resume"),
                max: u32_attr(el, "max"),
            },
            (ns::SM, "enabled") => Nonza::SmEnabled {
                id: el.attr("id"),
                resume: bool_attr(el, "resume"),
            },
            (ns::SM, "r") => Nonza::SmRequest,
            (ns::SM, "a") => Nonza::SmAck {
                h: u32_attr(el, "h")?,
            },
            (ns::SM, "resume") => Nonza::SmResume {
                previd: el.attr("previd")?,
                h: u32_attr(el, "h")?,
            },
            (ns::SM, "failed") => Nonza::SmFailed,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sasl_and_stream_errors() {
        let failure = Element::new(ns::SASL, "failure")
            .with_child(Element::new(ns::SASL, "not-authorized"))
            .with_child(Element::new(ns::SASL, "text").with_text("nope"));
        assert_eq!(
            Nonza::classify(&failure),
            Some(Nonza::SaslFailure {
                condition: Some("not-authorized"),
                text: Some("nope".into())
            })
        );
        let err = Element::new(ns::STREAMS, "error")
            .with_child(Element::new(ns::STREAM_ERRORS, "conflict"));
        assert_eq!(
            Nonza::classify(&err),
            Some(Nonza::StreamError {
                condition: Some("conflict"),
                text: None
            })
        );
        let success = Element::new(ns::SASL, "success").with_text(" dj1= \n");
        assert_eq!(
            Nonza::classify(&success),
            Some(Nonza::SaslSuccess("dj1=".into()))
        );
    }

    #[test]
    fn missing_required_attributes_are_not_recognised() {
        assert_eq!(Nonza::classify(&Element::new(ns::SASL, "auth")), None);
        assert_eq!(
            Nonza::classify(&Element::new(ns::SM, "a").with_attr("h", "x")),
            None
        );
        assert_eq!(Nonza::classify(&Element::new(ns::CLIENT, "message")), None);
        let resume = Element::new(ns::SM, "resume")
            .with_attr("previd", "id1")
            .with_attr("h", "4");
        assert_eq!(
            Nonza::classify(&resume),
            Some(Nonza::SmResume {
                previd: "id1",
                h: 4
            })
        );
    }
}
