//! Drawing values from bytes: the few primitives every generator here is made of.
//!
//! Each takes what it needs from an [`Unstructured`] and never fails for lack of
//! data: an exhausted input reads as zero bytes, and a zero byte picks the first,
//! most ordinary choice of every table. So an input that shrinks (proptest) or is
//! short (libFuzzer) moves towards plain values, and a list ends when the input does.

pub use arbitrary::{Result, Unstructured};

/// One byte (0 once the input is used up).
pub fn byte(u: &mut Unstructured<'_>) -> Result<u8> {
    u.arbitrary()
}

/// The index of the bucket one drawn byte falls into; `weights` add up to 256.
pub fn weighted(u: &mut Unstructured<'_>, weights: &[u16]) -> Result<usize> {
    debug_assert_eq!(weights.iter().sum::<u16>(), 256, "weights {weights:?}");
    let mut b = u16::from(byte(u)?);
    for (i, &w) in weights.iter().enumerate() {
        if b < w {
            return Ok(i);
        }
        b -= w;
    }
    Ok(weights.len().saturating_sub(1))
}

/// True for `n` of 256 byte values (false for an exhausted input).
pub fn chance(u: &mut Unstructured<'_>, n: u16) -> Result<bool> {
    Ok(u16::from(byte(u)?) >= 256u16.saturating_sub(n))
}

/// `list[b % len]` for one drawn byte `b`.
///
/// # Panics
/// On an empty `list` (every list given here is a non-empty constant).
pub fn pick<T: Copy>(u: &mut Unstructured<'_>, list: &[T]) -> Result<T> {
    Ok(list[usize::from(byte(u)?) % list.len()])
}

/// A value of a weighted table (weights add up to 256).
///
/// # Panics
/// On an empty `table` (every table given here is a non-empty constant).
pub fn table<T: Copy>(u: &mut Unstructured<'_>, table: &[(T, u16)]) -> Result<T> {
    debug_assert_eq!(table.iter().map(|(_, w)| w).sum::<u16>(), 256);
    let mut b = u16::from(byte(u)?);
    for &(value, w) in table {
        if b < w {
            return Ok(value);
        }
        b -= w;
    }
    Ok(table[table.len() - 1].0)
}

/// An integer in `lo..=hi` (`lo` for an exhausted input).
pub fn int(u: &mut Unstructured<'_>, lo: i64, hi: i64) -> Result<i64> {
    u.int_in_range(lo..=hi)
}

/// `Some` of `f` for `n` of 256 byte values.
pub fn maybe<T>(
    u: &mut Unstructured<'_>,
    n: u16,
    f: impl FnOnce(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Option<T>> {
    if chance(u, n)? {
        f(u).map(Some)
    } else {
        Ok(None)
    }
}

/// A list of at most `max` entries; it ends early when the input runs out, so a
/// short input never turns into a long list of all-default entries.
pub fn list<T>(
    u: &mut Unstructured<'_>,
    max: usize,
    mut f: impl FnMut(&mut Unstructured<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let len = u.int_in_range(0..=max)?;
    let mut list = Vec::with_capacity(len);
    while list.len() < len && !u.is_empty() {
        list.push(f(u)?);
    }
    Ok(list)
}

/// Some entries of `all`, in their order, each kept for `n` of 256 byte values.
pub fn subsequence<T: Clone>(u: &mut Unstructured<'_>, all: &[T], n: u16) -> Result<Vec<T>> {
    let mut kept = Vec::new();
    for entry in all {
        if chance(u, n)? {
            kept.push(entry.clone());
        }
    }
    Ok(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exhausted_input_gives_the_first_choice_and_ends_lists() {
        let mut u = Unstructured::new(&[]);
        assert_eq!(weighted(&mut u, &[200, 56]).unwrap(), 0);
        assert!(!chance(&mut u, 255).unwrap());
        assert_eq!(pick(&mut u, &["a", "b"]).unwrap(), "a");
        assert_eq!(int(&mut u, -3, 9).unwrap(), -3);
        assert!(list(&mut u, 5, byte).unwrap().is_empty());
    }

    #[test]
    fn weights_split_the_byte_values() {
        let counts = (0..=255u8).fold([0usize; 3], |mut counts, b| {
            counts[weighted(&mut Unstructured::new(&[b]), &[128, 96, 32]).unwrap()] += 1;
            counts
        });
        assert_eq!(counts, [128, 96, 32]);
        let hits = (0..=255u8)
            .filter(|b| chance(&mut Unstructured::new(&[*b]), 64).unwrap())
            .count();
        assert_eq!(hits, 64);
    }
}
