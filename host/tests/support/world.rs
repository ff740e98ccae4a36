//! The world of the service tests: the Exchange simulator, the phone receiver and
//! the real service between them, and the waits that tell a test when something
//! happened (never a fixed sleep).

use std::path::Path;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use calvert::DecisionCore;
use calvert::config::ServiceConfig;
use calvert::diversion::utc;
use calvert::service::{Adapters, Backoff, EwsSource, ServiceHandle};
use calvert::store::{MemoryStore, Store};
use calvert_exchange_sim::{Exchange, Server, SimItem, start};

use super::phones::Phones;
use super::prometheus;
use super::wait::{self, LIMIT};

/// The decision core, loaded once for every test of the binary.
pub fn core() -> DecisionCore {
    static CORE: OnceLock<DecisionCore> = OnceLock::new();
    CORE.get_or_init(|| DecisionCore::load().unwrap()).clone()
}

/// The wall clock, in seconds since the epoch.
pub fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// A running service with its simulator and phone receiver.
pub struct World {
    pub exchange: Exchange,
    _sim: Server,
    pub phones: Phones,
    pub service: ServiceHandle,
    /// How it was started, for [`World::restart`].
    notifications: Notifications,
    text: String,
    store: Arc<dyn Store>,
}

/// The admin token the worlds' services are configured with (`GET /users`, POSTs).
pub const ADMIN_TOKEN: &str = "world-admin-token-0123456789";

/// The service's configuration: three users (kim, Eva, and ghost, whom the service
/// account may not open), two triggers, one phone receiver.
pub fn config_text(sim: &Server, phones: std::net::SocketAddr) -> String {
    format!(
        r#"
        [service]
        admin_listen = "127.0.0.1:0"
        admin_token_env = "CALVERT_ADMIN_TOKEN"
        debounce_ms = 50
        zone = "Europe/Stockholm"
        failures_before_error = 2
        [[exchange]]
        name = "sim"
        url = "{ews}"
        ssl = false
        auth = "basic"
        user = "calvert"
        password = "secret"
        timeout_ms = 5000
        [[rule]]
        server = "sim"
        pattern = "flexi.se"
        [[telephony]]
        name = "pbx"
        kind = "http"
        url = "http://{phones}"
        reads_back = true
        timeout_ms = 2000
        [[telephony_rule]]
        target = "pbx"
        pattern = "*"
        [[trigger]]
        word = "Lunch"
        reason = "LUNCH"
        [[trigger]]
        word = "Möte"
        reason = "MEETING"
        [policy]
        default_reason = "BACK"
        oof_reason = "AWAY"
        [[user]]
        address = "kim@flexi.se"
        integration_id = "1"
        telephony_id = "1001"
        [[user]]
        address = "eva@flexi.se"
        integration_id = "2"
        telephony_id = "1002"
        [[user]]
        address = "ghost@flexi.se"
        integration_id = "3"
        telephony_id = "1003"
        "#,
        ews = sim.ews_url(),
    )
}

/// How the service hears of calendar changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notifications {
    /// Streaming subscriptions, and a resync every second as the safety net.
    Streaming,
    /// Streaming subscriptions only, no periodic resync, on streams the server closes
    /// every 300 ms: while nothing changes the only requests are stream reconnects
    /// (so an injected fault lands on a stream), and a change the stream missed comes
    /// in only through the service's answer to the broken stream.
    StreamingOnly,
    /// Push to a local listener (a "local web service address"), StatusEvents every
    /// 200 ms, a subscription silent for 1 s renewed, and no periodic resync to hide
    /// a lost notification.
    Push,
}

