//! `resolve_trigger` never panics; a match lies inside the subject (its offset counts
//! code points of the subject as sent, before normalization, so it is before the end
//! of the subject as sent) and is one of the configured triggers.
#![no_main]

use calvert_testgen::TriggerInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: TriggerInput| {
    let TriggerInput { subject, triggers } = input;
    let Ok(found) = calvert_core::trigger::resolve_trigger(&subject, &triggers) else { return };
    let Some(m) = found else { return };
    let chars = subject.chars().count();
    // A match starts at a character of the subject as sent, so it is strictly before
    // its end. (It may lie past the end of the NFC form, which can be shorter.)
    assert!((m.at as usize) < chars, "match at {} but the subject has {chars} code points", m.at);
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
