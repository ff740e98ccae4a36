//! NTLM: reading a server's Challenge (Type 2) and answering it.
//!
//! The input's first byte chooses what the rest is:
//! - `0`: a `WWW-Authenticate` header value, as a server sends it (`NTLM <base64>`);
//! - `1`: the challenge message's bytes (base64-encoded here, so the fuzzer works on
//!   the binary layout);
//! - `2`: an 8-byte challenge and a server clock, written into a well-formed
//!   challenge by the simulator's own NTLM code.
//!
//! Oracles: a challenge that is refused is a typed error that says why; one that is
//! read gives an Authenticate message that the simulator's independent reader
//! accepts, naming Calvert's account and workstation, whose NTLMv2 response the
//! simulator verifies against the password and the challenge's 8 bytes; a
//! simulator-written challenge reads back with its bytes and clock.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use calvert::ews::ntlm::{Challenge, NtlmAccount, WORKSTATION, offered};
use calvert_exchange_sim::ntlm::{challenge_message, parse_authenticate, verify_ntlmv2};
use libfuzzer_sys::fuzz_target;

const USER: &str = "FLEXI\\calvert-svc";
const PASSWORD: &str = "Sommar2026!";

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => header(&String::from_utf8_lossy(rest)),
        1 => read(&BASE64.encode(rest)),
        _ => simulated(rest),
    }
});

fn header(value: &str) {
    match offered(&[value]) {
        Some((scheme, token)) => {
            assert!(scheme == "NTLM" || scheme == "Negotiate");
            if let Some(token) = token {
                assert!(!token.is_empty() && token.trim() == token, "{token:?}");
                read(&token);
            }
        }
        None => read(value),
    }
}

fn read(token: &str) {
    match Challenge::from_base64(token) {
        Ok(challenge) => answer(&challenge),
        Err(error) => assert!(!error.to_string().trim().is_empty(), "{error:?}"),
    }
}

fn answer(challenge: &Challenge) {
    let account = NtlmAccount::new(USER, PASSWORD).expect("a valid account");
    let _ = challenge.target_name();
    let token = match challenge.authenticate(&account) {
        Ok(token) => token,
        Err(error) => return assert!(!error.to_string().trim().is_empty(), "{error:?}"),
    };
    let message = BASE64
        .decode(&token)
        .expect("Calvert's Authenticate is base64");
    let read = parse_authenticate(&message)
        .unwrap_or_else(|e| panic!("the simulator cannot read Calvert's Authenticate: {e}"));
    assert_eq!(
        (read.domain.as_str(), read.user.as_str()),
        ("FLEXI", "calvert-svc")
    );
    assert_eq!(read.workstation, WORKSTATION);
    assert!(
        verify_ntlmv2(
            PASSWORD,
            &read.user,
            &read.domain,
            challenge.server_challenge(),
            &read.nt_response
        ),
        "the NTLMv2 response does not answer the challenge"
    );
}

fn simulated(rest: &[u8]) {
    let mut bytes = [0u8; 16];
    for (slot, byte) in bytes.iter_mut().zip(rest) {
        *slot = *byte;
    }
    let (server_challenge, clock) = bytes.split_at(8);
    let server_challenge: [u8; 8] = server_challenge.try_into().expect("8 bytes");
    let clock = u64::from_le_bytes(clock.try_into().expect("8 bytes"));
    let message = challenge_message(server_challenge, clock);
    let challenge = Challenge::from_base64(&BASE64.encode(&message))
        .unwrap_or_else(|e| panic!("a well-formed challenge is refused: {e}"));
    assert_eq!(challenge.server_challenge(), server_challenge);
    assert_eq!(challenge.timestamp(), Some(clock as i64));
    answer(&challenge);
}
