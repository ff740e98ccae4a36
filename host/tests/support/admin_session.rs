//! The browser tests' start: a world ready to be administered, and a login.

use crate::browser::Browser;
use crate::wait::{self, LIMIT};
use crate::world::World;
use calvert::store::Status;

/// The world, once ghost (whom the service account may not open) is in Error and
/// kim has a subscription; its admin address and the first start's login.
pub async fn world() -> (World, String, (String, String)) {
    let world = World::start().await;
    world.subscribed("kim@flexi.se").await;
    wait::until(LIMIT, || match world.service.status("ghost@flexi.se") {
        Some(Status::Error(_)) => Ok(()),
        other => Err(format!("ghost is {other:?}")),
    })
    .await;
    let base = format!("http://{}", world.service.admin_addr.unwrap());
    let login = world
        .service
        .first_login
        .clone()
        .expect("the first start's login");
    (world, base, login)
}

pub async fn log_in(browser: &Browser, base: &str, name: &str, password: &str) {
    browser.goto(&format!("{base}/users")).await;
    // Not logged in: the page sends the browser to the login.
    browser.text("#login").await;
    browser.fill("#name", name).await;
    browser.fill("#password", password).await;
    browser.click("#login").await;
    browser.text_becomes("#who", name).await;
}
