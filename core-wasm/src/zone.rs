//! The time-zone policy (semantics.md §5).
//!
//! The core works in UTC instants. Zones come from jiff's bundled copy of the IANA
//! tz database (the same data natively and in the component; nothing is read from
//! the system). Windows zone ids, as Exchange sends them, map to IANA zones by the
//! CLDR windowsZones table (default territory "001").
//!
//! **The one rule for local times that do not exist or exist twice** (DST days):
//! a local time in a gap is moved forward by the length of the gap (02:30 on a
//! spring-forward night in Stockholm is 03:30 CEST); a local time that exists twice
//! is the earlier of the two (02:30 on the autumn night is 02:30 CEST). This is
//! jiff's `compatible` disambiguation, the behaviour of RFC 5545 and of most
//! calendar software.
//!
//! **All-day items** cover whole local days in the *user's* zone: the item's first
//! day and its number of days are read in the zone it was made in (or the user's
//! zone when that is unknown), and the interval runs from the start of the first day
//! to the start of the day after the last, in the user's zone. A DST day is thus 23
//! or 25 hours long, and a day that starts in a gap starts at its first instant.

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::model::{Instant, Problem, ProblemKind, ZoneResolution};
use crate::windows_zones::WINDOWS_TO_IANA;

/// The earliest and latest instants the core accepts (years -9999 and 9999).
pub const MIN_INSTANT: Instant = -377_705_116_800;
pub const MAX_INSTANT: Instant = 253_402_207_199;

/// A resolved zone: its IANA name and rules.
#[derive(Debug, Clone)]
pub struct Zone {
    pub iana: String,
    tz: TimeZone,
}

/// The CLDR table as (Windows id, IANA name), sorted by Windows id.
pub fn windows_zone_table() -> &'static [(&'static str, &'static str)] {
    WINDOWS_TO_IANA
}

impl Zone {
    /// An IANA name or a Windows zone id. `None` when neither is known.
    pub fn lookup(id: &str) -> Option<Zone> {
        let id = id.trim();
        if id.is_empty() {
            return None;
        }
        if let Ok(tz) = jiff::tz::db().get(id) {
            return Some(Zone {
                iana: tz.iana_name().unwrap_or(id).to_string(),
                tz,
            });
        }
        let iana = WINDOWS_TO_IANA
            .binary_search_by(|(windows, _)| (*windows).cmp(id))
            .ok()
            .map(|i| WINDOWS_TO_IANA[i].1)
            .or_else(|| {
                WINDOWS_TO_IANA
                    .iter()
                    .find(|(windows, _)| windows.eq_ignore_ascii_case(id))
                    .map(|(_, iana)| *iana)
            })?;
        let tz = jiff::tz::db().get(iana).ok()?;
        Some(Zone {
            iana: iana.to_string(),
            tz,
        })
    }

    /// Like [`Zone::lookup`], as a problem an administrator can act on.
    pub fn parse(id: &str) -> Result<Zone, Problem> {
        Zone::lookup(id).ok_or_else(|| {
            Problem::new(
                ProblemKind::UnknownZone,
                format!(
                    "unknown time zone {id:?}: use an IANA name such as \"Europe/Stockholm\" or a Windows zone id such as \"W. Europe Standard Time\""
                ),
            )
        })
    }

    pub fn utc() -> Zone {
        Zone {
            iana: "UTC".to_string(),
            tz: TimeZone::UTC,
        }
    }

    /// `at` as local RFC 3339 time with the zone's offset, e.g. `2026-11-25T13:00:00+01:00`.
    pub fn local_string(&self, at: Instant) -> Result<String, Problem> {
        let zoned = timestamp(at)?.to_zoned_datetime(self.tz.clone());
        Ok(zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string())
    }

    /// Local wall-clock time to an instant by the module's one rule for gaps and folds.
    pub fn local_to_instant(&self, local: DateTime) -> Result<Instant, Problem> {
        let zoned = self
            .tz
            .to_ambiguous_zoned_datetime(local)
            .compatible()
            .map_err(|e| {
                Problem::new(
                    ProblemKind::InvalidTime,
                    format!("local time {local} in {} cannot be placed: {e}", self.iana),
                )
            })?;
        Ok(zoned.timestamp().as_second())
    }

