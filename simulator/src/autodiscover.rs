//! SOAP Autodiscover: GetUserSettings for one mailbox (the EWS URL and grouping
//! information, a RedirectAddress, or InvalidUser).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use quick_xml::escape::escape;

use crate::exchange::Exchange;
use crate::server::Scheme;
use crate::wire::{SOAP, xml_reply};

/// `POST /autodiscover/autodiscover.svc`: SOAP GetUserSettings for one mailbox. A
/// known mailbox gets this server's EWS URL; a redirected one a RedirectAddress; an
/// unknown one InvalidUser.
pub(crate) async fn autodiscover(
    State(exchange): State<Exchange>,
    axum::Extension(Scheme(scheme)): axum::Extension<Scheme>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let text = String::from_utf8_lossy(&body);
    let mailbox = text
        .split("Mailbox>")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_string();
    let mut directory = exchange.lock();
    directory.autodiscover_requests += 1;
    const NS: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
    let user = if let Some(target) = directory.redirects.get(&mailbox) {
        format!(
            "<ErrorCode>RedirectAddress</ErrorCode><ErrorMessage>Redirection address.</ErrorMessage><RedirectTarget>{}</RedirectTarget><UserSettingErrors/><UserSettings/>",
            escape(target)
        )
    } else if directory.mailboxes.contains_key(&mailbox) {
        format!(
            "<ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><UserSettingErrors/><UserSettings><UserSetting><Name>ExternalEwsUrl</Name><Value>{scheme}://{host}/EWS/Exchange.asmx</Value></UserSetting><UserSetting><Name>GroupingInformation</Name><Value>SIM-GROUP-1</Value></UserSetting></UserSettings>"
        )
    } else {
        "<ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user.</ErrorMessage><UserSettingErrors/><UserSettings/>".to_string()
    };
    xml_reply(
        StatusCode::OK,
        format!(
            r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}"><s:Body><GetUserSettingsResponseMessage xmlns="{NS}"><Response><ErrorCode>NoError</ErrorCode><ErrorMessage/><UserResponses><UserResponse>{user}</UserResponse></UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>"#
        ),
    )
}
