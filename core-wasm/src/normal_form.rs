//! NFC with the way back: each character of a text's NFC form knows the offset, in
//! code points of the text as sent, where it came from (eval-io.md: `at` counts code
//! points of the subject as sent, before normalization).
//!
//! NFC never composes or reorders across a character whose canonical combining class
//! is 0 and whose NFC quick-check value is Yes (UAX #15, section 9), so the text is
//! cut before every such character and each piece is normalized alone: the pieces'
//! forms, one after the other, are the NFC form of the whole text.

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

/// A text in NFC, each character with the offset of its origin in the text as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Normalized {
    /// The NFC form.
    pub chars: Vec<char>,
    /// `offsets[i]`: the code-point offset in the text as sent of the character
    /// `chars[i]` came from (see [`Normalized::new`]).
    pub offsets: Vec<usize>,
}

fn is_starter(c: char) -> bool {
    canonical_combining_class(c) == 0
}

/// Whether nothing before `c` can compose with it or be reordered past it.
fn starts_piece(c: char) -> bool {
    is_starter(c) && is_nfc_quick(std::iter::once(c)) == IsNormalized::Yes
}

impl Normalized {
    /// The NFC form of `text`. A piece already in NFC maps character to character.
    /// Otherwise, when normalizing keeps the piece's number of starters (class 0), the
    /// k-th starter of the form comes from the k-th starter as sent (starters are
    /// never reordered) and a mark from its starter; when it does not (starters
    /// composed, as Hangul jamo, or decomposed into marks), every character of the
    /// piece gets the piece's offset.
    pub fn new(text: &str) -> Self {
        let raw: Vec<char> = text.chars().collect();
        let mut out = Normalized {
            chars: Vec::with_capacity(raw.len()),
            offsets: Vec::with_capacity(raw.len()),
        };
        let mut start = 0;
        for end in 1..=raw.len() {
            if raw.get(end).is_none_or(|&c| starts_piece(c)) {
                out.push_piece(raw.get(start..end).unwrap_or_default(), start);
                start = end;
            }
        }
        out
    }

    fn push_piece(&mut self, piece: &[char], at: usize) {
        if is_nfc_quick(piece.iter().copied()) == IsNormalized::Yes {
            self.chars.extend_from_slice(piece);
            self.offsets.extend(at..at + piece.len());
            return;
        }
        let first = self.chars.len();
        self.chars.extend(piece.iter().copied().nfc());
        let formed = self.chars.get(first..).unwrap_or_default();
        let mut starters = piece
            .iter()
            .enumerate()
            .filter(|&(_, &c)| is_starter(c))
            .map(|(i, _)| at + i);
        let aligned = starters.clone().count() == formed.iter().filter(|&&c| is_starter(c)).count();
        let mut current = at;
        for &c in formed {
            if aligned && is_starter(c) {
                current = starters.next().unwrap_or(current);
            }
            self.offsets.push(current);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn offsets(text: &str) -> Vec<usize> {
        Normalized::new(text).offsets
    }

    #[test]
    fn decomposed_letters_point_at_their_base_letter() {
        let n = Normalized::new("o\u{308} KOULUTUS");
        assert_eq!(n.chars.iter().collect::<String>(), "ö KOULUTUS");
        assert_eq!(n.offsets, vec![0, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
        assert_eq!(offsets("a\u{308}a\u{308}x"), vec![0, 2, 4]);
        // Marks reordered by NFC stay with their letter.
        assert_eq!(offsets("q\u{301}\u{323}z"), vec![0, 0, 0, 3]);
    }

    #[test]
    fn singletons_and_composed_starters() {
        // U+212B ANGSTROM SIGN becomes Å: the piece " \u{212B}" keeps two starters.
        let n = Normalized::new("x \u{212B}r");
        assert_eq!(n.chars.iter().collect::<String>(), "x \u{c5}r");
        assert_eq!(n.offsets, vec![0, 1, 2, 3]);
        // Hangul jamo compose into one syllable: it points at the first jamo.
        let n = Normalized::new("a\u{1100}\u{1161}b");
        assert_eq!(n.chars, vec!['a', '\u{ac00}', 'b']);
        assert_eq!(n.offsets, vec![0, 1, 3]);
    }

    proptest! {
        /// Piece by piece is the NFC form of the whole; offsets rise and stay in the text.
        #[test]
        fn the_pieces_make_the_nfc_form(parts in prop::collection::vec(prop::sample::select(vec![
            "a", "o", "A", " ", "-", "\u{308}", "\u{301}", "\u{323}", "\u{30a}", "ö", "\u{212b}",
            "\u{1100}", "\u{1161}", "\u{11a8}", "\u{f73}", "\u{344}", "\u{e9}", "K",
        ]), 0..16)) {
            let text: String = parts.concat();
            let n = Normalized::new(&text);
            prop_assert_eq!(&n.chars, &text.nfc().collect::<Vec<char>>());
            prop_assert_eq!(n.offsets.len(), n.chars.len());
            prop_assert!(n.offsets.windows(2).all(|w| w[0] <= w[1]));
            prop_assert!(n.offsets.iter().all(|&o| o < text.chars().count()));
        }
    }
}