    /// The whole-day interval of an all-day item, per the module's policy.
    /// `origin` is the zone the item was made in.
    pub fn all_day_interval(
        &self,
        origin: &Zone,
        start: Instant,
        end: Instant,
    ) -> Result<(Instant, Instant), Problem> {
        let first = timestamp(start)?.to_zoned_datetime(origin.tz.clone());
        let last = timestamp(end)?.to_zoned_datetime(origin.tz.clone());
        let first_day = first.date();
        let mut end_day = last.date();
        if last.time() != jiff::civil::Time::midnight() {
            end_day = end_day.tomorrow().map_err(|e| time_problem(end, e))?;
        }
        if end_day <= first_day {
            end_day = first_day.tomorrow().map_err(|e| time_problem(end, e))?;
        }
        let begin = first_day
            .to_zoned_datetime(self.tz.clone())
            .map_err(|e| time_problem(start, e))?;
        let finish = end_day
            .to_zoned_datetime(self.tz.clone())
            .map_err(|e| time_problem(end, e))?;
        Ok((
            begin
                .start_of_day()
                .map_err(|e| time_problem(start, e))?
                .timestamp()
                .as_second(),
            finish
                .start_of_day()
                .map_err(|e| time_problem(end, e))?
                .timestamp()
                .as_second(),
        ))
    }
}

fn time_problem(at: Instant, e: jiff::Error) -> Problem {
    Problem::new(
        ProblemKind::InvalidTime,
        format!("instant {at} is out of range: {e}"),
    )
}

/// An instant as a jiff timestamp, or a problem when it is outside years -9999..9999.
pub fn timestamp(at: Instant) -> Result<Timestamp, Problem> {
    Timestamp::from_second(at).map_err(|e| time_problem(at, e))
}

/// Parse an RFC 3339 instant with whole seconds (`2026-11-25T09:30:00Z` or with an offset).
pub fn parse_instant(text: &str) -> Result<Instant, String> {
    let ts: Timestamp = text.parse().map_err(|e| {
        format!("{text:?} is not an RFC 3339 time such as \"2026-11-25T09:30:00Z\": {e}")
    })?;
    if ts.subsec_nanosecond() != 0 {
        return Err(format!(
            "{text:?} has fractions of a second: calendar times are whole seconds"
        ));
    }
    Ok(ts.as_second())
}

/// Format an instant as RFC 3339 UTC with `Z`.
pub fn format_instant(at: Instant) -> String {
    match Timestamp::from_second(at) {
        Ok(ts) => ts.to_string(),
        Err(_) => format!("{at}s"),
    }
}

/// Parse a local wall-clock time `YYYY-MM-DDTHH:MM:SS`.
pub fn parse_local(text: &str) -> Result<DateTime, Problem> {
    text.parse::<DateTime>().map_err(|e| {
        Problem::new(
            ProblemKind::InvalidTime,
            format!("{text:?} is not a local time such as \"2026-03-29T02:30:00\": {e}"),
        )
    })
}

/// Map `id` to an IANA zone, falling back to `fallback` (which must be known) with a warning.
pub fn resolve_zone(id: &str, fallback: &str) -> Result<ZoneResolution, Problem> {
    if let Some(zone) = Zone::lookup(id) {
        return Ok(ZoneResolution {
            iana: zone.iana,
            warning: None,
        });
    }
    let fallback_zone = Zone::parse(fallback)?;
    Ok(ZoneResolution {
        warning: Some(format!(
            "unknown time zone {id:?}: using {:?} instead; set the user's zone to an IANA name or a Windows zone id",
            fallback_zone.iana
        )),
        iana: fallback_zone.iana,
    })
}

