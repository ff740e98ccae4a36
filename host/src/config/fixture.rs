//! For the tests beside each section: a configuration text loaded with a map for
//! the environment, and the smallest file that loads.

use std::collections::BTreeMap;
use std::path::Path;

use super::{ConfigError, ConfigProblem, ServiceConfig};
use crate::DecisionCore;

/// Load `text` as if it were /etc/calvert/calvert.toml, with `env` as the environment.
pub(super) fn load(text: &str, env: &[(&str, &str)]) -> Result<ServiceConfig, ConfigError> {
    static CORE: std::sync::OnceLock<DecisionCore> = std::sync::OnceLock::new();
    let mut core = CORE
        .get_or_init(|| DecisionCore::load().unwrap())
        .instance();
    let env: BTreeMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    ServiceConfig::from_toml(
        text,
        Path::new("/etc/calvert/calvert.toml"),
        &env,
        &mut core,
    )
}

/// The problems `text` has (it must have some).
pub(super) fn problems(text: &str) -> Vec<ConfigProblem> {
    match load(text, &[]) {
        Err(ConfigError::Invalid { problems, .. }) => problems,
        other => panic!("expected problems, got {other:?}"),
    }
}

/// One server, one target, one user: the smallest file that loads.
pub(super) const MINIMAL: &str = r#"
        [[exchange]]
        name = "mail1"
        url = "https://mail1.flexi.se/EWS/Exchange.asmx"
        auth = "basic"
        user = "svc"
        password = "x"
        [[rule]]
        server = "mail1"
        pattern = "flexi.se"
        [[telephony]]
        name = "log"
        kind = "log"
        [[telephony_rule]]
        target = "log"
        pattern = "*"
        [[user]]
        address = "kim@flexi.se"
        integration_id = "1"
    "#;
