//! `route` never panics, and a server it answers with is one of the rules' servers.
#![no_main]

use calvert_testgen::RouteInput;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: RouteInput| {
    let RouteInput { address, rules } = input;
    let result = calvert_core::route(&address, &rules);
    if let Ok(Some(server)) = &result {
        assert!(rules.iter().any(|r| &r.server == server), "server {server:?} is not one of the rules' servers");
    }
    // The order of the rules never changes the answer.
    let mut reversed = rules.clone();
    reversed.reverse();
    let again = calvert_core::route(&address, &reversed);
    assert_eq!(result.is_ok(), again.is_ok(), "reversing the rules changed Ok/Err");
    if let (Ok(a), Ok(b)) = (&result, &again) {
        assert_eq!(a, b, "reversing the rules changed the route");
    }
});
