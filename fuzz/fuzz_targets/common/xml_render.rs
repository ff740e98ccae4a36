//! Writing a parsed XML tree back out, for the round-trip oracles of the XML targets.
//!
//! Calvert has no writer for arbitrary trees, so this one is the fuzz crate's own. It
//! writes each element with its own namespace declaration, so the tree that comes
//! back differs from the one written out only by those declarations (the tree keeps
//! namespace declarations among its attributes): [`render_tree`] returns the tree to
//! expect alongside the document. A tree it cannot write faithfully (an attribute
//! whose name has a prefix, two attributes with one local name, a namespace with a
//! quote in it, a name with quotes or `=` in it, which quick-xml reads as a name) is
//! skipped, not guessed at.
#![allow(dead_code)]

use calvert::ews::xml::Element;

/// Text as an XML 1.0 parser reads it back: `\r\n` and a lone `\r` become `\n`.
pub fn eol(text: &str) -> String {
    text.replace("\r\n", "\n").replace('\r', "\n")
}

/// An attribute value as an XML 1.0 parser reads it back: line ends normalized, then
/// each literal tab and line feed a space (character references are kept).
pub fn attr_normalized(value: &str) -> String {
    eol(value).replace(['\t', '\n'], " ")
}

/// Text content escaped; `\r` as a character reference, so it survives line-end
/// normalization.
pub fn escape_text(text: &str, out: &mut String) {
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// An attribute value escaped for double quotes; white space as references.
pub fn escape_attr(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\r' => out.push_str("&#13;"),
            '\n' => out.push_str("&#10;"),
            '\t' => out.push_str("&#9;"),
            c => out.push(c),
        }
    }
}

/// The document for `root` and the tree parsing it must give, or None when the
/// tree cannot be written faithfully.
pub fn render_tree(root: &Element) -> Option<(String, Element)> {
    let mut out = String::new();
    let expected = render(root, &mut out)?;
    Some((out, expected))
}

/// The namespace as written in its declaration: the tree holds it as the raw
/// attribute value (not unescaped, not normalized), so it is written back as is.
fn declaration(element: &Element) -> Option<(String, (String, String))> {
    if element.ns.is_empty() {
        // A prefix would be taken for one (unbound, as it was when read).
        if element.name.contains(':') {
            return None;
        }
        // No namespace: undeclare the default one, unless the element does itself.
        return match element.attr("xmlns") {
            Some("") => Some((String::new(), (String::new(), String::new()))),
            Some(_) => None,
            None => Some((r#" xmlns="""#.into(), ("xmlns".into(), String::new()))),
        };
    }
    if element.ns.contains(['"', '<']) {
        return None;
    }
    // The declaration's attribute reads back as XML 1.0 normalizes a value (the
    // namespace itself is the raw text, as quick-xml resolves it).
    let value = quick_xml::escape::unescape(&attr_normalized(&element.ns))
        .ok()?
        .into_owned();
    Some((
        format!(r#" xmlns:fz="{}""#, element.ns),
        ("fz".into(), value),
    ))
}

fn render(element: &Element, out: &mut String) -> Option<Element> {
    let mut keys: Vec<&str> = element.attrs.iter().map(|(k, _)| k.as_str()).collect();
    keys.sort_unstable();
    // quick-xml reads names up to white space, so a name may hold quotes or `=`;
    // written out beside a declaration they would be read differently.
    let odd = |name: &str| name.contains(['"', '\'', '=', '<', '>', '/', '&']);
    if keys.windows(2).any(|w| w[0] == w[1])
        || keys.iter().any(|k| k.contains(':') || odd(k))
        || odd(&element.name)
    {
        return None;
    }
    let (declared, marker) = declaration(element)?;
    let name = if element.ns.is_empty() {
        element.name.clone()
    } else {
        format!("fz:{}", element.name)
    };
    out.push('<');
    out.push_str(&name);
    out.push_str(&declared);
    for (key, value) in &element.attrs {
        out.push(' ');
        out.push_str(key);
        out.push_str("=\"");
        escape_attr(value, out);
        out.push('"');
    }
    out.push('>');
    escape_text(&element.text, out);
    let mut expected = Element {
        ns: element.ns.clone(),
        name: element.name.clone(),
        attrs: Vec::new(),
        text: element.text.clone(),
        children: Vec::new(),
    };
    if !declared.is_empty() {
        expected.attrs.push(marker);
    }
    expected.attrs.extend(element.attrs.iter().cloned());
    for child in &element.children {
        expected.children.push(render(child, out)?);
    }
    out.push_str("</");
    out.push_str(&name);
    out.push('>');
    Some(expected)
}
