//! "Why is this phone diverted?" and the diversions to come, made by the core from
//! the calendar as the service last read it. Never a subject, location or body: the
//! trigger shows as configured, the item by its times.

use serde::Serialize;

use super::route_tester::{RouteAnswer, explain};
use crate::component::CoreError;
use crate::component::wit::{CalendarItem, Decision};
use crate::service::state::{Mailbox, Service};

/// At most this many upcoming diversions are listed.
pub const MAX_UPCOMING: usize = 50;

/// The decision record of one user at one moment.
#[derive(Debug, Serialize)]
pub struct Why {
    pub address: String,
    /// When the calendar shown was read (UTC); None: not read yet.
    pub read_at: Option<String>,
    pub diversion: Option<Reason>,
    pub exchange: RouteAnswer,
    pub telephony: RouteAnswer,
}

/// Why a diversion is what it is.
#[derive(Debug, Serialize)]
pub struct Reason {
    pub reason: String,
    /// The return time in the user's zone (RFC 3339 with offset).
    pub until_local: String,
    /// The winning item's start and end in the user's zone.
    pub item_start: String,
    pub item_end: String,
    /// The trigger word as configured, or None (the default reason).
    pub trigger: Option<String>,
}

/// One diversion to come.
#[derive(Debug, Serialize)]
pub struct Upcoming {
    pub from_local: String,
    pub until_local: String,
    pub reason: String,
}

/// The record at `now`.
pub fn why(service: &Service, mailbox: &Mailbox, now: i64) -> Result<Why, CoreError> {
    let user = mailbox.user();
    let cached = crate::lock::lock(&mailbox.cached).clone();
    let diversion = match &cached {
        Some((_, items)) => {
            let decision = decide(service, mailbox, items, now)?;
            match decision.diversion {
                Some(d) => Some(reason(service, mailbox, items, d)?),
                None => None,
            }
        }
        None => None,
    };
    let (exchange, telephony) = service.with_core(|core| {
        Ok((
            explain(core, &user.address, &service.config().rules)?,
            explain(core, &user.address, &service.config().telephony_rules)?,
        ))
    })?;
    Ok(Why {
        address: user.address.clone(),
        read_at: cached.map(|(at, _)| crate::diversion::utc(at)),
        diversion,
        exchange,
        telephony,
    })
}

/// The diversions from `now` through `days` ahead, as the calendar stands: the core
/// is asked at `now` and again at each `next_change`.
pub fn upcoming(
    service: &Service,
    mailbox: &Mailbox,
    now: i64,
    days: i64,
) -> Result<Vec<Upcoming>, CoreError> {
    let Some((_, items)) = crate::lock::lock(&mailbox.cached).clone() else {
        return Ok(Vec::new());
    };
    let horizon = now.saturating_add(days.saturating_mul(86_400));
    let mut found = Vec::new();
    let mut at = now;
    while found.len() < MAX_UPCOMING && at <= horizon {
        let decision = decide(service, mailbox, &items, at)?;
        if let Some(d) = decision.diversion {
            found.push(Upcoming {
                from_local: local(service, at, &mailbox.user().zone)?,
                until_local: d.until_local,
                reason: d.reason,
            });
        }
        match decision.next_change {
            Some(next) if next > at => at = next,
            _ => break,
        }
    }
    Ok(found)
}

fn decide(
    service: &Service,
    mailbox: &Mailbox,
    items: &[CalendarItem],
    at: i64,
) -> Result<Decision, CoreError> {
    let config = service.config();
    service.with_core(|core| {
        core.decide(
            items,
            &config.policy,
            &config.triggers,
            &mailbox.user().zone,
            at,
        )
    })
}

fn reason(
    service: &Service,
    mailbox: &Mailbox,
    items: &[CalendarItem],
    diversion: crate::component::wit::Diversion,
) -> Result<Reason, CoreError> {
    let zone = &mailbox.user().zone;
    let item = items.iter().find(|i| i.id == diversion.item_id);
    let trigger = match item {
        Some(item) => service
            .with_core(|core| core.resolve_trigger(&item.subject, &service.config().triggers))?
            .map(|m| m.word),
        None => None,
    };
    let (start, end) = item.map(|i| (i.start, i.end)).unwrap_or_default();
    Ok(Reason {
        reason: diversion.reason,
        until_local: diversion.until_local,
        item_start: local(service, start, zone)?,
        item_end: local(service, end, zone)?,
        trigger,
    })
}

fn local(service: &Service, at: i64, zone: &str) -> Result<String, CoreError> {
    service.with_core(|core| core.instant_to_local(at, zone))
}
