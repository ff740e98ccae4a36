//! Trigger resolution (semantics.md §2.3): which reason code a subject selects.
//!
//! Text is NFC-normalized and compared by Unicode full case folding, so `MÖTE`
//! matches `möte` and `STRASSE` matches `straße`. A match is whole-word: the
//! character before it and the one after it must not be a letter, a digit or (after
//! it) a combining mark. In a phrase, a run of white space matches any run of white
//! space. The leftmost match wins; at the same position the longer one wins. The
//! match's `at` counts code points of the subject as sent, before normalization.

use std::collections::BTreeMap;

use caseless::Caseless;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::normal_form::Normalized;

use crate::model::{Problem, ProblemKind, Problems, Trigger, TriggerMatch};

/// A validated list of triggers. Only [`TriggerSet::new`] makes one, so holding a
/// `TriggerSet` proves that no two triggers are equal after folding and none is empty.
#[derive(Debug, Clone)]
pub struct TriggerSet {
    entries: Vec<CompiledTrigger>,
}

#[derive(Debug, Clone)]
struct CompiledTrigger {
    word: String,
    reason: String,
    /// The folded words of the trigger; white space between them matches any run.
    words: Vec<Vec<char>>,
}

/// Case-fold one character (full folding: one character may become several).
fn fold_char(c: char, out: &mut Vec<char>) {
    out.extend(std::iter::once(c).default_case_fold());
}