/// The length of a local day in `zone` starting at `date`, for tests and reports.
pub fn day_length(zone: &Zone, date: jiff::civil::Date) -> Result<SignedDuration, Problem> {
    let start = date
        .to_zoned_datetime(zone.tz.clone())
        .map_err(|e| time_problem(0, e))?
        .start_of_day()
        .map_err(|e| time_problem(0, e))?;
    let next = date
        .tomorrow()
        .and_then(|d| d.to_zoned_datetime(zone.tz.clone()))
        .and_then(|z| z.start_of_day())
        .map_err(|e| time_problem(0, e))?;
    Ok(next.timestamp().duration_since(start.timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn at(text: &str) -> Instant {
        parse_instant(text).unwrap()
    }

    #[test]
    fn windows_ids_map_to_iana() {
        assert_eq!(
            Zone::lookup("W. Europe Standard Time").unwrap().iana,
            "Europe/Berlin"
        );
        assert_eq!(
            Zone::lookup("FLE Standard Time").unwrap().iana,
            "Europe/Kiev"
        );
        assert_eq!(
            Zone::lookup("Europe/Stockholm").unwrap().iana,
            "Europe/Stockholm"
        );
        assert!(Zone::lookup("Mars/Olympus_Mons").is_none());
    }

    #[test]
    fn unknown_zone_falls_back_with_a_warning() {
        let r = resolve_zone("Nowhere Standard Time", "Europe/Stockholm").unwrap();
        assert_eq!(r.iana, "Europe/Stockholm");
        assert!(r.warning.unwrap().contains("Nowhere Standard Time"));
        assert!(resolve_zone("Nowhere", "Nowhere either").is_err());
    }

    #[test]
    fn dst_days_are_23_and_25_hours() {
        let z = Zone::parse("Europe/Stockholm").unwrap();
        assert_eq!(
            day_length(&z, date(2026, 3, 29)).unwrap(),
            SignedDuration::from_hours(23)
        );
        assert_eq!(
            day_length(&z, date(2026, 10, 25)).unwrap(),
            SignedDuration::from_hours(25)
        );
        assert_eq!(
            day_length(&z, date(2026, 11, 25)).unwrap(),
            SignedDuration::from_hours(24)
        );
    }

    #[test]
    fn gap_moves_forward_and_fold_takes_the_earlier() {
        let z = Zone::parse("Europe/Stockholm").unwrap();
        let gap = z
            .local_to_instant(parse_local("2026-03-29T02:30:00").unwrap())
            .unwrap();
        assert_eq!(
            gap,
            at("2026-03-29T01:30:00Z"),
            "02:30 does not exist; it is 03:30 CEST"
        );
        let fold = z
            .local_to_instant(parse_local("2026-10-25T02:30:00").unwrap())
            .unwrap();
        assert_eq!(
            fold,
            at("2026-10-25T00:30:00Z"),
            "02:30 exists twice; the earlier is CEST"
        );
    }

    #[test]
    fn local_strings_carry_the_offset() {
        let z = Zone::parse("Europe/Stockholm").unwrap();
        assert_eq!(
            z.local_string(at("2026-11-25T12:00:00Z")).unwrap(),
            "2026-11-25T13:00:00+01:00"
        );
        assert_eq!(
            z.local_string(at("2026-07-01T12:00:00Z")).unwrap(),
            "2026-07-01T14:00:00+02:00"
        );
        assert_eq!(
            Zone::utc().local_string(0).unwrap(),
            "1970-01-01T00:00:00+00:00"
        );
    }

    #[test]
    fn all_day_items_cover_the_users_local_days() {
        let helsinki = Zone::parse("Europe/Helsinki").unwrap();
        let stockholm = Zone::parse("Europe/Stockholm").unwrap();
        // Made in Helsinki for 2026-11-25: 2026-11-24T22:00Z .. 2026-11-25T22:00Z.
        let (s, e) = stockholm
            .all_day_interval(
                &helsinki,
                at("2026-11-24T22:00:00Z"),
                at("2026-11-25T22:00:00Z"),
            )
            .unwrap();
        assert_eq!(
            (s, e),
            (at("2026-11-24T23:00:00Z"), at("2026-11-25T23:00:00Z"))
        );
        // The spring-forward day in Stockholm is 23 hours.
        let (s, e) = stockholm
            .all_day_interval(
                &stockholm,
                at("2026-03-28T23:00:00Z"),
                at("2026-03-29T22:00:00Z"),
            )
            .unwrap();
        assert_eq!(e - s, 23 * 3600);
    }

    #[test]
    fn instants_out_of_range_are_problems_not_panics() {
        assert!(timestamp(i64::MAX).is_err());
        assert!(Zone::utc().local_string(i64::MIN).is_err());
        assert_eq!(format_instant(i64::MAX), format!("{}s", i64::MAX));
        assert!(parse_instant("2026-11-25T09:30:00.5Z").is_err());
        assert!(parse_instant("yesterday").is_err());
    }

    use proptest::prelude::*;

    proptest! {
        /// Every local day is 23, 24 or 25 hours long, whatever the zone.
        #[test]
        fn days_are_23_24_or_25_hours(days in 0i64..3650,
            zone in prop::sample::select(vec!["Europe/Stockholm", "Europe/Helsinki", "America/Santiago", "Australia/Lord_Howe", "UTC"])) {
            let z = Zone::parse(zone).unwrap();
            let d = date(2020, 1, 1).checked_add(jiff::Span::new().days(days)).unwrap();
            let hours = day_length(&z, d).unwrap().as_secs();
            prop_assert!([23 * 3600, 23 * 3600 + 1800, 24 * 3600, 24 * 3600 + 1800, 25 * 3600].contains(&hours), "{d} is {hours}s");
        }

        /// Local time and back: an instant shown in a zone and read back is the same
        /// instant, unless the local time exists twice (then the earlier one is chosen).
        #[test]
        fn local_round_trip(at in 1_577_836_800i64..1_893_456_000,
            zone in prop::sample::select(vec!["Europe/Stockholm", "America/New_York", "Asia/Kolkata"])) {
            let z = Zone::parse(zone).unwrap();
            let shown = z.local_string(at).unwrap();
            let back = z.local_to_instant(parse_local(&shown[..19]).unwrap()).unwrap();
            prop_assert!(back == at || back == at - 3600, "{shown}: {at} -> {back}");
            prop_assert!(back <= at);
        }

        /// Unknown ids never panic and always fall back with a warning.
        #[test]
        fn unknown_ids_fall_back(id in "[A-Za-z ./_+-]{0,30}") {
            let r = resolve_zone(&id, "Europe/Stockholm").unwrap();
            prop_assert_eq!(r.warning.is_some(), Zone::lookup(&id).is_none());
        }
    }
}
