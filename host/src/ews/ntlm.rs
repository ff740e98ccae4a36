//! NTLM sign-in messages (brief §6.1): the Negotiate (Type 1) a client opens with,
//! reading the server's Challenge (Type 2) from `WWW-Authenticate`, and the NTLMv2
//! Authenticate (Type 3) that answers it. The HTTP side (one keep-alive connection
//! for the whole exchange) is in [`super::client`].
//!
//! The messages are encoded by the `ntlmclient` crate (0.2). It was chosen over
//! `sspi` (Devolutions) because it does exactly this and no more: NTLM message
//! encoding/decoding and the NTLMv2 response, on the RustCrypto hashes (md4, md-5,
//! hmac, des) plus chrono and rand, building in seconds with Rust 1.95. `sspi`
//! brings Kerberos, SSPI, smart cards and a second TLS stack (aws-lc-rs by default),
//! which Calvert does not use. Neither sends an Extended Protection channel binding
//! token on its own (see the README: an Exchange 2019 CU14+/SE virtual directory set
//! to `Require` refuses NTLM without one).

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;

/// The workstation name Calvert gives in its messages.
pub const WORKSTATION: &str = "CALVERT";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NtlmError {
    #[error(
        "the NTLM user {user:?} is not DOMAIN\\user or user@domain: give the service account in one of those forms"
    )]
    BadUser { user: String },
    #[error("the server's NTLM challenge is not base64: {reason}")]
    ChallengeNotBase64 { reason: String },
    #[error("the server's NTLM challenge cannot be read: {reason}")]
    BadChallenge { reason: String },
    #[error("the NTLM message cannot be written: {reason}")]
    Encode { reason: String },
}

/// An NTLM account: the domain and user name as they go into the Authenticate
/// message. `DOMAIN\user` splits into both; a UPN `user@domain` stays whole as the
/// user name with an empty domain (how Windows clients send a UPN).
#[derive(Clone, PartialEq, Eq)]
pub struct NtlmAccount {
    pub domain: String,
    pub user: String,
    password: String,
}

impl std::fmt::Debug for NtlmAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "NtlmAccount {{ domain: {:?}, user: {:?}, password: <hidden> }}",
            self.domain, self.user
        )
    }
}

impl NtlmAccount {
    pub fn new(user: &str, password: &str) -> Result<Self, NtlmError> {
        let bad = || NtlmError::BadUser {
            user: user.to_string(),
        };
        let trimmed = user.trim();
        let (domain, name) = if let Some((domain, name)) = trimmed.split_once('\\') {
            let plain = |part: &str| !part.is_empty() && !part.contains(['\\', '@']);
            if !plain(domain) || !plain(name) {
                return Err(bad());
            }
            (domain, name)
        } else {
            match trimmed.split_once('@') {
                Some((local, realm))
                    if !local.is_empty() && !realm.is_empty() && !realm.contains('@') =>
                {
                    ("", trimmed)
                }
                _ => return Err(bad()),
            }
        };
        Ok(NtlmAccount {
            domain: domain.to_string(),
            user: name.to_string(),
            password: password.to_string(),
        })
    }

    fn credentials(&self) -> ntlmclient::Credentials {
        ntlmclient::Credentials {
            username: self.user.clone(),
            password: self.password.clone(),
            domain: self.domain.clone(),
        }
    }
}

fn negotiate_flags() -> ntlmclient::Flags {
    use ntlmclient::Flags;
    Flags::NEGOTIATE_UNICODE
        | Flags::REQUEST_TARGET
        | Flags::NEGOTIATE_NTLM
        | Flags::NEGOTIATE_ALWAYS_SIGN
        | Flags::NEGOTIATE_NTLM2_KEY
        | Flags::NEGOTIATE_WORKSTATION_SUPPLIED
}

/// The Negotiate (Type 1) message, base64, for `Authorization: NTLM …`.
pub fn negotiate() -> Result<String, NtlmError> {
    let message = ntlmclient::Message::Negotiate(ntlmclient::NegotiateMessage {
        flags: negotiate_flags(),
        supplied_domain: String::new(),
        supplied_workstation: WORKSTATION.to_string(),
        os_version: Default::default(),
    });
    let bytes = message.to_bytes().map_err(|e| NtlmError::Encode {
        reason: e.to_string(),
    })?;
    Ok(BASE64.encode(bytes))
}

/// A server's Challenge (Type 2), read.
#[derive(Debug, Clone)]
pub struct Challenge {
    message: ntlmclient::ChallengeMessage,
}

impl Challenge {
    /// Read the base64 token of a `WWW-Authenticate: NTLM <token>` header.
    pub fn from_base64(token: &str) -> Result<Self, NtlmError> {
        let bytes = BASE64
            .decode(token.trim())
            .map_err(|e| NtlmError::ChallengeNotBase64 {
                reason: e.to_string(),
            })?;
        match ntlmclient::Message::try_from(bytes.as_slice()) {
            Ok(ntlmclient::Message::Challenge(message)) => Ok(Challenge { message }),
            Ok(other) => Err(NtlmError::BadChallenge {
                reason: format!(
                    "expected a Type 2 message, got Type {}",
                    other.message_number()
                ),
            }),
            Err(e) => Err(NtlmError::BadChallenge {
                reason: e.to_string(),
            }),
        }
    }

