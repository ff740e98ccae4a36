//! Calvert's Graph reading against Microsoft's documented samples
//! (`../shared/graph/samples`): calendarView and delta pages, single events, and
//! error replies. Doc samples are "shortened for readability", so a placeholder
//! event without an id must come out as unreadable with its reason, not as an item.

use std::path::PathBuf;

use calvert::component::wit::{AttendeeRole, FreeBusy, ItemKind, Response};
use calvert::graph::{GraphEvent, PageError, calendar_item, parse_page};

/// A sample from `../shared/graph/samples` (beside the repository, as CI has it).
fn sample(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/graph/samples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{} cannot be read ({e}): the Graph samples come with ../shared beside the repository",
            path.display()
        )
    })
}

#[test]
fn a_calendar_view_page_maps_every_event_and_keeps_the_next_link() {
    let text = sample("calendarview.02.response.json");
    let page = parse_page(&text).unwrap();
    assert!(page.unreadable.is_empty(), "{:?}", page.unreadable);
    assert_eq!(page.items.len(), 2);
    let next = page.next_link.as_deref().unwrap();
    assert!(next.starts_with("https://graph.microsoft.com/v1.0/") && next.ends_with("$skip=10"));
    let item = &page.items[0];
    assert_eq!(item.subject, "New Training Plans");
    assert_eq!((item.start, item.end), (1_502_744_400, 1_502_748_000));
    assert_eq!(item.location, "HR Taskforce / Facilities");
    assert!(item.body.starts_with("Meeting to plan new trainings."));
    assert_eq!(item.zone.as_deref(), Some("Eastern Standard Time"));
    assert_eq!(
        (item.free_busy, item.response),
        (FreeBusy::Busy, Response::Organizer)
    );
    assert_eq!(item.kind, ItemKind::Single);
    assert_eq!(item.reminder_minutes, Some(15));
    assert!(item.created.is_some() && item.modified > item.created);
    assert!(item.is_meeting, "an event with attendees is a meeting");
    assert_eq!(item.attendees.len(), 2);
}

#[test]
fn placeholder_events_are_unreadable_with_the_reason() {
    for name in [
        "calendarview.01.response.json",
        "event-delta.01.response.json",
    ] {
        let text = sample(name);
        let page = parse_page(&text).unwrap();
        assert!(page.items.is_empty(), "{name}");
        assert_eq!(page.unreadable.len(), 1, "{name}");
        assert!(page.unreadable[0].problem.contains("no id"), "{name}");
    }
}

#[test]
fn a_delta_round_follows_next_links_to_a_delta_link_and_reports_removals() {
    let mut seen = Vec::new();
    for name in [
        "event-delta.02.response.json",
        "event-delta.03.response.json",
        "event-delta.04.response.json",
    ] {
        let text = sample(name);
        let page = parse_page(&text).unwrap();
        assert!(page.unreadable.is_empty(), "{name}: {:?}", page.unreadable);
        seen.extend(page.items.iter().map(|i| i.subject.clone()));
        let last = name.contains(".04.");
        assert_eq!(page.delta_link.is_some(), last, "{name}");
        assert_eq!(page.next_link.is_some(), !last, "{name}");
    }
    assert_eq!(
        seen,
        [
            "Plan shopping list",
            "Pick up car",
            "Get food",
            "Prepare food",
            "Rest!"
        ]
    );
    let text = sample("event-delta.05.response.json");
    let page = parse_page(&text).unwrap();
    assert_eq!(page.removed.len(), 1);
    assert!(page.removed[0].starts_with("AAMkADk0MGFk"));
    assert_eq!(page.items.len(), 1);
    assert_eq!(page.items[0].location, "Chapel of Saint Ignatius");
    // This page's body came as HTML (an empty one): kept as Graph sent it.
    assert_eq!(page.items[0].body, "");
    assert!(page.delta_link.unwrap().contains("$deltatoken="));
}

#[test]
fn a_single_event_maps_its_attendees_and_zone() {
    let text = sample("event-get.01.response.json");
    let event: GraphEvent = serde_json::from_str(&text).unwrap();
    let item = calendar_item(&event).unwrap();
    assert_eq!(item.subject, "Christmas dinner");
    assert_eq!(item.location, "Alex' home");
    assert_eq!((item.start, item.end), (1_577_325_600, 1_577_340_000));
    assert_eq!(item.zone.as_deref(), Some("Pacific Standard Time"));
    let people: Vec<_> = item
        .attendees
        .iter()
        .map(|a| (a.address.as_str(), a.role))
        .collect();
    assert_eq!(
        people,
        [
            ("MeganB@contoso.OnMicrosoft.com", AttendeeRole::Required),
            ("ChristieC@contoso.OnMicrosoft.com", AttendeeRole::Required)
        ]
    );
}

#[test]
fn an_event_in_another_zone_than_utc_is_refused_not_guessed() {
    for name in [
        "event-create.02.response.json",
        "event-create.03.response.json",
    ] {
        let text = sample(name);
        let event: GraphEvent = serde_json::from_str(&text).unwrap();
        let error = calendar_item(&event).unwrap_err();
        assert!(
            error.problem.contains("Pacific Standard Time") && error.problem.contains("UTC"),
            "{name}: {error}"
        );
    }
}

#[test]
fn error_replies_name_graphs_code() {
    for (name, code) in [
        ("error.429.json", "TooManyRequests"),
        ("error.501.json", "NotImplemented"),
        ("error.shape.json", "invalidRange"),
    ] {
        let text = sample(name);
        match parse_page(&text) {
            Err(PageError::Service { code: got, .. }) => assert_eq!(got, code, "{name}"),
            other => panic!("{name}: {other:?}"),
        }
    }
}
