//! Which configuration a start uses. The store holds the configuration in force
//! (calvert.toml's text with the administration's live edits) and the file text it
//! began as; calvert.toml seeds an empty store. [`settle`] decides, purely, from the
//! file's text and what the store holds; [`Service`](super::state::Service) start-up
//! carries it out.
//!
//! | store holds                         | file                | start uses               |
//! |-------------------------------------|---------------------|--------------------------|
//! | nothing                             | any                 | the file, seeded         |
//! | the file's text                     | unchanged           | the file                 |
//! | live edits of this file             | unchanged           | the stored text          |
//! | no live edits                       | changed             | the file, adopted        |
//! | live edits                          | changed too         | nothing: refuse to start |
//!
//! The last row never drops either side's changes silently: the administrator
//! merges them (`calvert config export`) or discards the live edits
//! (`calvert config adopt`).

use crate::component::CoreInstance;
use crate::config::ServiceConfig;
use crate::store::{Store, StoredConfig};

/// What a start does with the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Settled {
    /// Use the file; save it to the store first when this is `Some`.
    File { save: Option<StoredConfig> },
    /// Use the stored text (the file has not changed since it was seeded).
    Stored { text: String },
    /// Both the file and the stored text changed since the seed.
    Conflict,
}

/// Decide from calvert.toml's `file` text and the `stored` configuration.
pub fn settle(file: &str, stored: Option<&StoredConfig>) -> Settled {
    let seed = || StoredConfig {
        text: file.to_string(),
        file_text: file.to_string(),
    };
    let Some(stored) = stored else {
        return Settled::File { save: Some(seed()) };
    };
    if stored.text == file {
        let save = (stored.file_text != file).then(seed);
        return Settled::File { save };
    }
    if stored.file_text == file {
        return Settled::Stored {
            text: stored.text.clone(),
        };
    }
    if stored.text == stored.file_text {
        return Settled::File { save: Some(seed()) };
    }
    Settled::Conflict
}

/// Why a start found no configuration to use.
#[derive(Debug, thiserror::Error)]
pub enum ConfigStartError {
    #[error(
        "{path} changed since Calvert last started, and the administration changed the configuration too: \
         run `calvert config export --config {path} > live.toml`, merge live.toml into {path}, \
         then run `calvert config adopt --config {path}` and start again"
    )]
    Conflict { path: String },
    #[error(
        "the configuration edited in the administration no longer passes the checks: {0} \
         (fix what it names, or run `calvert config adopt` to use calvert.toml as written)"
    )]
    StoredInvalid(crate::config::ConfigError),
    #[error("the stored configuration could not be read or saved: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// The configuration to start with: `file` (calvert.toml as loaded) or the stored
/// text checked as the file was, saving what [`settle`] says to save.
pub fn configuration_in_force(
    file: ServiceConfig,
    store: &dyn Store,
    core: &mut CoreInstance,
) -> Result<ServiceConfig, ConfigStartError> {
    let stored = store.stored_config()?;
    match settle(&file.source.text, stored.as_ref()) {
        Settled::File { save } => {
            if let Some(save) = save {
                store.put_config(&save)?;
            }
            Ok(file)
        }
        Settled::Stored { text } => {
            let config = file
                .source
                .check(&text, core)
                .map_err(ConfigStartError::StoredInvalid)?;
            tracing::info!(
                "in force: calvert.toml with the administration's live edits (`calvert config export` writes it out)"
            );
            Ok(config)
        }
        Settled::Conflict => Err(ConfigStartError::Conflict {
            path: file.source.path.display().to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(text: &str, file_text: &str) -> StoredConfig {
        StoredConfig {
            text: text.into(),
            file_text: file_text.into(),
        }
    }

    #[test]
    fn an_empty_store_is_seeded_with_the_file() {
        assert_eq!(
            settle("A", None),
            Settled::File {
                save: Some(stored("A", "A"))
            }
        );
    }

    #[test]
    fn an_unchanged_file_without_edits_saves_nothing() {
        assert_eq!(
            settle("A", Some(&stored("A", "A"))),
            Settled::File { save: None }
        );
    }

    #[test]
    fn live_edits_of_an_unchanged_file_are_in_force() {
        assert_eq!(
            settle("A", Some(&stored("A+edit", "A"))),
            Settled::Stored {
                text: "A+edit".into()
            }
        );
    }

    #[test]
    fn a_changed_file_without_live_edits_is_adopted() {
        assert_eq!(
            settle("B", Some(&stored("A", "A"))),
            Settled::File {
                save: Some(stored("B", "B"))
            }
        );
    }

    #[test]
    fn a_file_that_now_equals_the_edits_is_the_new_seed() {
        assert_eq!(
            settle("A+edit", Some(&stored("A+edit", "A"))),
            Settled::File {
                save: Some(stored("A+edit", "A+edit"))
            }
        );
    }

    #[test]
    fn both_changed_is_a_conflict() {
        assert_eq!(settle("B", Some(&stored("A+edit", "A"))), Settled::Conflict);
    }
}
