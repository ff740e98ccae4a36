//! The server side of NTLM (MS-NLMP), written here independently of Calvert's
//! client: the Challenge (Type 2) the simulator sends, reading an Authenticate
//! (Type 3), and checking its NTLMv2 response against an account's password:
//!
//! - NTOWFv2 = HMAC-MD5(MD4(UTF-16LE(password)), UTF-16LE(UPPER(user) + domain));
//! - NTProofStr = HMAC-MD5(NTOWFv2, server challenge ‖ blob), where the
//!   NtChallengeResponse is NTProofStr ‖ blob.

use hmac::{Hmac, Mac};
use md4::{Digest, Md4};
use md5::Md5;

const SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
const NEGOTIATE_UNICODE: u32 = 0x0000_0001;
const REQUEST_TARGET: u32 = 0x0000_0004;
const NEGOTIATE_NTLM: u32 = 0x0000_0200;
const NEGOTIATE_ALWAYS_SIGN: u32 = 0x0000_8000;
const TARGET_TYPE_DOMAIN: u32 = 0x0001_0000;
const NEGOTIATE_EXTENDED_SESSIONSECURITY: u32 = 0x0008_0000;
const NEGOTIATE_TARGET_INFO: u32 = 0x0080_0000;

/// The NetBIOS domain the simulator's challenges name.
pub const DOMAIN: &str = "FLEXI";
const SERVER: &str = "SIMEX01";
const DNS_DOMAIN: &str = "flexi.local";

fn utf16(text: &str) -> Vec<u8> {
    text.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// The message type (1, 2 or 3) of an NTLM message, if it is one.
pub fn message_type(message: &[u8]) -> Option<u32> {
    if message.len() < 12 || &message[..8] != SIGNATURE {
        return None;
    }
    Some(u32::from_le_bytes(message[8..12].try_into().ok()?))
}

/// A Challenge (Type 2) with `challenge`, naming the domain FLEXI and carrying the
/// server's clock (`filetime`, 100 ns since 1601) in its target information.
pub fn challenge_message(challenge: [u8; 8], filetime: u64) -> Vec<u8> {
    let target_name = utf16(DOMAIN);
    let mut info = Vec::new();
    for (kind, value) in [
        (2u16, utf16(DOMAIN)),
        (1, utf16(SERVER)),
        (4, utf16(DNS_DOMAIN)),
        (
            3,
            utf16(&format!("{}.{DNS_DOMAIN}", SERVER.to_ascii_lowercase())),
        ),
        (7, filetime.to_le_bytes().to_vec()),
        (0, Vec::new()),
    ] {
        info.extend_from_slice(&kind.to_le_bytes());
        info.extend_from_slice(&(value.len() as u16).to_le_bytes());
        info.extend_from_slice(&value);
    }
    // Header: signature, type, TargetName (8), flags, challenge, reserved (8),
    // TargetInfo (8), version (8) = 56 bytes; the payload follows.
    let header = 56u32;
    let flags = NEGOTIATE_UNICODE
        | REQUEST_TARGET
        | NEGOTIATE_NTLM
        | NEGOTIATE_ALWAYS_SIGN
        | TARGET_TYPE_DOMAIN
        | NEGOTIATE_EXTENDED_SESSIONSECURITY
        | NEGOTIATE_TARGET_INFO;
    let mut message = Vec::with_capacity(header as usize + target_name.len() + info.len());
    message.extend_from_slice(SIGNATURE);
    message.extend_from_slice(&2u32.to_le_bytes());
    let buffer = |message: &mut Vec<u8>, length: usize, offset: u32| {
        message.extend_from_slice(&(length as u16).to_le_bytes());
        message.extend_from_slice(&(length as u16).to_le_bytes());
        message.extend_from_slice(&offset.to_le_bytes());
    };
    buffer(&mut message, target_name.len(), header);
    message.extend_from_slice(&flags.to_le_bytes());
    message.extend_from_slice(&challenge);
    message.extend_from_slice(&[0; 8]);
    buffer(&mut message, info.len(), header + target_name.len() as u32);
    message.extend_from_slice(&[10, 0, 0x63, 0x45, 0, 0, 0, 15]); // Windows 10.0.17763, NTLM 15
    message.extend_from_slice(&target_name);
    message.extend_from_slice(&info);
    message
}

/// What an Authenticate (Type 3) message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticate {
    pub domain: String,
    pub user: String,
    pub workstation: String,
    pub nt_response: Vec<u8>,
}

