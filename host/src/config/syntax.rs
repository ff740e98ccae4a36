//! A TOML error as Calvert prints it: the line and column, for an unknown key its
//! section and the key probably meant, and the line itself — with the values of
//! secret keys (passwords, client secrets, tokens, API keys, authorization headers,
//! and keys spelt nearly so) redacted, so a typo never puts a secret on a terminal
//! or in a log.
//!
//! The line scanner below is written here rather than taken from `toml_edit`: the
//! text it reads is the one that failed to parse, so no TOML parser gives its spans;
//! it only needs to find `key = value` pairs and string ends on one line.

use std::ops::Range;

/// What a secret's value is printed as.
const REDACTED: &str = "<redacted>";

/// Key names (their last one or two `_`-separated words, `-` read as `_`) whose
/// values are secret.
const SECRET_WORDS: &[&str] = &[
    "password",
    "passwd",
    "secret",
    "token",
    "api_key",
    "apikey",
    "authorization",
];

/// The message for `error`, a failure to read `text`.
pub(super) fn describe(text: &str, error: &toml::de::Error) -> String {
    let file = Redaction::of(text);
    let message = file.scrub(error.message().trim_end()).replace('\n', "; ");
    let Some(span) = error.span() else {
        return message;
    };
    let before = text.get(..span.start).unwrap_or(text);
    let line = before.matches('\n').count();
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    let (what, shown) = match unknown_key(&message) {
        Some((key, expected)) => {
            let section = section_at(text, line);
            let hint = match nearest(key, &expected) {
                Some(meant) => format!("; did you mean `{meant}`?"),
                None => String::new(),
            };
            // The value beside an unknown key may be a secret under a misspelt name.
            let shown = file.line(line, true);
            (format!("{section} has no key `{key}`{hint}"), shown)
        }
        None => (message.clone(), file.line(line, false)),
    };
    let number = line + 1;
    format!("line {number}, column {column}: {what}\n  {number} | {shown}")
}

/// The key and the keys serde expected, from its "unknown field" message.
fn unknown_key(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let expected = rest.split('`').skip(1).step_by(2).collect();
    Some((key, expected))
}

/// The table the key on `line` (counted from 0) is in: `exchange[0]`, `service`.
fn section_at(text: &str, line: usize) -> String {
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    let mut section = "the top level".to_string();
    for header in text.lines().take(line).map(str::trim) {
        if let Some(name) = header.strip_prefix("[[").and_then(|h| h.split("]]").next()) {
            let name = name.trim();
            let count = counts.entry(name).or_default();
            section = format!("{name}[{count}]");
            *count += 1;
        } else if let Some(name) = header.strip_prefix('[').and_then(|h| h.split(']').next()) {
            section = name.trim().to_string();
        }
    }
    section
}

/// The expected key nearest `key`, if it is a likely misspelling.
fn nearest<'a>(key: &str, expected: &[&'a str]) -> Option<&'a str> {
    expected
        .iter()
        .map(|candidate| (distance(key, candidate), *candidate))
        .filter(|(d, _)| *d <= 2 && *d < key.chars().count())
        .min()
        .map(|(_, candidate)| candidate)
}

/// Levenshtein distance between two short strings.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Just past the first secret word in `line` (any case), if there is one. ASCII
/// lower-casing keeps every byte where it was, so the end is a char boundary.
fn secret_word_end(line: &str) -> Option<usize> {
    let lower = line.to_ascii_lowercase();
    SECRET_WORDS
        .iter()
        .filter_map(|word| lower.find(word).map(|at| at + word.len()))
        .min()
}

/// Whether the value of `key` is a secret (or the key is spelt nearly as one).
fn is_secret_key(key: &str) -> bool {
    let key = key.trim().trim_matches(['"', '\'']);
    let key = key.rsplit('.').next().unwrap_or(key);
    let key = key.trim().to_ascii_lowercase().replace('-', "_");
    let words: Vec<&str> = key.split('_').collect();
    let last = words.last().copied().unwrap_or("");
    let last_two = match words.len() {
        0 | 1 => key.clone(),
        n => words[n - 2..].join("_"),
    };
    SECRET_WORDS.iter().any(|word| {
        let near = if word.len() <= 5 { 1 } else { 2 };
        [last, last_two.as_str(), key.as_str()]
            .iter()
            .any(|k| distance(k, word) <= near)
    })
}

/// Where the secret values of a configuration text are.
struct Redaction<'a> {
    lines: Vec<&'a str>,
    /// Per line: the byte ranges of secret values, and of every value.
    secret: Vec<Vec<Range<usize>>>,
    every: Vec<Vec<Range<usize>>>,
    /// The values themselves, to scrub from messages.
    values: Vec<&'a str>,
}

