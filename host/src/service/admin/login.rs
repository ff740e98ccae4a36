//! The login page: name and password → a session cookie; logout ends it. Failures
//! are limited per name and per client address ([`super::login_limit`]); the
//! password is checked off the async workers (argon2 is slow on purpose).

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use askama::Template;
use axum::Form;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::access::{Access, check_site};
use super::sessions::{self, random_token};
use super::{accounts, login_limit};
use crate::listener::Connection;
use crate::lock::lock;
use crate::service::clock::wall_clock;
use crate::service::state::Service;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
pub struct Next {
    next: Option<String>,
}

#[derive(Deserialize)]
pub struct Credentials {
    name: String,
    password: String,
    next: Option<String>,
}

/// `GET /login`
pub async fn page(Query(next): Query<Next>) -> Response {
    render(StatusCode::OK, safe_next(next.next.as_deref()), None)
}

/// `POST /login`
pub async fn submit(
    State(service): State<Arc<Service>>,
    connection: Option<axum::Extension<Connection>>,
    headers: HeaderMap,
    Form(form): Form<Credentials>,
) -> Response {
    let (local, peer) = match connection {
        Some(axum::Extension(c)) => (c.local, c.peer.ip()),
        None => (
            std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
        ),
    };
    let config = service.config();
    let access = Access {
        token: None,
        hosts: &config.admin_hosts,
        local,
    };
    if let Err(refusal) = check_site(&access, &headers) {
        return refusal.into_response();
    }
    let next = safe_next(form.next.as_deref());
    let keys = login_limit::keys(&form.name, peer);
    let now = wall_clock();
    if let Err(wait) = lock(&service.admin.logins).check(&keys, now) {
        let mut page = render(
            StatusCode::TOO_MANY_REQUESTS,
            next,
            Some(format!(
                "Too many failed logins: wait {wait} seconds and try again."
            )),
        );
        if let Ok(value) = wait.to_string().parse() {
            page.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return page;
    }
    let account = match service.adapters.store.account(&form.name) {
        Ok(account) => account,
        Err(error) => {
            return render(
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                Some(error.to_string()),
            );
        }
    };
    let password = form.password;
    let checked = tokio::task::spawn_blocking(move || match account {
        Some(account) => accounts::verify(&account, &password).then_some(account),
        None => {
            accounts::verify_nobody(&password);
            None
        }
    })
    .await
    .ok()
    .flatten();
    let Some(account) = checked else {
        lock(&service.admin.logins).failed(&keys, now);
        tracing::warn!(account = %form.name, peer = %peer, "a login failed");
        return render(
            StatusCode::UNAUTHORIZED,
            next,
            Some("Wrong name or password.".into()),
        );
    };
    lock(&service.admin.logins).succeeded(&keys[0]);
    let id = random_token();
    service
        .admin
        .sessions
        .open(id.clone(), &account.name, account.role, random_token(), now);
    tracing::info!(account = %account.name, role = account.role.name(), "an administrator logged in");
    let mut response = Redirect::to(&next).into_response();
    if let Ok(cookie) =
        sessions::set_cookie(Some(&id), service.config().admin_tls.is_some()).parse()
    {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// `POST /logout` (guarded: a session and its CSRF token)
pub async fn logout(State(service): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let id = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(sessions::from_cookie_header);
    if let Some(id) = id {
        service.admin.sessions.close(&id);
    }
    let mut response = Redirect::to("/login").into_response();
    if let Ok(cookie) = sessions::set_cookie(None, service.config().admin_tls.is_some()).parse() {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

fn render(status: StatusCode, next: String, error: Option<String>) -> Response {
    match (LoginPage { next, error }).render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// Where to go after the login: a path on this port, never another site.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(path) if path.starts_with('/') && !path.starts_with("//") && !path.contains('\\') => {
            path.to_string()
        }
        _ => "/users".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn the_login_sends_back_only_to_a_path_of_this_port() {
        assert_eq!(safe_next(Some("/users?q=kim")), "/users?q=kim");
        for other in [
            "//evil.example/",
            "https://evil.example/",
            "/\\evil",
            "users",
        ] {
            assert_eq!(safe_next(Some(other)), "/users", "{other}");
        }
        assert_eq!(safe_next(None), "/users");
    }
}
