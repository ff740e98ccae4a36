//! The SOAP envelope, SOAP faults and EWS response messages, as typed errors that
//! carry the action they need (brief §4).

use std::time::Duration;

use super::xml::{Element, XmlError};
use super::{ERRORS_NS, MESSAGES_NS, SOAP_NS, TYPES_NS};

/// What the caller must do about an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EwsAction {
    /// Transient: wait (the server's `BackOffMilliseconds` when it gave one) and retry.
    RetryLater,
    /// The subscription is gone or behind: subscribe again without the watermark, resync.
    Resubscribe,
    /// The sync state is no longer valid: sync the folder from scratch.
    FullResync,
    /// The calendar window holds too many items: split it.
    ShrinkWindow,
    /// The service account may not open this mailbox: the mailbox goes to error, an
    /// administrator must grant the right.
    MailboxNotAllowed,
    /// The mailbox is not (or no longer) on this server: run Autodiscover again.
    Rediscover,
    /// Ask again with an older `RequestServerVersion`.
    LowerServerVersion,
    /// The item no longer exists: treat it as deleted.
    TreatAsDeleted,
    /// The item changed meanwhile: get it again and re-apply.
    Refetch,
    /// Calvert sent something Exchange rejects: a bug to report.
    CalvertBug,
    /// Anything else: the mailbox goes to error with this reason.
    Fail,
}

/// The action for an EWS response code (brief §4.4).
pub fn action_for(code: &str) -> EwsAction {
    match code {
        "ErrorServerBusy"
        | "ErrorMailboxMoveInProgress"
        | "ErrorMailboxStoreUnavailable"
        | "ErrorInternalServerTransientError"
        | "ErrorTimeoutExpired"
        | "ErrorExceededConnectionCount"
        | "ErrorTooManyObjectsOpened"
        | "ErrorInternalServerError" => EwsAction::RetryLater,
        "ErrorInvalidSyncStateData" | "ErrorSyncFolderNotFound" => EwsAction::FullResync,
        "ErrorSubscriptionNotFound"
        | "ErrorExpiredSubscription"
        | "ErrorInvalidSubscription"
        | "ErrorMissedNotificationEvents"
        | "ErrorInvalidWatermark"
        | "ErrorReadEventsFailed"
        | "ErrorProxyRequestNotAllowed"
        | "ErrorSubscriptionAccessDenied" => EwsAction::Resubscribe,
        "ErrorExceededFindCountLimit" | "ErrorResultSetTooBig" | "ErrorCalendarViewRangeTooBig" => {
            EwsAction::ShrinkWindow
        }
        "ErrorImpersonateUserDenied"
        | "ErrorImpersonationDenied"
        | "ErrorInvalidExchangeImpersonationHeaderData" => EwsAction::MailboxNotAllowed,
        "ErrorNonExistentMailbox" => EwsAction::Rediscover,
        "ErrorInvalidServerVersion"
        | "ErrorIncorrectSchemaVersion"
        | "ErrorInvalidSchemaVersionForMailboxVersion" => EwsAction::LowerServerVersion,
        "ErrorItemNotFound" => EwsAction::TreatAsDeleted,
        "ErrorIrresolvableConflict" => EwsAction::Refetch,
        "ErrorSchemaValidation" | "ErrorInvalidRequest" => EwsAction::CalvertBug,
        _ => EwsAction::Fail,
    }
}

