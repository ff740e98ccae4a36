//! One SOAP request and its reply: headers (impersonation anchor, subscription
//! affinity), sign-in, the reply's size cap, what each HTTP status means, and the
//! server version a reply reveals. Retries are [`super::retry`].

use super::retry::Repeat;
use super::sign_in::{Credentials, Sent};
use super::{ClientError, EwsClient};
use crate::ews::request::{Mailbox, ServerVersion};
use crate::ews::response::EwsError;
use crate::ews::xml::{MAX_REPLY_BYTES, XmlError};
use crate::http_body::{BodyError, read_capped};

/// MajorVersion/MinorVersion of a reply's `ServerVersionInfo`, read from its head
/// (the first 4 KiB) without parsing the whole reply.
fn server_version_in(reply: &str) -> Option<ServerVersion> {
    let head = &reply[..reply.floor_char_boundary(4096)];
    let info = &head[head.find("ServerVersionInfo")?..];
    let number = |name: &str| -> Option<u32> {
        let pattern = format!("{name}=\"");
        let at = info.find(&pattern)? + pattern.len();
        info[at..].split('"').next()?.parse().ok()
    };
    Some(ServerVersion::from_server(
        number("MajorVersion")?,
        number("MinorVersion")?,
    ))
}

/// The `X-BackEndOverrideCookie` among a reply's `Set-Cookie` values.
fn affinity_cookie_in<'a>(set_cookies: impl IntoIterator<Item = &'a str>) -> Option<String> {
    set_cookies
        .into_iter()
        .find_map(|v| v.strip_prefix("X-BackEndOverrideCookie="))
        .map(|v| v.split(';').next().unwrap_or(v).to_string())
}

/// The reply text from `url` with HTTP `status`, when it is for the reader: a 200
/// always (the reader says what it is: HTML, empty, cut off), a 500 only when it
/// carries a SOAP fault. 502–504 mean Exchange is busy or down.
fn accept(url: &str, status: u16, text: String) -> Result<String, ClientError> {
    let looks_soap = text.contains("Envelope");
    match status {
        200 => Ok(text),
        500 if looks_soap => Ok(text),
        502..=504 => Err(ClientError::Unavailable {
            url: url.to_string(),
            status,
        }),
        _ => Err(ClientError::Http {
            url: url.to_string(),
            status,
        }),
    }
}

/// The error for a reply of `bytes` when that is over [`MAX_REPLY_BYTES`].
fn too_large(bytes: usize) -> Option<EwsError> {
    (bytes > MAX_REPLY_BYTES).then_some(EwsError::Xml(XmlError::TooLarge {
        bytes,
        limit: MAX_REPLY_BYTES,
    }))
}

impl EwsClient {
    /// POST one SOAP request; the reply text when it is XML to read.
    pub async fn call(
        &self,
        mailbox: Option<&Mailbox>,
        envelope: String,
    ) -> Result<String, ClientError> {
        self.call_with(mailbox, envelope, false).await
    }

    /// Subscription calls of one group ask for server affinity and carry the group's
    /// back-end cookie; the first one's reply sets it.
    pub(super) fn with_affinity(
        &self,
        mut request: reqwest::RequestBuilder,
    ) -> reqwest::RequestBuilder {
        request = request.header("X-PreferServerAffinity", "true");
        if let Some(cookie) = self.affinity_cookie() {
            request = request.header(
                reqwest::header::COOKIE,
                format!("X-BackEndOverrideCookie={cookie}"),
            );
        }
        request
    }

