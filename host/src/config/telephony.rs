//! `[[telephony]]`: where diversion calls go — an HTTP endpoint of the telephony
//! system, or the log.

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};

use super::check::Check;
use super::file::TelephonySection;
use super::{TelephonyKind, TelephonyTarget};

impl Check<'_> {
    /// The targets that passed; one of an unknown kind is left out.
    pub(super) fn telephony(&mut self, sections: Vec<TelephonySection>) -> Vec<TelephonyTarget> {
        let mut targets = Vec::new();
        let mut names = BTreeSet::new();
        for (i, t) in sections.into_iter().enumerate() {
            let key = format!("telephony[{i}]");
            if !names.insert(t.name.clone()) {
                self.problem(
                    format!("{key}.name"),
                    format!("{:?} names two targets", t.name),
                );
            }
            let timeout = Duration::from_millis(t.timeout_ms.max(1));
            let name = t.name.clone();
            if let Some(kind) = self.target_kind(&key, t) {
                targets.push(TelephonyTarget {
                    name,
                    kind,
                    timeout,
                });
            }
        }
        targets
    }

    fn target_kind(&mut self, key: &str, t: TelephonySection) -> Option<TelephonyKind> {
        match t.kind.as_str() {
            "log" => Some(TelephonyKind::Log),
            "http" => Some(self.http_target(key, t)),
            other => {
                self.problem(
                    format!("{key}.kind"),
                    format!("{other:?} is not a target kind; use \"http\" or \"log\""),
                );
                None
            }
        }
    }

    /// An HTTP target: its URL and headers, some taken from the environment.
    fn http_target(&mut self, key: &str, t: TelephonySection) -> TelephonyKind {
        let url = t.url.unwrap_or_default();
        if !url.starts_with("http://") && !url.starts_with("https://") {
            self.problem(
                format!("{key}.url"),
                "an http target needs url = \"https://pbx.example/calvert\"",
            );
        }
        let mut headers: Vec<(String, String)> = Vec::new();
        for (header, value) in t.headers {
            match header_problem(&header, &value, "the value") {
                Some(problem) => {
                    self.problem(format!("{key}.headers.{}", toml_key(&header)), problem)
                }
                None => headers.push((header, value)),
            }
        }
        for (header, var) in t.headers_env {
            let problem = match self.env.var(&var) {
                Some(value) => {
                    match header_problem(&header, &value, &format!("the value of {var}")) {
                        Some(problem) => problem,
                        None => {
                            headers.push((header, value));
                            continue;
                        }
                    }
                }
                None => format!("the environment variable {var} is not set"),
            };
            self.problem(format!("{key}.headers_env.{}", toml_key(&header)), problem);
        }
        TelephonyKind::Http {
            url,
            headers,
            reads_back: t.reads_back,
        }
    }
}

/// `key` as TOML writes it: bare when it can be, else quoted.
fn toml_key(key: &str) -> String {
    let bare = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    if !key.is_empty() && key.chars().all(bare) {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// What is wrong with a header a target sends, by the same rules the HTTP client
/// applies when `serve` builds the target (so `--check` refuses what `serve` would).
/// The value is never echoed: it is often a token. `value_is` names it.
fn header_problem(header: &str, value: &str, value_is: &str) -> Option<String> {
    if HeaderName::from_bytes(header.as_bytes()).is_err() {
        return Some(format!(
            "{header:?} is not a valid HTTP header name: use letters, digits and '-' only, without spaces (e.g. \"X-Api-Key\")"
        ));
    }
    if HeaderValue::from_str(value).is_err() {
        return Some(format!(
            "{value_is} is not valid in an HTTP header: use visible characters and spaces only, no line breaks or control characters"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::TelephonyKind;
    use super::super::fixture::{MINIMAL, load, problems};

    const HTTP: &str = "kind = \"http\"\nurl = \"https://pbx.flexi.se/calvert\"\nheaders = { X-Site = \"sthlm\" }\nheaders_env = { Authorization = \"PBX_TOKEN\" }";

    #[test]
    fn an_http_target_takes_headers_from_the_file_and_the_environment() {
        let text = MINIMAL.replace("kind = \"log\"", HTTP);
        let config = load(&text, &[("PBX_TOKEN", "Bearer t")]).unwrap_or_else(|e| panic!("{e}"));
        match &config.telephony[0].kind {
            TelephonyKind::Http { url, headers, .. } => {
                assert_eq!(url, "https://pbx.flexi.se/calvert");
                assert_eq!(
                    headers,
                    &[
                        ("X-Site".to_string(), "sthlm".to_string()),
                        ("Authorization".to_string(), "Bearer t".to_string())
                    ]
                );
            }
            other => panic!("{other:?}"),
        }
        let found = problems(&text);
        assert_eq!(found[0].key, "telephony[0].headers_env.Authorization");
    }

    #[test]
    fn a_header_serve_cannot_send_is_a_problem_at_load() {
        let text = MINIMAL.replace(
            "kind = \"log\"",
            "kind = \"http\"\nurl = \"https://pbx.flexi.se/calvert\"\nheaders = { \"Bad Header\" = \"x\", X-Site = \"rad\\nbrytning\" }\nheaders_env = { X-Api-Key = \"PBX_KEY\" }",
        );
        let found = match load(&text, &[("PBX_KEY", "nyckel\u{7}")]) {
            Err(super::super::ConfigError::Invalid { problems, .. }) => problems,
            other => panic!("expected problems, got {other:?}"),
        };
        let keys: Vec<&str> = found.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "telephony[0].headers.\"Bad Header\"",
                "telephony[0].headers.X-Site",
                "telephony[0].headers_env.X-Api-Key"
            ],
            "{found:#?}"
        );
        assert!(
            found[0].message.contains("not a valid HTTP header name"),
            "{found:?}"
        );
        assert!(
            found[2].message.contains("the value of PBX_KEY"),
            "{found:?}"
        );
        assert!(!format!("{found:?}").contains("nyckel"), "{found:?}");
    }

    #[test]
    fn a_target_of_unknown_kind_is_a_problem() {
        let found = problems(&MINIMAL.replace("kind = \"log\"", "kind = \"sip\""));
        assert_eq!(found[0].key, "telephony[0].kind", "{found:?}");
    }
}
