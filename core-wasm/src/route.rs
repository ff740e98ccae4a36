//! Routing (semantics.md §4): which server serves a mailbox address.
//!
//! Rule forms: `domain` (that domain or any subdomain, on a label boundary),
//! `@domain` (exactly that domain), `local@domain` (exactly that address) and `*`
//! (everything). The higher priority wins; at equal priority the more specific rule
//! wins (address, exact domain, the suffix with more labels, `*`). Two rules that are
//! still tied (same priority, same pattern, different servers) are a configuration
//! error, found when the rules are loaded. Addresses and patterns compare
//! case-insensitively (Unicode lowercase).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use crate::model::{Problem, ProblemKind, Problems, Rule};

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Form {
    Everything,
    /// The domain and its subdomains.
    Suffix(String),
    /// Exactly this domain.
    Domain(String),
    /// Exactly this address.
    Address(String),
}

impl Form {
    /// Specificity: higher is more specific.
    fn rank(&self) -> (u8, usize) {
        match self {
            Form::Address(_) => (3, 0),
            Form::Domain(_) => (2, 0),
            Form::Suffix(d) => (1, d.split('.').count()),
            Form::Everything => (0, 0),
        }
    }

    fn matches(&self, address: &str, domain: &str) -> bool {
        match self {
            Form::Everything => true,
            Form::Address(a) => a == address,
            Form::Domain(d) => d == domain,
            Form::Suffix(d) => {
                domain == d
                    || (domain.len() > d.len()
                        && domain.ends_with(d.as_str())
                        && domain.as_bytes()[domain.len() - d.len() - 1] == b'.')
            }
        }
    }
}

#[derive(Debug, Clone)]
struct CompiledRule {
    server: String,
    priority: i32,
    form: Form,
}

/// Validated rules in the order they are tried. Only [`RuleSet::new`] makes one, so
/// holding a `RuleSet` proves every pattern is well-formed and no tie is left.
#[derive(Debug, Clone)]
pub struct RuleSet {
    rules: Vec<CompiledRule>,
}

fn valid_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '_')
        })
}

fn parse_pattern(pattern: &str) -> Result<Form, String> {
    let p = pattern.trim().to_lowercase();
    if p == "*" {
        return Ok(Form::Everything);
    }
    if p.starts_with("*.") || p.starts_with('.') {
        return Err("write the domain itself (\"flexi.se\" covers its subdomains too)".into());
    }
    match p.split_once('@') {
        None if valid_domain(&p) => Ok(Form::Suffix(p)),
        Some(("", domain)) if valid_domain(domain) => Ok(Form::Domain(domain.to_string())),
        Some((local, domain))
            if !local.is_empty()
                && !local.contains(char::is_whitespace)
                && valid_domain(domain) =>
        {
            Ok(Form::Address(p.clone()))
        }
        _ => Err("use \"domain\", \"@domain\", \"name@domain\" or \"*\"".into()),
    }
}

fn describe(index: usize, rule: &Rule) -> String {
    format!(
        "rule {} ({:?} -> {:?}, priority {})",
        index + 1,
        rule.pattern,
        rule.server,
        rule.priority
    )
}

