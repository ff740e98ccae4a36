//! The telephony read-back (`GET …/phones/{id}/diversion`, docs/diversion-http.md):
//! what the phone shows, read from the target's JSON.
//!
//! The input's first byte chooses: `\x01` makes the rest a reason and an instant,
//! written as the documented JSON ([`CurrentBody`], `until` as Calvert writes
//! instants) that must read back as them; anything else is a reply body (the seeds
//! are the documented answers). Oracles: a body is read or refused with a typed error
//! that says why; what is read, written out again, reads back identically.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use calvert::diversion::{CurrentBody, parse_read_back, utc};
use calvert::store::Applied;
use libfuzzer_sys::fuzz_target;

fn written(applied: &Applied) -> String {
    let body = CurrentBody {
        reason: applied.reason.clone(),
        until: utc(applied.until),
    };
    serde_json::to_string(&body).expect("a body serializes")
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((1, rest)) => {
            let mut u = Unstructured::new(rest);
            let reason = String::arbitrary(&mut u).unwrap_or_default();
            let until = i64::arbitrary(&mut u).unwrap_or(0) % 300_000_000_000;
            // Calvert writes only instants jiff can: others are out of the core's range.
            if jiff::Timestamp::from_second(until).is_err() {
                return;
            }
            let applied = Applied { reason, until };
            let body = written(&applied);
            assert_eq!(parse_read_back(&body), Ok(applied), "{body}");
        }
        _ => {
            let text = String::from_utf8_lossy(data);
            match parse_read_back(&text) {
                Ok(applied) => {
                    let body = written(&applied);
                    assert_eq!(parse_read_back(&body), Ok(applied), "{body}");
                }
                Err(error) => assert!(!error.to_string().trim().is_empty(), "{error:?}"),
            }
        }
    }
});
