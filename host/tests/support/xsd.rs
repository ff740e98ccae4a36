//! Schema validation for the tests: xmllint against `../shared/ews/xsd`.

// Shared by several test crates; each uses a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use calvert::ews::{MESSAGES_NS, TYPES_NS};

pub fn schemas() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/ews/xsd");
    if dir.join("messages.xsd").is_file() {
        Some(dir)
    } else {
        eprintln!("{} not found: schema validation skipped", dir.display());
        None
    }
}

/// The element between `open` and `close` in `envelope`, as a standalone document.
pub fn part(envelope: &str, open: &str, close: &str) -> String {
    let start = envelope.find(open).expect("part start") + open.len();
    let end = envelope[start..].find(close).expect("part end") + start;
    let inner = &envelope[start..end];
    // Declare the prefixes on the part's root element.
    let name_end = inner.find([' ', '>', '/']).expect("a root element");
    format!(
        r#"{} xmlns:t="{TYPES_NS}" xmlns:m="{MESSAGES_NS}"{}"#,
        &inner[..name_end],
        &inner[name_end..]
    )
}

/// types.xsd imports the XML namespace (for `xml:lang`) without a location, and the
/// tests never reach the network: a wrapper schema imports a local declaration of
/// it first, then the EWS schema.
pub fn wrapper(dir: &std::path::Path, schema: &str) -> PathBuf {
    let work = std::env::temp_dir().join(format!("calvert-xsd-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    std::fs::write(
        work.join("xml.xsd"),
        r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="http://www.w3.org/XML/1998/namespace">
  <xs:attribute name="lang" type="xs:language"/>
</xs:schema>"#,
    )
    .expect("xml.xsd");
    let namespace = if schema == "messages.xsd" {
        MESSAGES_NS
    } else {
        TYPES_NS
    };
    let path = work.join(format!("wrapper-{schema}"));
    std::fs::write(
        &path,
        format!(
            r#"<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" targetNamespace="urn:calvert:schema-wrapper">
  <xs:import namespace="http://www.w3.org/XML/1998/namespace" schemaLocation="xml.xsd"/>
  <xs:import namespace="{namespace}" schemaLocation="{}"/>
</xs:schema>"#,
            dir.join(schema).display()
        ),
    )
    .expect("wrapper schema");
    path
}

/// Validate documents against a schema in one xmllint run (compiling the EWS schema
/// takes most of the time).
pub fn validate(schema: &str, documents: &[(String, String)]) {
    let Some(dir) = schemas() else { return };
    let work = std::env::temp_dir().join(format!("calvert-docs-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("temp dir");
    let files: Vec<PathBuf> = documents
        .iter()
        .map(|(what, document)| {
            let file = work.join(format!("{what}.xml"));
            std::fs::write(&file, document).expect("temp file");
            file
        })
        .collect();
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(wrapper(&dir, schema))
        .args(&files)
        .output()
        .unwrap_or_else(|e| {
            panic!("xmllint could not run ({e}): install libxml2-utils (scripts/test-all does)")
        });
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failed: Vec<&(String, String)> = documents
        .iter()
        .filter(|(what, _)| stderr.contains(&format!("{what}.xml fails to validate")))
        .collect();
    assert!(
        output.status.success() && failed.is_empty(),
        "documents that do not validate against {schema}:\n{stderr}\n{failed:#?}"
    );
    let validated = stderr.matches(" validates").count();
    assert_eq!(
        validated,
        documents.len(),
        "xmllint validated {validated} of {}:\n{stderr}",
        documents.len()
    );
}
