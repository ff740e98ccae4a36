//! A small namespace-aware element tree over quick-xml, for EWS replies.
//!
//! Why a tree and not serde: EWS replies mix three namespaces with prefixes that vary
//! by server, carry the same element names in different namespaces (`m:MessageXml`
//! vs `t:MessageXml`), and put errors in several places. Matching on (namespace,
//! local name) in a tree keeps that logic readable; replies are capped in size, so
//! the tree is bounded.

use quick_xml::NsReader;
use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;

use super::{SOAP_NS, SOAP_NS_DOCS_VARIANT};

/// The largest reply read (a FindItem page of 1000 items is ~1.5 MB).
pub const MAX_REPLY_BYTES: usize = 32 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XmlError {
    #[error(
        "the reply is {bytes} bytes, over the {limit}-byte cap: shrink the request (fewer items per call)"
    )]
    TooLarge { bytes: usize, limit: usize },
    #[error("the reply is empty: the server closed the connection or the proxy dropped the body")]
    Empty,
    #[error(
        "the reply is not EWS XML but {kind} (starts {start:?}): check the EWS URL and any proxy in between"
    )]
    NotXml { kind: &'static str, start: String },
    #[error(
        "the reply is not well-formed XML ({detail}) at byte {position}: it may be truncated; retry"
    )]
    Malformed { detail: String, position: u64 },
}

/// One element: its namespace, local name, attributes (local name → value), text and
/// child elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    pub ns: String,
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// Whether this is `{ns}name`; the SOAP namespace also matches its docs variant.
    pub fn is(&self, ns: &str, name: &str) -> bool {
        self.name == name && (self.ns == ns || (ns == SOAP_NS && self.ns == SOAP_NS_DOCS_VARIANT))
    }

    /// The first child `{ns}name`.
    pub fn child(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.is(ns, name))
    }

    /// All children `{ns}name`.
    pub fn children_named<'a>(
        &'a self,
        ns: &'a str,
        name: &'a str,
    ) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.is(ns, name))
    }

    /// The text of the first child `{ns}name`, trimmed.
    pub fn child_text(&self, ns: &str, name: &str) -> Option<&str> {
        self.child(ns, name).map(|c| c.text.trim())
    }

    /// An attribute by local name.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first descendant `{ns}name`, depth first.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Element> {
        self.children.iter().find_map(|c| {
            if c.is(ns, name) {
                Some(c)
            } else {
                c.find(ns, name)
            }
        })
    }
}

fn classify_non_xml(text: &str) -> Option<&'static str> {
    let head = text.trim_start_matches('\u{feff}').trim_start();
    let lower: String = head
        .chars()
        .take(64)
        .collect::<String>()
        .to_ascii_lowercase();
    if lower.starts_with("<!doctype html") || lower.starts_with("<html") {
        Some("an HTML page")
    } else if !head.starts_with('<') {
        Some("plain text")
    } else {
        None
    }
}

/// Refuse, before parsing, what cannot be an EWS reply: too large, empty, not XML.
fn precheck(reply: &str) -> Result<(), XmlError> {
    if reply.len() > MAX_REPLY_BYTES {
        return Err(XmlError::TooLarge {
            bytes: reply.len(),
            limit: MAX_REPLY_BYTES,
        });
    }
    if reply.trim().is_empty() {
        return Err(XmlError::Empty);
    }
    if let Some(kind) = classify_non_xml(reply) {
        let start = reply.trim_start().chars().take(60).collect();
        return Err(XmlError::NotXml { kind, start });
    }
    Ok(())
}