/// Read an Authenticate (Type 3) message.
pub fn parse_authenticate(message: &[u8]) -> Result<Authenticate, String> {
    if message_type(message) != Some(3) {
        return Err("not an NTLM Authenticate message".into());
    }
    if message.len() < 64 {
        return Err(format!("{} bytes, shorter than its header", message.len()));
    }
    let field = |at: usize| -> Result<&[u8], String> {
        let length = u16::from_le_bytes([message[at], message[at + 1]]) as usize;
        let offset = u32::from_le_bytes([
            message[at + 4],
            message[at + 5],
            message[at + 6],
            message[at + 7],
        ]) as usize;
        message
            .get(offset..offset.saturating_add(length))
            .ok_or_else(|| format!("the field at {at} points outside the message"))
    };
    let flags = u32::from_le_bytes([message[60], message[61], message[62], message[63]]);
    let text = |bytes: &[u8]| -> Result<String, String> {
        if flags & NEGOTIATE_UNICODE == 0 {
            return String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string());
        }
        if !bytes.len().is_multiple_of(2) {
            return Err("an odd number of UTF-16 bytes".into());
        }
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|pair| u16::from_le_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16(&units).map_err(|e| e.to_string())
    };
    Ok(Authenticate {
        nt_response: field(20)?.to_vec(),
        domain: text(field(28)?)?,
        user: text(field(36)?)?,
        workstation: text(field(44)?)?,
    })
}

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC takes keys of any length.
    let Ok(mut mac) = <Hmac<Md5> as Mac>::new_from_slice(key) else {
        return [0; 16];
    };
    for part in parts {
        mac.update(part);
    }
    mac.finalize().into_bytes().into()
}

/// NTOWFv2 of an account.
pub fn nt_owf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    let nt_hash: [u8; 16] = Md4::digest(utf16(password)).into();
    hmac_md5(&nt_hash, &[&utf16(&(user.to_uppercase() + domain))])
}

/// Whether an NTLMv2 NtChallengeResponse answers `server_challenge` for this
/// password, user and domain (the user and domain as the Authenticate message gives
/// them).
pub fn verify_ntlmv2(
    password: &str,
    user: &str,
    domain: &str,
    server_challenge: [u8; 8],
    nt_response: &[u8],
) -> bool {
    // NTProofStr (16) and a blob of at least its fixed 28-byte head.
    if nt_response.len() < 16 + 28 {
        return false;
    }
    let (proof, blob) = nt_response.split_at(16);
    let key = nt_owf_v2(password, user, domain);
    let expected = hmac_md5(&key, &[&server_challenge, blob]);
    // Compared in full, not stopping at the first difference.
    expected
        .iter()
        .zip(proof)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MS-NLMP §4.2.4.1.1: NTOWFv2("Password", "User", "Domain").
    #[test]
    fn nt_owf_v2_matches_the_specification() {
        assert_eq!(
            nt_owf_v2("Password", "User", "Domain"),
            [
                0x0c, 0x86, 0x8a, 0x40, 0x3b, 0xfd, 0x7a, 0x93, 0xa3, 0x00, 0x1e, 0xf2, 0x2e, 0xf0,
                0x2e, 0x3f
            ]
        );
    }

    #[test]
    fn a_challenge_reads_back() {
        let message = challenge_message([1, 2, 3, 4, 5, 6, 7, 8], 42);
        assert_eq!(message_type(&message), Some(2));
        assert_eq!(&message[24..32], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert!(parse_authenticate(&message).is_err());
        assert_eq!(message_type(b"NTLMSSP"), None);
    }
}
