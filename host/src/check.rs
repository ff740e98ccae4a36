//! `calvert check`: the administrator's "test connection". Reaches one Exchange server
//! with the service account, reads a mailbox's calendar window, prints the normalized
//! items and the decision for now. Each failure prints what to fix.

use std::fmt::Write as _;

use serde_json::{Value, json};

use crate::component::wit::{CalendarItem, DecidePolicy, Decision, Trigger};
use crate::component::{CoreError, CoreInstance};
use crate::ews::client::{ClientError, Credentials, EwsClient};
use crate::ews::request::Mailbox;
use crate::ews::response::EwsAction;

/// The window read: one day back, two weeks ahead (brief §2.1).
pub const WINDOW_BACK: i64 = 86_400;
pub const WINDOW_AHEAD: i64 = 14 * 86_400;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(
        "the service account {account:?} may not impersonate {mailbox} ({code} from {url}): grant it the ApplicationImpersonation role, e.g. `New-ManagementRoleAssignment -Role ApplicationImpersonation -User {account}` (with a management scope limiting it to Calvert's mailboxes)"
    )]
    ImpersonationDenied {
        account: String,
        mailbox: String,
        url: String,
        code: String,
    },
    #[error(
        "{url} knows no mailbox {mailbox} (ErrorNonExistentMailbox): check the address (the mailbox's primary SMTP address), or leave out --url so that Autodiscover finds the server the mailbox is on"
    )]
    NoMailbox { mailbox: String, url: String },
    #[error(transparent)]
    Core(#[from] CoreError),
}

/// Where Autodiscover and its redirects may lead, for [`ews_url`].
#[derive(Debug, Clone, Default)]
pub struct Discovery<'a> {
    pub ca_bundle: Option<&'a std::path::Path>,
    pub autodiscover_hosts: &'a [String],
    pub plain_http_hosts: &'a [String],
    /// An endpoint to ask instead of the domain's usual ones.
    pub endpoint: Option<&'a str>,
}

/// The EWS URL: `url` when configured, else the one Autodiscover finds for
/// `mailbox` (Basic sign-in only); the error is a sentence saying what to give.
pub async fn ews_url(
    url: Option<&str>,
    credentials: &Credentials,
    discovery: &Discovery<'_>,
    mailbox: &str,
    timeout: std::time::Duration,
) -> Result<String, String> {
    let (user, password) = match (url, credentials) {
        (Some(url), _) => return Ok(url.to_string()),
        (None, Credentials::Basic { user, password }) => (user, password),
        (None, Credentials::Ntlm { .. }) => {
            return Err(
                "give the server's URL with NTLM sign-in: Autodiscover signs in with Basic only"
                    .into(),
            );
        }
        (None, Credentials::OAuth { .. }) => {
            return Err(
                "give the server's URL: with OAuth, Exchange Online's EWS URL is https://outlook.office365.com/EWS/Exchange.asmx"
                    .into(),
            );
        }
    };
    let mut discoverer = crate::ews::discovery::Discoverer::new(user, password, timeout)
        .map_err(|e| e.to_string())?;
    if let Some(path) = discovery.ca_bundle {
        discoverer = discoverer.with_ca_bundle(path).map_err(|e| e.to_string())?;
    }
    discoverer = discoverer
        .with_autodiscover_hosts(discovery.autodiscover_hosts)
        .with_plain_http(discovery.plain_http_hosts);
    if let Some(endpoint) = discovery.endpoint {
        // An http:// endpoint given by hand opts its own host into plain http.
        if let Ok(parsed) = reqwest::Url::parse(endpoint)
            && parsed.scheme() == "http"
            && let Some(host) = parsed.host_str()
        {
            discoverer = discoverer.with_plain_http(&[host.to_string()]);
        }
        discoverer = discoverer.with_endpoints(vec![endpoint.to_string()]);
    }
    let settings = discoverer
        .discover(mailbox)
        .await
        .map_err(|e| e.to_string())?;
    Ok(settings.ews_url)
}

