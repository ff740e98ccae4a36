//! Autodiscover (brief §5): where a mailbox's EWS endpoint is. The lookup order, the
//! redirect cap, the SOAP GetUserSettings request, and reading SOAP and POX replies.
//! The HTTP side (which candidate answered, 302s) belongs to the transport.

use quick_xml::escape::escape;

use super::SOAP_NS;
use super::xml::{self, Element, XmlError};

/// The Autodiscover SOAP namespace (the documentation writes it with https; read both).
pub const AUTODISCOVER_NS: &str = "http://schemas.microsoft.com/exchange/2010/Autodiscover";
const AUTODISCOVER_NS_DOCS_VARIANT: &str =
    "https://schemas.microsoft.com/exchange/2010/Autodiscover";
const POX_RESPONSE_NS: &str =
    "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";
const POX_RESPONSE_NS_DOCS_VARIANT: &str =
    "https://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a";

/// Redirects followed before giving up (the reference clients' cap).
pub const MAX_REDIRECTS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutodiscoverError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error(
        "Autodiscover answered {code}: {message}; check the address, or set the server's EWS URL by hand"
    )]
    Refused { code: String, message: String },
    #[error(
        "Autodiscover redirected more than {MAX_REDIRECTS} times (last to {last}): set the server's EWS URL by hand"
    )]
    TooManyRedirects { last: String },
    #[error(
        "Autodiscover redirected back to {target}, already tried: set the server's EWS URL by hand"
    )]
    Loop { target: String },
    #[error(
        "Autodiscover redirected to {target}, which is not https: refused, credentials are never sent in clear"
    )]
    Insecure { target: String },
    #[error(
        "the Autodiscover reply has no EWS URL for this mailbox: set the server's EWS URL by hand"
    )]
    NoEwsUrl,
}

/// What Autodiscover said about a mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discovery {
    Found(UserSettings),
    /// Start again for this address.
    RedirectAddress(String),
    /// Ask again at this URL.
    RedirectUrl(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserSettings {
    /// External EWS URL, else the internal one.
    pub ews_url: String,
    /// Mailboxes with equal URL and grouping share a streaming connection (brief §1.2).
    pub grouping: Option<String>,
    pub cas_version: Option<String>,
    pub display_name: Option<String>,
}

/// The URLs to try for `domain`, in order (steps 2–4 of the brief). Step 5, the DNS
/// SRV lookup, is the transport's ([`srv_candidates`] reads its answer); step 1,
/// the SCP lookup, needs LDAP to Active Directory and is not done (see
/// `discovery.rs`).
pub fn candidates(domain: &str) -> Vec<String> {
    let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
    vec![
        format!("https://{domain}/autodiscover/autodiscover.svc"),
        format!("https://autodiscover.{domain}/autodiscover/autodiscover.svc"),
        format!("https://{domain}/autodiscover/autodiscover.xml"),
        format!("https://autodiscover.{domain}/autodiscover/autodiscover.xml"),
        // Unauthenticated GET; only a 302 to an https Location is followed from here.
        format!("http://autodiscover.{domain}/autodiscover/autodiscover.xml"),
    ]
}

/// One record of `_autodiscover._tcp.<domain>` (DNS SRV).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvRecord {
    pub priority: u16,
    pub weight: u16,
    pub port: u16,
    /// The target host name (a trailing dot is allowed).
    pub target: String,
}

/// The name of the SRV record for `domain`.
pub fn srv_name(domain: &str) -> String {
    format!(
        "_autodiscover._tcp.{}.",
        domain.trim().trim_end_matches('.').to_ascii_lowercase()
    )
}

