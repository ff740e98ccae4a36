//! How the service account signs in: the configured [`Credentials`], sending a
//! request signed in (Basic, a bearer token from [`super::token`], or an
//! NTLM-signed-in connection from [`super::ntlm_session`]), and what a final 401
//! means for the scheme that was configured.

use super::ntlm_session::NtlmSession;
use super::{ClientError, EwsClient};

/// How the service account signs in. Equality compares the secrets too (a changed
/// password is a changed server); Debug hides them.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// On-premises Exchange: a service account with the ApplicationImpersonation role.
    Basic { user: String, password: String },
    /// On-premises Exchange with Windows authentication (IIS "Windows Integrated",
    /// NTLMv2): the same service account, `DOMAIN\\user` or `user@domain`.
    Ntlm { user: String, password: String },
    /// Exchange Online (while EWS lasts there, until 2027-04-01): OAuth 2.0 client
    /// credentials of an app with `full_access_as_app`.
    OAuth {
        token_url: String,
        client_id: String,
        client_secret: String,
        scope: String,
    },
}

impl Credentials {
    /// Who signs in, for messages (never the secret).
    pub fn who(&self) -> &str {
        match self {
            Credentials::Basic { user, .. } | Credentials::Ntlm { user, .. } => user,
            Credentials::OAuth { client_id, .. } => client_id,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { user, .. } => {
                write!(f, "Basic {{ user: {user:?}, password: <hidden> }}")
            }
            Credentials::Ntlm { user, .. } => {
                write!(f, "Ntlm {{ user: {user:?}, password: <hidden> }}")
            }
            Credentials::OAuth {
                token_url,
                client_id,
                scope,
                ..
            } => write!(
                f,
                "OAuth {{ token_url: {token_url:?}, client_id: {client_id:?}, scope: {scope:?}, client_secret: <hidden> }}"
            ),
        }
    }
}

/// A reply, and the NTLM session held while it is read.
pub(super) struct Sent {
    pub(super) response: reqwest::Response,
    pub(super) _session: Option<tokio::sync::OwnedMutexGuard<NtlmSession>>,
}

/// The `WWW-Authenticate` values of a reply.
pub(super) fn www_authenticate(response: &reqwest::Response) -> Vec<String> {
    response
        .headers()
        .get_all(reqwest::header::WWW_AUTHENTICATE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(str::to_string)
        .collect()
}

/// The scheme names in `WWW-Authenticate` values, for messages.
pub(super) fn scheme_names(values: &[String]) -> String {
    let names: Vec<&str> = values
        .iter()
        .filter_map(|v| v.split_whitespace().next())
        .collect();
    if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    }
}

/// The error for a final 401 from `url`, whose `WWW-Authenticate` values are
/// `offered`: the credentials were refused, or the server does not take the
/// configured scheme at all (a 401 naming no scheme is taken as a refusal).
pub(super) fn refusal(credentials: &Credentials, url: &str, offered: &[String]) -> ClientError {
    let url = url.to_string();
    let takes = |scheme: &str| {
        offered.is_empty()
            || offered.iter().any(|v| {
                v.split_whitespace()
                    .next()
                    .is_some_and(|name| name.eq_ignore_ascii_case(scheme))
            })
    };
    match credentials {
        Credentials::Basic { .. } if !takes("Basic") => ClientError::SchemeNotOffered {
            url,
            configured: "Basic",
            offered: scheme_names(offered),
        },
        Credentials::OAuth { .. } if !takes("Bearer") => ClientError::SchemeNotOffered {
            url,
            configured: "OAuth (Bearer)",
            offered: scheme_names(offered),
        },
        Credentials::Ntlm { user, .. } => ClientError::NtlmRefused {
            url,
            user: user.clone(),
        },
        credentials => ClientError::Unauthorized {
            url,
            user: credentials.who().to_string(),
        },
    }
}