/// A sentence an administrator can act on, for the codes that need one.
fn advice(code: &str) -> &'static str {
    match action_for(code) {
        EwsAction::MailboxNotAllowed => {
            "the service account may not impersonate this mailbox: grant it the ApplicationImpersonation role (see the README)"
        }
        EwsAction::Rediscover => {
            "the mailbox does not exist on this server: check the address, or the user moved (Autodiscover runs again)"
        }
        EwsAction::RetryLater => {
            "Exchange is busy or briefly unavailable: Calvert waits and retries"
        }
        EwsAction::Resubscribe => {
            "the notification subscription is gone: Calvert subscribes again and resyncs"
        }
        EwsAction::FullResync => {
            "the sync state expired: Calvert syncs the folder again from scratch"
        }
        EwsAction::ShrinkWindow => "too many items in one request: Calvert splits the window",
        EwsAction::LowerServerVersion => {
            "the server rejects the requested schema version: Calvert asks with an older one"
        }
        EwsAction::TreatAsDeleted => "the item no longer exists",
        EwsAction::Refetch => "the item changed meanwhile: Calvert reads it again",
        EwsAction::CalvertBug => {
            "Exchange rejected Calvert's request: report this with the message"
        }
        EwsAction::Fail => "the mailbox is set to error with this reason",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EwsError {
    #[error(transparent)]
    Xml(#[from] XmlError),
    #[error("the reply is XML but not a SOAP envelope (root <{root}>): check the EWS URL")]
    NotSoap { root: String },
    #[error("Exchange answered with a SOAP fault {code}: {message}; {}", advice(.code))]
    Fault {
        code: String,
        message: String,
        back_off: Option<Duration>,
    },
    #[error("Exchange answered {code}: {text}; {}", advice(.code))]
    Response {
        code: String,
        text: String,
        back_off: Option<Duration>,
    },
    #[error("the reply has no {expected}: Exchange answered something Calvert does not read")]
    Unexpected { expected: &'static str },
    #[error(transparent)]
    Item(#[from] super::calendar::ItemError),
}

impl EwsError {
    /// The EWS response code, where there is one.
    pub fn code(&self) -> Option<&str> {
        match self {
            EwsError::Fault { code, .. } | EwsError::Response { code, .. } => Some(code),
            _ => None,
        }
    }

    /// What to do about it. Unreadable replies are transient (a proxy, a cut connection).
    pub fn action(&self) -> EwsAction {
        match self {
            EwsError::Xml(XmlError::TooLarge { .. }) => EwsAction::ShrinkWindow,
            EwsError::Xml(_) | EwsError::NotSoap { .. } => EwsAction::RetryLater,
            EwsError::Unexpected { .. } | EwsError::Item(_) => EwsAction::CalvertBug,
            EwsError::Fault { code, .. } | EwsError::Response { code, .. } => action_for(code),
        }
    }

    /// How long the server asked us to wait, if it did.
    pub fn back_off(&self) -> Option<Duration> {
        match self {
            EwsError::Fault { back_off, .. } | EwsError::Response { back_off, .. } => *back_off,
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseClass {
    Success,
    Warning,
    Error,
}

/// One `m:<Operation>ResponseMessage`.
#[derive(Debug, Clone)]
pub struct ResponseMessage<'a> {
    pub class: ResponseClass,
    pub code: String,
    pub text: String,
    pub back_off: Option<Duration>,
    pub element: &'a Element,
}

impl ResponseMessage<'_> {
    /// `Ok(self)` for Success (and Warning with NoError), else the typed error.
    pub fn into_result(self) -> Result<Self, EwsError> {
        match (self.class, self.code.as_str()) {
            (ResponseClass::Success, _) | (ResponseClass::Warning, "NoError") => Ok(self),
            _ => Err(EwsError::Response {
                code: self.code,
                text: self.text,
                back_off: self.back_off,
            }),
        }
    }
}

/// `BackOffMilliseconds` from a `MessageXml` (messages or types namespace).
fn back_off_in(parent: &Element) -> Option<Duration> {
    let xml = parent
        .child(MESSAGES_NS, "MessageXml")
        .or_else(|| parent.child(TYPES_NS, "MessageXml"))?;
    xml.children_named(TYPES_NS, "Value")
        .find(|v| v.attr("Name") == Some("BackOffMilliseconds"))
        .and_then(|v| v.text.trim().parse::<u64>().ok())
        .map(Duration::from_millis)
}

/// The SOAP body of a reply; a SOAP fault is returned as [`EwsError::Fault`].
pub fn body(root: &Element) -> Result<&Element, EwsError> {
    if !root.is(SOAP_NS, "Envelope") {
        return Err(EwsError::NotSoap {
            root: root.name.clone(),
        });
    }
    let body = root.child(SOAP_NS, "Body").ok_or(EwsError::Unexpected {
        expected: "SOAP Body",
    })?;
    if let Some(fault) = body.child(SOAP_NS, "Fault") {
        let detail = fault.child("", "detail");
        let code = detail
            .and_then(|d| d.child_text(ERRORS_NS, "ResponseCode"))
            .map(str::to_string)
            .or_else(|| {
                fault
                    .child_text("", "faultcode")
                    .map(|c| c.rsplit(':').next().unwrap_or(c).trim().to_string())
            })
            .unwrap_or_else(|| "SoapFault".to_string());
        let message = detail
            .and_then(|d| d.child_text(ERRORS_NS, "Message"))
            .filter(|m| !m.is_empty())
            .or_else(|| fault.child_text("", "faultstring"))
            .unwrap_or("")
            .to_string();
        return Err(EwsError::Fault {
            code,
            message,
            back_off: detail.and_then(back_off_in),
        });
    }
    Ok(body)
}

/// The response messages of an operation's reply (`m:ResponseMessages/*`), in order.
pub fn response_messages(body: &Element) -> Result<Vec<ResponseMessage<'_>>, EwsError> {
    let operation = body.children.first().ok_or(EwsError::Unexpected {
        expected: "operation response",
    })?;
    let messages =
        operation
            .child(MESSAGES_NS, "ResponseMessages")
            .ok_or(EwsError::Unexpected {
                expected: "ResponseMessages",
            })?;
    Ok(messages
        .children
        .iter()
        .map(|m| ResponseMessage {
            class: match m.attr("ResponseClass") {
                Some("Success") => ResponseClass::Success,
                Some("Warning") => ResponseClass::Warning,
                _ => ResponseClass::Error,
            },
            code: m
                .child_text(MESSAGES_NS, "ResponseCode")
                .unwrap_or("")
                .to_string(),
            text: m
                .child_text(MESSAGES_NS, "MessageText")
                .unwrap_or("")
                .to_string(),
            back_off: back_off_in(m),
            element: m,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_mapped_code_has_its_action() {
        assert_eq!(action_for("ErrorServerBusy"), EwsAction::RetryLater);
        assert_eq!(
            action_for("ErrorInvalidSyncStateData"),
            EwsAction::FullResync
        );
        assert_eq!(
            action_for("ErrorExpiredSubscription"),
            EwsAction::Resubscribe
        );
        assert_eq!(
            action_for("ErrorImpersonateUserDenied"),
            EwsAction::MailboxNotAllowed
        );
        assert_eq!(action_for("ErrorNonExistentMailbox"), EwsAction::Rediscover);
        assert_eq!(action_for("ErrorSomethingNew"), EwsAction::Fail);
    }

    #[test]
    fn impersonation_denied_reads_as_an_instruction() {
        let e = EwsError::Response {
            code: "ErrorImpersonateUserDenied".into(),
            text: "The account does not have permission to impersonate the requested user.".into(),
            back_off: None,
        };
        assert!(e.to_string().contains("ApplicationImpersonation"), "{e}");
    }
}
