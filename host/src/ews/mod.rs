//! Exchange Web Services: reading what Exchange answers.
//!
//! Only the host knows EWS XML. This module turns SOAP replies into the core's
//! calendar items ([`calendar`]) and into typed errors that carry the action they
//! need ([`response`]). It parses with quick-xml into a small namespace-aware element
//! tree ([`xml`]); replies are capped in size and anything that is not EWS XML (an
//! HTML error page with status 200, a truncated body) is a clear error.

pub mod autodiscover;
pub mod calendar;
pub mod client;
pub mod discovery;
pub mod notification;
pub mod ntlm;
pub mod push;
pub mod request;
pub mod response;
pub mod srv;
mod stream_split;
pub mod trust;
pub mod xml;

/// `http://schemas.xmlsoap.org/soap/envelope/`: the SOAP 1.1 namespace real servers use.
pub const SOAP_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// Several documentation samples carry this wrong variant; it is read as SOAP too.
pub const SOAP_NS_DOCS_VARIANT: &str = "https://schemas.xmlsoap.org/soap/envelope/";
pub const TYPES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/types";
pub const MESSAGES_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/messages";
pub const ERRORS_NS: &str = "http://schemas.microsoft.com/exchange/services/2006/errors";
