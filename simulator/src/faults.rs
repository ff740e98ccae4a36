//! Fault injection: the faults a test queues for the next requests, and what each
//! does to the reply.

use std::time::Duration;

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::wire::{envelope, fault, xml_reply};

/// A fault for the next request(s).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// An HTTP status with an empty body (503, 401, …).
    Status(u16),
    /// HTTP 500 with an ErrorServerBusy SOAP fault carrying BackOffMilliseconds.
    ServerBusy { back_off_ms: u64 },
    /// HTTP 200 with an HTML page, as a proxy's login page.
    HtmlPage,
    /// HTTP 200 with the reply cut in half.
    Truncated,
    /// Answer after a delay.
    Slow(Duration),
    /// A streaming connection ends in the middle of an envelope.
    DropStream,
}

/// The reply as the fault taken for this request makes it (`Slow` and `DropStream`
/// act earlier, so they leave it alone).
pub(crate) fn spoil(fault_now: Option<Fault>, reply: Response) -> Response {
    match fault_now {
        None | Some(Fault::Slow(_)) | Some(Fault::DropStream) => reply,
        Some(Fault::Status(code)) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(Fault::ServerBusy { back_off_ms }) => xml_reply(
            StatusCode::INTERNAL_SERVER_ERROR,
            fault(
                "ErrorServerBusy",
                "The server cannot service this request right now. Try again later.",
                Some(back_off_ms),
            ),
        ),
        Some(Fault::HtmlPage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html")],
            "<!DOCTYPE html><html><head><title>Sign in</title></head><body>Proxy login</body></html>",
        )
            .into_response(),
        Some(Fault::Truncated) => {
            let full = envelope("<m:FindItemResponse/>");
            let half = full.get(..full.len() / 2).unwrap_or_default();
            xml_reply(StatusCode::OK, half.to_string())
        }
    }
}
