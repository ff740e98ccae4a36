//! The alphabets every generated value is drawn from, each defined once.
//!
//! Small on purpose, so that the interesting cases happen often: ids that repeat,
//! words that fold or normalize alike, zones with odd offsets or DST rules, patterns
//! that almost match. A [`Pool`] also lists strings the core must reject; they are
//! drawn only for [`Inputs::Mixed`](crate::pool::Inputs::Mixed). A zero byte picks
//! the first entry, so the first entry of each is the plainest.

use calvert_core::{AttendeeRole, FreeBusy, ItemKind, Response, Sensitivity};

use crate::pool::Pool;

/// Item ids of one calendar (decide, and the Exchange side of a sync).
pub const ITEM_IDS: &[&str] = &["a", "b", "c", "d", "e", "f", "g", "h", "AAMk1", "", "ä"];

/// Item ids of the business calendar (the other side of a sync).
pub const BUSINESS_IDS: &[&str] = &["B1", "B2", "B3", "B4", "B5", "x"];

/// Subjects and trigger words that exercise folding, NFC, phrases and word boundaries,
/// and everyday subjects with and without a trigger in them.
pub const WORDS: &[&str] = &[
    "Lunch",
    "lunch",
    "LUNCH",
    "Möte",
    "möte",
    "MÖTE",
    "mo\u{308}te",
    "kund möte",
    "Kund  möte",
    "KUND   MÖTE",
    "kund\tmöte",
    "straße",
    "STRASSE",
    "ß STRASSE",
    "ﬁka",
    "İstanbul",
    "ǅ",
    "\u{308}",
    "ΣΊΣΥΦΟΣ",
    "Lunch med Eva",
    "Möte sedan lunch",
    "Möte med kund",
    "lunch, sedan möte",
    "Lunchmöte",
    "Lunch-möte",
    "lunch2",
    "(lunch)",
    "Åäö lunch",
    "Semester",
    "semester",
    "Tandläkare",
    "Kurs",
    "Kurs: säker telefoni",
    "",
];

/// Separators between two words of [`WORDS`].
pub const SEPARATORS: &[&str] = &[
    " ", "", "\u{308}", ", ", "\u{3000}", "-", "\n", "  ", "\u{301}x",
];

/// Triggers whose words stay distinct after folding: any subsequence is a valid set.
pub const TRIGGERS: &[(&str, &str)] = &[
    ("lunch", "LUNCH"),
    ("möte", "MEETING"),
    ("kund möte", "CUSTOMER"),
    ("semester", "VACATION"),
    ("strasse", "STREET"),
    ("kurs", "COURSE"),
    ("tandläkare", "DOCTOR"),
];

/// Reason codes (of triggers and policies).
pub const REASONS: Pool = Pool {
    good: &["LUNCH", "MEETING", "CUSTOMER", "back", "AWAY", "VACATION"],
    bad: &["", " ", "\t"],
};

/// The user's zone and items' zones: IANA names, Windows ids (exact and in another
/// case), zones with odd offsets or DST rules; bogus ones.
pub const ZONES: Pool = Pool {
    good: &[
        "Europe/Stockholm",
        "UTC",
        "W. Europe Standard Time",
        "w. europe standard time",
        "FLE Standard Time",
        "Europe/Helsinki",
        "America/New_York",
        "America/Santiago",
        "Australia/Lord_Howe",
        "Pacific/Kiritimati",
        "Pacific/Apia",
        "Asia/Kathmandu",
        " Europe/Stockholm ",
    ],
    bad: &[
        "Atlantis",
        "Nowhere Standard Time",
        "",
        " ",
        "../etc/passwd",
        "europe/stockholm",
    ],
};

/// People: attendees, and a sync's integrated users.
pub const PEOPLE: Pool = Pool {
    good: &[
        "kim@flexi.se",
        "KIM@FLEXI.SE",
        " kim@flexi.se ",
        "eva@support.flexi.se",
        "anna@flexi.se",
        "ANNA@FLEXI.SE",
        "Bo@Flexi.se",
        "carl@elsewhere.se",
        "rum4@flexi.se",
        "room-4@flexi.se",
        "kund@example.com",
        "kund@customer.se",
    ],
    bad: &["", "kim", "@"],
};

