//! Secrets named in the file: given literally, by environment variable
//! (`password_env`) or by file (`password_file`) — exactly one of them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::check::Check;

/// Where secrets named in the file are looked up (the process environment in
/// production, a map in tests).
pub trait Environment {
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Environment for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Check<'_> {
    /// Exactly one of a literal, an environment variable or a file.
    pub(super) fn secret(
        &mut self,
        key: &str,
        literal: Option<String>,
        env: Option<String>,
        file: Option<PathBuf>,
    ) -> Option<String> {
        if literal.is_none() && env.is_none() && file.is_none() {
            self.problem(
                key,
                format!("missing: give {key}, {key}_env (an environment variable) or {key}_file"),
            );
            return None;
        }
        self.optional_secret(key, literal, env, file)
    }

    /// At most one of a literal, an environment variable or a file; None when none
    /// is given (or the one given cannot be read, which is a problem).
    pub(super) fn optional_secret(
        &mut self,
        key: &str,
        literal: Option<String>,
        env: Option<String>,
        file: Option<PathBuf>,
    ) -> Option<String> {
        let given: Vec<String> = [
            (literal.is_some(), key.to_string()),
            (env.is_some(), format!("{key}_env")),
            (file.is_some(), format!("{key}_file")),
        ]
        .into_iter()
        .filter_map(|(given, name)| given.then_some(name))
        .collect();
        if given.len() > 1 {
            self.problem(key, format!("give only one of {}", given.join(" and ")));
            return None;
        }
        match (literal, env, file) {
            (Some(value), _, _) => Some(value),
            (_, Some(name), _) => self.secret_from_env(key, &name),
            (_, _, Some(file)) => self.secret_from_file(key, file),
            (None, None, None) => None,
        }
    }

    fn secret_from_env(&mut self, key: &str, name: &str) -> Option<String> {
        match self.env.var(name) {
            Some(value) if !value.is_empty() => Some(value),
            _ => {
                self.problem(
                    format!("{key}_env"),
                    format!(
                        "the environment variable {name} is not set; export it before starting Calvert"
                    ),
                );
                None
            }
        }
    }

    /// The file's text without its final line break.
    fn secret_from_file(&mut self, key: &str, file: PathBuf) -> Option<String> {
        let full = self.path(&file);
        match std::fs::read_to_string(&full) {
            Ok(value) if !value.trim().is_empty() => Some(value.trim_end().to_string()),
            Ok(_) => {
                self.problem(
                    format!("{key}_file"),
                    format!("{} is empty", full.display()),
                );
                None
            }
            Err(e) => {
                self.problem(
                    format!("{key}_file"),
                    format!("cannot read {}: {e}", full.display()),
                );
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{MINIMAL, load, problems};
    use crate::ews::client::Credentials;

    #[test]
    fn secrets_come_from_the_environment_or_a_file_never_two_places() {
        let text = MINIMAL.replace("password = \"x\"", "password_env = \"PW\"");
        // A missing secret is one problem, not also one per rule naming the server.
        assert_eq!(problems(&text).len(), 1, "{:?}", problems(&text));
        match &load(&text, &[("PW", "from-env")]).unwrap().exchange[0].credentials {
            Credentials::Basic { password, .. } => assert_eq!(password, "from-env"),
            other => panic!("{other:?}"),
        }
        let missing = problems(&text);
        assert_eq!(missing[0].key, "exchange[0].password_env");
        assert!(missing[0].message.contains("PW is not set"), "{missing:?}");

        let dir = std::env::temp_dir().join(format!("calvert-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("pw"), "from-file\n").unwrap();
        let text = MINIMAL.replace(
            "password = \"x\"",
            &format!("password_file = {:?}", dir.join("pw")),
        );
        match &load(&text, &[]).unwrap().exchange[0].credentials {
            Credentials::Basic { password, .. } => assert_eq!(password, "from-file"),
            other => panic!("{other:?}"),
        }
        let both = MINIMAL.replace(
            "password = \"x\"",
            "password = \"x\"\npassword_env = \"PW\"",
        );
        assert_eq!(problems(&both)[0].key, "exchange[0].password");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
