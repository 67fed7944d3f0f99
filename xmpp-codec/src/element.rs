//! The generic element tree every top-level element is parsed into.

use crate::name::Name;
use crate::ns;

/// One attribute, named by (namespace, local name); `xmlns` declarations are never attributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Namespace of a prefixed attribute (`xml:lang` has [`ns::XML`]); `None` when unprefixed.
    pub ns: Option<Name>,
    /// Local name, without any prefix.
    pub name: Name,
    /// Value with references resolved.
    pub value: String,
}

/// A child of an element: a nested element or character data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// A nested element.
    Element(Element),
    /// Character data with references and CDATA sections resolved; never empty, never adjacent to another `Text`.
    Text(String),
}

/// An XML element with its name resolved to (namespace, local name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Element {
    /// Local name, without any prefix.
    pub name: Name,
    /// Namespace name; empty when the element is in no namespace.
    pub ns: Name,
    /// Attributes in document order.
    pub attrs: Vec<Attribute>,
    /// Children in document order.
    pub children: Vec<Node>,
}

impl Element {
    /// A childless, attribute-less element.
    pub fn new(ns: impl Into<Name>, name: impl Into<Name>) -> Self {
        Element {
            name: name.into(),
            ns: ns.into(),
            attrs: Vec::new(),
            children: Vec::new(),
        }
    }

    /// Builder: adds or replaces an unprefixed attribute.
    pub fn with_attr(mut self, name: impl Into<Name>, value: impl Into<String>) -> Self {
        self.set_attr(name, value);
        self
    }

    /// Builder: appends a child element.
    pub fn with_child(mut self, child: Element) -> Self {
        self.children.push(Node::Element(child));
        self
    }

    /// Builder: appends character data, merging with a preceding text node.
    pub fn with_text(mut self, text: impl Into<String>) -> Self {
        self.push_text(&text.into());
        self
    }

    /// Whether this element has the given namespace and local name.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && self.ns == ns
    }

    /// The value of the unprefixed attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.is_none() && a.name == name)
            .map(|a| a.value.as_str())
    }

    /// The value of the attribute `name` in namespace `ns`.
    pub fn attr_ns(&self, ns: &str, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|a| a.ns.as_deref() == Some(ns) && a.name == *name)
            .map(|a| a.value.as_str())
    }

    /// The element's own `xml:lang`, if it carries one.
    pub fn lang(&self) -> Option<&str> {
        self.attr_ns(ns::XML, "lang")
    }

    /// Sets the unprefixed attribute `name`, replacing an existing value.
    pub fn set_attr(&mut self, name: impl Into<Name>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        match self
            .attrs
            .iter_mut()
            .find(|a| a.ns.is_none() && a.name == name)
        {
            Some(a) => a.value = value,
            None => self.attrs.push(Attribute {
                ns: None,
                name,
                value,
            }),
        }
    }

    /// Appends character data, keeping the no-adjacent-text invariant the parser produces.
    pub fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Node::Text(last)) = self.children.last_mut() {
            last.push_str(text);
        } else {
            if self.children.capacity() == 0 {
                self.children.reserve_exact(1);
            }
            self.children.push(Node::Text(text.to_owned()));
        }
    }

    /// Child elements, skipping text.
    pub fn elements(&self) -> impl Iterator<Item = &Element> {
        self.children.iter().filter_map(|n| match n {
            Node::Element(e) => Some(e),
            Node::Text(_) => None,
        })
    }

    /// The first child element with this namespace and local name.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.elements().find(|e| e.is(ns, name))
    }

    /// All direct character data concatenated (child elements' text is not included).
    pub fn text(&self) -> String {
        let mut out = String::new();
        for n in &self.children {
            if let Node::Text(t) = n {
                out.push_str(t);
            }
        }
        out
    }
}
