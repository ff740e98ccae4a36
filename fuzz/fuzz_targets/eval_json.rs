//! `eval::run` never panics on any text, its answer is JSON, and it is deterministic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = std::str::from_utf8(data) else { return };
    let result = calvert_core::eval::run(request);
    if let Ok(answer) = &result {
        if let Err(e) = serde_json::from_str::<serde_json::Value>(&answer.answer) {
            panic!("the answer is not JSON ({e}): {}", answer.answer);
        }
    }
    assert_eq!(result, calvert_core::eval::run(request), "the same request gave another answer");
});