/// The folded words of a trigger, the key that makes two triggers "equal after folding".
fn folded_words(word: &str) -> Vec<Vec<char>> {
    let mut folded = Vec::new();
    for c in word.nfc() {
        fold_char(c, &mut folded);
    }
    folded
        .split(|c| c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(<[char]>::to_vec)
        .collect()
}

impl TriggerSet {
    /// Validate and compile `triggers`. Every problem is reported, each naming the
    /// trigger(s) at fault by position and text.
    pub fn new(triggers: &[Trigger]) -> Result<TriggerSet, Problems> {
        let mut problems = Vec::new();
        let mut seen: BTreeMap<Vec<Vec<char>>, usize> = BTreeMap::new();
        let mut entries = Vec::with_capacity(triggers.len());
        for (index, trigger) in triggers.iter().enumerate() {
            let words = folded_words(&trigger.word);
            if words.is_empty() {
                problems.push(Problem::new(
                    ProblemKind::EmptyTrigger,
                    format!(
                        "trigger {} ({:?} -> {:?}) has no word: give it a word or remove it",
                        index + 1,
                        trigger.word,
                        trigger.reason
                    ),
                ));
                continue;
            }
            if trigger.reason.trim().is_empty() {
                problems.push(Problem::new(
                    ProblemKind::EmptyTrigger,
                    format!(
                        "trigger {} ({:?}) has no reason code: give it the code the telephony system expects",
                        index + 1,
                        trigger.word
                    ),
                ));
                continue;
            }
            if let Some(&first) = seen.get(&words) {
                problems.push(Problem::new(
                    ProblemKind::DuplicateTrigger,
                    format!(
                        "triggers {} ({:?} -> {:?}) and {} ({:?} -> {:?}) are the same word after case folding: remove one of them",
                        first + 1,
                        triggers[first].word,
                        triggers[first].reason,
                        index + 1,
                        trigger.word,
                        trigger.reason
                    ),
                ));
                continue;
            }
            seen.insert(words.clone(), index);
            entries.push(CompiledTrigger {
                word: trigger.word.clone(),
                reason: trigger.reason.clone(),
                words,
            });
        }
        if problems.is_empty() {
            Ok(TriggerSet { entries })
        } else {
            Err(problems)
        }
    }

    /// The trigger that selects the reason for `subject`, if any.
    pub fn resolve(&self, subject: &str) -> Option<TriggerMatch> {
        if self.entries.is_empty() || subject.is_empty() {
            return None;
        }
        let text = FoldedText::new(subject);
        for start in 0..text.folded.len() {
            if !text.starts_char(start) {
                continue;
            }
            let at = text.origin[start];
            if at > 0 && is_word_char(text.original[at - 1]) {
                continue;
            }
            // Longest match at this position; entries are unique after folding.
            let mut best: Option<(usize, &CompiledTrigger)> = None;
            for entry in &self.entries {
                if let Some(end) = text.match_at(start, &entry.words) {
                    let longer = best.is_none_or(|(best_end, _)| end > best_end);
                    if longer {
                        best = Some((end, entry));
                    }
                }
            }
            if let Some((_, entry)) = best {
                return Some(TriggerMatch {
                    reason: entry.reason.clone(),
                    word: entry.word.clone(),
                    at: u32::try_from(text.sent.get(at).copied().unwrap_or(at)).unwrap_or(u32::MAX),
                });
            }
        }
        None
    }
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// A subject, NFC-normalized and case-folded, with the way back from each folded
/// character to the original character it came from.
struct FoldedText {
    /// The subject in NFC.
    original: Vec<char>,
    /// `sent[i]`: the code-point offset in the subject as sent of `original[i]`.
    sent: Vec<usize>,
    folded: Vec<char>,
    /// `origin[i]`: index in `original` of the character `folded[i]` came from.
    origin: Vec<usize>,
}

impl FoldedText {
    fn new(subject: &str) -> Self {
        let Normalized {
            chars: original,
            offsets: sent,
        } = Normalized::new(subject);
        let mut folded = Vec::with_capacity(original.len());
        let mut origin = Vec::with_capacity(original.len());
        for (index, &c) in original.iter().enumerate() {
            let before = folded.len();
            fold_char(c, &mut folded);
            origin.resize(origin.len() + folded.len() - before, index);
        }
        FoldedText {
            original,
            sent,
            folded,
            origin,
        }
    }

    /// Whether folded position `i` is the first folded character of an original one.
    fn starts_char(&self, i: usize) -> bool {
        i == 0 || self.origin[i] != self.origin[i - 1]
    }

    /// Whether folded position `end` (exclusive) ends on an original character.
    fn ends_char(&self, end: usize) -> bool {
        end == self.folded.len() || self.starts_char(end)
    }

    /// The folded end (exclusive) of a whole-word match of `words` at `start`.
    fn match_at(&self, start: usize, words: &[Vec<char>]) -> Option<usize> {
        let mut pos = start;
        for (n, word) in words.iter().enumerate() {
            if n > 0 {
                let gap_start = pos;
                while pos < self.folded.len() && self.folded[pos].is_whitespace() {
                    pos += 1;
                }
                if pos == gap_start {
                    return None;
                }
            }
            let end = pos + word.len();
            if end > self.folded.len() || self.folded[pos..end] != word[..] {
                return None;
            }
            pos = end;
        }
        if !self.ends_char(pos) {
            return None;
        }
        let after = self.origin[pos - 1] + 1;
        if let Some(&next) = self.original.get(after)
            && (is_word_char(next) || is_combining_mark(next))
        {
            return None;
        }
        Some(pos)
    }
}

/// Validate `triggers` and resolve `subject` in one call.
pub fn resolve_trigger(
    subject: &str,
    triggers: &[Trigger],
) -> Result<Option<TriggerMatch>, Problems> {
    Ok(TriggerSet::new(triggers)?.resolve(subject))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t(word: &str, reason: &str) -> Trigger {
        Trigger {
            word: word.into(),
            reason: reason.into(),
        }
    }

    fn set() -> TriggerSet {
        TriggerSet::new(&[
            t("lunch", "LUNCH"),
            t("möte", "MEETING"),
            t("kund möte", "CUSTOMER"),
        ])
        .unwrap()
    }

    fn reason(subject: &str) -> Option<String> {
        set().resolve(subject).map(|m| m.reason)
    }

    #[test]
    fn first_trigger_from_the_left_wins() {
        let m = set().resolve("Möte sedan lunch").unwrap();
        assert_eq!(
            (m.reason.as_str(), m.word.as_str(), m.at),
            ("MEETING", "möte", 0)
        );
        let m = set().resolve("Lunch, sedan möte").unwrap();
        assert_eq!((m.reason.as_str(), m.at), ("LUNCH", 0));
    }

    #[test]
    fn case_folding_and_nfc() {
        assert_eq!(reason("MÖTE"), Some("MEETING".into()));
        // "möte" written with a combining diaeresis is the same word after NFC.
        assert_eq!(reason("mo\u{308}te i rum 4"), Some("MEETING".into()));
        let s = TriggerSet::new(&[t("straße", "STREET")]).unwrap();
        assert_eq!(
            s.resolve("STRASSE 5").map(|m| m.reason),
            Some("STREET".into())
        );
    }

    #[test]
    fn whole_words_only() {
        assert_eq!(reason("Lunchmöte"), None);
        assert_eq!(reason("Lunch-möte").as_deref(), Some("LUNCH"));
        assert_eq!(reason("lunch2"), None);
        assert_eq!(reason("2lunch"), None);
        assert_eq!(reason("(lunch)").as_deref(), Some("LUNCH"));
    }

    #[test]
    fn phrases_match_any_white_space_and_longer_wins_at_same_position() {
        assert_eq!(reason("Kund   möte").as_deref(), Some("CUSTOMER"));
        assert_eq!(reason("kund\tmöte").as_deref(), Some("CUSTOMER"));
        assert_eq!(reason("kundmöte"), None);
        let s = TriggerSet::new(&[t("kund", "K"), t("kund möte", "KM")]).unwrap();
        assert_eq!(s.resolve("Kund möte").unwrap().reason, "KM");
        assert_eq!(s.resolve("Kund mötet").unwrap().reason, "K");
    }

    #[test]
    fn at_counts_characters_not_bytes() {
        let m = set().resolve("Åäö lunch").unwrap();
        assert_eq!(m.at, 4);
    }

    #[test]
    fn at_counts_code_points_of_the_subject_as_sent() {
        let s = TriggerSet::new(&[
            t("koulutus", "COURSE"),
            t("möte", "MEETING"),
            t("år", "YEAR"),
        ])
        .unwrap();
        let at = |subject: &str| s.resolve(subject).map(|m| m.at);
        // Decomposed text before the match: the NFC form would say 2.
        assert_eq!(at("o\u{308} KOULUTUS"), Some(3));
        assert_eq!(at("a\u{308}a\u{308} mo\u{308}te"), Some(5));
        // The offset can lie past the end of the NFC form, which is shorter (the fuzz
        // target once wrongly bounded it by the NFC length).
        let subject = "o\u{308}o\u{308}o\u{308} år";
        assert_eq!(at(subject), Some(7));
        assert_eq!(subject.nfc().count(), 6);
        // Inside the match: its first character as sent.
        assert_eq!(at("Nytt: mo\u{308}te"), Some(6));
        assert_eq!(at("Nytt \u{212b}r"), Some(5));
        // After the match: nothing moves.
        assert_eq!(at("koulutus a\u{308}r"), Some(0));
        assert_eq!(at("Ett möte i ro\u{308}d"), Some(4));
    }

    #[test]
    fn no_trigger_is_none() {
        assert_eq!(reason("Tandläkare"), None);
        assert_eq!(reason(""), None);
    }

    #[test]
    fn equal_after_folding_is_a_configuration_error_naming_both() {
        let err = TriggerSet::new(&[t("Lunch", "A"), t("x", "B"), t("LUNCH", "C")]).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].kind, ProblemKind::DuplicateTrigger);
        assert!(
            err[0].message.contains("\"Lunch\"") && err[0].message.contains("\"LUNCH\""),
            "{}",
            err[0].message
        );
        let err = TriggerSet::new(&[t("kund möte", "A"), t("KUND   MÖTE", "B")]).unwrap_err();
        assert_eq!(err[0].kind, ProblemKind::DuplicateTrigger);
        let err = TriggerSet::new(&[t("  ", "A"), t("x", "")]).unwrap_err();
        assert_eq!(err.len(), 2);
    }

    proptest! {
        /// A trigger found in a subject really is there: folding the subject around the
        /// reported offset gives the trigger's folded text, on word boundaries.
        #[test]
        fn a_reported_match_is_a_whole_word_occurrence(prefix in "[a-zA-ZåäöÅÄÖ ,.-]{0,12}",
                                                       suffix in "[a-zA-ZåäöÅÄÖ ,.-]{0,12}",
                                                       upper in any::<bool>()) {
            let word = if upper { "MÖTE" } else { "möte" };
            let subject = format!("{prefix}{word}{suffix}");
            let found = set().resolve(&subject);
            let chars: Vec<char> = subject.chars().collect();
            let boundary_before = prefix.chars().last().is_none_or(|c| !c.is_alphanumeric());
            let boundary_after = suffix.chars().next().is_none_or(|c| !c.is_alphanumeric());
            if boundary_before && boundary_after {
                // The word is there as a whole word, so something at or before it matches.
                let m = found.as_ref().expect("a whole-word trigger must be found");
                prop_assert!(m.at as usize <= prefix.chars().count());
            }
            if let Some(m) = found {
                let at = m.at as usize;
                prop_assert!(at == 0 || !chars[at - 1].is_alphanumeric());
            }
        }

        /// `at` indexes the subject as sent where the matched word begins: the NFC form
        /// of the subject from there on, folded, starts with the trigger's folded word,
        /// and the character before it as sent is not a letter or digit.
        #[test]
        fn at_indexes_the_subject_as_sent(parts in prop::collection::vec(prop::sample::select(vec![
            "lunch", "LUNCH", "möte", "mo\u{308}te", "MO\u{308}TE", " ", ", ", "-", "a", "a\u{308}",
            "o\u{308}", "\u{308}", "\u{301}", "\u{212b}", "e\u{301}", "Å",
        ]), 0..12)) {
            let subject: String = parts.concat();
            let raw: Vec<char> = subject.chars().collect();
            if let Some(m) = set().resolve(&subject) {
                let at = m.at as usize;
                prop_assert!(at < raw.len());
                let tail: String = raw.iter().skip(at).collect();
                let mut folded = Vec::new();
                for c in tail.nfc() {
                    fold_char(c, &mut folded);
                }
                let word: Vec<char> = folded_words(&m.word).concat();
                prop_assert!(folded.starts_with(&word), "{:?} at {} is not {:?}", subject, at, m.word);
                prop_assert!(at == 0 || !raw[at - 1].is_alphanumeric());
            }
        }

        /// Matching ignores case: any casing of a subject gives the same answer.
        #[test]
        fn case_does_not_matter(subject in "[a-zåäö ]{0,24}") {
            let s = set();
            prop_assert_eq!(s.resolve(&subject), s.resolve(&subject.to_uppercase()));
        }
    }
}