impl RuleSet {
    /// Validate `rules`; every problem names the rule(s) at fault.
    pub fn new(rules: &[Rule]) -> Result<RuleSet, Problems> {
        let mut problems = Vec::new();
        let mut compiled = Vec::with_capacity(rules.len());
        let mut seen: BTreeMap<(i32, Form), usize> = BTreeMap::new();
        for (index, rule) in rules.iter().enumerate() {
            if rule.server.trim().is_empty() {
                problems.push(Problem::new(
                    ProblemKind::InvalidPattern,
                    format!(
                        "{} names no server: choose the server it routes to",
                        describe(index, rule)
                    ),
                ));
                continue;
            }
            let form = match parse_pattern(&rule.pattern) {
                Ok(form) => form,
                Err(hint) => {
                    problems.push(Problem::new(
                        ProblemKind::InvalidPattern,
                        format!("{} has an invalid pattern: {hint}", describe(index, rule)),
                    ));
                    continue;
                }
            };
            let key = (rule.priority, form.clone());
            if let Some(&first) = seen.get(&key) {
                if rules[first].server != rule.server {
                    problems.push(Problem::new(
                        ProblemKind::RuleTie,
                        format!(
                            "{} and {} match the same addresses at the same priority: give one a higher priority or remove it",
                            describe(first, &rules[first]),
                            describe(index, rule)
                        ),
                    ));
                }
                continue;
            }
            seen.insert(key, index);
            compiled.push(CompiledRule {
                server: rule.server.clone(),
                priority: rule.priority,
                form,
            });
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        compiled.sort_by(|a, b| {
            (Reverse(a.priority), Reverse(a.form.rank()), &a.form).cmp(&(
                Reverse(b.priority),
                Reverse(b.form.rank()),
                &b.form,
            ))
        });
        Ok(RuleSet { rules: compiled })
    }

    /// The server for `address`, `Ok(None)` when no rule matches ("no route").
    pub fn route(&self, address: &str) -> Result<Option<&str>, Problem> {
        let address = address.trim().to_lowercase();
        let domain = match address.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && valid_domain(domain) =>
            {
                domain
            }
            _ => {
                return Err(Problem::new(
                    ProblemKind::InvalidAddress,
                    format!("{address:?} is not a mailbox address such as \"kim@flexi.se\""),
                ));
            }
        };
        Ok(self
            .rules
            .iter()
            .find(|r| r.form.matches(&address, domain))
            .map(|r| r.server.as_str()))
    }
}