    /// The server's 8-byte challenge.
    pub fn server_challenge(&self) -> [u8; 8] {
        self.message.challenge
    }

    /// The target (domain or server) the server names.
    pub fn target_name(&self) -> &str {
        &self.message.target_name
    }

    /// The server's clock from the target information (MsvAvTimestamp), as a
    /// Windows FILETIME; NTLMv2 answers carry it when the server gives one.
    pub fn timestamp(&self) -> Option<i64> {
        self.message
            .target_information
            .iter()
            .find(|entry| entry.entry_type == ntlmclient::TargetInfoType::Timestamp)
            .and_then(|entry| <[u8; 8]>::try_from(entry.data.as_slice()).ok())
            .map(i64::from_le_bytes)
    }

    fn target_info_bytes(&self) -> Vec<u8> {
        self.message
            .target_information
            .iter()
            .flat_map(|entry| entry.to_bytes())
            .collect()
    }

    /// The NTLMv2 Authenticate (Type 3) message answering this challenge, base64.
    pub fn authenticate(&self, account: &NtlmAccount) -> Result<String, NtlmError> {
        use ntlmclient::Flags;
        let credentials = account.credentials();
        let time = self.timestamp().unwrap_or_else(ntlmclient::get_ntlm_time);
        let response = ntlmclient::respond_challenge_ntlm_v2(
            self.message.challenge,
            &self.target_info_bytes(),
            time,
            &credentials,
        );
        let flags = Flags::NEGOTIATE_UNICODE
            | Flags::NEGOTIATE_NTLM
            | Flags::NEGOTIATE_ALWAYS_SIGN
            | (self.message.flags & Flags::NEGOTIATE_NTLM2_KEY);
        let message = response.to_message(&credentials, WORKSTATION, flags);
        let bytes = message.to_bytes().map_err(|e| NtlmError::Encode {
            reason: e.to_string(),
        })?;
        Ok(BASE64.encode(bytes))
    }
}

/// Which of the schemes in `WWW-Authenticate` headers can carry NTLM: `NTLM`, else
/// `Negotiate` (IIS accepts a bare NTLM token there), with its token if the header
/// holds one (a challenge).
pub fn offered(headers: &[&str]) -> Option<(&'static str, Option<String>)> {
    let find = |scheme: &'static str| {
        headers.iter().find_map(|value| {
            let value = value.trim();
            let (name, rest) = value.split_once(' ').unwrap_or((value, ""));
            name.eq_ignore_ascii_case(scheme).then(|| {
                let token = rest.trim();
                (scheme, (!token.is_empty()).then(|| token.to_string()))
            })
        })
    };
    find("NTLM").or_else(|| find("Negotiate"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_in_both_forms() {
        let down = NtlmAccount::new("FLEXI\\calvert-svc", "pw").unwrap();
        assert_eq!(
            (down.domain.as_str(), down.user.as_str()),
            ("FLEXI", "calvert-svc")
        );
        let upn = NtlmAccount::new("calvert-svc@flexi.se", "pw").unwrap();
        assert_eq!(
            (upn.domain.as_str(), upn.user.as_str()),
            ("", "calvert-svc@flexi.se")
        );
        for bad in [
            "",
            "FLEXI\\",
            "\\calvert",
            "a\\b\\c",
            "@flexi.se",
            "calvert@",
            "FLEXI\\x@y",
            "calvert",
        ] {
            assert!(
                matches!(NtlmAccount::new(bad, "pw"), Err(NtlmError::BadUser { .. })),
                "{bad:?}"
            );
        }
        assert!(!format!("{down:?}").contains("pw"));
    }

    #[test]
    fn negotiate_is_a_type_1_message() {
        let bytes = BASE64.decode(negotiate().unwrap()).unwrap();
        assert_eq!(&bytes[..8], b"NTLMSSP\0");
        assert_eq!(u32::from_le_bytes(bytes[8..12].try_into().unwrap()), 1);
    }

    #[test]
    fn the_offered_scheme_prefers_ntlm() {
        assert_eq!(offered(&["Negotiate", "NTLM"]), Some(("NTLM", None)));
        assert_eq!(
            offered(&["NTLM TlRMTVNTUAACAAAA"]),
            Some(("NTLM", Some("TlRMTVNTUAACAAAA".to_string())))
        );
        assert_eq!(offered(&["Negotiate"]), Some(("Negotiate", None)));
        assert_eq!(offered(&["Basic realm=\"x\""]), None);
    }

    #[test]
    fn garbage_challenges_are_errors() {
        assert!(matches!(
            Challenge::from_base64("%%%"),
            Err(NtlmError::ChallengeNotBase64 { .. })
        ));
        assert!(matches!(
            Challenge::from_base64(&BASE64.encode(b"NTLMSSP\0\x02\0\0\0short")),
            Err(NtlmError::BadChallenge { .. })
        ));
        assert!(matches!(
            Challenge::from_base64(&negotiate().unwrap()),
            Err(NtlmError::BadChallenge { .. })
        ));
    }
}
