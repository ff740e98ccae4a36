//! OAuth client credentials: the access token fetched from the token endpoint,
//! cached, and replaced some time before it expires.

use std::time::Duration;

use super::sign_in::Credentials;
use super::{ClientError, EwsClient};
use crate::http_body::read_capped;

/// The largest token endpoint reply read (a real one, a JSON object with one token,
/// is a few kilobytes); a longer one is given up at this size.
pub const MAX_TOKEN_REPLY_BYTES: usize = 1024 * 1024;

/// A cached access token.
#[derive(Debug, Clone)]
pub(super) struct Token {
    access: String,
    /// When to fetch a new one: some time before it expires.
    refresh_at: tokio::time::Instant,
}

/// How long before expiry a token is replaced: a tenth of its life, at most 5 minutes.
fn refresh_margin(lifetime: Duration) -> Duration {
    (lifetime / 10).min(Duration::from_secs(300))
}

/// The access token and its lifetime in a token endpoint's JSON reply with
/// `status`, or why there is none (the endpoint's own description when it gives
/// one). A reply without `expires_in` is taken to last an hour.
fn read_token_reply(
    status: reqwest::StatusCode,
    body: &serde_json::Value,
) -> Result<(String, Duration), String> {
    if !status.is_success() {
        let description = body["error_description"]
            .as_str()
            .or(body["error"].as_str())
            .unwrap_or("no reason given");
        return Err(format!("HTTP {status}: {description}"));
    }
    let access = body["access_token"]
        .as_str()
        .filter(|t| !t.is_empty())
        .ok_or_else(|| "the reply has no access_token".to_string())?;
    let lifetime = Duration::from_secs(body["expires_in"].as_u64().unwrap_or(3600));
    Ok((access.to_string(), lifetime))
}

impl EwsClient {
    /// When the current token must be replaced (None for Basic and NTLM).
    pub(super) async fn token_refresh_at(
        &self,
    ) -> Result<Option<tokio::time::Instant>, ClientError> {
        match &self.config.credentials {
            Credentials::Basic { .. } | Credentials::Ntlm { .. } => Ok(None),
            Credentials::OAuth { .. } => {
                self.access_token().await?;
                Ok(self.token.lock().await.as_ref().map(|t| t.refresh_at))
            }
        }
    }

    /// Forget the cached token (it was refused): the next call fetches a new one.
    pub(super) async fn forget_token(&self) {
        *self.token.lock().await = None;
    }

    /// The cached access token, or a new one from the token endpoint (client
    /// credentials grant) when there is none or it is due for renewal.
    pub async fn access_token(&self) -> Result<String, ClientError> {
        let Credentials::OAuth {
            token_url,
            client_id,
            client_secret,
            scope,
        } = &self.config.credentials
        else {
            return Err(ClientError::Config {
                url: self.config.url.clone(),
                reason: "Basic credentials have no token".into(),
            });
        };
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref()
            && tokio::time::Instant::now() < token.refresh_at
        {
            return Ok(token.access.clone());
        }
        let failed = |reason: String| ClientError::Token {
            token_url: token_url.clone(),
            client_id: client_id.clone(),
            reason,
        };
        let response = self
            .http
            .post(token_url)
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", client_id.as_str()),
                ("client_secret", client_secret.as_str()),
                ("scope", scope.as_str()),
            ])
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        let body = read_capped(response, MAX_TOKEN_REPLY_BYTES)
            .await
            .map_err(|e| failed(format!("HTTP {status}: {e}")))?;
        let body: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("HTTP {status}, not JSON: {e}")))?;
        let (access, lifetime) = read_token_reply(status, &body).map_err(failed)?;
        let now = tokio::time::Instant::now();
        // A lifetime past what the clock can count is renewed daily instead.
        let refresh_at = now
            .checked_add(lifetime - refresh_margin(lifetime))
            .unwrap_or(now + Duration::from_secs(86_400));
        *cached = Some(Token {
            access: access.clone(),
            refresh_at,
        });
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use serde_json::json;

    #[test]
    fn tokens_are_replaced_a_tenth_of_their_life_early_at_most_five_minutes() {
        assert_eq!(
            refresh_margin(Duration::from_secs(600)),
            Duration::from_secs(60)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(3600)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(86_400)),
            Duration::from_secs(300)
        );
        assert_eq!(
            refresh_margin(Duration::from_secs(1)),
            Duration::from_millis(100)
        );
    }

    #[test]
    fn a_token_reply_gives_the_token_and_its_lifetime() {
        let reply = json!({"access_token": "eyJ0", "expires_in": 1800, "token_type": "Bearer"});
        assert_eq!(
            read_token_reply(StatusCode::OK, &reply),
            Ok(("eyJ0".to_string(), Duration::from_secs(1800)))
        );
        let reply = json!({"access_token": "eyJ0"});
        assert_eq!(
            read_token_reply(StatusCode::OK, &reply),
            Ok(("eyJ0".to_string(), Duration::from_secs(3600)))
        );
        assert_eq!(
            read_token_reply(StatusCode::OK, &json!({"access_token": ""})),
            Err("the reply has no access_token".to_string())
        );
    }

    #[test]
    fn a_refused_token_request_says_why() {
        let reply = json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret"});
        assert_eq!(
            read_token_reply(StatusCode::UNAUTHORIZED, &reply),
            Err("HTTP 401 Unauthorized: AADSTS7000215: Invalid client secret".to_string())
        );
        assert_eq!(
            read_token_reply(StatusCode::BAD_REQUEST, &json!({"error": "invalid_scope"})),
            Err("HTTP 400 Bad Request: invalid_scope".to_string())
        );
        assert_eq!(
            read_token_reply(StatusCode::BAD_REQUEST, &json!({})),
            Err("HTTP 400 Bad Request: no reason given".to_string())
        );
    }
}
