//! `[[rule]]` and `[[telephony_rule]]`: which Exchange server and which telephony
//! target serve an address. The core judges the patterns (`validate-config`) and
//! routes each user.

use std::collections::BTreeSet;

use super::check::Check;
use super::file::RuleSection;
use crate::component::wit::Rule;
use crate::component::{CoreError, CoreInstance};

impl Check<'_> {
    /// The rules of `section` (`rule` or `telephony_rule`); each must name one of
    /// `known` in `field`.
    pub(super) fn rules(
        &mut self,
        core: &mut CoreInstance,
        section: &str,
        field: &str,
        sections: Vec<RuleSection>,
        known: &BTreeSet<String>,
    ) -> Result<Vec<Rule>, CoreError> {
        let what = if section == "rule" {
            "[[exchange]] server"
        } else {
            "[[telephony]] target"
        };
        let mut rules = Vec::new();
        for (i, r) in sections.into_iter().enumerate() {
            if !known.contains(&r.server) {
                self.problem(
                    format!("{section}[{i}].{field}"),
                    format!("{:?} is not the name of a configured {what}", r.server),
                );
            }
            rules.push(Rule {
                server: r.server,
                pattern: r.pattern,
                priority: r.priority,
            });
        }
        for problem in core.validate_config(&[], &rules)? {
            self.problem(section, problem.message);
        }
        Ok(rules)
    }

    /// Both kinds of destination, each with at least one rule leading to it.
    pub(super) fn routing_is_configured(
        &mut self,
        servers: &BTreeSet<String>,
        rules: &[Rule],
        targets: &BTreeSet<String>,
        telephony_rules: &[Rule],
    ) {
        if servers.is_empty() {
            self.problem("exchange", "no [[exchange]] server is configured");
        } else if rules.is_empty() {
            self.problem(
                "rule",
                "no [[rule]] says which Exchange server serves which address",
            );
        }
        if targets.is_empty() {
            self.problem("telephony", "no [[telephony]] target is configured");
        } else if telephony_rules.is_empty() {
            self.problem(
                "telephony_rule",
                "no [[telephony_rule]] says which telephony target serves which address",
            );
        }
    }
}

/// A route, or None when no rule matches or the rules themselves are at fault (then
/// they are reported as rule problems).
pub(super) fn routed(
    route: Result<Option<String>, CoreError>,
) -> Result<Option<String>, CoreError> {
    match route {
        Ok(server) => Ok(server),
        Err(CoreError::Rejected(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{MINIMAL, problems};

    #[test]
    fn a_rule_names_a_configured_destination() {
        let text = MINIMAL.replace("target = \"log\"", "target = \"pbx\"");
        let found = problems(&text);
        assert_eq!(found[0].key, "telephony_rule[0].target", "{found:?}");
        assert!(
            found[0].message.contains("[[telephony]] target"),
            "{found:?}"
        );
    }

    #[test]
    fn each_destination_needs_a_rule() {
        let text = MINIMAL.replace(
            "[[rule]]\n        server = \"mail1\"\n        pattern = \"flexi.se\"",
            "",
        );
        let keys: Vec<String> = problems(&text).into_iter().map(|p| p.key).collect();
        assert_eq!(keys, ["rule"]);
    }
}
