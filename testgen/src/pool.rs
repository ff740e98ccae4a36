//! Strings drawn from an alphabet: a [`Pool`] of accepted and rejected strings, and
//! text made of [`WORDS`](crate::alphabet::WORDS).

use arbitrary::Unstructured;

use crate::alphabet::{SEPARATORS, WORDS};
use crate::draw::{Result, pick, weighted};

/// Which inputs a draw may produce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inputs {
    /// Only input the core accepts: properties that must decide or plan every draw.
    Valid,
    /// Now and then input the core must reject, and rarely any string at all: the
    /// fuzz targets, and the differential tests (which compare rejections too).
    Mixed,
}

/// A small list of strings: ones the core accepts, and ones it must reject.
#[derive(Debug, Clone, Copy)]
pub struct Pool {
    /// Accepted.
    pub good: &'static [&'static str],
    /// Rejected.
    pub bad: &'static [&'static str],
}

impl Pool {
    /// A good string; for [`Inputs::Mixed`] sometimes any of the pool (7.8%) and
    /// rarely any string at all (4.7%), so every string stays reachable.
    pub fn draw(&self, u: &mut Unstructured<'_>, inputs: Inputs) -> Result<String> {
        if inputs == Inputs::Valid {
            return Ok(pick(u, self.good)?.to_string());
        }
        Ok(match weighted(u, &[224, 20, 12])? {
            0 => pick(u, self.good)?.to_string(),
            1 => {
                let i = usize::from(crate::draw::byte(u)?) % (self.good.len() + self.bad.len());
                match self.good.get(i) {
                    Some(good) => good.to_string(),
                    None => self
                        .bad
                        .get(i - self.good.len())
                        .copied()
                        .unwrap_or_default()
                        .to_string(),
                }
            }
            _ => u.arbitrary()?,
        })
    }
}

/// Text: a word of [`WORDS`], two of them joined by a separator, or (for
/// [`Inputs::Mixed`]) rarely any string.
pub fn text(u: &mut Unstructured<'_>, inputs: Inputs) -> Result<String> {
    let weights: &[u16] = match inputs {
        Inputs::Valid => &[192, 64, 0],
        Inputs::Mixed => &[176, 64, 16],
    };
    Ok(match weighted(u, weights)? {
        0 => pick(u, WORDS)?.to_string(),
        1 => format!(
            "{}{}{}",
            pick(u, WORDS)?,
            pick(u, SEPARATORS)?,
            pick(u, WORDS)?
        ),
        _ => u.arbitrary()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alphabet::ZONES;

    #[test]
    fn valid_draws_are_good_and_mixed_ones_reach_the_bad_strings() {
        let all: Vec<[u8; 2]> = (0..=255u8)
            .flat_map(|a| (0..=255u8).map(move |b| [a, b]))
            .collect();
        let draw =
            |bytes: &[u8], inputs| ZONES.draw(&mut Unstructured::new(bytes), inputs).unwrap();
        assert!(
            all.iter()
                .all(|b| ZONES.good.contains(&draw(b, Inputs::Valid).as_str()))
        );
        for bad in ZONES.bad {
            assert!(
                all.iter().any(|b| draw(b, Inputs::Mixed) == *bad),
                "{bad:?} never drawn"
            );
        }
    }
}
