//! The admin port against browsers and strangers: `/api/users` and every POST need the
//! admin token, a `Host` of this port and no foreign `Origin`; a refused request
//! changes nothing. `/health` and `/metrics` stay open and show neither the token
//! nor a subscription id.

#[path = "support/phones.rs"]
mod phones;
#[path = "support/prometheus.rs"]
mod prometheus;
#[path = "support/quiet.rs"]
mod quiet;
#[path = "support/raw_http.rs"]
mod raw_http;
#[path = "support/wait.rs"]
mod wait;
// Only the world's start and its admin token are used here.
#[allow(dead_code)]
#[path = "support/world.rs"]
mod world;

use calvert::service::ServiceHandle;
use calvert::store::Status;
use raw_http::{ask, post};
use wait::LIMIT;

const TOKEN: &str = "a-test-admin-token-4f1c9e";

/// The quiet service with `token`, once kim is Active.
async fn service(token: Option<&str>) -> ServiceHandle {
    let service = quiet::start(token, None).await;
    wait::until(LIMIT, || match service.status("kim@flexi.se") {
        Some(Status::Active) => Ok(()),
        other => Err(format!("kim is {other:?}")),
    })
    .await;
    service
}

fn kim(service: &ServiceHandle) -> Option<Status> {
    service.status("kim@flexi.se")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_post_from_a_foreign_origin_does_nothing() {
    let service = service(Some(TOKEN)).await;
    let admin = service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    // A form on another site posting text/plain: no token, a foreign Origin.
    let form = post(
        admin,
        "/api/users/kim@flexi.se/passivate",
        &[
            &host,
            "Origin: http://evil.example",
            "Content-Type: text/plain",
        ],
        "x=y",
    )
    .await;
    assert_eq!(form.status, 403, "{form:?}");
    assert!(form.body.contains("evil.example"), "{form:?}");
    // Even a page that somehow had the token is refused for its Origin.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let fetch = post(
        admin,
        "/api/users/kim@flexi.se/passivate",
        &[&host, "Origin: http://evil.example", &bearer],
        "",
    )
    .await;
    assert_eq!(fetch.status, 403, "{fetch:?}");
    assert_eq!(kim(&service), Some(Status::Active));
    // The port's own origin may.
    let own = format!("Origin: http://{admin}");
    let ok = post(
        admin,
        "/api/users/kim@flexi.se/passivate",
        &[&host, &own, &bearer],
        "",
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(kim(&service), Some(Status::Passive));
    service.shutdown(std::time::Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_dns_rebinding() {
    let service = service(Some(TOKEN)).await;
    let admin = service.admin_addr.unwrap();
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let rebound = format!("Host: rebound.evil.example:{}", admin.port());
    let answer = post(
        admin,
        "/api/users/kim@flexi.se/passivate",
        &[&rebound, &bearer],
        "",
    )
    .await;
    assert_eq!(answer.status, 421, "{answer:?}");
    assert!(answer.body.contains("admin_hosts"), "{answer:?}");
    let users = ask(admin, "GET", "/api/users", &[&rebound, &bearer]).await;
    assert_eq!(users.status, 421, "{users:?}");
    assert_eq!(kim(&service), Some(Status::Active));
    // Loopback names are this port's.
    let localhost = format!("Host: localhost:{}", admin.port());
    let users = ask(admin, "GET", "/api/users", &[&localhost, &bearer]).await;
    assert_eq!(users.status, 200, "{users:?}");
    service.shutdown(std::time::Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_one_is_refused_and_the_right_one_works() {
    let service = service(Some(TOKEN)).await;
    let admin = service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    let path = "/api/users/kim@flexi.se/passivate";
    for authorization in [None, Some("Bearer not-the-token"), Some("Basic YTpi")] {
        let mut headers = vec![host.clone()];
        headers.extend(authorization.map(|a| format!("Authorization: {a}")));
        let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
        let answer = post(admin, path, &headers, "").await;
        assert_eq!(answer.status, 401, "{authorization:?}: {answer:?}");
        let users = ask(admin, "GET", "/api/users?q=kim", &headers).await;
        assert_eq!(users.status, 401, "{authorization:?}: {users:?}");
        assert!(!users.body.contains("kim@"), "{users:?}");
    }
    assert_eq!(kim(&service), Some(Status::Active));
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let answer = post(admin, path, &[&host, &bearer], "").await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("passive"), "{answer:?}");
    assert_eq!(kim(&service), Some(Status::Passive));
    // The list shows active users unless asked for others.
    let users = ask(admin, "GET", "/api/users?q=kim", &[&host, &bearer]).await;
    assert_eq!(
        (users.status, users.body.as_str()),
        (200, "[]"),
        "{users:?}"
    );
    let users = ask(
        admin,
        "GET",
        "/api/users?q=kim&status=passive",
        &[&host, &bearer],
    )
    .await;
    assert_eq!(users.status, 200, "{users:?}");
    assert!(users.body.contains("kim@flexi.se"), "{users:?}");
    service.shutdown(std::time::Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_configured_token_the_api_says_how_to_get_in() {
    let service = service(None).await;
    let admin = service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    // No credentials at all: log in, or configure a token.
    let answer = post(admin, "/api/users/kim@flexi.se/passivate", &[&host], "").await;
    assert_eq!(answer.status, 401, "{answer:?}");
    assert!(answer.body.contains("/login"), "{answer:?}");
    assert!(
        answer.body.contains("service.admin_token_env"),
        "{answer:?}"
    );
    // A bearer token to a port that has none: how to configure one.
    let bearer = format!("Authorization: Bearer {TOKEN}");
    let users = ask(admin, "GET", "/api/users", &[&host, &bearer]).await;
    assert_eq!(users.status, 403, "{users:?}");
    assert!(users.body.contains("service.admin_token_env"), "{users:?}");
    // A page sends the browser to the login.
    let page = ask(admin, "GET", "/users?q=kim", &[&host]).await;
    assert_eq!(page.status, 303, "{page:?}");
    assert!(
        page.head
            .to_ascii_lowercase()
            .contains("location: /login?next=%2fusers%3fq%3dkim"),
        "{page:?}"
    );
    assert_eq!(kim(&service), Some(Status::Active));
    // Monitoring still works.
    let health = ask(admin, "GET", "/health", &[&host]).await;
    assert_eq!(health.status, 200, "{health:?}");
    service.shutdown(std::time::Duration::from_secs(2)).await;
}

/// With a live subscription: `/users` shows its id to the token's holder only;
/// `/health` and `/metrics` answer anyone and show neither it nor the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_metrics_stay_open_without_subscription_ids_or_the_token() {
    let world = world::World::start().await;
    world.subscribed("kim@flexi.se").await;
    let subscription = world
        .service
        .user("kim@flexi.se")
        .and_then(|r| r.subscription_id)
        .expect("a subscription");
    let admin = world.service.admin_addr.unwrap();
    let host = format!("Host: {admin}");
    let users = ask(admin, "GET", "/api/users?q=kim", &[&host]).await;
    assert_eq!(users.status, 401, "{users:?}");
    assert!(!users.body.contains(&subscription), "{users:?}");
    let bearer = format!("Authorization: Bearer {}", world::ADMIN_TOKEN);
    let users = ask(admin, "GET", "/api/users?q=kim", &[&host, &bearer]).await;
    assert!(users.body.contains(&subscription), "{users:?}");
    for path in ["/health", "/metrics"] {
        let open = ask(admin, "GET", path, &[&host]).await;
        assert_eq!(open.status, 200, "{path}: {open:?}");
        assert!(!open.body.contains(&subscription), "{path}: {open:?}");
        assert!(!open.body.contains(world::ADMIN_TOKEN), "{path}: {open:?}");
    }
    world
        .service
        .shutdown(std::time::Duration::from_secs(2))
        .await;
}
