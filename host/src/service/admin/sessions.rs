//! Who is logged in to the administration: sessions by a random id (the cookie), each
//! with its account, role and CSRF token. Kept in memory: a restart logs everyone out.
//! Plain data with `now` passed in; the randomness comes from the caller.

use std::collections::BTreeMap;
use std::sync::Mutex;

use base64::Engine;

use crate::lock::lock;
use crate::store::Role;

/// The cookie that carries the session id.
pub const COOKIE: &str = "calvert_session";
/// A session unused this long (seconds) ends.
pub const IDLE: i64 = 30 * 60;
/// A session ends this long (seconds) after its login, used or not.
pub const LIFETIME: i64 = 12 * 60 * 60;
/// At most this many sessions; a new login beyond it ends the least recently used.
pub const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub account: String,
    pub role: Role,
    /// Sent back with every change (header `X-CSRF-Token` or form field `csrf`).
    pub csrf: String,
    pub created: i64,
    pub seen: i64,
}

#[derive(Default)]
pub struct Sessions {
    table: Mutex<BTreeMap<String, Session>>,
}

impl Sessions {
    /// Start a session under `id` (a [`random_token`]).
    pub fn open(&self, id: String, account: &str, role: Role, csrf: String, now: i64) {
        let mut table = lock(&self.table);
        table.retain(|_, s| alive(s, now));
        while table.len() >= MAX_SESSIONS {
            let Some(oldest) = table
                .iter()
                .min_by_key(|(_, s)| s.seen)
                .map(|(id, _)| id.clone())
            else {
                break;
            };
            table.remove(&oldest);
        }
        let session = Session {
            account: account.to_string(),
            role,
            csrf,
            created: now,
            seen: now,
        };
        table.insert(id, session);
    }

    /// The session `id` names, if it is still alive (and now seen at `now`).
    pub fn find(&self, id: &str, now: i64) -> Option<Session> {
        let mut table = lock(&self.table);
        let session = table.get_mut(id)?;
        if !alive(session, now) {
            table.remove(id);
            return None;
        }
        session.seen = now;
        Some(session.clone())
    }

    pub fn close(&self, id: &str) {
        lock(&self.table).remove(id);
    }

    /// End every session of `account` (its password or role changed).
    pub fn close_all_of(&self, account: &str) {
        lock(&self.table).retain(|_, s| !s.account.eq_ignore_ascii_case(account));
    }
}

fn alive(session: &Session, now: i64) -> bool {
    now - session.seen < IDLE && now - session.created < LIFETIME
}

/// 32 random bytes, base64url: a session id, a CSRF token, a one-time password.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // The operating system's generator does not fail on the systems Calvert runs
    // on; should it, a zeroed token would be guessable, so stop instead.
    if let Err(error) = getrandom::fill(&mut bytes) {
        panic!("the operating system gave no random bytes: {error}");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The session id in a `Cookie` header, if any.
pub fn from_cookie_header(header: &str) -> Option<String> {
    cookie::Cookie::split_parse(header)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE)
        .map(|c| c.value().to_string())
}

/// The `Set-Cookie` value that starts (`Some(id)`) or ends (`None`) a session.
/// `secure`: the admin port is served over TLS.
pub fn set_cookie(id: Option<&str>, secure: bool) -> String {
    let mut cookie = cookie::Cookie::build((COOKIE, id.unwrap_or("").to_string()))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(secure);
    if id.is_none() {
        cookie = cookie.max_age(cookie::time::Duration::ZERO);
    }
    cookie.build().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_ends_when_idle_or_old_and_on_logout() {
        let sessions = Sessions::default();
        sessions.open("a".into(), "ada", Role::Viewer, "t".into(), 0);
        assert_eq!(
            sessions.find("a", IDLE - 1).map(|s| s.role),
            Some(Role::Viewer)
        );
        // Seen at IDLE - 1: alive until 2 * IDLE - 2.
        assert!(sessions.find("a", 2 * IDLE - 2).is_some());
        assert!(sessions.find("a", 3 * IDLE).is_none());
        assert!(
            sessions.find("a", 0).is_none(),
            "an ended session stays ended"
        );

        sessions.open("b".into(), "ada", Role::Administrator, "t".into(), 0);
        let mut now = 0;
        while now < LIFETIME - IDLE {
            now += IDLE - 1;
            assert!(sessions.find("b", now).is_some(), "{now}");
        }
        assert!(
            sessions.find("b", LIFETIME).is_none(),
            "used or not, it ends"
        );

        sessions.open("c".into(), "Ada", Role::Administrator, "t".into(), 0);
        sessions.open("d".into(), "eva", Role::Administrator, "t".into(), 0);
        sessions.close_all_of("ada");
        assert!(sessions.find("c", 1).is_none());
        sessions.close("d");
        assert!(sessions.find("d", 1).is_none());
        assert!(sessions.find("unknown", 1).is_none());
    }

    #[test]
    fn the_table_is_capped_by_dropping_the_least_recently_used() {
        let sessions = Sessions::default();
        for i in 0..MAX_SESSIONS {
            sessions.open(format!("s{i}"), "ada", Role::Viewer, "t".into(), 1);
        }
        assert!(
            sessions.find("s0", 2).is_some(),
            "s0 is now the most recent"
        );
        sessions.open("new".into(), "ada", Role::Viewer, "t".into(), 3);
        assert!(sessions.find("new", 3).is_some());
        assert!(sessions.find("s0", 3).is_some());
        assert!(
            sessions.find("s1", 3).is_none(),
            "the least recently used went"
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_found_among_others() {
        let set = set_cookie(Some("abc"), false);
        assert!(set.starts_with("calvert_session=abc"), "{set}");
        for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(set.contains(part), "{set}");
        }
        assert!(!set.contains("Secure"), "{set}");
        assert!(set_cookie(Some("abc"), true).contains("Secure"));
        assert!(set_cookie(None, false).contains("Max-Age=0"));
        assert_eq!(
            from_cookie_header("theme=dark; calvert_session=xyz; other=1"),
            Some("xyz".into())
        );
        assert_eq!(from_cookie_header("theme=dark"), None);
        assert_eq!(from_cookie_header(";;=;"), None);
        let token = random_token();
        assert_eq!(token.len(), 43);
        assert_ne!(token, random_token());
    }
}