/// Validate `rules` and route `address` in one call.
pub fn route(address: &str, rules: &[Rule]) -> Result<Option<String>, Problems> {
    let set = RuleSet::new(rules)?;
    set.route(address)
        .map(|s| s.map(str::to_string))
        .map_err(|p| vec![p])
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(server: &str, pattern: &str, priority: i32) -> Rule {
        Rule {
            server: server.into(),
            pattern: pattern.into(),
            priority,
        }
    }

    fn to(address: &str, rules: &[Rule]) -> Option<String> {
        route(address, rules).unwrap()
    }

    #[test]
    fn seed_000_mail1_mail2_example_and_reversed() {
        // Seed 000 §3: mail1 for support.flexi.se, mail2 for the rest of flexi.se.
        let rules = [
            r("mail1.flexi.se", "support.flexi.se", 2),
            r("mail2.flexi.se", "flexi.se", 1),
        ];
        assert_eq!(
            to("kim@support.flexi.se", &rules).as_deref(),
            Some("mail1.flexi.se")
        );
        assert_eq!(
            to("Kim@Support.Flexi.se", &rules).as_deref(),
            Some("mail1.flexi.se")
        );
        assert_eq!(
            to("eva@kundtjanst.flexi.se", &rules).as_deref(),
            Some("mail2.flexi.se")
        );
        // "Had the priorities been the other way round, mail2 would serve support.flexi.se too."
        let reversed = [
            r("mail1.flexi.se", "support.flexi.se", 1),
            r("mail2.flexi.se", "flexi.se", 2),
        ];
        assert_eq!(
            to("kim@support.flexi.se", &reversed).as_deref(),
            Some("mail2.flexi.se")
        );
    }

    #[test]
    fn suffixes_match_on_label_boundaries_only() {
        let rules = [r("s", "support.flexi.se", 1)];
        assert_eq!(to("a@support.flexi.se", &rules).as_deref(), Some("s"));
        assert_eq!(to("a@x.support.flexi.se", &rules).as_deref(), Some("s"));
        assert_eq!(to("a@notsupport.flexi.se", &rules), None);
    }

    #[test]
    fn forms_and_specificity_at_equal_priority() {
        let rules = [
            r("any", "*", 5),
            r("suffix", "flexi.se", 5),
            r("deeper", "support.flexi.se", 5),
            r("domain", "@support.flexi.se", 5),
            r("person", "kim@support.flexi.se", 5),
        ];
        assert_eq!(
            to("kim@support.flexi.se", &rules).as_deref(),
            Some("person")
        );
        assert_eq!(
            to("eva@support.flexi.se", &rules).as_deref(),
            Some("domain")
        );
        assert_eq!(
            to("eva@x.support.flexi.se", &rules).as_deref(),
            Some("deeper")
        );
        assert_eq!(to("eva@flexi.se", &rules).as_deref(), Some("suffix"));
        assert_eq!(to("eva@example.com", &rules).as_deref(), Some("any"));
        // "@domain" is exact: no subdomains.
        assert_eq!(to("a@x.y.se", &[r("d", "@y.se", 1)]), None);
    }

    #[test]
    fn ties_and_bad_patterns_are_configuration_errors() {
        let err =
            RuleSet::new(&[r("mail1", "flexi.se", 1), r("mail2", "FLEXI.SE", 1)]).unwrap_err();
        assert_eq!(err[0].kind, ProblemKind::RuleTie);
        assert!(
            err[0].message.contains("rule 1") && err[0].message.contains("rule 2"),
            "{}",
            err[0].message
        );
        assert!(RuleSet::new(&[r("mail1", "flexi.se", 1), r("mail1", "flexi.se", 1)]).is_ok());
        assert!(RuleSet::new(&[r("mail1", "flexi.se", 1), r("mail2", "flexi.se", 2)]).is_ok());
        for bad in [
            "",
            "*.flexi.se",
            "a@",
            "@",
            "flexi..se",
            "a b.se",
            "a@b@c.se",
        ] {
            let err = RuleSet::new(&[r("m", bad, 1)]).unwrap_err();
            assert_eq!(err[0].kind, ProblemKind::InvalidPattern, "{bad:?}");
        }
        assert!(route("not-an-address", &[r("m", "*", 1)]).is_err());
    }

    #[test]
    fn no_rule_is_no_route() {
        assert_eq!(to("a@b.se", &[]), None);
    }

    fn arb_rules() -> impl Strategy<Value = Vec<Rule>> {
        let pattern = prop::sample::select(vec![
            "*",
            "se",
            "flexi.se",
            "support.flexi.se",
            "@flexi.se",
            "@support.flexi.se",
            "kim@support.flexi.se",
            "example.com",
        ]);
        prop::collection::vec((0u8..4, pattern, 0i32..4), 0..8).prop_map(|v| {
            v.into_iter()
                .map(|(s, p, prio)| r(&format!("m{s}"), p, prio))
                .collect()
        })
    }

    proptest! {
        /// Routing never prefers a lower priority: no rule that matches has a higher
        /// priority than the chosen one.
        #[test]
        fn never_prefers_a_lower_priority(rules in arb_rules(),
            address in prop::sample::select(vec!["kim@support.flexi.se", "eva@flexi.se", "x@example.com", "y@other.org"])) {
            let Ok(set) = RuleSet::new(&rules) else { return Ok(()) };
            let chosen = set.route(address).unwrap();
            let domain = address.split_once('@').unwrap().1;
            let best = rules
                .iter()
                .filter(|rule| parse_pattern(&rule.pattern).unwrap().matches(address, domain))
                .map(|rule| rule.priority)
                .max();
            match chosen {
                None => prop_assert_eq!(best, None),
                Some(server) => {
                    let top = best.unwrap();
                    prop_assert!(rules.iter().any(|rule| rule.server == server && rule.priority == top
                        && parse_pattern(&rule.pattern).unwrap().matches(address, domain)));
                }
            }
        }

        /// The order in which rules are listed never changes the answer.
        #[test]
        fn rule_order_does_not_matter(rules in arb_rules(), seed in any::<u64>()) {
            let mut shuffled = rules.clone();
            let n = shuffled.len();
            if n > 1 {
                for i in 0..n { shuffled.swap(i, (seed as usize).wrapping_add(i * 7) % n); }
            }
            let a = route("kim@support.flexi.se", &rules).ok();
            let b = route("kim@support.flexi.se", &shuffled).ok();
            prop_assert_eq!(a.is_some(), b.is_some());
            if let (Some(a), Some(b)) = (a, b) { prop_assert_eq!(a, b); }
        }
    }
}
