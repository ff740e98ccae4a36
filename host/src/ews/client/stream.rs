//! GetStreamingEvents: one held connection whose body is a series of SOAP
//! envelopes (events, keep-alives, the server's close), read as the caller asks
//! for them.
//!
//! ```no_run
//! # async fn follow(client: calvert::ews::client::EwsClient, kim: calvert::ews::request::Mailbox, id: &str) -> Result<(), calvert::ews::client::ClientError> {
//! use calvert::ews::client::Streamed;
//! let mut stream = client
//!     .stream_events(&kim, &[id], 30, std::time::Duration::from_secs(150))
//!     .await?;
//! loop {
//!     match stream.next().await? {
//!         Streamed::Reply(reply) => println!("{} notifications", reply.notifications.len()),
//!         Streamed::End(end) => break println!("ended: {end:?}"),
//!     }
//! }
//! # Ok(()) }
//! ```

use std::collections::VecDeque;
use std::time::Duration;

use super::{ClientError, EwsClient, StreamEnd};
use crate::ews::notification::{ConnectionStatus, EventsReply, StreamSplitter, parse_events};
use crate::ews::request::Mailbox;
use crate::ews::response::EwsError;
use crate::ews::xml::{MAX_REPLY_BYTES, XmlError};
use crate::http_body::read_text_capped;

/// Splits a streaming body, as it arrives in chunks of bytes, into whole envelopes.
/// A chunk may end inside a UTF-8 character: its tail waits for the next chunk.
/// Public for the fuzz target that checks any chunking gives the same envelopes.
#[derive(Debug)]
pub struct EnvelopeSplitter {
    text: StreamSplitter,
    /// Bytes of a character not yet complete.
    carry: Vec<u8>,
}

impl EnvelopeSplitter {
    /// `limit`: the most one envelope may hold before the stream is given up as broken.
    pub fn new(limit: usize) -> Self {
        EnvelopeSplitter {
            text: StreamSplitter::new(limit),
            carry: Vec::new(),
        }
    }

    /// Add a chunk; every envelope now complete, in order.
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<String>, EwsError> {
        self.carry.extend_from_slice(chunk);
        let valid = match std::str::from_utf8(&self.carry) {
            Ok(text) => text.len(),
            Err(e) if e.error_len().is_none() => e.valid_up_to(),
            Err(_) => {
                return Err(XmlError::Malformed {
                    detail: "the stream is not UTF-8".into(),
                    position: 0,
                }
                .into());
            }
        };
        let rest = self.carry.split_off(valid);
        let complete = std::mem::replace(&mut self.carry, rest);
        // `complete` is the valid prefix checked above.
        let text = String::from_utf8_lossy(&complete);
        Ok(self.text.push(&text)?)
    }

    /// Whether nothing is buffered: the stream may end here without losing a message.
    pub fn is_idle(&self) -> bool {
        self.text.pending() == 0 && self.carry.is_empty()
    }
}

/// What [`EventStream::next`] read.
#[derive(Debug, Clone, PartialEq)]
pub enum Streamed {
    /// One envelope: notifications, a keep-alive, failed subscriptions, or the
    /// server's close (after which the next call ends the stream).
    Reply(EventsReply),
    /// The connection is over without an error.
    End(StreamEnd),
}

/// An open GetStreamingEvents connection (see [`EwsClient::stream_events`]).
///
/// Call [`EventStream::next`] for each envelope; stop by dropping the stream. Once
/// it returned [`Streamed::End`] it keeps returning that end; after an error the
/// connection is broken and later calls say it dropped.
#[derive(Debug)]
pub struct EventStream {
    response: reqwest::Response,
    url: String,
    read_timeout: Duration,
    /// When the access token this connection was opened with is due for renewal.
    refresh_at: Option<tokio::time::Instant>,
    splitter: EnvelopeSplitter,
    /// Envelopes complete but not yet handed out.
    ready: VecDeque<String>,
    ended: Option<StreamEnd>,
    broken: bool,
}

impl EventStream {
    /// The next envelope, waiting for it at most the read timeout (keep-alives count);
    /// the end when the server closes the connection or the token is due for renewal.
    pub async fn next(&mut self) -> Result<Streamed, ClientError> {
        if self.broken {
            return Err(ClientError::StreamDropped {
                url: self.url.clone(),
            });
        }
        let next = self.read().await;
        match &next {
            Ok(Streamed::End(end)) => self.ended = Some(*end),
            Ok(Streamed::Reply(_)) => {}
            Err(_) => self.broken = true,
        }
        next
    }

