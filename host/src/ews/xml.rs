//! A small namespace-aware element tree over quick-xml, for EWS replies.
//!
//! Why a tree and not serde: EWS replies mix three namespaces with prefixes that vary
//! by server, carry the same element names in different namespaces (`m:MessageXml`
//! vs `t:MessageXml`), and put errors in several places. Matching on (namespace,
//! local name) in a tree keeps that logic readable; replies are capped in size, so
//! the tree is bounded.

use quick_xml::NsReader;
use quick_xml::events::Event;
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

/// Parse a whole reply into its root element.
pub fn parse(reply: &str) -> Result<Element, XmlError> {
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
    let mut reader = NsReader::from_str(reply);
    let mut stack: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let malformed = |reader: &NsReader<&[u8]>, detail: String| XmlError::Malformed {
        detail,
        position: reader.buffer_position(),
    };
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map(|(r, e)| (namespace_of(r), e))
            .map_err(|e| malformed(&reader, e.to_string()))?;
        match event {
            Event::Start(start) | Event::Empty(start) if root.is_some() => {
                let _ = start;
                return Err(malformed(&reader, "content after the root element".into()));
            }
            Event::Start(ref start) | Event::Empty(ref start) => {
                let mut element = Element {
                    ns: resolved,
                    name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
                    ..Element::default()
                };
                for attr in start.attributes() {
                    let attr = attr.map_err(|e| malformed(&reader, e.to_string()))?;
                    let value = attr
                        .decode_and_unescape_value(reader.decoder())
                        .map_err(|e| malformed(&reader, e.to_string()))?;
                    element.attrs.push((
                        String::from_utf8_lossy(attr.key.local_name().as_ref()).into_owned(),
                        value.into_owned(),
                    ));
                }
                if matches!(event, Event::Empty(_)) {
                    close(&mut stack, &mut root, element);
                } else {
                    stack.push(element);
                }
            }
            Event::End(_) => match stack.pop() {
                Some(element) => close(&mut stack, &mut root, element),
                None => return Err(malformed(&reader, "an end tag without a start".into())),
            },
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    let content = text
                        .xml_content()
                        .map_err(|e| malformed(&reader, e.to_string()))?;
                    top.text.push_str(&content);
                }
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    let content = data
                        .decode()
                        .map_err(|e| malformed(&reader, e.to_string()))?;
                    top.text.push_str(&content);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(top) = stack.last_mut() {
                    match reference
                        .resolve_char_ref()
                        .map_err(|e| malformed(&reader, e.to_string()))?
                    {
                        Some(c) => top.text.push(c),
                        None => {
                            let name = reference
                                .decode()
                                .map_err(|e| malformed(&reader, e.to_string()))?;
                            let resolved = quick_xml::escape::resolve_predefined_entity(&name)
                                .ok_or_else(|| {
                                    malformed(&reader, format!("unknown entity &{name};"))
                                })?;
                            top.text.push_str(resolved);
                        }
                    }
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(malformed(
            &reader,
            format!(
                "the reply ends inside <{}>: it was cut off",
                stack[stack.len() - 1].name
            ),
        ));
    }
    root.ok_or_else(|| malformed(&reader, "no root element".into()))
}

fn namespace_of(resolved: ResolveResult<'_>) -> String {
    match resolved {
        ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.as_ref()).into_owned(),
        _ => String::new(),
    }
}

fn close(stack: &mut [Element], root: &mut Option<Element>, element: Element) {
    match stack.last_mut() {
        Some(parent) => parent.children.push(element),
        None => *root = Some(element),
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
