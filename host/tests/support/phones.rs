//! A telephony system for tests: the receiving side of docs/diversion-http.md.
//!
//! It keeps each phone's diversion, remembers idempotency keys (a repeated key is
//! acknowledged but not applied again, and counted), can be taken down (503, and
//! each refused request counted), counts the read-backs of each phone (the service
//! reads a phone back in a mailbox step, after reading the calendar), and lets a test
//! set a manual diversion as a person at the switchboard would. It also logs every
//! set and clear it received (repeats included) with its key, for the crash loop's
//! audit, and counts the calls applied but not yet answered.

#![allow(dead_code)]

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::put;
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub phone: String,
    /// "set REASON until" or "clear".
    pub what: String,
    pub key: String,
    /// When it arrived (seconds since the epoch).
    pub arrived: i64,
}

/// One set or clear as it arrived, applied or a repeat (not one refused while down).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub phone: String,
    pub key: String,
    /// "set REASON until" or "clear".
    pub what: String,
}

#[derive(Default)]
struct State_ {
    shown: BTreeMap<String, (String, String)>,
    calls: Vec<Call>,
    keys: HashSet<String>,
    repeats: usize,
    /// Every set and clear received, in arrival order, repeats included.
    received: Vec<Received>,
    /// Calls applied whose answer is still being delayed.
    answering: usize,
    /// Read-backs (GET) per phone, answered or refused.
    reads: BTreeMap<String, usize>,
    /// Sets and clears refused while down.
    refused_calls: usize,
    /// Read-backs refused while down.
    refused_reads: usize,
    down: bool,
    /// How long each set or clear takes to answer, after it is applied.
    delay: std::time::Duration,
}

#[derive(Clone, Default)]
pub struct Phones {
    state: Arc<Mutex<State_>>,
}

impl Phones {
    fn lock(&self) -> std::sync::MutexGuard<'_, State_> {
        self.state.lock().unwrap()
    }

    /// Applied calls, in arrival order (repeats excluded).
    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_for(&self, phone: &str) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.phone == phone)
            .map(|c| c.what)
            .collect()
    }

    /// Calls that arrived again with a key already applied.
    pub fn repeats(&self) -> usize {
        self.lock().repeats
    }

    /// Every set and clear received, in arrival order, repeats included.
    pub fn received(&self) -> Vec<Received> {
        self.lock().received.clone()
    }

    /// Calls applied whose answer the configured delay still holds back.
    pub fn answering(&self) -> usize {
        self.lock().answering
    }

    /// The phone's applied calls with their arrival times (seconds since the epoch).
    pub fn arrivals_for(&self, phone: &str) -> Vec<(String, i64)> {
        self.calls()
            .into_iter()
            .filter(|c| c.phone == phone)
            .map(|c| (c.what, c.arrived))
            .collect()
    }

    /// How many times the service read this phone's diversion back.
    pub fn reads_of(&self, phone: &str) -> usize {
        self.lock().reads.get(phone).copied().unwrap_or(0)
    }

    /// Sets and clears refused (503) while the receiver was down.
    pub fn refused_calls(&self) -> usize {
        self.lock().refused_calls
    }

    /// Read-backs refused (503) while the receiver was down.
    pub fn refused_reads(&self) -> usize {
        self.lock().refused_reads
    }

    /// What the phone shows: (reason, until in UTC).
    pub fn shown(&self, phone: &str) -> Option<(String, String)> {
        self.lock().shown.get(phone).cloned()
    }

    pub fn set_delay(&self, delay: std::time::Duration) {
        self.lock().delay = delay;
    }

    pub fn set_down(&self, down: bool) {
        self.lock().down = down;
    }

    /// Someone at the switchboard diverts the phone by hand.
    pub fn divert_by_hand(&self, phone: &str, reason: &str, until: &str) {
        self.lock()
            .shown
            .insert(phone.into(), (reason.into(), until.into()));
    }

    pub fn clear_by_hand(&self, phone: &str) {
        self.lock().shown.remove(phone);
    }

    pub async fn start(&self) -> SocketAddr {
        let app = axum::Router::new()
            .route(
                "/phones/{phone}/diversion",
                put(set).delete(clear).get(current),
            )
            .with_state(self.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    }
}

fn key(headers: &HeaderMap) -> String {
    headers
        .get("Idempotency-Key")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

async fn set(
    State(phones): State<Phones>,
    Path(phone): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    let reason = body["reason"].as_str().unwrap_or_default().to_string();
    let until = body["until"].as_str().unwrap_or_default().to_string();
    assert_eq!(body["source"], "calendar");
    let what = format!("set {reason} {until}");
    phones
        .apply(phone, key(&headers), what, Some((reason, until)))
        .await
}

async fn clear(
    State(phones): State<Phones>,
    Path(phone): Path<String>,
    headers: HeaderMap,
) -> Response {
    phones
        .apply(phone, key(&headers), "clear".into(), None)
        .await
}

impl Phones {
    /// Apply a call once per key, then answer after the configured delay.
    async fn apply(
        &self,
        phone: String,
        key: String,
        what: String,
        shown: Option<(String, String)>,
    ) -> Response {
        let delay = {
            let mut state = self.lock();
            if state.down {
                state.refused_calls += 1;
                return StatusCode::SERVICE_UNAVAILABLE.into_response();
            }
            state.received.push(Received {
                phone: phone.clone(),
                key: key.clone(),
                what: what.clone(),
            });
            if !state.keys.insert(key.clone()) {
                state.repeats += 1;
                return StatusCode::NO_CONTENT.into_response();
            }
            state.calls.push(Call {
                phone: phone.clone(),
                what,
                key,
                arrived: jiff::Timestamp::now().as_second(),
            });
            match shown {
                Some(shown) => state.shown.insert(phone, shown),
                None => state.shown.remove(&phone),
            };
            state.answering += 1;
            state.delay
        };
        // Counted down even when the caller hangs up (is killed) during the delay.
        let _answered = Answered(self.clone());
        tokio::time::sleep(delay).await;
        StatusCode::NO_CONTENT.into_response()
    }
}

/// Counts a call as answered when its handler ends, however it ends.
struct Answered(Phones);

impl Drop for Answered {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.answering = state.answering.saturating_sub(1);
    }
}

async fn current(State(phones): State<Phones>, Path(phone): Path<String>) -> Response {
    let mut state = phones.lock();
    *state.reads.entry(phone.clone()).or_default() += 1;
    if state.down {
        state.refused_reads += 1;
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    match state.shown.get(&phone) {
        Some((reason, until)) => {
            Json(serde_json::json!({"reason": reason, "until": until})).into_response()
        }
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
