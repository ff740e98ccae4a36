//! `[[telephony]]`: where diversion calls go — an HTTP endpoint of the telephony
//! system, or the log.

use std::collections::BTreeSet;
use std::time::Duration;

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
        let mut headers: Vec<(String, String)> = t.headers.into_iter().collect();
        for (header, var) in t.headers_env {
            match self.env.var(&var) {
                Some(value) => headers.push((header, value)),
                None => self.problem(
                    format!("{key}.headers_env.{header}"),
                    format!("the environment variable {var} is not set"),
                ),
            }
        }
        TelephonyKind::Http {
            url,
            headers,
            reads_back: t.reads_back,
        }
    }
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
    fn a_target_of_unknown_kind_is_a_problem() {
        let found = problems(&MINIMAL.replace("kind = \"log\"", "kind = \"sip\""));
        assert_eq!(found[0].key, "telephony[0].kind", "{found:?}");
    }
}
