//! A small namespace-aware element tree over quick-xml, for EWS replies.
//!
//! Why a tree and not serde: EWS replies mix three namespaces with prefixes that vary
//! by server, carry the same element names in different namespaces (`m:MessageXml`
//! vs `t:MessageXml`), and put errors in several places. Matching on (namespace,
//! local name) in a tree keeps that logic readable; replies are capped in size, so
//! the tree is bounded.
//!
//! Hostile input: replies and push notifications come from the network, so the
//! parser caps the nesting depth ([`MAX_DEPTH`]) while it reads, frees a tree
//! without recursion, refuses a DOCTYPE that declares entities and any entity but
//! XML's five (nothing is ever expanded), and never cuts text.
//!
//! (Over 500 lines only with its unit tests, which stay beside the code they pin.)

use quick_xml::NsReader;
use quick_xml::events::{BytesRef, BytesStart, BytesText, Event};
use quick_xml::name::ResolveResult;

use super::{SOAP_NS, SOAP_NS_DOCS_VARIANT};

/// The largest reply read (a FindItem page of 1000 items is ~1.5 MB).
pub const MAX_REPLY_BYTES: usize = 32 << 20;

/// The deepest nesting read. EWS replies nest about 11 levels (Envelope, Body,
/// GetItemResponse, ResponseMessages, message, Items, CalendarItem,
/// RequiredAttendees, Attendee, Mailbox, EmailAddress), Autodiscover replies and
/// notifications fewer; the deepest sample in `../shared/ews` nests 11. 128 leaves a
/// wide margin for extensions while keeping every recursive walk of a parsed tree
/// (the derived `Clone`, `Debug`, `PartialEq`) well within a small thread's stack
/// (tested on 256 KB), and stops a hostile document long before quick-xml's own
/// limit of 65,535 levels.
pub const MAX_DEPTH: usize = 128;

/// Why a reply cannot be read as XML.
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
    #[error(
        "the XML nests elements more than {limit} levels deep (at byte {position}); EWS never nests that deep, so it is refused as broken or hostile: check what sent it"
    )]
    TooDeep { limit: usize, position: u64 },
    #[error(
        "the reply is not UTF-8 (an invalid byte at {position}): EWS writes UTF-8; check any proxy in between"
    )]
    NotUtf8 { position: usize },
}

/// One element: its namespace, local name, attributes (local name → value), text and
/// child elements. Dropping one frees its descendants without recursion; the derived
/// `Clone`, `Debug` and `PartialEq` recurse, which is bounded by [`MAX_DEPTH`] for
/// every tree [`parse`] builds.
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

    /// The first descendant `{ns}name`, depth first (in document order). Walks with
    /// its own stack, not by recursion.
    pub fn find(&self, ns: &str, name: &str) -> Option<&Element> {
        let mut path = vec![self.children.iter()];
        while let Some(siblings) = path.last_mut() {
            match siblings.next() {
                Some(child) if child.is(ns, name) => return Some(child),
                Some(child) => path.push(child.children.iter()),
                None => {
                    path.pop();
                }
            }
        }
        None
    }
}