impl<'a> Redaction<'a> {
    fn of(text: &'a str) -> Self {
        let lines: Vec<&str> = text.split('\n').collect();
        let mut redaction = Redaction {
            secret: vec![Vec::new(); lines.len()],
            every: vec![Vec::new(); lines.len()],
            values: Vec::new(),
            lines,
        };
        // The closing delimiter of a multi-line secret still open.
        let mut open: Option<&str> = None;
        for n in 0..redaction.lines.len() {
            let line = redaction.lines[n];
            if let Some(delimiter) = open {
                let end = line.find(delimiter).map_or(line.len(), |at| at + 3);
                redaction.secret[n].push(0..end);
                let value = line.get(..end).unwrap_or(line);
                redaction
                    .values
                    .push(value.trim_end_matches(delimiter).trim());
                if line.contains(delimiter) {
                    open = None;
                }
                continue;
            }
            for (key, value) in assignments(line) {
                redaction.every[n].push(value.clone());
                if !is_secret_key(line.get(key).unwrap_or("")) {
                    continue;
                }
                let raw = line.get(value.clone()).unwrap_or("");
                for delimiter in ["\"\"\"", "'''"] {
                    let rest = raw.strip_prefix(delimiter);
                    if rest.is_some_and(|rest| !rest.contains(delimiter)) {
                        open = Some(delimiter);
                    }
                }
                redaction.values.push(raw.trim().trim_matches(['"', '\'']));
                redaction.secret[n].push(value);
            }
        }
        redaction.values.retain(|v| !v.is_empty());
        redaction.values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        redaction
    }

    /// Line `n` as it may be printed: secret values (or, with `every`, all values)
    /// replaced.
    fn line(&self, n: usize, every: bool) -> String {
        let Some(line) = self.lines.get(n) else {
            return String::new();
        };
        let ranges = if every { &self.every } else { &self.secret };
        let mut shown = line.trim_end_matches('\r').to_string();
        let mut ranges: Vec<&Range<usize>> = ranges.get(n).into_iter().flatten().collect();
        if every {
            ranges.extend(self.secret.get(n).into_iter().flatten());
            ranges.sort_by_key(|r| r.start);
            ranges.dedup();
        }
        for range in ranges.iter().rev() {
            let end = range.end.min(shown.len());
            if range.start <= end && shown.is_char_boundary(range.start) {
                shown.replace_range(range.start..end, REDACTED);
            }
        }
        // A line too broken to find its `key = value` in (a quote before the key, say)
        // may still hold a secret: after a secret word, nothing more is shown.
        if self.secret.get(n).is_none_or(Vec::is_empty)
            && let Some(end) = secret_word_end(&shown)
        {
            shown.truncate(end);
            shown.push(' ');
            shown.push_str(REDACTED);
        }
        shown
    }

    /// `message` without any secret value of the file in it (as a whole word).
    fn scrub(&self, message: &str) -> String {
        let mut message = message.to_string();
        for value in &self.values {
            let mut out = String::with_capacity(message.len());
            let mut rest = message.as_str();
            while let Some(at) = rest.find(value) {
                let before = rest[..at].chars().next_back();
                let after = rest[at + value.len()..].chars().next();
                let word = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
                out.push_str(&rest[..at]);
                out.push_str(if word(before) || word(after) {
                    value
                } else {
                    REDACTED
                });
                rest = &rest[at + value.len()..];
            }
            out.push_str(rest);
            message = out;
        }
        message
    }
}

/// The `key = value` pairs of one line (inline tables included): the byte range of
/// each key and of its value. A value runs to its closing quote, or else to a `,`,
/// `}` or `#` outside quotes, or to the end of the line.
fn assignments(line: &str) -> Vec<(Range<usize>, Range<usize>)> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut key_start = 0;
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            b'#' => break,
            b'"' | b'\'' => {
                i = string_end(bytes, i);
                continue;
            }
            b'{' | b',' | b'[' => key_start = i + 1,
            b'=' => {
                let value = value_at(bytes, i + 1);
                if !value.is_empty() {
                    found.push((key_start..i, value.clone()));
                }
                key_start = value.end;
                i = value.end;
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    found
}

/// The value after the `=` just before `start`, without the blanks around it. An
/// inline table or array is empty here: the pairs inside are scanned on.
fn value_at(bytes: &[u8], start: usize) -> Range<usize> {
    let blank = |b: &u8| *b == b' ' || *b == b'\t' || *b == b'\r';
    let mut i = start;
    while bytes.get(i).is_some_and(blank) {
        i += 1;
    }
    let end = match bytes.get(i) {
        Some(b'{' | b'[') => i,
        Some(b'"' | b'\'') => string_end(bytes, i),
        _ => {
            let rest = bytes.get(i..).unwrap_or_default();
            let mut end = i + rest
                .iter()
                .position(|b| matches!(b, b',' | b'}' | b'#'))
                .unwrap_or(rest.len());
            while end > i && bytes.get(end - 1).is_some_and(blank) {
                end -= 1;
            }
            end
        }
    };
    i..end
}

