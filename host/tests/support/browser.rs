//! A real browser for the administration's tests: Debian's chromium, headless, driven
//! through chromedriver (WebDriver) on a loopback port. `scripts/test-all` installs
//! both (packages chromium and chromium-driver). The driver is stopped by its pid
//! when the browser is dropped.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};

use fantoccini::{Client, ClientBuilder, Locator};

use super::wait::{self, LIMIT};

const DRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

pub struct Browser {
    pub client: Client,
    driver: Child,
    profile: std::path::PathBuf,
}

impl Browser {
    /// Start chromedriver and a headless chromium.
    pub async fn start() -> Browser {
        let driver_path = std::env::var("CALVERT_CHROMEDRIVER").unwrap_or_else(|_| DRIVER.into());
        let chromium = std::env::var("CALVERT_CHROMIUM").unwrap_or_else(|_| CHROMIUM.into());
        assert!(
            std::path::Path::new(&driver_path).exists() && std::path::Path::new(&chromium).exists(),
            "the browser tests need {chromium} and {driver_path}: install Debian's chromium and chromium-driver (scripts/test-all does), or name them in CALVERT_CHROMIUM and CALVERT_CHROMEDRIVER"
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&driver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {driver_path}: {e}"));
        let profile =
            std::env::temp_dir().join(format!("calvert-chromium-{}-{port}", std::process::id()));
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let client = wait::until_async(LIMIT, || {
            let capabilities = capabilities.clone();
            let url = url.clone();
            async move {
                ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                    .capabilities(capabilities)
                    .connect(&url)
                    .await
                    .map_err(|e| format!("chromedriver on {url}: {e}"))
            }
        })
        .await;
        Browser {
            client,
            driver,
            profile,
        }
    }

    pub async fn goto(&self, url: &str) {
        self.client
            .goto(url)
            .await
            .unwrap_or_else(|e| panic!("{url}: {e}"));
    }

    /// The text of the first element `css` finds, waiting for it to appear (and
    /// trying again when the page replaced it between the find and the read).
    pub async fn text(&self, css: &str) -> String {
        wait::until_async(LIMIT, || async {
            let element = self
                .client
                .find(Locator::Css(css))
                .await
                .map_err(|e| format!("no {css}: {e}"))?;
            element.text().await.map_err(|e| format!("{css}: {e}"))
        })
        .await
    }

    /// Wait until the element `css` finds has text containing `wanted`.
    pub async fn text_becomes(&self, css: &str, wanted: &str) -> String {
        wait::until_async(LIMIT, || async {
            let found = match self.client.find(Locator::Css(css)).await {
                Ok(element) => element.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if found.contains(wanted) {
                Ok(found)
            } else {
                Err(format!("{css} says {found:?}, not {wanted:?}"))
            }
        })
        .await
    }

    pub async fn fill(&self, css: &str, text: &str) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// Choose the file at `path` in the file field `css` finds.
    pub async fn attach(&self, css: &str, path: &std::path::Path) {
        let field = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        field.send_keys(&path.display().to_string()).await.unwrap();
    }

    /// Type `text` into the field `css` finds, replacing what it held, and press Enter.
    pub async fn fill_and_enter(&self, css: &str, text: &str) {
        self.fill(css, &format!("{text}\u{E007}")).await;
    }

    /// The value of the form field `css` finds.
    pub async fn value(&self, css: &str) -> String {
        let script = format!("return document.querySelector({css:?}).value");
        self.run(&script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let element = self
            .client
            .wait()
            .at_most(LIMIT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    }

    pub async fn count(&self, css: &str) -> usize {
        self.client
            .find_all(Locator::Css(css))
            .await
            .map(|v| v.len())
            .unwrap_or(0)
    }

    pub async fn source(&self) -> String {
        self.client.source().await.unwrap()
    }

    /// Run `script` (its last statement `return`s) and give its value.
    pub async fn run(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"))
    }

    /// `POST path` from the page with `fetch` (the session cookie goes along) and
    /// the headers given as a JS object; the answer's status.
    pub async fn fetch_post(&self, path: &str, headers: &str) -> u64 {
        let script = format!(
            "const done = arguments[0]; fetch({path:?}, {{method: 'POST', headers: {headers}}}).then(r => done(r.status), e => done(String(e)));"
        );
        let answer = self
            .client
            .execute_async(&script, Vec::new())
            .await
            .unwrap();
        answer
            .as_u64()
            .unwrap_or_else(|| panic!("fetch {path}: {answer}"))
    }

    /// A PNG of the page into docs/screenshots/, only when CALVERT_SCREENSHOTS is set
    /// (so a test run leaves the checkout as it was).
    pub async fn screenshot(&self, name: &str) {
        if std::env::var_os("CALVERT_SCREENSHOTS").is_none() {
            return;
        }
        let png = self.client.screenshot().await.unwrap();
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), png).unwrap();
    }

    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        self.stop();
    }

    fn stop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.stop();
    }
}
