//! A request as a small tree of elements, by local name, with each element's text
//! kept whole and exact: quick-xml hands text around an entity or character
//! reference (`A &amp; B`) as separate events, and every piece is joined here, white
//! space included. Written for the simulator alone (not shared with Calvert's own
//! XML reading), so the two check each other.

use quick_xml::Reader;
use quick_xml::events::{BytesRef, BytesStart, Event};

/// Deeper requests are refused: an EWS request is a dozen levels deep.
const MAX_DEPTH: usize = 64;

/// One element: its local name, attributes (local names, values unescaped), the text
/// directly inside it (joined, exact) and its child elements in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub(crate) name: String,
    pub(crate) attrs: Vec<(String, String)>,
    pub(crate) text: String,
    pub(crate) children: Vec<Node>,
}

impl Node {
    /// The first child named `name`.
    pub(crate) fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub(crate) fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The first element named `name` anywhere below, depth first.
    pub(crate) fn find(&self, name: &str) -> Option<&Node> {
        self.children.iter().find_map(|c| {
            if c.name == name {
                Some(c)
            } else {
                c.find(name)
            }
        })
    }

    /// Every element named `name` anywhere below, depth first.
    pub(crate) fn find_all<'a>(&'a self, name: &str, out: &mut Vec<&'a Node>) {
        for child in &self.children {
            if child.name == name {
                out.push(child);
            }
            child.find_all(name, out);
        }
    }

    pub(crate) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The exact text of the first child named `name`.
    pub(crate) fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.as_str())
    }
}

/// Read a document into its root element; the error says why it is not XML.
pub(crate) fn parse(document: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(document);
    let mut open: Vec<Node> = Vec::new();
    let mut root = None;
    loop {
        let event = reader.read_event().map_err(|e| format!("not XML: {e}"))?;
        match event {
            Event::Start(start) => {
                if open.len() >= MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} elements"));
                }
                open.push(node(&start)?);
            }
            Event::Empty(start) => close(&mut open, &mut root, node(&start)?)?,
            Event::End(_) => {
                let done = open.pop().ok_or("an end tag without a start")?;
                close(&mut open, &mut root, done)?;
            }
            Event::Text(text) => {
                if let Some(current) = open.last_mut() {
                    current
                        .text
                        .push_str(&text.xml10_content().map_err(|e| e.to_string())?);
                }
            }
            Event::CData(data) => {
                if let Some(current) = open.last_mut() {
                    current
                        .text
                        .push_str(&data.decode().map_err(|e| e.to_string())?);
                }
            }
            Event::GeneralRef(reference) => {
                if let Some(current) = open.last_mut() {
                    current.text.push_str(&referenced(&reference)?);
                }
            }
            Event::DocType(_) => return Err("a DOCTYPE: EWS requests have none".into()),
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !open.is_empty() {
        return Err("the document ends inside an element".into());
    }
    root.ok_or_else(|| "no element".to_string())
}

/// An element is complete: it joins its parent, or is the root.
fn close(open: &mut [Node], root: &mut Option<Node>, done: Node) -> Result<(), String> {
    match open.last_mut() {
        Some(parent) => parent.children.push(done),
        None if root.is_none() => *root = Some(done),
        None => return Err("more than one root element".into()),
    }
    Ok(())
}

fn node(start: &BytesStart<'_>) -> Result<Node, String> {
    let mut attrs = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| e.to_string())?;
        let key = attribute.key.local_name();
        let value = attribute
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| e.to_string())?;
        attrs.push((
            String::from_utf8_lossy(key.as_ref()).into_owned(),
            value.into_owned(),
        ));
    }
    Ok(Node {
        name: String::from_utf8_lossy(start.local_name().as_ref()).into_owned(),
        attrs,
        text: String::new(),
        children: Vec::new(),
    })
}

/// The text a character or predefined entity reference stands for.
fn referenced(reference: &BytesRef<'_>) -> Result<String, String> {
    if let Some(c) = reference.resolve_char_ref().map_err(|e| e.to_string())? {
        return Ok(c.to_string());
    }
    let name = reference.decode().map_err(|e| e.to_string())?;
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(str::to_string)
        .ok_or_else(|| format!("an unknown entity &{name};"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_whole_and_exact_around_references() {
        let root = parse(
            "<a><s>  A &amp; B &lt;c&gt; &quot;q&quot; &#x1F600;&#233; </s><e/><![CDATA[x<y]]></a>",
        )
        .unwrap();
        assert_eq!(
            root.child_text("s"),
            Some("  A & B <c> \"q\" \u{1F600}\u{e9} ")
        );
        assert_eq!(root.text, "x<y");
        assert!(root.child("e").is_some());
    }

    #[test]
    fn hostile_documents_are_refused() {
        let deep = "<a>".repeat(100) + &"</a>".repeat(100);
        assert!(parse(&deep).unwrap_err().contains("deeper"));
        assert!(parse("<!DOCTYPE a [<!ENTITY x \"y\">]><a>&x;</a>").is_err());
        assert!(parse("<a>&nope;</a>").is_err());
        assert!(parse("<a><b></a>").is_err());
        assert!(parse("<a/><b/>").is_err());
        assert!(parse("").is_err());
    }
}
