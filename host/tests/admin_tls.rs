//! TLS on the admin port: with `service.admin_tls_cert` and `admin_tls_key` the port
//! speaks only TLS, the session cookie is `Secure`, and a plain HTTP request gets no
//! page; a key without its certificate, or a file that is not PEM, is a problem by key.

#[path = "support/quiet.rs"]
mod quiet;

use std::collections::BTreeMap;
use std::path::Path;

use calvert::DecisionCore;
use calvert::config::ServiceConfig;

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A self-signed certificate for localhost and 127.0.0.1 in `dir`: (cert PEM, paths).
fn certificate(dir: &Path) -> (String, String, String) {
    let made =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let cert = made.cert.pem();
    let cert_path = dir.join("admin.crt");
    let key_path = dir.join("admin.key");
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, made.signing_key.serialize_pem()).unwrap();
    (
        cert,
        cert_path.display().to_string(),
        key_path.display().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admin_port_speaks_tls_with_a_secure_cookie() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("calvert-admin-tls-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (cert, cert_path, key_path) = certificate(&dir.0);
    let lines = format!("admin_tls_cert = \"{cert_path}\"\nadmin_tls_key = \"{key_path}\"");
    let service = quiet::start_with(None, None, &lines).await;
    let admin = service.admin_addr.unwrap();
    let (name, password) = service.first_login.clone().unwrap();

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert.as_bytes()).unwrap())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let base = format!("https://localhost:{}", admin.port());
    let page = client.get(format!("{base}/login")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let login = client
        .post(format!("{base}/login"))
        .form(&[("name", name.as_str()), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303, "{login:?}");
    let cookie = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // Plain HTTP on the TLS port gets no page.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/login", admin.port()))
        .send()
        .await;
    assert!(plain.is_err() || plain.unwrap().status() != 200);
    service.shutdown(std::time::Duration::from_secs(2)).await;
}

#[test]
fn a_missing_half_or_a_bad_file_is_a_problem_by_key() {
    let dir =
        TempDir(std::env::temp_dir().join(format!("calvert-admin-tls-bad-{}", std::process::id())));
    std::fs::create_dir_all(&dir.0).unwrap();
    let (_, cert_path, key_path) = certificate(&dir.0);
    let not_pem = dir.0.join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let core = DecisionCore::load().unwrap();
    let text = |lines: &str| {
        format!(
            "[service]\nzone = \"UTC\"\n{lines}\n[[exchange]]\nname = \"ews\"\nurl = \"http://127.0.0.1:9/EWS/Exchange.asmx\"\nssl = false\nauth = \"basic\"\nuser = \"calvert\"\npassword = \"secret\"\n[[rule]]\nserver = \"ews\"\npattern = \"*\"\n[[telephony]]\nname = \"pbx\"\nkind = \"log\"\n[[telephony_rule]]\ntarget = \"pbx\"\npattern = \"*\"\n"
        )
    };
    let keys = |lines: &str| -> Vec<String> {
        match ServiceConfig::from_toml(
            &text(lines),
            Path::new("calvert.toml"),
            &BTreeMap::new(),
            &mut core.instance(),
        ) {
            Ok(_) => Vec::new(),
            Err(calvert::config::ConfigError::Invalid { problems, .. }) => {
                problems.into_iter().map(|p| p.key).collect()
            }
            Err(other) => panic!("{other}"),
        }
    };
    assert_eq!(
        keys(&format!("admin_tls_key = \"{key_path}\"")),
        ["service.admin_tls_cert"]
    );
    assert_eq!(
        keys(&format!(
            "admin_tls_cert = \"{}\"\nadmin_tls_key = \"{key_path}\"",
            not_pem.display()
        )),
        ["service.admin_tls_cert"]
    );
    assert_eq!(
        keys(&format!(
            "admin_tls_cert = \"{cert_path}\"\nadmin_tls_key = \"{}\"",
            not_pem.display()
        )),
        ["service.admin_tls_key"]
    );
    assert!(
        keys(&format!(
            "admin_tls_cert = \"{cert_path}\"\nadmin_tls_key = \"{key_path}\""
        ))
        .is_empty()
    );
}