impl Drop for Element {
    /// Frees the descendants one by one from a list, so a deep tree cannot overflow
    /// the stack (each element dropped here has no children left).
    fn drop(&mut self) {
        let mut pending = std::mem::take(&mut self.children);
        while let Some(mut element) = pending.pop() {
            pending.append(&mut element.children);
        }
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

/// The text of a reply's bytes, or [`XmlError::NotUtf8`] naming the first invalid
/// byte, for callers that would rather refuse than replace invalid bytes.
pub fn decode(reply: &[u8]) -> Result<&str, XmlError> {
    std::str::from_utf8(reply).map_err(|e| XmlError::NotUtf8 {
        position: e.valid_up_to(),
    })
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
                tree.check_depth(&reader)?;
                let element = element(&reader, ns, &start)?;
                tree.open(element);
            }
            Event::Empty(start) => {
                tree.check_depth(&reader)?;
                let element = element(&reader, ns, &start)?;
                tree.close(element);
            }
            Event::End(_) => tree.end().map_err(|detail| malformed(&reader, detail))?,
            Event::Text(text) if tree.in_element() => {
                // XML 1.0 line ends (EWS writes 1.0): only \r\n and \r become \n;
                // U+0085 and U+2028 are text (1.1 would turn them into \n too).
                let content = text.xml10_content().map_err(|e| malformed(&reader, e))?;
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
            Event::DocType(doctype) => refuse_entity_declarations(&reader, &doctype)?,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
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

/// A qualified name as XML Namespaces allows it: one or two XML names joined by a
/// colon (quick-xml takes `a:`, `:a` and `t:!x`).
fn qualified_name(reader: &NsReader<&[u8]>, name: &[u8]) -> Result<(), XmlError> {
    let mut parts = name.splitn(2, |b| *b == b':');
    let first = parts.next().unwrap_or_default();
    let well_formed = match parts.next() {
        Some(local) => is_name(first) && is_name(local),
        None => is_name(first),
    };
    if well_formed {
        return Ok(());
    }
    Err(malformed(
        reader,
        format!(
            "the name {:?} is not a qualified XML name",
            String::from_utf8_lossy(name)
        ),
    ))
}

/// An XML name without a colon: ASCII characters by XML 1.0's NameStartChar and
/// NameChar rules; any character beyond ASCII is taken (Exchange writes ASCII names).
fn is_name(part: &[u8]) -> bool {
    let Some((first, rest)) = part.split_first() else {
        return false;
    };
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || !b.is_ascii();
    start(*first)
        && rest
            .iter()
            .all(|b| start(*b) || b.is_ascii_digit() || *b == b'-' || *b == b'.')
}

/// A new element from its start tag, with its attributes unescaped.
fn element(reader: &NsReader<&[u8]>, ns: String, start: &BytesStart) -> Result<Element, XmlError> {
    qualified_name(reader, start.name().as_ref())?;
    let mut element = Element {
        ns,
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attrs: Vec::new(),
        text: String::new(),
        children: Vec::new(),
    };
    for attr in start.attributes() {
        let attr = attr.map_err(|e| malformed(reader, e))?;
        qualified_name(reader, attr.key.as_ref())?;
        let value = attr
            .decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, reader.decoder())
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

/// A DOCTYPE is ignored unless it declares entities: those are refused, so no
/// entity (internal, external or parameter) is ever expanded or fetched.
fn refuse_entity_declarations(
    reader: &NsReader<&[u8]>,
    doctype: &BytesText,
) -> Result<(), XmlError> {
    let declares = doctype
        .windows(b"<!ENTITY".len())
        .any(|w| w.eq_ignore_ascii_case(b"<!ENTITY"));
    if declares {
        return Err(malformed(
            reader,
            "a DOCTYPE that declares entities; EWS replies have none and Calvert never expands them",
        ));
    }
    Ok(())
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

    /// Refuse an element one level below [`MAX_DEPTH`], before quick-xml's own
    /// limit and before the tree grows deeper.
    fn check_depth(&self, reader: &NsReader<&[u8]>) -> Result<(), XmlError> {
        if self.open.len() >= MAX_DEPTH {
            return Err(XmlError::TooDeep {
                limit: MAX_DEPTH,
                position: reader.buffer_position(),
            });
        }
        Ok(())
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

    /// Runs `f` on a thread with a 256 KB stack (a tokio worker has 2 MB), so that
    /// any recursion over the depth of a document shows as a crash.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(f)
            .expect("a test thread")
            .join()
            .expect("no stack overflow or panic")
    }

    fn nested(depth: usize, leaf: &str) -> String {
        format!("{}{leaf}{}", "<a>".repeat(depth), "</a>".repeat(depth))
    }

    #[test]
    fn nesting_up_to_the_cap_is_read_and_one_more_level_is_refused() {
        let root = parse(&nested(MAX_DEPTH, "deepest")).unwrap();
        let mut element = &root;
        for _ in 1..MAX_DEPTH {
            element = &element.children[0];
        }
        assert_eq!(element.text, "deepest");
        for too_deep in [nested(MAX_DEPTH + 1, ""), nested(MAX_DEPTH, "<b/>")] {
            assert!(matches!(
                parse(&too_deep),
                Err(XmlError::TooDeep {
                    limit: MAX_DEPTH,
                    ..
                })
            ));
        }
    }

    #[test]
    fn a_hostile_depth_is_a_clear_error_on_a_small_stack() {
        // 40,000 levels overflowed the stack; above 65,535 quick-xml panicked.
        for depth in [40_000, 70_000] {
            let err = on_small_stack(move || parse(&nested(depth, "x")).unwrap_err());
            let XmlError::TooDeep { limit, position } = &err else {
                panic!("{depth} levels: {err}");
            };
            assert_eq!(*limit, MAX_DEPTH);
            assert!(*position <= 3 * (MAX_DEPTH as u64 + 1), "{err}");
            assert!(
                err.to_string().contains("more than 128 levels deep"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_deep_tree_is_freed_and_searched_without_recursion() {
        on_small_stack(|| {
            // Deeper than parse allows: built by hand, as only Drop and find are walked.
            let mut root = Element::default();
            root.name = "leaf".into();
            root.ns = "urn:x".into();
            for _ in 0..200_000 {
                let mut parent = Element::default();
                parent.name = "a".into();
                parent.children.push(root);
                root = parent;
            }
            assert_eq!(
                root.find("urn:x", "leaf").map(|e| e.name.as_str()),
                Some("leaf")
            );
            assert!(root.find("urn:x", "none").is_none());
            drop(root);
            // The deepest tree parse builds: its recursive walks fit here too.
            let deepest = parse(&nested(MAX_DEPTH, "x")).unwrap();
            let copy = deepest.clone();
            assert_eq!(copy, deepest);
            assert!(format!("{deepest:?}").matches("children").count() == MAX_DEPTH);
            drop((copy, deepest));
        });
    }

    #[test]
    fn find_is_depth_first_in_document_order() {
        let root = parse(r#"<r xmlns="urn:x"><a><b><c Id="1"/></b></a><c Id="2"/></r>"#).unwrap();
        assert_eq!(
            root.find("urn:x", "c").and_then(|c| c.attr("Id")),
            Some("1")
        );
        assert!(root.find("urn:x", "r").is_none(), "only descendants");
    }

    #[test]
    fn declared_entities_are_refused_never_expanded() {
        let laughs = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><r>&lol2;</r>"#;
        let external = r#"<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"#;
        let parameter = r#"<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/x.dtd"> %p;]><r/>"#;
        for document in [laughs, external, parameter] {
            let err = parse(document).unwrap_err();
            assert!(
                matches!(&err, XmlError::Malformed { detail, .. } if detail.contains("declares entities")),
                "{err}"
            );
        }
        // A DOCTYPE without declarations is ignored; an undeclared entity is refused.
        assert_eq!(parse("<!DOCTYPE r><r>a&amp;b</r>").unwrap().text, "a&b");
        let err = parse("<r>&xxe;</r>").unwrap_err();
        assert!(err.to_string().contains("unknown entity &xxe;"), "{err}");
    }

    #[test]
    fn impossible_character_references_are_errors() {
        for reference in [
            "&#0;",
            "&#xD800;",
            "&#x110000;",
            "&#99999999999;",
            "&#-1;",
            "&#x;",
        ] {
            let document = format!("<r>{reference}</r>");
            assert!(
                matches!(parse(&document), Err(XmlError::Malformed { .. })),
                "{reference}"
            );
        }
    }

    #[test]
    fn names_without_a_local_part_or_prefix_are_malformed() {
        // The 15-minute ews_reply run found `xmgllan:="en-US"` accepted as an
        // attribute with an empty name, which cannot be written out again.
        for bad in [
            r#"<a xmgllan:="en-US"/>"#,
            r#"<a :x="1"/>"#,
            "<a:/>",
            "<:a/>",
            r#"<a x:y:z="1"/>"#,
            "<t:!ServerVersionInfo/>",
            r#"<a 1x="1"/>"#,
            "<-a/>",
        ] {
            assert!(
                matches!(parse(bad), Err(XmlError::Malformed { .. })),
                "{bad}"
            );
        }
        assert!(parse(r#"<a xml:lang="en" b="2"><t:c xmlns:t="urn:t"/></a>"#).is_ok());
        assert!(parse(r#"<_a.b-c d1="x"><möte/></_a.b-c>"#).is_ok());
    }

    #[test]
    fn line_ends_are_normalized_as_xml_1_0_says() {
        // The ews_reply fuzz target's round trips: U+2028 (and U+0085) in a subject or
        // body came back as \n, so an item Calvert wrote did not read back as itself.
        let root = parse("<r>a\u{2028}b\u{85}c\r\nd\re&#x2028;</r>").unwrap();
        assert_eq!(root.text, "a\u{2028}b\u{85}c\nd\ne\u{2028}");
    }

    #[test]
    fn invalid_utf8_is_a_clear_error() {
        let bytes = b"<r>M\xf6te</r>";
        let err = decode(bytes).unwrap_err();
        assert_eq!(err, XmlError::NotUtf8 { position: 4 });
        assert!(err.to_string().contains("not UTF-8"), "{err}");
        assert_eq!(decode("<r>Möte</r>".as_bytes()), Ok("<r>Möte</r>"));
    }

    #[test]
    fn a_document_cut_anywhere_is_an_error_even_inside_a_character() {
        let document = r#"<Göteborg xmlns="urn:x" Ämne="möte">Möte – 5 €<ö/></Göteborg>"#;
        assert!(parse(document).is_ok());
        for cut in 1..document.len() {
            let text = String::from_utf8_lossy(&document.as_bytes()[..cut]);
            assert!(parse(&text).is_err(), "cut at byte {cut}: {text}");
        }
        let before_end_tag = document.rfind("</").expect("an end tag");
        let err = parse(&document[..before_end_tag]).unwrap_err();
        assert!(err.to_string().contains("inside <Göteborg>"), "{err}");
    }
}
