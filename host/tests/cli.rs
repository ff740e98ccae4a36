//! `calvert` as a user runs it: `eval` per ../shared/spec/eval-io.md, `demo`, `inspect`.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn calvert(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calvert"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calvert starts");
    if let Some(text) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(text.as_bytes())
            .expect("stdin accepts the request");
    }
    drop(child.stdin.take());
    child.wait_with_output().expect("calvert finishes")
}

fn eval(request: &str) -> (i32, serde_json::Value, String) {
    let out = calvert(&["eval"], Some(request));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let answer = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (
        out.status.code().unwrap_or(-1),
        answer,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn repo(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(path)
}

const SPEC_DECIDE: &str = r#"{
  "op": "decide",
  "now": "2026-11-25T09:30:00Z",
  "zone": "Europe/Stockholm",
  "policy": {
    "divert_on": ["busy", "oof"],
    "count_tentative_response": false,
    "default_reason": "back",
    "oof_reason": null,
    "return_time": "block_end"
  },
  "triggers": [{"word": "lunch", "reason": "LUNCH"}, {"word": "möte", "reason": "MEETING"}],
  "items": [{
    "id": "AAMk1", "subject": "Lunch med Eva",
    "start": "2026-11-25T11:00:00Z", "end": "2026-11-25T12:00:00Z",
    "free_busy": "busy", "response": "organizer",
    "is_meeting": false, "is_cancelled": false,
    "kind": "single", "sensitivity": "normal"
  }]
}"#;

#[test]
fn spec_decide_example() {
    // At 09:30 the lunch is still ahead: nothing diverts and the host wakes at 11:00.
    let (code, answer, _) = eval(SPEC_DECIDE);
    assert_eq!(code, 0);
    assert_eq!(
        answer,
        serde_json::json!({"diversion": null, "next_change": "2026-11-25T11:00:00Z", "skipped": []})
    );
    // During the lunch, the answer the spec shows.
    let (code, answer, _) = eval(&SPEC_DECIDE.replace("09:30:00Z", "11:30:00Z"));
    assert_eq!(code, 0);
    assert_eq!(
        answer["diversion"],
        serde_json::json!({"reason": "LUNCH", "until": "2026-11-25T12:00:00Z",
                           "until_local": "2026-11-25T13:00:00+01:00", "item_id": "AAMk1"})
    );
    assert_eq!(answer["next_change"], "2026-11-25T12:00:00Z");
}

#[test]
fn spec_route_resolve_trigger_and_fingerprint_examples() {
    let (code, answer, _) = eval(
        r#"{"op": "route", "address": "Kim@Support.Flexi.se",
            "rules": [{"server": "mail1", "pattern": "support.flexi.se", "priority": 2},
                      {"server": "mail2", "pattern": "flexi.se", "priority": 1}]}"#,
    );
    assert_eq!((code, answer), (0, serde_json::json!({"server": "mail1"})));
    let (code, answer, _) = eval(
        r#"{"op": "route", "address": "kim@example.com", "rules": [{"server": "mail1", "pattern": "flexi.se", "priority": 1}]}"#,
    );
    assert_eq!(
        (code, answer),
        (0, serde_json::json!({"server": null, "error": "no_route"}))
    );
    let (code, answer, _) = eval(
        r#"{"op": "resolve_trigger", "subject": "Möte sedan lunch",
            "triggers": [{"word": "lunch", "reason": "LUNCH"}, {"word": "möte", "reason": "MEETING"}]}"#,
    );
    assert_eq!(
        (code, answer),
        (
            0,
            serde_json::json!({"reason": "MEETING", "word": "möte", "at": 0})
        )
    );
    let (code, answer, _) = eval(
        r#"{"op": "resolve_trigger", "subject": "Tandläkare", "triggers": [{"word": "lunch", "reason": "LUNCH"}]}"#,
    );
    assert_eq!((code, answer), (0, serde_json::json!({"reason": null})));
    let item = r#"{"id": "AAMk1", "subject": "Kundmöte", "location": "Rum 4",
      "body": "", "start": "2026-11-26T09:00:00Z", "end": "2026-11-26T10:00:00Z",
      "is_all_day": false, "reminder_minutes": 15, "sensitivity": "normal",
      "response": "organizer", "kind": "single", "is_cancelled": false,
      "created": "2026-11-20T08:00:00Z", "modified": "2026-11-20T08:00:00Z"}"#;
    let (code, a, _) = eval(&format!(r#"{{"op": "fingerprint", "item": {item}}}"#));
    assert_eq!(code, 0);
    let fp = a["fingerprint"]
        .as_str()
        .expect("a fingerprint string")
        .to_string();
    // Not id, created or modified; any basic field changes it.
    let same = item
        .replace("AAMk1", "B17")
        .replace("2026-11-20T08:00:00Z", "2026-11-21T08:00:00Z");
    assert_eq!(
        eval(&format!(r#"{{"op": "fingerprint", "item": {same}}}"#)).1["fingerprint"],
        fp.as_str()
    );
    let moved = item.replace("10:00:00Z", "10:30:00Z");
    assert_ne!(
        eval(&format!(r#"{{"op": "fingerprint", "item": {moved}}}"#)).1["fingerprint"],
        fp.as_str()
    );
}

#[test]
fn spec_plan_sync_example_shape() {
    let out = calvert(
        &[
            "eval",
            repo("examples/plan_sync.json")
                .to_str()
                .expect("utf-8 path"),
        ],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(
        answer,
        serde_json::json!({
            "actions": [
                {"action": "update", "side": "business", "exchange_id": "AAMk1", "business_id": "B17"},
                {"action": "create", "side": "exchange", "exchange_id": null, "business_id": "B18"}
            ],
            "report": {"skipped": [{"side": "exchange", "id": "AAMk9", "why": "recurring"}], "conflicts": [], "detached": []}
        })
    );
}

#[test]
fn every_complete_json_request_in_the_spec_answers() {
    // Where ../shared is beside the repository, run every request in eval-io.md that
    // is complete JSON (the plan_sync one has placeholders and is covered above).
    let spec = repo("../shared/spec/eval-io.md");
    let Ok(text) = std::fs::read_to_string(&spec) else {
        eprintln!("{} not found; skipped", spec.display());
        return;
    };
    let mut ran = 0;
    for block in text.split("```json").skip(1) {
        let body = block.split("```").next().unwrap_or("");
        let Ok(value) = serde_json::from_str::<serde_json::Value>(body) else {
            continue;
        };
        if value.get("op").is_none() {
            continue;
        }
        let (code, answer, stderr) = eval(body);
        assert_eq!(code, 0, "{body}\n{stderr}");
        assert!(answer.is_object(), "{body}");
        ran += 1;
    }
    assert!(ran >= 4, "only {ran} requests found in {}", spec.display());
}

#[test]
fn bad_input_is_exit_2_with_a_sentence() {
    let (code, _, stderr) = eval(r#"{"op": "route", "address": "a@b.se", "colour": "blue"}"#);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown field `colour`"), "{stderr}");
    let (code, _, stderr) = eval(
        r#"{"op": "route", "address": "a@flexi.se", "rules": [{"server": "mail1", "pattern": "flexi.se", "priority": 1},
                                                              {"server": "mail2", "pattern": "FLEXI.se", "priority": 1}]}"#,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("rule 1") && stderr.contains("rule 2"),
        "{stderr}"
    );
    let (code, _, stderr) = eval(
        r#"{"op": "resolve_trigger", "subject": "x", "triggers": [{"word": "Möte", "reason": "A"}, {"word": "MÖTE", "reason": "B"}]}"#,
    );
    assert_eq!(code, 2);
    assert!(
        stderr.contains("\"Möte\"") && stderr.contains("\"MÖTE\""),
        "{stderr}"
    );
    let (code, _, stderr) = eval("{ not json");
    assert_eq!(code, 2);
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    let (code, _, stderr) =
        eval(r#"{"op": "decide", "now": "2026-11-25T09:30:00Z", "zone": "Atlantis"}"#);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("unknown time zone \"Atlantis\""),
        "{stderr}"
    );
}

#[test]
fn warnings_go_to_standard_error() {
    let (code, answer, stderr) = eval(
        r#"{"op": "decide", "now": "2026-11-25T09:30:00Z", "zone": "W. Europe Standard Time",
            "items": [{"id": "x", "start": "2026-11-24T23:00:00Z", "end": "2026-11-25T23:00:00Z",
                       "is_all_day": true, "zone": "Nowhere Standard Time"}]}"#,
    );
    assert_eq!(code, 0);
    assert_eq!(answer["diversion"]["reason"], "back");
    assert!(stderr.contains("Nowhere Standard Time"), "{stderr}");
}

#[test]
fn file_and_stdin_and_dash() {
    let path = repo("examples/route.json");
    let from_file = calvert(&["eval", path.to_str().expect("utf-8")], None);
    let text = std::fs::read_to_string(&path).expect("example exists");
    let from_stdin = calvert(&["eval"], Some(&text));
    let from_dash = calvert(&["eval", "-"], Some(&text));
    assert_eq!(from_file.stdout, from_stdin.stdout);
    assert_eq!(from_file.stdout, from_dash.stdout);
    let missing = calvert(&["eval", "/nonexistent/request.json"], None);
    assert_eq!(missing.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("cannot read /nonexistent/request.json")
    );
}

#[test]
fn demo_runs_the_service_through_a_day() {
    let started = std::time::Instant::now();
    let out = calvert(&["demo"], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    let timeline = String::from_utf8_lossy(&out.stdout);
    // Each phone's calls, in order (minutes may shift on a busy machine).
    let calls = |who: &str| -> Vec<String> {
        timeline
            .lines()
            .filter_map(|line| line.get(7..))
            .filter(|rest| rest.starts_with(who))
            .map(|rest| {
                rest[who.len()..]
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|call| call.starts_with("SET") || call.starts_with("CLEAR"))
            .collect()
    };
    assert_eq!(
        calls("kim@flexi.se"),
        [
            "SET MEETING until 10:00",
            "CLEAR",
            "SET MEETING until 10:30",
            "CLEAR",
            "SET LUNCH until 11:45",
            "SET LUNCH until 12:15",
            "CLEAR",
        ],
        "{timeline}"
    );
    assert_eq!(
        calls("eva@flexi.se"),
        [
            "SET COURSE until 2026-11-26 00:00",
            "SET LUNCH until 2026-11-26 00:00",
            "SET COURSE until 2026-11-26 00:00",
        ],
        "{timeline}"
    );
    // The manual diversion is held, and the calendar takes over once it is gone.
    assert_eq!(
        calls("ola@flexi.se"),
        [
            "SET VACATION until 2026-11-27 00:00",
            "SET VACATION until 2026-11-27 00:00",
        ],
        "{timeline}"
    );
    let manual = timeline.find("diverts ola by hand").unwrap();
    let removed = timeline.find("removes ola's manual diversion").unwrap();
    assert!(
        !timeline[manual..removed].contains("ola@flexi.se   SET"),
        "{timeline}"
    );
    // The outage: calls wait, then arrive.
    assert!(
        timeline.contains("telephony down: the call waits in the outbox"),
        "{timeline}"
    );
}

/// `serve --check` passes an admin port open to other hosts or without a token, with
/// one warning each on standard error; a loopback port with a token, without a word.
#[test]
fn serve_check_warns_of_an_exposed_admin_port() {
    let dir = std::env::temp_dir().join(format!("calvert-serve-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("calvert.toml");
    let write = |service: &str| {
        let text = format!(
            "[service]\n{service}\n{}",
            r#"
            [[exchange]]
            name = "mail1"
            url = "https://mail1.flexi.se/EWS/Exchange.asmx"
            auth = "basic"
            user = "calvert"
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
            "#
        );
        std::fs::write(&config, text).unwrap();
    };
    let check = || {
        let out = Command::new(env!("CARGO_BIN_EXE_calvert"))
            .args(["serve", "--check", "--config"])
            .arg(&config)
            .env("ADMIN_TOKEN", "0123456789abcdef-0123")
            .output()
            .expect("calvert runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    write("admin_listen = \"0.0.0.0:9185\"");
    let stderr = check();
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.contains("warning:")).collect();
    assert_eq!(warnings.len(), 2, "{stderr}");
    assert!(warnings[0].contains("0.0.0.0:9185"), "{stderr}");
    assert!(warnings[1].contains("admin_token_env"), "{stderr}");
    write("admin_listen = \"127.0.0.1:9185\"\nadmin_token_env = \"ADMIN_TOKEN\"");
    let stderr = check();
    assert!(!stderr.contains("warning"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn inspect_shows_no_imports() {
    let out = calvert(&["inspect"], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("imports: none"));
}

/// `calvert check` against the simulator over HTTPS: each failure says what to fix.
mod check_failures {
    use super::*;
    use calvert_exchange_sim::{Exchange, Server, SimItem};

    struct Https {
        server: Server,
        ca: PathBuf,
        // Dropped last: the simulator runs on it.
        _runtime: tokio::runtime::Runtime,
    }

    impl Drop for Https {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.ca);
        }
    }

    fn https() -> Https {
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let exchange = Exchange::default();
        exchange.add_account(
            "calvert",
            "secret",
            Some(&["kim@flexi.se", "ghost@flexi.se"]),
        );
        exchange.add_account("FLEXI\\calvert-svc", "winter-2026", Some(&["kim@flexi.se"]));
        exchange.add_mailbox("kim@flexi.se");
        exchange.add_mailbox("eva@flexi.se");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .as_secs() as i64;
        exchange.put_item(
            "kim@flexi.se",
            SimItem::appointment("kim-now", "Lunch", now - 300, now + 1200),
        );
        let server = runtime
            .block_on(calvert_exchange_sim::start_https(exchange))
            .expect("the simulator starts");
        let ca = std::env::temp_dir().join(format!(
            "calvert-cli-{}-{}.pem",
            std::process::id(),
            server.addr.port()
        ));
        std::fs::write(&ca, server.certificate_pem().expect("an https simulator"))
            .expect("the CA file is written");
        Https {
            server,
            ca,
            _runtime: runtime,
        }
    }

    /// `calvert check MAILBOX --url URL ARGS…` with the password; (success, stdout, stderr).
    fn check(url: &str, mailbox: &str, args: &[&str], password: &str) -> (bool, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_calvert"))
            .args(["check", mailbox, "--url", url, "--timeout", "10"])
            .args(args)
            .env("CALVERT_EWS_PASSWORD", password)
            .output()
            .expect("calvert runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    }

    #[test]
    fn an_unresolvable_host_is_a_dns_message() {
        let (ok, _, stderr) = check(
            "https://mail.flexi.invalid/EWS/Exchange.asmx",
            "kim@flexi.se",
            &["--user", "calvert"],
            "secret",
        );
        assert!(!ok);
        assert!(
            stderr.contains("\"mail.flexi.invalid\"")
                && stderr.contains("does not resolve")
                && stderr.contains("check the spelling of the EWS URL"),
            "{stderr}"
        );
    }

    #[test]
    fn a_self_signed_server_needs_its_ca_bundle() {
        let sim = https();
        let url = sim.server.ews_url();
        let (ok, _, stderr) = check(&url, "kim@flexi.se", &["--user", "calvert"], "secret");
        assert!(!ok);
        assert!(
            stderr.contains(&url) && stderr.contains("--ca-bundle") && stderr.contains("TLS"),
            "{stderr}"
        );
        let ca = sim.ca.to_string_lossy().to_string();
        let (ok, stdout, stderr) = check(
            &url,
            "kim@flexi.se",
            &["--user", "calvert", "--ca-bundle", &ca],
            "secret",
        );
        assert!(ok, "{stderr}");
        assert!(stdout.contains("1 calendar items"), "{stdout}");
    }

    #[test]
    fn a_configured_server_is_checked_from_calvert_toml() {
        let sim = https();
        let dir = std::env::temp_dir().join(format!(
            "calvert-check-config-{}-{}",
            std::process::id(),
            sim.server.addr.port()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("calvert.toml");
        std::fs::write(
            &config,
            format!(
                r#"
                [[exchange]]
                name = "mail1"
                url = "{}"
                auth = "basic"
                user = "calvert"
                password_env = "CHECK_PW"
                ca_bundle = "{}"
                [[rule]]
                server = "mail1"
                pattern = "flexi.se"
                [[telephony]]
                name = "log"
                kind = "log"
                [[telephony_rule]]
                target = "log"
                pattern = "*"
                [[trigger]]
                word = "Lunch"
                reason = "LUNCH"
                "#,
                sim.server.ews_url(),
                sim.ca.display()
            ),
        )
        .unwrap();
        let run = |mailbox: &str| {
            Command::new(env!("CARGO_BIN_EXE_calvert"))
                .args(["check", mailbox, "--timeout", "10", "--config"])
                .arg(&config)
                .env("CHECK_PW", "secret")
                .output()
                .expect("calvert runs")
        };
        let out = run("kim@flexi.se");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("1 calendar items") && stdout.contains("LUNCH"),
            "{stdout}"
        );
        // A mailbox no rule routes: the message names the file and the fix.
        let out = run("kim@elsewhere.se");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(
            stderr.contains("no [[rule]]") && stderr.contains("calvert.toml"),
            "{stderr}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn wrong_passwords_say_which_account_and_what_to_check() {
        let sim = https();
        let url = sim.server.ews_url();
        let ca = sim.ca.to_string_lossy().to_string();
        let (ok, _, stderr) = check(
            &url,
            "kim@flexi.se",
            &["--user", "calvert", "--ca-bundle", &ca],
            "wrong",
        );
        assert!(!ok);
        assert!(
            stderr.contains("\"calvert\"") && stderr.contains("check the user name and password"),
            "{stderr}"
        );
        let ntlm = [
            "--auth",
            "ntlm",
            "--user",
            "FLEXI\\calvert-svc",
            "--ca-bundle",
            &ca,
        ];
        let (ok, stdout, stderr) = check(&url, "kim@flexi.se", &ntlm, "winter-2026");
        assert!(ok, "{stderr}");
        assert!(stdout.contains("now: diverted"), "{stdout}");
        let (ok, _, stderr) = check(&url, "kim@flexi.se", &ntlm, "summer-2026");
        assert!(!ok);
        assert!(
            stderr.contains("NTLM")
                && stderr.contains("FLEXI\\\\calvert-svc")
                && stderr.contains("check the password"),
            "{stderr}"
        );
    }

    #[test]
    fn a_denied_or_missing_mailbox_is_named_with_the_fix() {
        let sim = https();
        let url = sim.server.ews_url();
        let ca = sim.ca.to_string_lossy().to_string();
        let args = ["--user", "calvert", "--ca-bundle", ca.as_str()];
        let (ok, _, stderr) = check(&url, "eva@flexi.se", &args, "secret");
        assert!(!ok);
        assert!(
            stderr.contains("\"calvert\" may not impersonate eva@flexi.se")
                && stderr.contains("ErrorImpersonateUserDenied")
                && stderr.contains(
                    "New-ManagementRoleAssignment -Role ApplicationImpersonation -User calvert"
                ),
            "{stderr}"
        );
        let (ok, _, stderr) = check(&url, "ghost@flexi.se", &args, "secret");
        assert!(!ok);
        assert!(
            stderr.contains("knows no mailbox ghost@flexi.se")
                && stderr.contains("ErrorNonExistentMailbox")
                && stderr.contains("check the address"),
            "{stderr}"
        );
    }
}

/// A request over the eval cap (16 MiB): a route whose address is huge.
fn oversized_request() -> String {
    format!(
        r#"{{"op": "route", "address": "{}@flexi.se", "rules": []}}"#,
        "k".repeat(17 << 20)
    )
}

/// One line naming the cap, and nothing of the guest's insides.
fn assert_one_sentence_about_the_cap(out: &Output) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("larger than 16 MiB"), "{stderr}");
    assert!(!stderr.contains("backtrace"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_request_over_the_cap_is_one_sentence_from_a_file() {
    let path = std::env::temp_dir().join(format!("calvert-huge-{}.json", std::process::id()));
    std::fs::write(&path, oversized_request()).expect("temp dir is writable");
    let out = calvert(&["eval", path.to_str().expect("utf-8")], None);
    std::fs::remove_file(&path).expect("temp file removed");
    assert_one_sentence_about_the_cap(&out);
}

#[test]
fn a_request_over_the_cap_is_one_sentence_from_standard_input() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_calvert"))
        .arg("eval")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("calvert starts");
    let mut stdin = child.stdin.take().expect("stdin");
    // calvert stops reading at the cap, so the rest may meet a closed pipe.
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(oversized_request().as_bytes());
    });
    let out = child.wait_with_output().expect("calvert finishes");
    writer.join().expect("the writer ends");
    assert_one_sentence_about_the_cap(&out);
}

/// `calvert config export` writes the configuration in force (before any start: the
/// file as written, said so on standard error); `calvert config adopt` makes the file
/// the configuration in force and keeps the text it replaced beside the store.
#[test]
fn config_export_and_adopt_work_on_the_store() {
    let dir = std::env::temp_dir().join(format!("calvert-config-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("calvert.toml");
    let text = |word: &str| {
        format!(
            "# Flexi\n[service]\nstate_dir = \"state\"\nadmin_listen = \"\"\n{}\n[[trigger]]\nword = \"{word}\"\nreason = \"X\"\n",
            r#"
            [[exchange]]
            name = "mail1"
            url = "https://mail1.flexi.se/EWS/Exchange.asmx"
            auth = "basic"
            user = "calvert"
            password = "x"
            [[rule]]
            server = "mail1"
            pattern = "flexi.se"
            [[telephony]]
            name = "log"
            kind = "log"
            [[telephony_rule]]
            target = "log"
            pattern = "*""#
        )
    };
    let run = |command: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_calvert"))
            .args(["config", command, "--config"])
            .arg(&config)
            .output()
            .expect("calvert runs");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{command}: {stderr}");
        (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
    };
    std::fs::write(&config, text("Lunch")).unwrap();
    let (exported, note) = run("export");
    assert_eq!(exported, text("Lunch"));
    assert!(note.contains("holds no configuration yet"), "{note}");
    run("adopt");
    std::fs::write(&config, text("Möte")).unwrap();
    let (exported, note) = run("export");
    assert_eq!(
        exported,
        text("Lunch"),
        "the store's text is in force until adopted"
    );
    assert!(note.is_empty(), "{note}");
    let (said, note) = run("adopt");
    assert!(said.contains("is the configuration in force"), "{said}");
    assert!(note.contains("replaced-config.toml"), "{note}");
    let kept = std::fs::read_to_string(dir.join("state/replaced-config.toml")).unwrap();
    assert_eq!(kept, text("Lunch"));
    assert_eq!(run("export").0, text("Möte"));
    let _ = std::fs::remove_dir_all(&dir);
}