    async fn read(&mut self) -> Result<Streamed, ClientError> {
        loop {
            if let Some(end) = self.ended {
                return Ok(Streamed::End(end));
            }
            if let Some(envelope) = self.ready.pop_front() {
                let reply = parse_events(&envelope).map_err(|e| self.ews(e))?;
                if reply.connection == Some(ConnectionStatus::Closed) {
                    self.ended = Some(StreamEnd::Closed);
                }
                return Ok(Streamed::Reply(reply));
            }
            let due = |at: &tokio::time::Instant| tokio::time::Instant::now() >= *at;
            if self.refresh_at.as_ref().is_some_and(due) {
                // The token this connection was opened with is about to expire:
                // end it so the caller reconnects with a fresh one.
                return Ok(Streamed::End(StreamEnd::TokenRefresh));
            }
            let wait = match self.refresh_at {
                Some(at) => self
                    .read_timeout
                    .min(at.saturating_duration_since(tokio::time::Instant::now())),
                None => self.read_timeout,
            };
            let Ok(chunk) = tokio::time::timeout(wait, self.response.chunk()).await else {
                if self.refresh_at.as_ref().is_some_and(due) {
                    return Ok(Streamed::End(StreamEnd::TokenRefresh));
                }
                return Err(ClientError::StreamStalled {
                    url: self.url.clone(),
                    waited: self.read_timeout,
                });
            };
            let chunk = chunk.map_err(|e| ClientError::transport(&self.url, &e))?;
            let Some(chunk) = chunk else {
                return if self.splitter.is_idle() {
                    Ok(Streamed::End(StreamEnd::Closed))
                } else {
                    Err(ClientError::StreamDropped {
                        url: self.url.clone(),
                    })
                };
            };
            let envelopes = self.splitter.push(&chunk).map_err(|e| self.ews(e))?;
            self.ready.extend(envelopes);
        }
    }

    fn ews(&self, error: EwsError) -> ClientError {
        ClientError::Ews {
            url: self.url.clone(),
            error,
        }
    }
}

impl EwsClient {
    /// Open a GetStreamingEvents connection for `subscription_ids` (one group, at most
    /// 200, impersonating the group's anchor `mailbox`), asking it to stay open
    /// `timeout_minutes`. Failed subscriptions arrive in `EventsReply::failed` while
    /// the connection stays open. A connection silent for longer than `read_timeout`
    /// (keep-alives included) is given up.
    pub async fn stream_events(
        &self,
        mailbox: &Mailbox,
        subscription_ids: &[&str],
        timeout_minutes: u32,
        read_timeout: Duration,
    ) -> Result<EventStream, ClientError> {
        let url = &self.config.url;
        let envelope = self
            .request(Some(mailbox))
            .get_streaming_events(subscription_ids, timeout_minutes);
        let request = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "text/xml; charset=utf-8")
            .header("X-AnchorMailbox", mailbox.anchor())
            .timeout(Duration::from_secs(
                u64::from(timeout_minutes.clamp(1, 30)) * 60 + 60,
            ))
            .body(envelope);
        let request = self.with_affinity(request);
        let refresh_at = self.token_refresh_at().await?;
        // The connection is this stream's from here: the NTLM session is released
        // for other calls as soon as the headers are in.
        let response = self.send(request).await?.response;
        let status = response.status().as_u16();
        match status {
            200 => {}
            401 => return Err(self.refused(&response)),
            502..=504 => {
                return Err(ClientError::Unavailable {
                    url: url.clone(),
                    status,
                });
            }
            500 => {
                let text = read_text_capped(response, MAX_REPLY_BYTES)
                    .await
                    .map_err(|error| self.body_error(error))?;
                return Err(
                    self.ews(parse_events(&text).err().unwrap_or(EwsError::Unexpected {
                        expected: "a streaming reply",
                    })),
                );
            }
            _ => {
                return Err(ClientError::Http {
                    url: url.clone(),
                    status,
                });
            }
        }
        Ok(EventStream {
            response,
            url: url.clone(),
            read_timeout,
            refresh_at,
            splitter: EnvelopeSplitter::new(MAX_REPLY_BYTES),
            ready: VecDeque::new(),
            ended: None,
            broken: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEEP_ALIVE: &str = "<Envelope><Body>å</Body></Envelope>";

    #[test]
    fn a_character_split_across_chunks_waits_for_its_tail() {
        let bytes = KEEP_ALIVE.as_bytes();
        let inside = KEEP_ALIVE.find('å').unwrap() + 1; // between å's two bytes
        let mut splitter = EnvelopeSplitter::new(1 << 20);
        assert!(splitter.push(&bytes[..inside]).unwrap().is_empty());
        assert!(!splitter.is_idle(), "half a character is buffered");
        let mut rest = bytes[inside..].to_vec();
        rest.extend_from_slice(&bytes[..3]);
        assert_eq!(splitter.push(&rest).unwrap(), [KEEP_ALIVE]);
        assert!(!splitter.is_idle(), "the next envelope has begun");
        assert_eq!(splitter.push(&bytes[3..]).unwrap(), [KEEP_ALIVE]);
        assert!(splitter.is_idle());
    }

    #[test]
    fn bytes_that_are_not_utf8_end_the_stream() {
        let mut splitter = EnvelopeSplitter::new(1 << 20);
        let error = splitter.push(b"<Envelope>\xff\xfe</Envelope>").unwrap_err();
        assert!(
            matches!(error, EwsError::Xml(XmlError::Malformed { .. })),
            "{error:?}"
        );
    }

    #[test]
    fn an_envelope_over_the_limit_ends_the_stream() {
        let mut splitter = EnvelopeSplitter::new(16);
        let error = splitter
            .push(b"<Envelope><Body>no end in sight")
            .unwrap_err();
        assert!(
            matches!(error, EwsError::Xml(XmlError::TooLarge { .. })),
            "{error:?}"
        );
    }
}