/// The service of a world: calvert.toml's `text`, the admin token, a fast resync
/// when streaming (a removed manual diversion is noticed quickly), short back-offs.
async fn start_service(
    notifications: Notifications,
    text: &str,
    store: Arc<dyn Store>,
) -> ServiceHandle {
    let mut config = ServiceConfig::from_toml(
        text,
        Path::new("calvert.toml"),
        &std::collections::BTreeMap::from([(
            "CALVERT_ADMIN_TOKEN".to_string(),
            ADMIN_TOKEN.to_string(),
        )]),
        &mut core().instance(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    config.resync = Duration::from_secs(match notifications {
        Notifications::Streaming => 1,
        Notifications::StreamingOnly | Notifications::Push => 600,
    });
    let adapters = Adapters::from_config(&config, store).unwrap();
    if notifications == Notifications::Push {
        let server = &config.exchange[0];
        let mut source = EwsSource::new(
            "sim",
            server.url.clone(),
            server.credentials.clone(),
            None,
            server.timeout,
        )
        .unwrap()
        .with_push(server.push.clone());
        source.push_silence = Duration::from_secs(1);
        adapters.sources.insert("sim".into(), Arc::new(source));
    }
    ServiceHandle::start(
        config,
        core(),
        adapters,
        Backoff {
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
    )
    .await
    .unwrap()
}

/// A loopback port nobody listens on (for the push listener's URL).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl World {
    /// A world with [`Notifications::Streaming`].
    pub async fn start() -> World {
        World::start_with(Notifications::Streaming).await
    }

    /// A world whose service hears of changes as `notifications` says.
    pub async fn start_with(notifications: Notifications) -> World {
        World::start_on(notifications, Arc::new(MemoryStore::default())).await
    }

    /// A world whose service keeps its state in `store`.
    pub async fn start_on(notifications: Notifications, store: Arc<dyn Store>) -> World {
        World::start_edited(notifications, store, |text| text).await
    }

    /// A world whose calvert.toml is the usual one made over by `edit`.
    pub async fn start_edited(
        notifications: Notifications,
        store: Arc<dyn Store>,
        edit: impl FnOnce(String) -> String,
    ) -> World {
        let exchange = Exchange::default();
        exchange.add_account("calvert", "secret", Some(&["kim@flexi.se", "eva@flexi.se"]));
        for mailbox in ["kim@flexi.se", "eva@flexi.se", "ghost@flexi.se"] {
            exchange.add_mailbox(mailbox);
        }
        let sim = start(exchange.clone()).await.unwrap();
        let phones = Phones::default();
        let phones_addr = phones.start().await;
        let mut text = config_text(&sim, phones_addr);
        if notifications == Notifications::StreamingOnly {
            exchange.set_stream_lifetime(Duration::from_millis(300));
            // Every mailbox may be opened: no failing subscribe joins the reconnects.
            exchange.add_account("calvert", "secret", None);
        }
        if notifications == Notifications::Push {
            exchange.set_heartbeat(Duration::from_millis(200));
            text = text.replace(
                "timeout_ms = 5000",
                &format!(
                    "timeout_ms = 5000\npush_address = \"http://127.0.0.1:{}\"",
                    free_port()
                ),
            );
        }
        let text = edit(text);
        let service = start_service(notifications, &text, store.clone()).await;
        World {
            exchange,
            _sim: sim,
            phones,
            service,
            notifications,
            text,
            store,
        }
    }

    /// Stop the service and start it again on the same store, simulator, phones and
    /// calvert.toml.
    pub async fn restart(self) -> World {
        let World {
            exchange,
            _sim,
            phones,
            service,
            notifications,
            text,
            store,
        } = self;
        service.shutdown(Duration::from_secs(2)).await;
        let service = start_service(notifications, &text, store.clone()).await;
        World {
            exchange,
            _sim,
            phones,
            service,
            notifications,
            text,
            store,
        }
    }

    /// Wait (up to 10 s) until the phone's applied calls are exactly `expected`.
    pub async fn expect_calls(&self, phone: &str, expected: &[String]) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let calls = self.phones.calls_for(phone);
            if calls == expected {
                return;
            }
            assert!(
                Instant::now() < deadline && calls.len() <= expected.len(),
                "phone {phone}: expected {expected:?}, got {calls:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Wait until the service has read `phone` back `times` more times from now.
    ///
    /// A mailbox's steps run one after another and each reads the calendar before
    /// it reads the phone back (when its outbox is empty). So of the read-backs after
    /// a change, the second belongs to a step that began after the change and read
    /// the calendar with it; the third to a later step, which found the outbox empty:
    /// whatever the second queued has reached the phone. (These tests have no
    /// boundary near a change, which would let a step decide on an older read.)
    pub async fn read_back(&self, phone: &str, times: usize) {
        let target = self.phones.reads_of(phone) + times;
        wait::until(LIMIT, || {
            let reads = self.phones.reads_of(phone);
            if reads >= target {
                Ok(())
            } else {
                Err(format!(
                    "phone {phone} read back {reads} times, waiting for {target}; calls {:?}",
                    self.phones.calls()
                ))
            }
        })
        .await;
    }

    /// The service has read the calendar as it is now, decided, and delivered what
    /// it decided (three read-backs, see [`World::read_back`]); nothing more arrived
    /// for `phone`.
    pub async fn expect_quiet(&self, phone: &str) {
        let before = self.phones.calls_for(phone);
        self.read_back(phone, 3).await;
        assert_eq!(self.phones.calls_for(phone), before);
    }

    /// Like [`World::expect_quiet`], for a change that comes due at `start`: once the
    /// service has read and decided on it, no call arrived before `start`.
    pub async fn expect_nothing_before(&self, phone: &str, start: i64) {
        self.read_back(phone, 3).await;
        let arrivals = self.phones.arrivals_for(phone);
        assert!(
            arrivals.iter().all(|(_, arrived)| *arrived >= start),
            "phone {phone}: a call before {}: {arrivals:?}",
            utc(start)
        );
    }

    /// The subscription the service recorded for `address`.
    pub fn subscription(&self, address: &str) -> Option<String> {
        self.service.user(address).and_then(|r| r.subscription_id)
    }

    /// Wait until `address` has a subscription other than `old`; its id.
    pub async fn subscribed_anew(&self, address: &str, old: Option<&str>) -> String {
        wait::until(LIMIT, || match self.subscription(address) {
            Some(id) if Some(id.as_str()) != old => Ok(id),
            other => Err(format!(
                "{address} on subscription {other:?}; requests {:?}",
                self.exchange.requests()
            )),
        })
        .await
    }

    /// Wait until `address` has a subscription; its id.
    /// The simulator's EWS URL, as calvert.toml names it.
    pub fn ews_url(&self) -> String {
        self._sim.ews_url()
    }

    pub async fn subscribed(&self, address: &str) -> String {
        self.subscribed_anew(address, None).await
    }

    /// One series of the service's metrics.
    pub fn metric(&self, series: &str) -> f64 {
        prometheus::value(&self.service.metrics(), series)
    }

    /// Wait until the service's outbox holds `depth` calls.
    pub async fn expect_outbox(&self, depth: f64) {
        wait::until(LIMIT, || {
            let metrics = self.service.metrics();
            if prometheus::value(&metrics, "calvert_outbox_depth") == depth {
                Ok(())
            } else {
                Err(format!("{depth} calls never waited:\n{metrics}"))
            }
        })
        .await;
    }

    /// The operations the simulator received after the first `from`.
    pub fn requests_since(&self, from: usize) -> Vec<String> {
        self.exchange
            .requests()
            .get(from..)
            .map(<[String]>::to_vec)
            .unwrap_or_default()
    }

    /// ([`Notifications::StreamingOnly`]) Wait until the start-up subscribes and reads
    /// are over: the last three requests were stream reconnects.
    pub async fn settled(&self) {
        wait::until(LIMIT, || {
            let requests = self.exchange.requests();
            let reconnects = requests
                .iter()
                .rev()
                .take_while(|op| *op == "GetStreamingEvents")
                .count();
            if reconnects >= 3 {
                Ok(())
            } else {
                Err(format!("still more than reconnects: {requests:?}"))
            }
        })
        .await;
    }
}

/// A set call as the phone receiver records it.
pub fn set(reason: &str, until: i64) -> String {
    format!("set {reason} {}", utc(until))
}

/// A meeting to which the mailbox owner answered `response`.
pub fn meeting(id: &str, subject: &str, start: i64, end: i64, response: &str) -> SimItem {
    let mut item = SimItem::appointment(id, subject, start, end);
    item.is_meeting = true;
    item.my_response = response.into();
    item
}