/// Addresses to route.
pub const ROUTE_ADDRESSES: Pool = Pool {
    good: &[
        "kim@support.flexi.se",
        "Kim@Support.Flexi.se",
        "eva@kundtjanst.flexi.se",
        "eva@flexi.se",
        "a@notsupport.flexi.se",
        "a@x.support.flexi.se",
        "x@example.com",
        " kim@flexi.se ",
        "a@bücher.de",
        "A@İ.SE",
        "a@K.se",
        "a@k.se",
        "y@other.org",
    ],
    bad: &[
        "not-an-address",
        "a@b@c.se",
        "@flexi.se",
        "a@",
        "a@x..se",
        "",
        "a b@flexi.se x",
    ],
};

/// Routing rule patterns.
pub const PATTERNS: Pool = Pool {
    good: &[
        "*",
        "se",
        "flexi.se",
        "FLEXI.SE",
        "support.flexi.se",
        "@flexi.se",
        "@support.flexi.se",
        "kim@support.flexi.se",
        "Kim@Support.Flexi.se",
        "example.com",
        " flexi.se ",
        "bücher.de",
        "İ.se",
        "K.se",
        "x_y.se",
    ],
    bad: &[
        "*.flexi.se",
        ".flexi.se",
        "a@",
        "@",
        "",
        "flexi..se",
        "a b.se",
        "a@b@c.se",
        "flexi.se.",
        "**",
        "*.bad",
    ],
};

/// Routing rule servers.
pub const SERVERS: Pool = Pool {
    good: &["mail1.flexi.se", "mail2.flexi.se", "mail3"],
    bad: &["", " "],
};

/// Recorded fingerprints that belong to no item.
pub const FINGERPRINTS: Pool = Pool {
    good: &["00000000000000000000000000000000", "stale"],
    bad: &[""],
};

/// An item's location.
pub const LOCATIONS: &[&str] = &["", "Rum 4", "Styrelserummet"];

/// An item's body.
pub const BODIES: &[&str] = &["", "Agenda", "Agenda\r\n"];

/// Free/busy states, weighted out of 256 (busy most often, so that items divert).
pub const FREE_BUSY: &[(FreeBusy, u16)] = &[
    (FreeBusy::Busy, 96),
    (FreeBusy::Oof, 48),
    (FreeBusy::Free, 40),
    (FreeBusy::Tentative, 24),
    (FreeBusy::WorkingElsewhere, 24),
    (FreeBusy::NoData, 24),
];

/// The user's responses, weighted out of 256.
pub const RESPONSES: &[(Response, u16)] = &[
    (Response::Organizer, 64),
    (Response::Accept, 56),
    (Response::Unknown, 48),
    (Response::Tentative, 32),
    (Response::Decline, 28),
    (Response::NoResponse, 28),
];

/// Item kinds, weighted out of 256: mostly single, so that most items take part.
pub const KINDS: &[(ItemKind, u16)] = &[
    (ItemKind::Single, 192),
    (ItemKind::Occurrence, 24),
    (ItemKind::Exception, 20),
    (ItemKind::RecurringMaster, 20),
];

/// Sensitivities, weighted out of 256.
pub const SENSITIVITIES: &[(Sensitivity, u16)] = &[
    (Sensitivity::Normal, 160),
    (Sensitivity::Personal, 32),
    (Sensitivity::Private, 32),
    (Sensitivity::Confidential, 32),
];

/// Attendee roles, weighted out of 256.
pub const ROLES: &[(AttendeeRole, u16)] = &[
    (AttendeeRole::Required, 96),
    (AttendeeRole::Optional, 64),
    (AttendeeRole::Resource, 48),
    (AttendeeRole::Contact, 48),
];
