//! "Which server serves kim@support.flexi.se?": the rule that wins and why. The core
//! decides (`route`); which rules match is asked of the core one rule at a time, so
//! the matching semantics stay in one place.

use serde::Serialize;

use crate::component::wit::Rule;
use crate::component::{CoreError, CoreInstance};

/// A rule as shown.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RuleView {
    pub server: String,
    pub pattern: String,
    pub priority: i32,
}

impl From<&Rule> for RuleView {
    fn from(rule: &Rule) -> Self {
        RuleView {
            server: rule.server.clone(),
            pattern: rule.pattern.clone(),
            priority: rule.priority,
        }
    }
}

/// The answer for one address.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RouteAnswer {
    pub address: String,
    /// The server chosen; None: no route (or a tie).
    pub server: Option<String>,
    /// The rule that won.
    pub rule: Option<RuleView>,
    /// Every rule that matches the address, highest priority first.
    pub matching: Vec<RuleView>,
    /// Why there is no answer: a tie between rules, a bad address or pattern.
    pub problem: Option<String>,
    /// The answer as a sentence.
    pub sentence: String,
}

/// Route `address` through `rules` and say why.
pub fn explain(
    core: &mut CoreInstance,
    address: &str,
    rules: &[Rule],
) -> Result<RouteAnswer, CoreError> {
    let mut matching = Vec::new();
    for rule in rules {
        if let Ok(Some(_)) = core.route(address, std::slice::from_ref(rule)) {
            matching.push(RuleView::from(rule));
        }
    }
    matching.sort_by_key(|r| std::cmp::Reverse(r.priority));
    let (server, problem) = match core.route(address, rules) {
        Ok(server) => (server, None),
        Err(CoreError::Rejected(problems)) => (
            None,
            Some(
                problems
                    .iter()
                    .map(|p| p.message.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        ),
        Err(other) => return Err(other),
    };
    let rule = server
        .as_ref()
        .and_then(|server| matching.iter().find(|r| &r.server == server).cloned());
    let sentence = match (&rule, &problem) {
        (_, Some(problem)) => format!("{address} has no route: {problem}"),
        (Some(rule), None) => format!(
            "{address} is served by {} through the rule {} (priority {}){}",
            rule.server,
            rule.pattern,
            rule.priority,
            match matching.len() {
                1 => ", the only one that matches".to_string(),
                n => format!(", the highest of {n} that match"),
            }
        ),
        (None, None) => format!("{address} has no route: no rule matches it"),
    };
    Ok(RouteAnswer {
        address: address.to_string(),
        server,
        rule,
        matching,
        problem,
        sentence,
    })
}
