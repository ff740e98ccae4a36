//! `[[exchange]]`: each server's EWS URL (or Autodiscover), its service account and
//! sign-in, and push notifications.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::time::Duration;

use super::check::Check;
use super::file::ExchangeSection;
use super::{ExchangeServer, PushSettings};
use crate::ews::client::Credentials;
use crate::ews::trust::normal_host;

impl Check<'_> {
    /// The servers that passed; a server whose sign-in is unusable is left out (its
    /// problems are recorded).
    pub(super) fn exchange(&mut self, sections: Vec<ExchangeSection>) -> Vec<ExchangeServer> {
        let mut servers = Vec::new();
        let mut names = BTreeSet::new();
        for (i, s) in sections.into_iter().enumerate() {
            let key = format!("exchange[{i}]");
            if s.name.trim().is_empty() {
                self.problem(format!("{key}.name"), "must not be empty");
            } else if !names.insert(s.name.clone()) {
                self.problem(
                    format!("{key}.name"),
                    format!("{:?} names two servers", s.name),
                );
            }
            servers.extend(self.server(&key, s));
        }
        servers
    }

    fn server(&mut self, key: &str, s: ExchangeSection) -> Option<ExchangeServer> {
        let url = self.ews_url(key, &s);
        let autodiscover_hosts = self.autodiscover_hosts(key, &s);
        // ssl = false lets Autodiscover use plain http only with the hosts listed.
        let plain_http_hosts = if s.ssl {
            Vec::new()
        } else {
            autodiscover_hosts.clone()
        };
        let credentials = self.credentials(key, &s);
        let push = match &s.push_address {
            Some(address) => self.push(key, address, s.push_ssl, s.push_listen.as_deref()),
            None => None,
        };
        Some(ExchangeServer {
            // "Domän": the service account's Windows domain (seed 000).
            credentials: in_domain(credentials?, s.domain.as_deref()),
            name: s.name,
            url,
            ca_bundle: s.ca_bundle.map(|p| self.path(&p)),
            autodiscover_hosts,
            plain_http_hosts,
            push,
            timeout: Duration::from_millis(s.timeout_ms.max(1)),
        })
    }

    /// The EWS URL as given, built from `host`, or None for Autodiscover.
    fn ews_url(&mut self, key: &str, s: &ExchangeSection) -> Option<String> {
        let scheme = if s.ssl { "https" } else { "http" };
        match (&s.url, &s.host) {
            (Some(url), None) => {
                if !(url.starts_with("https://") || url.starts_with("http://")) {
                    self.problem(
                        format!("{key}.url"),
                        format!("{url:?} is not an http(s) URL"),
                    );
                } else if s.ssl && url.starts_with("http://") {
                    self.problem(
                        format!("{key}.url"),
                        "plain http with ssl = true: use https, or set ssl = false to allow plain http",
                    );
                }
                Some(url.clone())
            }
            (None, Some(host)) => Some(format!("{scheme}://{host}/EWS/Exchange.asmx")),
            (Some(_), Some(_)) => {
                self.problem(format!("{key}.host"), "give either url or host, not both");
                None
            }
            (None, None) => {
                if !s.autodiscover {
                    self.problem(
                        format!("{key}.url"),
                        "missing: give url or host, or set autodiscover = true",
                    );
                } else if s.auth != "basic" {
                    self.problem(
                        format!("{key}.autodiscover"),
                        format!(
                            "Autodiscover signs in with Basic only; with auth = {:?} give url or host",
                            s.auth
                        ),
                    );
                }
                None
            }
        }
    }

    /// The hosts outside the mailboxes' domain Autodiscover may be led to, as URL
    /// hosts are written.
    fn autodiscover_hosts(&mut self, key: &str, s: &ExchangeSection) -> Vec<String> {
        let field = format!("{key}.autodiscover_hosts");
        let mut hosts = Vec::new();
        for name in &s.autodiscover_hosts {
            match normal_host(name) {
                Some(host) => hosts.push(host),
                None => self.problem(
                    field.clone(),
                    format!(
                        "{name:?} is not a host name such as mail.contoso.net (no scheme, port or path)"
                    ),
                ),
            }
        }
        let discovered = s.autodiscover && s.url.is_none() && s.host.is_none();
        if !s.autodiscover_hosts.is_empty() && !discovered {
            self.problem(
                field,
                "only used by Autodiscover: set autodiscover = true without url or host, or remove it",
            );
        } else if discovered && !s.ssl && s.autodiscover_hosts.is_empty() {
            self.problem(
                format!("{key}.ssl"),
                "with Autodiscover, ssl = false allows plain http only to the hosts in autodiscover_hosts: list the test server there, or remove ssl = false",
            );
        }
        hosts
    }

    /// How the service account signs in (`auth`), with its secret.
    fn credentials(&mut self, key: &str, s: &ExchangeSection) -> Option<Credentials> {
        match s.auth.as_str() {
            kind @ ("basic" | "ntlm") => {
                let user = s.user.clone().unwrap_or_default();
                if user.is_empty() {
                    self.problem(format!("{key}.user"), "the service account is missing");
                }
                let password = self.secret(
                    &format!("{key}.password"),
                    s.password.clone(),
                    s.password_env.clone(),
                    s.password_file.clone(),
                )?;
                Some(if kind == "ntlm" {
                    Credentials::Ntlm { user, password }
                } else {
                    Credentials::Basic { user, password }
                })
            }
            "oauth" => self.oauth(key, s),
            other => {
                self.problem(
                    format!("{key}.auth"),
                    format!(
                        "{other:?} is not an authentication kind; use \"basic\", \"ntlm\" or \"oauth\""
                    ),
                );
                None
            }
        }
    }

    /// OAuth client credentials (Exchange Online).
    fn oauth(&mut self, key: &str, s: &ExchangeSection) -> Option<Credentials> {
        let client_id = s.client_id.clone().unwrap_or_default();
        let token_url = s.token_url.clone().unwrap_or_default();
        if client_id.is_empty() {
            self.problem(format!("{key}.client_id"), "missing for auth = \"oauth\"");
        }
        if !token_url.starts_with("https://") && !token_url.starts_with("http://") {
            self.problem(
                format!("{key}.token_url"),
                "missing or not a URL; Exchange Online uses https://login.microsoftonline.com/<tenant>/oauth2/v2.0/token",
            );
        } else if s.ssl && token_url.starts_with("http://") {
            self.problem(
                format!("{key}.token_url"),
                "plain http with ssl = true would send the client secret in clear: use https, or set ssl = false to allow plain http",
            );
        }
        let client_secret = self.secret(
            &format!("{key}.client_secret"),
            s.client_secret.clone(),
            s.client_secret_env.clone(),
            s.client_secret_file.clone(),
        )?;
        Some(Credentials::OAuth {
            token_url,
            client_id,
            client_secret,
            scope: s
                .scope
                .clone()
                .unwrap_or_else(|| "https://outlook.office365.com/.default".into()),
        })
    }

    /// The push URL Exchange is given (`<push_address>/ews/push`) and where to listen.
    fn push(
        &mut self,
        key: &str,
        address: &str,
        ssl: bool,
        listen: Option<&str>,
    ) -> Option<PushSettings> {
        let wanted = if ssl { "https" } else { "http" };
        let url = match reqwest::Url::parse(address) {
            Ok(url) if url.scheme() == wanted && url.host_str().is_some() => url,
            _ => {
                self.problem(
                    format!("{key}.push_address"),
                    format!(
                        "{address:?} is not an {wanted}:// address such as {wanted}://calvert.flexi.se:8080 (push_ssl = {ssl})"
                    ),
                );
                return None;
            }
        };
        let listen = match listen {
            Some(text) => match text.parse() {
                Ok(addr) => addr,
                Err(_) => {
                    self.problem(
                        format!("{key}.push_listen"),
                        format!("{text:?} is not an address such as 0.0.0.0:8080"),
                    );
                    return None;
                }
            },
            // With TLS, a reverse proxy in front terminates it and forwards here.
            None if ssl => {
                self.problem(
                    format!("{key}.push_listen"),
                    "with push_ssl = true, TLS ends at a reverse proxy: give the plain-http address it forwards to, e.g. 127.0.0.1:8080",
                );
                return None;
            }
            None => SocketAddr::from(([0, 0, 0, 0], url.port_or_known_default().unwrap_or(80))),
        };
        Some(PushSettings {
            url: format!("{}/ews/push", address.trim_end_matches('/')),
            listen,
        })
    }
}