    fn remember_affinity(&self, response: &reqwest::Response) {
        let values = response
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok());
        if let Some(cookie) = affinity_cookie_in(values) {
            *super::lock(&self.affinity) = Some(cookie);
        }
    }

    /// A signed-in POST of `envelope`, retrying a 401 once with a fresh token for
    /// OAuth (a token can be revoked or expire early).
    async fn post(
        &self,
        mailbox: Option<&Mailbox>,
        envelope: &str,
        affinity: bool,
    ) -> Result<Sent, ClientError> {
        let mut fresh_token_tried = false;
        loop {
            let mut request = self
                .http
                .post(&self.config.url)
                .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
                .body(envelope.to_string());
            if let Some(mailbox) = mailbox {
                request = request.header("X-AnchorMailbox", mailbox.anchor());
            }
            if affinity {
                request = self.with_affinity(request);
            }
            let sent = self.send(request).await?;
            if sent.response.status().as_u16() != 401 {
                return Ok(sent);
            }
            if !fresh_token_tried && matches!(self.config.credentials, Credentials::OAuth { .. }) {
                fresh_token_tried = true;
                self.forget_token().await;
                continue;
            }
            return Err(self.refused(&sent.response));
        }
    }

    async fn call_with(
        &self,
        mailbox: Option<&Mailbox>,
        envelope: String,
        affinity: bool,
    ) -> Result<String, ClientError> {
        // The NTLM session (if any) is held until the reply is read.
        let Sent {
            response,
            _session: _held,
        } = self.post(mailbox, &envelope, affinity).await?;
        if affinity {
            self.remember_affinity(&response);
        }
        let status = response.status().as_u16();
        let announced = response.content_length().unwrap_or(0);
        if let Some(error) = too_large(usize::try_from(announced).unwrap_or(usize::MAX)) {
            return Err(self.ews(error));
        }
        // Read only up to the cap, also when the reply does not say its length.
        let body = read_capped(response, MAX_REPLY_BYTES)
            .await
            .map_err(|error| self.body_error(error))?;
        let text = String::from_utf8_lossy(&body).into_owned();
        if let Some(version) = server_version_in(&text) {
            *super::lock(&self.version) = version;
        }
        accept(&self.config.url, status, text)
    }

    /// The client's error for a reply body that could not be read.
    pub(super) fn body_error(&self, error: BodyError) -> ClientError {
        match error {
            BodyError::Transport(e) => ClientError::transport(&self.config.url, &e),
            too_large @ BodyError::TooLarge { .. } => ClientError::Oversized {
                url: self.config.url.clone(),
                reason: too_large.to_string(),
            },
        }
    }

    /// One request and its reply, read by `parse`, with retries by the policy.
    pub(super) async fn exchange<T>(
        &self,
        repeat: Repeat,
        mailbox: &Mailbox,
        envelope: &str,
        parse: impl Fn(&str) -> Result<T, EwsError>,
    ) -> Result<T, ClientError> {
        self.retrying(repeat, || async {
            let affinity = repeat == Repeat::Affine;
            let text = self
                .call_with(Some(mailbox), envelope.to_string(), affinity)
                .await?;
            parse(&text).map_err(|e| self.ews(e))
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "https://mail1.flexi.se/EWS/Exchange.asmx";

    #[test]
    fn the_server_version_is_read_from_the_replys_head() {
        let reply = r#"<s:Envelope><s:Header><h:ServerVersionInfo MajorVersion="15" MinorVersion="1" MajorBuildNumber="2507"/></s:Header>"#;
        assert_eq!(
            server_version_in(reply),
            Some(ServerVersion::from_server(15, 1))
        );
        assert_eq!(server_version_in("<s:Envelope/>"), None);
        let late = format!("{}{reply}", " ".repeat(4096));
        assert_eq!(server_version_in(&late), None, "only the head is searched");
    }

    #[test]
    fn a_multibyte_character_at_the_head_boundary_is_no_panic() {
        let reply = format!("{}åäö ServerVersionInfo", "x".repeat(4095));
        assert_eq!(server_version_in(&reply), None);
    }

    #[test]
    fn the_affinity_cookie_is_taken_without_its_attributes() {
        assert_eq!(
            affinity_cookie_in([
                "exchangecookie=abc; path=/",
                "X-BackEndOverrideCookie=SIMBE01.flexi.local~1941996295; path=/; secure",
            ]),
            Some("SIMBE01.flexi.local~1941996295".to_string())
        );
        assert_eq!(affinity_cookie_in(["exchangecookie=abc"]), None);
    }

    #[test]
    fn statuses_decide_what_reaches_the_reader() {
        assert_eq!(accept(URL, 200, "<html/>".into()).unwrap(), "<html/>");
        assert!(accept(URL, 500, "<s:Envelope><s:Fault/></s:Envelope>".into()).is_ok());
        for (status, unavailable) in [(500, false), (502, true), (503, true), (504, true)] {
            let error = accept(URL, status, "<html>busy</html>".into()).unwrap_err();
            assert_eq!(
                matches!(error, ClientError::Unavailable { .. }),
                unavailable,
                "{status}: {error:?}"
            );
        }
        assert!(matches!(
            accept(URL, 404, String::new()),
            Err(ClientError::Http { status: 404, .. })
        ));
    }

    #[test]
    fn replies_over_the_cap_are_refused() {
        assert_eq!(too_large(MAX_REPLY_BYTES), None);
        assert!(matches!(
            too_large(MAX_REPLY_BYTES + 1),
            Some(EwsError::Xml(XmlError::TooLarge { .. }))
        ));
    }
}