/// What `check` found.
#[derive(Debug)]
pub struct CheckReport {
    pub mailbox: String,
    pub items: Vec<CalendarItem>,
    pub decision: Decision,
    pub now: i64,
    pub zone: String,
}

pub async fn run(
    client: &EwsClient,
    core: &mut CoreInstance,
    mailbox: &str,
    zone: &str,
    triggers: &[Trigger],
    now: i64,
) -> Result<CheckReport, CheckError> {
    let target = Mailbox {
        primary_smtp: mailbox.to_string(),
    };
    let read = client
        .calendar(&target, now - WINDOW_BACK, now + WINDOW_AHEAD, 1000)
        .await;
    let mut items = read.map_err(|error| about_mailbox(error, client, mailbox))?;
    items.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    let policy = DecidePolicy::default();
    let decision = core.decide(&items, &policy, triggers, zone, now)?;
    Ok(CheckReport {
        mailbox: mailbox.to_string(),
        items,
        decision,
        now,
        zone: zone.to_string(),
    })
}

/// A client error that is about the mailbox (not allowed, not there) said with the
/// mailbox and the account.
fn about_mailbox(error: ClientError, client: &EwsClient, mailbox: &str) -> CheckError {
    let url = client.config().url.clone();
    match error.code_action() {
        Some((code, EwsAction::MailboxNotAllowed)) => CheckError::ImpersonationDenied {
            account: client.config().credentials.who().to_string(),
            mailbox: mailbox.to_string(),
            url,
            code: code.to_string(),
        },
        Some(("ErrorNonExistentMailbox", _)) => CheckError::NoMailbox {
            mailbox: mailbox.to_string(),
            url,
        },
        _ => CheckError::Client(error),
    }
}

fn time(core: &mut CoreInstance, at: i64, zone: &str) -> String {
    core.instant_to_local(at, zone)
        .unwrap_or_else(|_| at.to_string())
}

impl CheckReport {
    /// A readable report; subjects are shown because the administrator asked for
    /// this mailbox (they never go to logs).
    pub fn text(&self, core: &mut CoreInstance) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{}: {} calendar items in the window",
            self.mailbox,
            self.items.len()
        );
        for item in &self.items {
            let _ = writeln!(
                out,
                "  {} .. {}  {:?}/{:?}{}{}  {}",
                time(core, item.start, &self.zone),
                time(core, item.end, &self.zone),
                item.free_busy,
                item.response,
                if item.is_meeting { " meeting" } else { "" },
                if item.is_all_day { " all-day" } else { "" },
                item.subject
            );
        }
        match &self.decision.diversion {
            Some(d) => {
                let _ = writeln!(
                    out,
                    "now: diverted, reason {} until {} (item {})",
                    d.reason, d.until_local, d.item_id
                );
            }
            None => {
                let _ = writeln!(out, "now: not diverted");
            }
        }
        if let Some(next) = self.decision.next_change {
            let _ = writeln!(out, "next change: {}", time(core, next, &self.zone));
        }
        out
    }

    pub fn json(&self) -> Value {
        json!({
            "mailbox": self.mailbox,
            "items": self.items.iter().map(|i| json!({
                "id": i.id, "subject": i.subject, "location": i.location,
                "start": i.start, "end": i.end, "is_all_day": i.is_all_day, "zone": i.zone,
                "free_busy": format!("{:?}", i.free_busy), "response": format!("{:?}", i.response),
                "is_meeting": i.is_meeting, "kind": format!("{:?}", i.kind),
            })).collect::<Vec<_>>(),
            "diversion": self.decision.diversion.as_ref().map(|d| json!({
                "reason": d.reason, "until": d.until, "until_local": d.until_local, "item_id": d.item_id,
            })),
            "next_change": self.decision.next_change,
        })
    }
}
