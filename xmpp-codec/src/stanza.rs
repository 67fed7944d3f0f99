//! Typed views of the three stanza kinds over the generic element.

use crate::element::Element;

/// Which of the three stanza kinds an element is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StanzaKind {
    /// `<message/>`.
    Message,
    /// `<presence/>`.
    Presence,
    /// `<iq/>`.
    Iq,
}

impl StanzaKind {
    /// The element's local name.
    pub fn as_str(self) -> &'static str {
        match self {
            StanzaKind::Message => "message",
            StanzaKind::Presence => "presence",
            StanzaKind::Iq => "iq",
        }
    }
}

/// The `type` of an `<iq/>` (RFC 6120 §8.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IqType {
    /// Requests information.
    Get,
    /// Provides data or makes a change.
    Set,
    /// Successful response.
    Result,
    /// Error response.
    Error,
}

impl IqType {
    /// Parses the attribute value; `None` for anything RFC 6120 does not define.
    pub fn parse(s: &str) -> Option<IqType> {
        Some(match s {
            "get" => IqType::Get,
            "set" => IqType::Set,
            "result" => IqType::Result,
            "error" => IqType::Error,
            _ => return None,
        })
    }

    /// The attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            IqType::Get => "get",
            IqType::Set => "set",
            IqType::Result => "result",
            IqType::Error => "error",
        }
    }
}

/// A top-level `message`, `presence` or `iq` in the stream's content namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stanza {
    /// A `<message/>`.
    Message(Element),
    /// A `<presence/>`.
    Presence(Element),
    /// An `<iq/>`.
    Iq(Element),
}

impl Stanza {
    /// Wraps `el` if it is a stanza in `content_ns`; otherwise hands it back.
    pub fn from_element(el: Element, content_ns: &str) -> Result<Stanza, Element> {
        if el.ns != content_ns {
            return Err(el);
        }
        match el.name.as_str() {
            "message" => Ok(Stanza::Message(el)),
            "presence" => Ok(Stanza::Presence(el)),
            "iq" => Ok(Stanza::Iq(el)),
            _ => Err(el),
        }
    }

    /// Which kind this is.
    pub fn kind(&self) -> StanzaKind {
        match self {
            Stanza::Message(_) => StanzaKind::Message,
            Stanza::Presence(_) => StanzaKind::Presence,
            Stanza::Iq(_) => StanzaKind::Iq,
        }
    }

    /// The underlying element.
    pub fn element(&self) -> &Element {
        match self {
            Stanza::Message(e) | Stanza::Presence(e) | Stanza::Iq(e) => e,
        }
    }

    /// The underlying element, mutably (e.g. to stamp `from`).
    pub fn element_mut(&mut self) -> &mut Element {
        match self {
            Stanza::Message(e) | Stanza::Presence(e) | Stanza::Iq(e) => e,
        }
    }

    /// Unwraps the element.
    pub fn into_element(self) -> Element {
        match self {
            Stanza::Message(e) | Stanza::Presence(e) | Stanza::Iq(e) => e,
        }
    }

    /// The raw `type` attribute.
    pub fn stanza_type(&self) -> Option<&str> {
        self.element().attr("type")
    }

    /// The `type` of an iq, if this is one and the value is valid.
    pub fn iq_type(&self) -> Option<IqType> {
        match self {
            Stanza::Iq(e) => e.attr("type").and_then(IqType::parse),
            _ => None,
        }
    }

    /// The `to` attribute.
    pub fn to(&self) -> Option<&str> {
        self.element().attr("to")
    }

    /// The `from` attribute.
    pub fn from(&self) -> Option<&str> {
        self.element().attr("from")
    }

    /// The `id` attribute.
    pub fn id(&self) -> Option<&str> {
        self.element().attr("id")
    }

    /// The stanza's own `xml:lang` (fall back to the stream header's when absent).
    pub fn lang(&self) -> Option<&str> {
        self.element().lang()
    }

    /// The child elements (payloads), skipping whitespace and text.
    pub fn payloads(&self) -> impl Iterator<Item = &Element> {
        self.element().elements()
    }
}