impl EwsClient {
    /// Send a request signed in: Basic, a bearer token fetched (and cached) when
    /// needed, or on an NTLM-signed-in connection.
    pub(super) async fn send(&self, request: reqwest::RequestBuilder) -> Result<Sent, ClientError> {
        let request = match &self.config.credentials {
            Credentials::Basic { user, password } => request.basic_auth(user, Some(password)),
            Credentials::OAuth { .. } => request.bearer_auth(self.access_token().await?),
            Credentials::Ntlm { .. } => return self.send_ntlm(request).await,
        };
        let response = request
            .send()
            .await
            .map_err(|e| ClientError::transport(&self.config.url, &e))?;
        Ok(Sent {
            response,
            _session: None,
        })
    }

    /// The error for a final 401 (see [`refusal`]).
    pub(super) fn refused(&self, response: &reqwest::Response) -> ClientError {
        refusal(
            &self.config.credentials,
            &self.config.url,
            &www_authenticate(response),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://mail1.flexi.se/EWS/Exchange.asmx";

    fn basic() -> Credentials {
        Credentials::Basic {
            user: "calvert-svc".into(),
            password: "pa55word".into(),
        }
    }

    fn oauth() -> Credentials {
        Credentials::OAuth {
            token_url: "https://login.example/token".into(),
            client_id: "calvert-app".into(),
            client_secret: "s3cret".into(),
            scope: "https://outlook.office365.com/.default".into(),
        }
    }

    fn values(list: &[&str]) -> Vec<String> {
        list.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn a_401_offering_the_configured_scheme_refuses_the_account() {
        let error = refusal(&basic(), URL, &values(&["Basic realm=\"mail1\"", "NTLM"]));
        assert!(
            matches!(&error, ClientError::Unauthorized { user, .. } if user == "calvert-svc"),
            "{error:?}"
        );
        let error = refusal(&oauth(), URL, &values(&["bearer"]));
        assert!(
            matches!(&error, ClientError::Unauthorized { user, .. } if user == "calvert-app"),
            "the scheme name is case-insensitive and the app is named: {error:?}"
        );
        let error = refusal(&basic(), URL, &[]);
        assert!(
            matches!(error, ClientError::Unauthorized { .. }),
            "a 401 naming no scheme: {error:?}"
        );
    }

    #[test]
    fn a_401_without_the_configured_scheme_names_what_the_server_offers() {
        let error = refusal(&basic(), URL, &values(&["Negotiate", "NTLM"]));
        assert!(
            matches!(
                &error,
                ClientError::SchemeNotOffered { configured: "Basic", offered, .. }
                    if offered == "Negotiate, NTLM"
            ),
            "{error:?}"
        );
        let error = refusal(&oauth(), URL, &values(&["Basic realm=\"x\""]));
        assert!(
            matches!(
                &error,
                ClientError::SchemeNotOffered { configured: "OAuth (Bearer)", offered, .. }
                    if offered == "Basic"
            ),
            "{error:?}"
        );
    }

    #[test]
    fn an_ntlm_401_is_a_refused_sign_in() {
        let ntlm = Credentials::Ntlm {
            user: "FLEXI\\calvert-svc".into(),
            password: "secret".into(),
        };
        let error = refusal(&ntlm, URL, &values(&["Basic"]));
        assert!(
            matches!(&error, ClientError::NtlmRefused { user, .. } if user == "FLEXI\\calvert-svc"),
            "{error:?}"
        );
    }

    #[test]
    fn scheme_names_and_debug_output_never_show_secrets() {
        assert_eq!(scheme_names(&[]), "nothing");
        assert_eq!(
            scheme_names(&values(&["NTLM TlRMTVNTUAACAAAA", "Negotiate"])),
            "NTLM, Negotiate",
            "tokens are left out"
        );
        let shown = format!("{:?} {:?}", basic(), oauth());
        assert!(!shown.contains("pa55word"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(shown.contains("<hidden>"), "{shown}");
    }
}