/// Step 5 of the brief: the Autodiscover URLs of the best SRV records, those with
/// the lowest priority and, among them, the highest weight. Targets are only ever
/// asked over https (on the record's port; Exchange publishes 443); a record for
/// port 80 (plain http) or with the target "." (service not offered, RFC 2782) is
/// left out.
pub fn srv_candidates(records: &[SrvRecord]) -> Vec<String> {
    let usable: Vec<&SrvRecord> = records
        .iter()
        .filter(|r| r.port != 80 && r.port != 0 && !r.target.trim_end_matches('.').is_empty())
        .collect();
    let Some(priority) = usable.iter().map(|r| r.priority).min() else {
        return Vec::new();
    };
    let weight = usable
        .iter()
        .filter(|r| r.priority == priority)
        .map(|r| r.weight)
        .max()
        .unwrap_or(0);
    let mut urls = Vec::new();
    for record in usable
        .iter()
        .filter(|r| r.priority == priority && r.weight == weight)
    {
        let host = record.target.trim_end_matches('.').to_ascii_lowercase();
        let authority = if record.port == 443 {
            host
        } else {
            format!("{host}:{}", record.port)
        };
        for extension in ["svc", "xml"] {
            let url = format!("https://{authority}/autodiscover/autodiscover.{extension}");
            if !urls.contains(&url) {
                urls.push(url);
            }
        }
    }
    urls
}

/// Counts redirects, refuses loops and non-https targets.
#[derive(Debug, Default)]
pub struct Redirects {
    seen: Vec<String>,
}

impl Redirects {
    /// Record a redirect to `target` (an address or an https URL).
    pub fn follow(&mut self, target: &str) -> Result<(), AutodiscoverError> {
        let key = target.trim().to_ascii_lowercase();
        if key.starts_with("http:") {
            return Err(AutodiscoverError::Insecure {
                target: target.to_string(),
            });
        }
        if self.seen.contains(&key) {
            return Err(AutodiscoverError::Loop {
                target: target.to_string(),
            });
        }
        if self.seen.len() >= MAX_REDIRECTS {
            return Err(AutodiscoverError::TooManyRedirects {
                last: target.to_string(),
            });
        }
        self.seen.push(key);
        Ok(())
    }
}

/// The SOAP GetUserSettings request for `mailbox`, sent to `url`.
pub fn get_user_settings_request(mailbox: &str, url: &str) -> String {
    let settings = [
        "ExternalEwsUrl",
        "InternalEwsUrl",
        "GroupingInformation",
        "UserDisplayName",
        "CasVersion",
    ]
    .iter()
    .map(|s| format!("<a:Setting>{s}</a:Setting>"))
    .collect::<String>();
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:a="{AUTODISCOVER_NS}" xmlns:wsa="http://www.w3.org/2005/08/addressing" xmlns:soap="{SOAP_NS}"><soap:Header><a:RequestedServerVersion>Exchange2013</a:RequestedServerVersion><wsa:Action>{AUTODISCOVER_NS}/Autodiscover/GetUserSettings</wsa:Action><wsa:To>{}</wsa:To></soap:Header><soap:Body><a:GetUserSettingsRequestMessage><a:Request><a:Users><a:User><a:Mailbox>{}</a:Mailbox></a:User></a:Users><a:RequestedSettings>{settings}</a:RequestedSettings></a:Request></a:GetUserSettingsRequestMessage></soap:Body></soap:Envelope>"#,
        escape(url),
        escape(mailbox)
    )
}

fn is_autodiscover(element: &Element, name: &str) -> bool {
    element.name == name
        && (element.ns == AUTODISCOVER_NS || element.ns == AUTODISCOVER_NS_DOCS_VARIANT)
}

fn child<'a>(element: &'a Element, name: &str) -> Option<&'a Element> {
    element.children.iter().find(|c| is_autodiscover(c, name))
}

fn text<'a>(element: &'a Element, name: &str) -> Option<&'a str> {
    child(element, name)
        .map(|c| c.text.trim())
        .filter(|t| !t.is_empty())
}

