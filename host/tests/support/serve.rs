//! `calvert serve` as an operator runs it, for the kill tests: the release binary
//! with a calvert.toml against the simulator and the HTTP phone receiver, a state
//! directory kept across restarts, the log of each run in a file, and the admin
//! port's /metrics.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::prometheus;

/// One installation: its directory (config, state, logs) and admin address.
pub struct Installation {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub admin: SocketAddr,
    http: reqwest::Client,
}

impl Installation {
    /// Write calvert.toml into a fresh `dir`: the simulator at `ews_url`, the phone
    /// receiver at `phones`, `extra` (triggers, policy) and one user per
    /// (address, phone).
    pub fn new(
        dir: PathBuf,
        ews_url: &str,
        phones: SocketAddr,
        extra: &str,
        users: &[(String, String)],
    ) -> Installation {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // A port for the admin listener, the same for every run.
        let admin = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let mut text = format!(
            r#"
            [service]
            state_dir = "state"
            admin_listen = "{admin}"
            debounce_ms = 20
            [[exchange]]
            name = "sim"
            url = "{ews_url}"
            ssl = false
            auth = "basic"
            user = "calvert"
            password_env = "CALVERT_SIM_PASSWORD"
            [[rule]]
            server = "sim"
            pattern = "flexi.se"
            [[telephony]]
            name = "pbx"
            kind = "http"
            url = "http://{phones}"
            reads_back = true
            [[telephony_rule]]
            target = "pbx"
            pattern = "*"
            {extra}
            "#
        );
        for (i, (address, phone)) in users.iter().enumerate() {
            text += &format!(
                "[[user]]\naddress = \"{address}\"\nintegration_id = \"{i}\"\ntelephony_id = \"{phone}\"\n"
            );
        }
        let config = dir.join("calvert.toml");
        std::fs::write(&config, text).unwrap();
        Installation {
            dir,
            config,
            admin,
            http: reqwest::Client::new(),
        }
    }

    /// Start `calvert serve` (debug logs into `log`), in the installation's directory.
    pub fn start(&self, log: &Path) -> Child {
        Command::new(env!("CARGO_BIN_EXE_calvert"))
            .args(["serve", "--config"])
            .arg(&self.config)
            .current_dir(&self.dir)
            .env("CALVERT_SIM_PASSWORD", "secret")
            .env("RUST_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap()
    }

    /// The calls the service's outbox holds, by its /metrics; `Err` while the admin
    /// port does not answer yet.
    pub async fn outbox_depth(&self) -> Result<f64, String> {
        let url = format!("http://{}/metrics", self.admin);
        let text = match self.http.get(&url).send().await {
            Ok(reply) => reply.text().await.map_err(|e| e.to_string())?,
            Err(error) => return Err(format!("no metrics yet: {error}")),
        };
        if !text.contains("calvert_outbox_depth") {
            return Err(format!("no outbox depth in the metrics: {text}"));
        }
        Ok(prometheus::value(&text, "calvert_outbox_depth"))
    }
}

/// SIGKILL: the process gets no chance to finish anything.
pub fn kill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}
