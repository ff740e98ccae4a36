//! A Microsoft Graph calendarView or delta page (`calvert::graph::parse_page`):
//! any bytes, as a reply body. Oracles: a page is read or refused with a typed error
//! that says why (never a panic, however deep or odd the JSON); every event of a
//! read page is accounted for exactly once (an item, an unreadable event with its
//! reason, or a removal, exactly once each); a mapped item always has an id.
#![no_main]

use calvert::graph::parse_page;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match parse_page(&text) {
        Ok(page) => {
            let events = serde_json::from_str::<serde_json::Value>(&text)
                .ok()
                .and_then(|v| v["value"].as_array().map(Vec::len))
                .unwrap_or(0);
            let accounted = page.items.len() + page.unreadable.len() + page.removed.len();
            assert_eq!(accounted, events, "every event accounted for once");
            for item in &page.items {
                assert!(!item.id.is_empty(), "an item without an id");
            }
        }
        // A refusal says why.
        Err(error) => assert!(!error.to_string().is_empty(), "{error:?}"),
    }
});
