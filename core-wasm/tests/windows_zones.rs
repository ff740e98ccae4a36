//! The Windows → IANA zone table (`src/windows_zones.rs`) against the CLDR file it is
//! generated from. With `CALVERT_REGENERATE=1` the test rewrites the table instead.

use std::path::Path;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

const XML: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/ews/timezones/windowsZones.xml"
);
const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/src/windows_zones.rs");

/// What the generated file records about its source.
struct Cldr {
    /// The "001" rows as (Windows id, IANA name), sorted by Windows id (byte order).
    rows: Vec<(String, String)>,
    other_version: String,
    type_version: String,
    /// The copyright line of the file's leading comment.
    copyright: String,
}

fn attribute(element: &BytesStart<'_>, reader: &Reader<&[u8]>, name: &str) -> Option<String> {
    element
        .try_get_attribute(name)
        .unwrap_or_else(|e| panic!("bad attribute {name:?} in {XML}: {e}"))
        .map(|a| {
            a.decoded_and_normalized_value(quick_xml::XmlVersion::Implicit1_0, reader.decoder())
                .unwrap_or_else(|e| panic!("bad value of {name:?} in {XML}: {e}"))
                .into_owned()
        })
}

fn parse(xml: &str) -> Cldr {
    let mut reader = Reader::from_str(xml);
    let mut cldr = Cldr {
        rows: Vec::new(),
        other_version: String::new(),
        type_version: String::new(),
        copyright: String::new(),
    };
    loop {
        match reader
            .read_event()
            .unwrap_or_else(|e| panic!("{XML} is not well-formed XML: {e}"))
        {
            Event::Eof => break,
            Event::Comment(text) if cldr.copyright.is_empty() => {
                let text = text.decode().expect("a UTF-8 comment");
                if let Some(line) = text
                    .lines()
                    .map(str::trim)
                    .find(|l| l.starts_with("Copyright"))
                {
                    cldr.copyright = line.trim_end_matches('.').to_string();
                }
            }
            Event::Start(e) | Event::Empty(e) => match e.name().as_ref() {
                b"mapTimezones" => {
                    cldr.other_version = attribute(&e, &reader, "otherVersion").unwrap_or_default();
                    cldr.type_version = attribute(&e, &reader, "typeVersion").unwrap_or_default();
                }
                b"mapZone" if attribute(&e, &reader, "territory").as_deref() == Some("001") => {
                    let other = attribute(&e, &reader, "other").expect("a mapZone has `other`");
                    let iana = attribute(&e, &reader, "type").expect("a mapZone has `type`");
                    cldr.rows.push((other, iana));
                }
                _ => {}
            },
            _ => {}
        }
    }
    cldr.rows.sort();
    cldr
}

/// The source of `src/windows_zones.rs` for `cldr`, in the format it has.
fn render(cldr: &Cldr) -> String {
    let mut out = String::new();
    out.push_str(
        "//! Windows time-zone ids to IANA zones: the \"001\" (default territory) rows of the\n",
    );
    out.push_str(&format!(
        "//! CLDR `windowsZones.xml` (mapTimezones otherVersion=\"{}\" typeVersion=\"{}\"),\n",
        cldr.other_version, cldr.type_version
    ));
    out.push_str(&format!("//! {}., Unicode License v3.\n", cldr.copyright));
    out.push_str("//!\n");
    out.push_str("//! Generated from `../shared/ews/timezones/windowsZones.xml`; the test\n");
    out.push_str(
        "//! `core-wasm/tests/windows_zones.rs` checks this table against that file and\n",
    );
    out.push_str("//! rewrites it when run with `CALVERT_REGENERATE=1`. Sorted by Windows id.\n");
    out.push('\n');
    out.push_str("pub(crate) const WINDOWS_TO_IANA: &[(&str, &str)] = &[\n");
    for (windows, iana) in &cldr.rows {
        out.push_str(&format!("    ({windows:?}, {iana:?}),\n"));
    }
    out.push_str("];\n");
    out
}

#[test]
fn the_table_is_the_cldr_default_territory_mapping() {
    let Ok(xml) = std::fs::read_to_string(XML) else {
        println!("note: {XML} is absent; the Windows zone table is not checked");
        return;
    };
    let cldr = parse(&xml);
    assert!(
        !cldr.rows.is_empty(),
        "no mapZone rows with territory=\"001\" in {XML}"
    );
    for pair in cldr.rows.windows(2) {
        assert_ne!(
            pair[0].0, pair[1].0,
            "{XML} maps {:?} twice for territory 001",
            pair[0].0
        );
    }

    if std::env::var("CALVERT_REGENERATE").as_deref() == Ok("1") {
        std::fs::write(Path::new(TABLE), render(&cldr))
            .unwrap_or_else(|e| panic!("cannot write {TABLE}: {e}"));
        println!("rewrote {TABLE} with {} rows", cldr.rows.len());
        return;
    }

    let table: Vec<(String, String)> = calvert_core::zone::windows_zone_table()
        .iter()
        .map(|(w, i)| ((*w).to_string(), (*i).to_string()))
        .collect();
    assert_eq!(
        table, cldr.rows,
        "src/windows_zones.rs differs from {XML}: run `CALVERT_REGENERATE=1 cargo test -p calvert-core --test windows_zones`"
    );
    // Regenerating would leave the file as it is (its header names the same CLDR version).
    let current = std::fs::read_to_string(TABLE).expect("src/windows_zones.rs is readable");
    assert_eq!(
        current,
        render(&cldr),
        "src/windows_zones.rs is not what the generator writes: run `CALVERT_REGENERATE=1 cargo test -p calvert-core --test windows_zones`"
    );
}

#[test]
fn every_windows_id_resolves_to_a_known_iana_zone() {
    for (windows, iana) in calvert_core::zone::windows_zone_table() {
        let target = calvert_core::zone::Zone::lookup(iana);
        assert!(
            target.is_some(),
            "{iana} (for {windows:?}) is not in the bundled tz database"
        );
        let zone = calvert_core::zone::Zone::lookup(windows)
            .unwrap_or_else(|| panic!("{windows:?} does not resolve"));
        // An id that is also an IANA name ("UTC") resolves as that name.
        assert!(
            zone.iana == *iana || zone.iana == *windows,
            "{windows:?} resolved to {}, not {iana}",
            zone.iana
        );
    }
    let ids: Vec<&str> = calvert_core::zone::windows_zone_table()
        .iter()
        .map(|(w, _)| *w)
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "the table must be sorted by Windows id for binary search"
    );
}