/// Parse a whole reply into its root element.
pub fn parse(reply: &str) -> Result<Element, XmlError> {
    precheck(reply)?;
    let mut reader = NsReader::from_str(reply);
    let mut tree = PartialTree::default();
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map(|(r, e)| (namespace_of(r), e))
            .map_err(|e| malformed(&reader, e))?;
        match event {
            Event::Start(_) | Event::Empty(_) if tree.has_root() => {
                return Err(malformed(&reader, "content after the root element"));
            }
            Event::Start(start) => {
                let element = element(&reader, ns, &start)?;
                tree.open(element);
            }
            Event::Empty(start) => {
                let element = element(&reader, ns, &start)?;
                tree.close(element);
            }
            Event::End(_) => tree.end().map_err(|detail| malformed(&reader, detail))?,
            Event::Text(text) if tree.in_element() => {
                let content = text.xml_content().map_err(|e| malformed(&reader, e))?;
                tree.push_text(&content);
            }
            Event::CData(data) if tree.in_element() => {
                let content = data.decode().map_err(|e| malformed(&reader, e))?;
                tree.push_text(&content);
            }
            Event::GeneralRef(reference) if tree.in_element() => {
                let content = reference_text(&reader, &reference)?;
                tree.push_text(&content);
            }
            Event::Eof => break,
            Event::Text(_) | Event::CData(_) | Event::GeneralRef(_) => {}
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    tree.finish().map_err(|detail| malformed(&reader, detail))
}

fn malformed(reader: &NsReader<&[u8]>, detail: impl ToString) -> XmlError {
    XmlError::Malformed {
        detail: detail.to_string(),
        position: reader.buffer_position(),
    }
}

/// A new element from its start tag, with its attributes unescaped.
fn element(reader: &NsReader<&[u8]>, ns: String, start: &BytesStart) -> Result<Element, XmlError> {
    let mut element = Element {
        ns,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        ..Element::default()
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| malformed(reader, e))?;
        let value = attr
            .decode_and_unescape_value(reader.decoder())
            .map_err(|e| malformed(reader, e))?;
        element.attrs.push((
            String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(element)
}

/// The text of `&name;` or `&#n;`: a character reference or one of XML's five
/// predefined entities; any other entity is refused, never expanded.
fn reference_text(reader: &NsReader<&[u8]>, reference: &BytesRef) -> Result<String, XmlError> {
    if let Some(c) = reference
        .resolve_char_ref()
        .map_err(|e| malformed(reader, e))?
    {
        return Ok(c.to_string());
    }
    let name = reference.decode().map_err(|e| malformed(reader, e))?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_string)
        .ok_or_else(|| malformed(reader, format!("unknown entity &{name};")))
}

fn namespace_of(resolved: ResolveResult<'_>) -> String {
    match resolved {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}

/// The tree as read so far: the open elements (the path from the root to the
/// current element) and, once the root is closed, the root.
#[derive(Default)]
struct PartialTree {
    open: Vec<Element>,
    root: Option<Element>,
}

impl PartialTree {
    fn has_root(&self) -> bool {
        self.root.is_some()
    }

    fn in_element(&self) -> bool {
        !self.open.is_empty()
    }

    /// A start tag: `element` is now the current element.
    fn open(&mut self, element: Element) {
        self.open.push(element);
    }

    /// A finished element: a child of the current element, or the root.
    fn close(&mut self, element: Element) {
        match self.open.last_mut() {
            Some(parent) => parent.children.push(element),
            None => self.root = Some(element),
        }
    }

    /// An end tag: the current element is finished.
    fn end(&mut self) -> Result<(), &'static str> {
        let element = self.open.pop().ok_or("an end tag without a start")?;
        self.close(element);
        Ok(())
    }

    fn push_text(&mut self, text: &str) {
        if let Some(current) = self.open.last_mut() {
            current.text.push_str(text);
        }
    }

    /// The root, once the document ended with every element closed.
    fn finish(self) -> Result<Element, String> {
        if let Some(current) = self.open.last() {
            return Err(format!(
                "the reply ends inside <{}>: it was cut off",
                current.name
            ));
        }
        self.root.ok_or_else(|| "no root element".to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_text_and_entities() {
        let root = parse(
            r#"<?xml version="1.0"?><a:Root xmlns:a="urn:a" xmlns="urn:d"><Item Id="x&amp;y">Fish &amp; chips &#x41;<![CDATA[<b>]]></Item></a:Root>"#,
        )
        .unwrap();
        assert!(root.is("urn:a", "Root"));
        let item = root.child("urn:d", "Item").unwrap();
        assert_eq!(item.attr("Id"), Some("x&y"));
        assert_eq!(item.text, "Fish & chips A<b>");
    }

    #[test]
    fn not_xml_truncated_and_oversized_are_clear_errors() {
        assert!(matches!(
            parse("<!DOCTYPE html><html><body>Login</body></html>"),
            Err(XmlError::NotXml {
                kind: "an HTML page",
                ..
            })
        ));
        assert!(matches!(
            parse("Service Unavailable"),
            Err(XmlError::NotXml {
                kind: "plain text",
                ..
            })
        ));
        assert!(matches!(parse(""), Err(XmlError::Empty)));
        let err = parse("<a><b>text</b>").unwrap_err();
        assert!(err.to_string().contains("cut off"), "{err}");
        assert!(matches!(parse("<a></b>"), Err(XmlError::Malformed { .. })));
        let huge = format!("<a>{}</a>", "x".repeat(MAX_REPLY_BYTES));
        assert!(matches!(parse(&huge), Err(XmlError::TooLarge { .. })));
    }
}