/// Just past the string opening at `start` (one or three quotes), or the end of
/// the line when it does not close on it.
fn string_end(bytes: &[u8], start: usize) -> usize {
    let Some(&quote) = bytes.get(start) else {
        return bytes.len();
    };
    let triple = bytes.get(start..start + 3) == Some(&[quote; 3][..]);
    let mut i = start + if triple { 3 } else { 1 };
    while let Some(&byte) = bytes.get(i) {
        if byte == b'\\' && quote == b'"' {
            i += 2;
            continue;
        }
        if byte == quote && (!triple || bytes.get(i..i + 3) == Some(&[quote; 3][..])) {
            return i + if triple { 3 } else { 1 };
        }
        i += 1;
    }
    bytes.len()
}

#[cfg(test)]
mod tests {
    use super::super::ConfigError;
    use super::super::fixture::{MINIMAL, load};
    use super::*;

    /// The error text for `text`, which must not load.
    fn error(text: &str) -> String {
        match load(text, &[]) {
            Err(e @ ConfigError::Syntax { .. }) => e.to_string(),
            other => panic!("expected a syntax error, got {other:?}"),
        }
    }

    #[test]
    fn a_syntax_error_on_a_secret_line_names_the_line_and_not_the_secret() {
        let password_line = 7; // MINIMAL's `password = "x"`, counted from 1
        for broken in [
            "password = \"Hemligt123",
            "password = \"Hemligt123\" trailing",
            "password = Hemligt123",
            "password = 'Hemligt123",
            "\"password\" = \"Hemligt123\" x",
            "pasword = \"Hemligt123",
            "client_secret = \"Hemligt123\" x",
            "password = 1234567 x",
            // Found by the fuzzer: a quote before the key hides the assignment.
            "c v\"password = \"Hemligt123\"",
        ] {
            let text = MINIMAL.replace("password = \"x\"", broken);
            let err = error(&text);
            assert!(
                err.contains(&format!("line {password_line}")),
                "{broken}: {err}"
            );
            assert!(err.contains(REDACTED), "{broken}: {err}");
            assert!(!err.contains("Hemligt123"), "{broken}: {err}");
            assert!(!err.contains("1234567"), "{broken}: {err}");
        }
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed_either() {
        let err = error(&MINIMAL.replace("password = \"x\"", "password = 1234567"));
        assert!(err.contains("line 7"), "{err}");
        assert!(!err.contains("1234567"), "{err}");
    }

    #[test]
    fn secret_headers_in_an_inline_table_are_redacted() {
        let text = MINIMAL.replace(
            "kind = \"log\"",
            "kind = \"http\"\nheaders = { X-Site = \"sthlm\", X-Api-Key = \"Hemligt123\", Authorization = \"Bearer Hemligt456\" } x",
        );
        let err = error(&text);
        assert!(err.contains("X-Site = \"sthlm\""), "{err}");
        assert!(!err.contains("Hemligt"), "{err}");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_section_and_the_key_meant() {
        let err = error(&MINIMAL.replace("password = \"x\"", "pasword_env = \"PW\""));
        assert!(
            err.contains("line 7, column 9: exchange[0] has no key `pasword_env`; did you mean `password_env`?"),
            "{err}"
        );
        let err = error(&format!("{MINIMAL}\n[[user]]\nadress = \"eva@flexi.se\""));
        assert!(
            err.contains("user[1] has no key `adress`; did you mean `address`?"),
            "{err}"
        );
        let err = error(&format!("[servce]\nzone = \"UTC\"\n{MINIMAL}"));
        assert!(
            err.contains("the top level has no key `servce`; did you mean `service`?"),
            "{err}"
        );
        let err = error(&MINIMAL.replace("kind = \"log\"", "kind = \"log\"\ncolour = \"blue\""));
        assert!(err.contains("telephony[0] has no key `colour`"), "{err}");
        assert!(!err.contains("did you mean"), "{err}");
    }

    #[test]
    fn a_misspelt_secret_key_does_not_show_its_value() {
        let err = error(&MINIMAL.replace("password = \"x\"", "pasword = \"Hemligt123\""));
        assert!(err.contains("did you mean `password`?"), "{err}");
        assert!(!err.contains("Hemligt123"), "{err}");
    }

    #[test]
    fn secret_keys_are_told_by_their_last_words() {
        for key in [
            "password",
            "client_secret",
            "X-Api-Key",
            "Authorization",
            "pasword",
            "\"token\"",
        ] {
            assert!(is_secret_key(key), "{key}");
        }
        for key in [
            "password_env",
            "client_secret_file",
            "token_url",
            "user",
            "zone",
            "name",
            "X-Site",
        ] {
            assert!(!is_secret_key(key), "{key}");
        }
    }
}
