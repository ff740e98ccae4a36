//! `resolve_trigger` never panics; a match lies inside the NFC subject (its offset in
//! characters is before the end) and is one of the configured triggers.
#![no_main]

use calvert_testgen::TriggerInput;
use libfuzzer_sys::fuzz_target;
use unicode_normalization::UnicodeNormalization;

fuzz_target!(|input: TriggerInput| {
    let TriggerInput { subject, triggers } = input;
    let Ok(found) = calvert_core::trigger::resolve_trigger(&subject, &triggers) else { return };
    let Some(m) = found else { return };
    let chars = subject.nfc().count();
    // A match starts at a character of the subject, so it is strictly before the end.
    assert!((m.at as usize) < chars, "match at {} but the NFC subject has {chars} characters", m.at);
    assert!(
        triggers.iter().any(|t| t.word == m.word && t.reason == m.reason),
        "match {m:?} is not one of the triggers"
    );
    // The same triggers in the other order find the same match (they are unique after folding).
    let mut reversed = triggers.clone();
    reversed.reverse();
    let again = calvert_core::trigger::resolve_trigger(&subject, &reversed).expect("same triggers, reversed");
    assert_eq!(again.as_ref(), Some(&m), "reversing the triggers changed the match");
});
