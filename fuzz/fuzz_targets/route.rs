//! `route` never panics, and a server it answers with is one of the rules' servers.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use calvert_fuzz::{ArbRule, Choice, Pool, small_vec};
use libfuzzer_sys::fuzz_target;

const ADDRESSES: Pool = Pool {
    good: &[
        "kim@support.flexi.se",
        "Kim@Support.Flexi.se",
        "eva@kundtjanst.flexi.se",
        "eva@flexi.se",
        "a@notsupport.flexi.se",
        "a@x.support.flexi.se",
        "x@example.com",
        " kim@flexi.se ",
        "a@bücher.de",
        "A@İ.SE",
        "a@K.se",
        "a@k.se",
        "y@other.org",
    ],
    bad: &["not-an-address", "a@b@c.se", "@flexi.se", "a@", "a@x..se", "", "a b@flexi.se x"],
};

#[derive(Debug)]
struct Input {
    address: Choice,
    rules: Vec<ArbRule>,
}

impl<'a> Arbitrary<'a> for Input {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Input { address: u.arbitrary()?, rules: small_vec(u, 8)? })
    }
}

fuzz_target!(|input: Input| {
    let address = input.address.get(&ADDRESSES);
    let rules: Vec<_> = input.rules.iter().map(ArbRule::get).collect();
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
