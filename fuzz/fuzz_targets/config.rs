//! `calvert.toml`: any text through `ServiceConfig::from_toml`, the whole check
//! (the core's `validate-config` and routing included).
//!
//! Oracles: the same text gives the same outcome; a refusal is a syntax error or a
//! list of problems, each naming its key and saying something, never a failure of
//! the core; a secret from the environment, or the literal value of a secret key
//! (`password = "…"`, as `config/syntax.rs` redacts them), never appears in a message; a
//! configuration that loads routes users only to configured servers and targets, and
//! names no user, server or target twice.
#![no_main]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use calvert::config::{ConfigError, ServiceConfig};
use calvert::{CoreInstance, DecisionCore};
use libfuzzer_sys::fuzz_target;

/// The value of every environment variable the input may name.
const SECRET: &str = "env-secret-4711";

thread_local! {
    /// One instance for every input, as the service keeps one (compiling the core
    /// takes seconds; it happens once, in `init`).
    static CORE: RefCell<Option<CoreInstance>> = const { RefCell::new(None) };
}

fn load(text: &str, env: &BTreeMap<String, String>) -> Result<ServiceConfig, ConfigError> {
    // Relative files (secrets, CA bundles) resolve under a directory that is not there.
    let path = Path::new("/nonexistent/calvert-fuzz/calvert.toml");
    CORE.with_borrow_mut(|core| {
        let core = core.as_mut().expect("init made the core");
        ServiceConfig::from_toml(text, path, env, core)
    })
}

/// Secret words, as `host/src/config/syntax.rs` lists them: a key ending in one holds
/// a secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
];

/// The values of `key = "value"` lines whose key ends in a secret word, where the
/// value could not be in a message by chance: at least 8 ASCII letters and digits
/// (both), found nowhere else in the text.
fn literal_secrets(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            let key = key
                .trim()
                .trim_matches(['"', '\''])
                .to_ascii_lowercase()
                .replace('-', "_");
            let value = value.trim().strip_prefix('"')?.strip_suffix('"')?;
            let secret = SECRET_WORDS.iter().any(|w| key.ends_with(w));
            let unguessable = value.len() >= 8
                && value.chars().all(|c| c.is_ascii_alphanumeric())
                && value.chars().any(|c| c.is_ascii_digit())
                && value.chars().any(|c| c.is_ascii_alphabetic());
            (secret && unguessable && text.matches(value).count() == 1).then_some(value)
        })
        .collect()
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) {
    let mut seen = std::collections::BTreeSet::new();
    for name in names {
        assert!(
            seen.insert(name.to_ascii_lowercase()),
            "{what} {name:?} is configured twice"
        );
    }
}

fn loaded(config: &ServiceConfig) {
    unique("user", config.users.iter().map(|u| u.address.as_str()));
    unique("server", config.exchange.iter().map(|s| s.name.as_str()));
    unique("target", config.telephony.iter().map(|t| t.name.as_str()));
    for user in &config.users {
        if let Some(server) = &user.exchange {
            assert!(
                config.exchange.iter().any(|s| &s.name == server),
                "{user:?}: no server {server}"
            );
        }
        if let Some(target) = &user.telephony {
            assert!(
                config.telephony.iter().any(|t| &t.name == target),
                "{user:?}: no target {target}"
            );
        }
        assert!(
            config.user(&user.address).is_some_and(|u| u == user),
            "{user:?} is not found by address"
        );
    }
}

fuzz_target!(
    init: {
        let core = DecisionCore::load().expect("the embedded core loads");
        CORE.with_borrow_mut(|slot| *slot = Some(core.instance()));
    },
    |data: &[u8]| {
        let Ok(text) = std::str::from_utf8(data) else { return };
        // Reading a device or process file as a secret is an administrator's choice,
        // not a parser's question (and /dev/zero never ends).
        // And the secret's own text in the input would be echoed as input, rightly.
        if ["/dev", "/proc", "/sys", SECRET].iter().any(|d| text.contains(d)) {
            return;
        }
        let env: BTreeMap<String, String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .map(|w| (w.to_string(), SECRET.to_string()))
            .collect();
        let result = load(text, &env);
        assert_eq!(format!("{result:?}"), format!("{:?}", load(text, &env)), "another outcome for the same text");
        match &result {
            Ok(config) => loaded(config),
            Err(error) => {
                let message = error.to_string();
                assert!(!message.contains(SECRET), "a secret in the message: {message}");
                for secret in literal_secrets(text) {
                    assert!(!message.contains(secret), "the secret {secret:?} in the message: {message}");
                }
                match error {
                    ConfigError::Syntax { message, .. } => assert!(!message.trim().is_empty()),
                    ConfigError::Invalid { problems, .. } => {
                        assert!(!problems.is_empty(), "refused without a problem");
                        for problem in problems {
                            assert!(!problem.key.is_empty() && !problem.message.trim().is_empty(), "{problem:?}");
                        }
                    }
                    ConfigError::Read { .. } | ConfigError::Core(_) => panic!("{message}"),
                }
            }
        }
    }
);