/// A Basic or NTLM account's user name qualified by the configured domain.
fn in_domain(credentials: Credentials, domain: Option<&str>) -> Credentials {
    match (credentials, domain) {
        (Credentials::Basic { user, password }, Some(domain)) => Credentials::Basic {
            user: qualified(&user, domain),
            password,
        },
        (Credentials::Ntlm { user, password }, Some(domain)) => Credentials::Ntlm {
            user: qualified(&user, domain),
            password,
        },
        (other, _) => other,
    }
}

/// `user` in `domain` (`FLEXI\\svc`), unless it already names one.
fn qualified(user: &str, domain: &str) -> String {
    if user.contains('\\') || user.contains('@') || domain.is_empty() {
        user.to_string()
    } else {
        format!("{domain}\\{user}")
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{MINIMAL, load, problems};
    use super::*;

    #[test]
    fn autodiscover_needs_basic_sign_in() {
        let text = MINIMAL.replace(
            "url = \"https://mail1.flexi.se/EWS/Exchange.asmx\"",
            "autodiscover = true",
        );
        assert!(load(&text, &[]).unwrap().exchange[0].url.is_none());
        let found = problems(&text.replace("auth = \"basic\"", "auth = \"ntlm\""));
        assert_eq!(found[0].key, "exchange[0].autodiscover", "{found:?}");
    }

    #[test]
    fn push_and_the_service_account_domain() {
        let text = MINIMAL.replace(
            "user = \"svc\"",
            "user = \"svc\"\ndomain = \"FLEXI\"\npush_address = \"http://calvert.flexi.se:8080\"",
        );
        let config = load(&text, &[]).unwrap();
        let server = &config.exchange[0];
        assert_eq!(
            server.push,
            Some(PushSettings {
                url: "http://calvert.flexi.se:8080/ews/push".into(),
                listen: "0.0.0.0:8080".parse().unwrap(),
            })
        );
        assert_eq!(server.credentials.who(), "FLEXI\\svc");
        let found = problems(&text.replace("http://calvert", "https://calvert"));
        assert_eq!(found[0].key, "exchange[0].push_address", "{found:?}");
        let found = problems(
            &text
                .replace("http://calvert", "https://calvert")
                .replace("push_address", "push_ssl = true\npush_address"),
        );
        assert_eq!(found[0].key, "exchange[0].push_listen", "{found:?}");
    }

    #[test]
    fn a_user_name_that_names_its_domain_is_kept() {
        assert_eq!(qualified("svc", "FLEXI"), "FLEXI\\svc");
        assert_eq!(qualified("OTHER\\svc", "FLEXI"), "OTHER\\svc");
        assert_eq!(qualified("svc@flexi.se", "FLEXI"), "svc@flexi.se");
        assert_eq!(qualified("svc", ""), "svc");
    }

    #[test]
    fn ntlm_is_an_authentication_kind() {
        let config = load(&MINIMAL.replace("auth = \"basic\"", "auth = \"ntlm\""), &[]).unwrap();
        assert!(matches!(
            config.exchange[0].credentials,
            Credentials::Ntlm { .. }
        ));
        let found = problems(&MINIMAL.replace("auth = \"basic\"", "auth = \"kerberos\""));
        assert_eq!(found[0].key, "exchange[0].auth");
    }

    #[test]
    fn autodiscover_hosts_are_bare_hosts_and_ssl_off_opts_them_into_plain_http() {
        let text = MINIMAL.replace(
            "url = \"https://mail1.flexi.se/EWS/Exchange.asmx\"",
            "autodiscover = true\nautodiscover_hosts = [\"Mail.Contoso.NET\"]",
        );
        let server = &load(&text, &[]).unwrap().exchange[0];
        assert_eq!(server.autodiscover_hosts, ["mail.contoso.net"]);
        assert!(server.plain_http_hosts.is_empty(), "ssl is on");
        let test_server = text.replace("auth = \"basic\"", "auth = \"basic\"\nssl = false");
        let server = &load(&test_server, &[]).unwrap().exchange[0];
        assert_eq!(server.plain_http_hosts, ["mail.contoso.net"]);

        let found = problems(&text.replace("Mail.Contoso.NET", "https://mail.contoso.net/"));
        assert_eq!(found[0].key, "exchange[0].autodiscover_hosts", "{found:?}");
        let found = problems(&MINIMAL.replace(
            "auth = \"basic\"",
            "auth = \"basic\"\nautodiscover_hosts = [\"mail.contoso.net\"]",
        ));
        assert_eq!(found[0].key, "exchange[0].autodiscover_hosts", "{found:?}");
        let found =
            problems(&test_server.replace("autodiscover_hosts = [\"Mail.Contoso.NET\"]", ""));
        assert_eq!(found[0].key, "exchange[0].ssl", "{found:?}");
    }

    #[test]
    fn a_plain_http_token_endpoint_needs_ssl_off() {
        let oauth = MINIMAL.replace(
            "auth = \"basic\"",
            "auth = \"oauth\"\nclient_id = \"app\"\nclient_secret = \"s\"\ntoken_url = \"http://login.flexi.se/token\"",
        );
        let found = problems(&oauth);
        assert_eq!(found[0].key, "exchange[0].token_url", "{found:?}");
        load(
            &oauth.replace("auth = \"oauth\"", "auth = \"oauth\"\nssl = false"),
            &[],
        )
        .unwrap();
    }

    #[test]
    fn plain_http_needs_ssl_off() {
        let found = problems(&MINIMAL.replace("https://mail1", "http://mail1"));
        assert_eq!(found[0].key, "exchange[0].url", "{found:?}");
        let ok = MINIMAL
            .replace("https://mail1", "http://mail1")
            .replace("auth = \"basic\"", "auth = \"basic\"\nssl = false");
        load(&ok, &[]).unwrap();
    }
}
