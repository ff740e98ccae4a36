//! What is wrong with a configuration: one problem per key, all reported at once.

use std::path::PathBuf;

use crate::component::CoreError;

/// One thing wrong with the configuration, at a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read the configuration {path}: {source}; check the path given to --config")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not valid TOML for Calvert: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("{path} has {} problem(s); fix them and start again:\n{}", .problems.len(), list(.problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<ConfigProblem>,
    },
    #[error(transparent)]
    Core(#[from] CoreError),
}

fn list(problems: &[ConfigProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_is_one_line_under_the_file() {
        let err = ConfigError::Invalid {
            path: PathBuf::from("/etc/calvert/calvert.toml"),
            problems: vec![
                ConfigProblem {
                    key: "user[0].zone".into(),
                    message: "unknown".into(),
                },
                ConfigProblem {
                    key: "rule".into(),
                    message: "none".into(),
                },
            ],
        };
        assert_eq!(
            err.to_string(),
            "/etc/calvert/calvert.toml has 2 problem(s); fix them and start again:\n  - user[0].zone: unknown\n  - rule: none"
        );
    }
}