/// Read a SOAP GetUserSettings reply (one user).
pub fn parse_get_user_settings(reply: &str) -> Result<Discovery, AutodiscoverError> {
    let root = xml::parse(reply)?;
    let body = root
        .child(SOAP_NS, "Body")
        .ok_or(AutodiscoverError::NoEwsUrl)?;
    let message = body
        .children
        .iter()
        .find(|c| is_autodiscover(c, "GetUserSettingsResponseMessage"))
        .ok_or(AutodiscoverError::NoEwsUrl)?;
    let response = child(message, "Response").ok_or(AutodiscoverError::NoEwsUrl)?;
    let refused = |e: &Element| AutodiscoverError::Refused {
        code: text(e, "ErrorCode").unwrap_or("").to_string(),
        message: text(e, "ErrorMessage").unwrap_or("").to_string(),
    };
    if text(response, "ErrorCode").is_some_and(|c| c != "NoError") {
        return Err(refused(response));
    }
    let user = child(response, "UserResponses")
        .and_then(|u| child(u, "UserResponse"))
        .ok_or(AutodiscoverError::NoEwsUrl)?;
    match text(user, "ErrorCode").unwrap_or("NoError") {
        "NoError" => {}
        "RedirectAddress" => {
            return text(user, "RedirectTarget")
                .map(|t| Discovery::RedirectAddress(t.to_string()))
                .ok_or_else(|| refused(user));
        }
        "RedirectUrl" => {
            return text(user, "RedirectTarget")
                .map(|t| Discovery::RedirectUrl(t.to_string()))
                .ok_or_else(|| refused(user));
        }
        _ => return Err(refused(user)),
    }
    let mut settings = std::collections::BTreeMap::new();
    for setting in child(user, "UserSettings")
        .into_iter()
        .flat_map(|s| s.children.iter())
    {
        if let (Some(name), Some(value)) = (text(setting, "Name"), text(setting, "Value")) {
            settings.insert(name.to_string(), value.to_string());
        }
    }
    let ews_url = settings
        .get("ExternalEwsUrl")
        .or_else(|| settings.get("InternalEwsUrl"))
        .cloned()
        .ok_or(AutodiscoverError::NoEwsUrl)?;
    Ok(Discovery::Found(UserSettings {
        ews_url,
        grouping: settings.get("GroupingInformation").cloned(),
        cas_version: settings.get("CasVersion").cloned(),
        display_name: settings.get("UserDisplayName").cloned(),
    }))
}

/// The POX request (`autodiscover.xml`) for `mailbox`.
pub fn pox_request(mailbox: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>{}</EMailAddress><AcceptableResponseSchema>{POX_RESPONSE_NS}</AcceptableResponseSchema></Request></Autodiscover>"#,
        escape(mailbox)
    )
}

