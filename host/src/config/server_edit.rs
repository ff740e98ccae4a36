//! The administration's edits of `[[exchange]]` servers and `[[telephony]]` targets,
//! as edits of the TOML text (see [`super::edit`]). Secrets are write-only: a
//! password, client secret or header value left out (None) keeps what is set
//! (literal, variable or file); one given replaces it, written into the configuration
//! in the store, and is never shown again (the export and the pages redact it).

use toml_edit::{DocumentMut, Table, value};

use super::edit::{EditError, list, set_value};

/// An Exchange server as the Servers page edits it: added when no server has the
/// name, else changed in place. Empty texts remove their key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServerEdit {
    pub name: String,
    /// The EWS URL (`https://…`), or a host name (`mail.flexi.se`), or empty for
    /// Autodiscover.
    pub address: String,
    pub autodiscover: bool,
    pub ssl: bool,
    /// `basic`, `ntlm` or `oauth`.
    pub auth: String,
    pub user: String,
    pub domain: String,
    pub password: Option<String>,
    pub client_id: String,
    pub token_url: String,
    pub client_secret: Option<String>,
    /// The local web service address for push notifications; empty: streaming.
    pub push_address: String,
    pub push_ssl: bool,
}

/// A telephony target as the page edits it: added or changed in place.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TargetEdit {
    pub name: String,
    /// `http` or `log`.
    pub kind: String,
    pub url: String,
    pub reads_back: bool,
    /// One header to set (an `Authorization` for the switchboard's API, say): its
    /// name, and its value (write-only; None keeps the value set).
    pub header: String,
    pub header_value: Option<String>,
}

impl ServerEdit {
    /// Without its secrets, for the audit log.
    pub fn describe(&self) -> String {
        let secrets = [
            self.password.as_ref().map(|_| "a new password"),
            self.client_secret.as_ref().map(|_| "a new client secret"),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>();
        format!(
            "set the Exchange server {} ({}, {} sign-in{}{})",
            self.name,
            if self.address.is_empty() {
                "Autodiscover"
            } else {
                &self.address
            },
            self.auth,
            if secrets.is_empty() { "" } else { ", " },
            secrets.join(", ")
        )
    }
}

impl TargetEdit {
    pub fn describe(&self) -> String {
        let url = if self.kind == "http" {
            format!(" {}", self.url)
        } else {
            String::new()
        };
        let header = match &self.header_value {
            Some(_) => format!(", a new value of header {}", self.header),
            None => String::new(),
        };
        format!(
            "set the telephony target {} ({}{url}{header})",
            self.name, self.kind
        )
    }
}

/// The table of `[[section]]` named `name`, made at the end when there is none.
fn named<'a>(
    doc: &'a mut DocumentMut,
    section: &'static str,
    name: &str,
) -> Result<&'a mut Table, EditError> {
    let tables = list(doc, section)?;
    let at = tables
        .iter()
        .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name));
    let at = match at {
        Some(at) => at,
        None => {
            let mut table = Table::new();
            set_value(&mut table, "name", name);
            tables.push(table);
            tables.len() - 1
        }
    };
    tables.get_mut(at).ok_or(EditError::NotAList { section })
}

/// Set `key` to `text`, or remove it when `text` is empty.
fn text_or_remove(table: &mut Table, key: &str, text: &str) {
    let text = text.trim();
    if text.is_empty() {
        table.remove(key);
    } else {
        set_value(table, key, text);
    }
}

/// A secret typed: set literally, the other ways to give it removed.
fn replace_secret(table: &mut Table, key: &str, secret: Option<&String>) {
    if let Some(secret) = secret {
        set_value(table, key, secret.as_str());
        table.remove(&format!("{key}_env"));
        table.remove(&format!("{key}_file"));
    }
}

pub(super) fn set_server(doc: &mut DocumentMut, edit: &ServerEdit) -> Result<(), EditError> {
    let table = named(doc, "exchange", edit.name.trim())?;
    let address = edit.address.trim();
    let is_url = address.starts_with("https://") || address.starts_with("http://");
    text_or_remove(table, "url", if is_url { address } else { "" });
    text_or_remove(table, "host", if is_url { "" } else { address });
    set_value(table, "autodiscover", edit.autodiscover);
    set_value(table, "ssl", edit.ssl);
    set_value(table, "auth", edit.auth.trim());
    text_or_remove(table, "user", &edit.user);
    text_or_remove(table, "domain", &edit.domain);
    replace_secret(table, "password", edit.password.as_ref());
    text_or_remove(table, "client_id", &edit.client_id);
    text_or_remove(table, "token_url", &edit.token_url);
    replace_secret(table, "client_secret", edit.client_secret.as_ref());
    text_or_remove(table, "push_address", &edit.push_address);
    set_value(table, "push_ssl", edit.push_ssl);
    Ok(())
}

pub(super) fn set_target(doc: &mut DocumentMut, edit: &TargetEdit) -> Result<(), EditError> {
    let table = named(doc, "telephony", edit.name.trim())?;
    set_value(table, "kind", edit.kind.trim());
    text_or_remove(table, "url", &edit.url);
    set_value(table, "reads_back", edit.reads_back);
    let header = edit.header.trim();
    if let (false, Some(secret)) = (header.is_empty(), &edit.header_value) {
        let headers = table
            .entry("headers")
            .or_insert_with(|| toml_edit::Item::Table(Table::new()));
        if let Some(headers) = headers.as_table_like_mut() {
            headers.insert(header, value(secret.as_str()));
        }
        if let Some(from_env) = table
            .get_mut("headers_env")
            .and_then(|t| t.as_table_like_mut())
        {
            from_env.remove(header);
        }
    }
    Ok(())
}

/// Remove the `[[section]]` named `name`.
pub(super) fn remove_named(
    doc: &mut DocumentMut,
    section: &'static str,
    name: &str,
) -> Result<(), EditError> {
    let tables = list(doc, section)?;
    let at = tables
        .iter()
        .position(|t| t.get("name").and_then(|n| n.as_str()) == Some(name))
        .ok_or_else(|| EditError::NoNamed {
            section,
            name: name.to_string(),
        })?;
    tables.remove(at);
    Ok(())
}
