//! One site for the in-process service tests: an Exchange server "ews" (its calendar
//! is the stand-in a test gives), a telephony target "pbx" (a log target unless the
//! test gives a stand-in), the trigger Lunch → LUNCH, the reasons BACK and AWAY, and
//! the users a test names (integration ids 1, 2, …; phones 1001, 1002, …).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use calvert::DecisionCore;
use calvert::config::ServiceConfig;
use calvert::diversion::{DiversionTarget, Phone, TargetError};
use calvert::service::{Adapters, Backoff, CalendarSource, ServiceHandle};
use calvert::store::{Applied, DiversionCall, OutboxEntry, Store};

/// The text of `calvert.toml`: `service` holds the lines of `[service]` (with `zone`
/// Europe/Stockholm added), then the site, then one `[[user]]` per address.
pub fn config_text(service: &str, users: &[&str]) -> String {
    let mut text = format!(
        r#"
        [service]
        zone = "Europe/Stockholm"
        {service}
        [[exchange]]
        name = "ews"
        url = "http://127.0.0.1:9/EWS/Exchange.asmx"
        ssl = false
        auth = "basic"
        user = "calvert"
        password = "secret"
        [[rule]]
        server = "ews"
        pattern = "flexi.se"
        [[telephony]]
        name = "pbx"
        kind = "log"
        [[telephony_rule]]
        target = "pbx"
        pattern = "*"
        [[trigger]]
        word = "Lunch"
        reason = "LUNCH"
        [policy]
        default_reason = "BACK"
        oof_reason = "AWAY"
        "#
    );
    for (i, address) in users.iter().enumerate() {
        let _ = write!(
            text,
            "\n[[user]]\naddress = \"{address}\"\nintegration_id = \"{}\"\ntelephony_id = \"{}\"\n",
            i + 1,
            1001 + i
        );
    }
    text
}

/// The configuration read from `text` with `env` as the environment, and the core
/// that checked it.
pub fn load(text: &str, env: &BTreeMap<String, String>) -> (ServiceConfig, DecisionCore) {
    let core = core();
    let config =
        ServiceConfig::from_toml(text, Path::new("calvert.toml"), env, &mut core.instance())
            .unwrap_or_else(|e| panic!("{e}"));
    (config, core)
}

/// The core, compiled once per test binary.
fn core() -> DecisionCore {
    static CORE: OnceLock<DecisionCore> = OnceLock::new();
    CORE.get_or_init(|| DecisionCore::load().unwrap()).clone()
}

/// The service on `store`, reading calendars from `calendar` and, when `phones` is
/// given, diverting through it instead of the log target.
pub async fn start(
    (config, core): (ServiceConfig, DecisionCore),
    store: Arc<dyn Store>,
    calendar: Arc<dyn CalendarSource>,
    phones: Option<Arc<dyn DiversionTarget>>,
) -> ServiceHandle {
    let adapters = Adapters::from_config(&config, store).unwrap();
    adapters.sources.insert("ews".into(), calendar);
    if let Some(phones) = phones {
        adapters.targets.insert("pbx".into(), phones);
    }
    ServiceHandle::start(config, core, adapters, Backoff::default())
        .await
        .unwrap()
}

/// A telephony target that records every call with the address of its user, and
/// cannot read a phone back.
#[derive(Default)]
pub struct Recorder {
    pub calls: Mutex<Vec<(String, DiversionCall)>>,
}

#[async_trait]
impl DiversionTarget for Recorder {
    fn name(&self) -> &str {
        "recorder"
    }

    async fn apply(&self, phone: &Phone, entry: &OutboxEntry) -> Result<(), TargetError> {
        self.calls
            .lock()
            .unwrap()
            .push((phone.address.clone(), entry.call.clone()));
        Ok(())
    }

    async fn observe(&self, _phone: &Phone) -> Result<Option<Option<Applied>>, TargetError> {
        Ok(None)
    }
}