/// Read a POX (`autodiscover.xml`) reply.
pub fn parse_pox(reply: &str) -> Result<Discovery, AutodiscoverError> {
    let root = xml::parse(reply)?;
    let pox = |e: &Element, name: &str| -> bool {
        e.name == name && (e.ns == POX_RESPONSE_NS || e.ns == POX_RESPONSE_NS_DOCS_VARIANT)
    };
    let response = root
        .children
        .iter()
        .find(|c| c.name == "Response")
        .ok_or(AutodiscoverError::NoEwsUrl)?;
    if let Some(error) = response.children.iter().find(|c| c.name == "Error") {
        let field = |n: &str| {
            error
                .children
                .iter()
                .find(|c| c.name == n)
                .map(|c| c.text.trim().to_string())
                .unwrap_or_default()
        };
        return Err(AutodiscoverError::Refused {
            code: field("ErrorCode"),
            message: field("Message"),
        });
    }
    let account = response
        .children
        .iter()
        .find(|c| pox(c, "Account"))
        .ok_or(AutodiscoverError::NoEwsUrl)?;
    let field = |e: &Element, n: &str| {
        e.children
            .iter()
            .find(|c| pox(c, n))
            .map(|c| c.text.trim().to_string())
            .filter(|t| !t.is_empty())
    };
    match field(account, "Action").as_deref() {
        Some("redirectAddr") => field(account, "RedirectAddr")
            .map(Discovery::RedirectAddress)
            .ok_or(AutodiscoverError::NoEwsUrl),
        Some("redirectUrl") => field(account, "RedirectUrl")
            .map(Discovery::RedirectUrl)
            .ok_or(AutodiscoverError::NoEwsUrl),
        _ => {
            // EXPR (outside) first, then EXCH (inside).
            let protocols: Vec<&Element> = account
                .children
                .iter()
                .filter(|c| pox(c, "Protocol"))
                .collect();
            let pick = |kind: &str| {
                protocols
                    .iter()
                    .find(|p| field(p, "Type").as_deref() == Some(kind))
                    .copied()
            };
            let protocol = pick("EXPR")
                .or_else(|| pick("EXCH"))
                .ok_or(AutodiscoverError::NoEwsUrl)?;
            Ok(Discovery::Found(UserSettings {
                ews_url: field(protocol, "EwsUrl").ok_or(AutodiscoverError::NoEwsUrl)?,
                grouping: field(protocol, "GroupingInformation"),
                cas_version: None,
                display_name: None,
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn srv_picks_the_best_priority_then_weight_and_only_https() {
        let record = |priority, weight, port, target: &str| SrvRecord {
            priority,
            weight,
            port,
            target: target.into(),
        };
        let records = [
            record(10, 100, 443, "backup.flexi.se."),
            record(0, 5, 443, "light.flexi.se."),
            record(0, 20, 443, "mail.flexi.se."),
            record(0, 20, 8443, "mail2.flexi.se"),
            record(0, 50, 80, "plain.flexi.se."),
            record(0, 90, 443, "."),
        ];
        assert_eq!(
            srv_candidates(&records),
            [
                "https://mail.flexi.se/autodiscover/autodiscover.svc",
                "https://mail.flexi.se/autodiscover/autodiscover.xml",
                "https://mail2.flexi.se:8443/autodiscover/autodiscover.svc",
                "https://mail2.flexi.se:8443/autodiscover/autodiscover.xml",
            ]
        );
        assert!(srv_candidates(&[record(0, 0, 80, "plain.flexi.se.")]).is_empty());
        assert_eq!(srv_name("Flexi.SE."), "_autodiscover._tcp.flexi.se.");
    }

    #[test]
    fn lookup_order_and_redirect_rules() {
        let c = candidates("Flexi.se.");
        assert_eq!(c[0], "https://flexi.se/autodiscover/autodiscover.svc");
        assert_eq!(
            c[4],
            "http://autodiscover.flexi.se/autodiscover/autodiscover.xml"
        );
        let mut r = Redirects::default();
        r.follow("elvin@mail.contoso.com").unwrap();
        assert!(matches!(
            r.follow("ELVIN@mail.contoso.com"),
            Err(AutodiscoverError::Loop { .. })
        ));
        assert!(matches!(
            r.follow("http://evil.example/autodiscover"),
            Err(AutodiscoverError::Insecure { .. })
        ));
        for i in 0..9 {
            r.follow(&format!("u{i}@x.se")).unwrap();
        }
        assert!(matches!(
            r.follow("one-more@x.se"),
            Err(AutodiscoverError::TooManyRedirects { .. })
        ));
    }

    #[test]
    fn pox_protocols() {
        let reply = r#"<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/responseschema/2006"><Response xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"><Account><Action>settings</Action>
          <Protocol><Type>EXCH</Type><EwsUrl>https://mail1.flexi.se/EWS/Exchange.asmx</EwsUrl></Protocol>
          <Protocol><Type>EXPR</Type><EwsUrl>https://mail.flexi.se/EWS/Exchange.asmx</EwsUrl><GroupingInformation>SE1</GroupingInformation></Protocol>
          </Account></Response></Autodiscover>"#;
        let Discovery::Found(settings) = parse_pox(reply).unwrap() else {
            panic!("settings")
        };
        assert_eq!(settings.ews_url, "https://mail.flexi.se/EWS/Exchange.asmx");
        assert_eq!(settings.grouping.as_deref(), Some("SE1"));
    }
}
