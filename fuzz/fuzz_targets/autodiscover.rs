//! Autodiscover: SOAP GetUserSettings and POX replies, and the requests Calvert sends.
//!
//! The input's first byte chooses: `\x01` makes the rest strings for the requests,
//! which must parse back to them; anything else (the seeds are genuine replies) is a
//! reply for both readers. Oracles: each reader fails exactly when the tree fails,
//! with the tree's error; a discovery names a non-blank, trimmed EWS URL or redirect
//! target; a SOAP discovery written out again as a GetUserSettings reply reads back
//! identically.
#![no_main]

#[path = "common/xml_render.rs"]
mod xml_render;

use arbitrary::{Arbitrary, Unstructured};
use calvert::ews::SOAP_NS;
use calvert::ews::autodiscover::{
    AUTODISCOVER_NS, AutodiscoverError, Discovery, UserSettings, get_user_settings_request,
    parse_get_user_settings, parse_pox, pox_request,
};
use calvert::ews::xml;
use libfuzzer_sys::fuzz_target;
use xml_render::{eol, escape_text};

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((1, rest)) => requests(&mut Unstructured::new(rest)),
        _ => reply(data),
    }
});

fn reply(bytes: &[u8]) {
    let Ok(text) = xml::decode(bytes) else { return };
    let tree = xml::parse(text);
    for (soap, read) in [
        (true, parse_get_user_settings(text)),
        (false, parse_pox(text)),
    ] {
        match (&tree, &read) {
            (Err(tree_error), Err(error)) => {
                assert_eq!(*error, AutodiscoverError::Xml(tree_error.clone()));
            }
            (Err(tree_error), Ok(_)) => panic!("read a reply the tree refused: {tree_error}"),
            (Ok(_), Err(error)) => assert!(!error.to_string().trim().is_empty()),
            (Ok(_), Ok(discovery)) => {
                sane(discovery);
                if soap {
                    let document = render_soap(discovery);
                    let again = parse_get_user_settings(&document);
                    assert_eq!(
                        again.as_ref(),
                        Ok(discovery),
                        "changed when written out:\n{document}"
                    );
                }
            }
        }
    }
}

fn blank_or_untrimmed(value: &str) -> bool {
    value.is_empty() || value.trim() != value
}

fn sane(discovery: &Discovery) {
    match discovery {
        Discovery::Found(settings) => {
            assert!(
                !blank_or_untrimmed(&settings.ews_url),
                "EWS URL {:?}",
                settings.ews_url
            );
            for value in [
                &settings.grouping,
                &settings.cas_version,
                &settings.display_name,
            ] {
                assert!(
                    value.as_deref().is_none_or(|v| !blank_or_untrimmed(v)),
                    "{value:?}"
                );
            }
        }
        Discovery::RedirectAddress(target) | Discovery::RedirectUrl(target) => {
            assert!(!blank_or_untrimmed(target), "redirect to {target:?}");
        }
    }
}

fn setting(out: &mut String, name: &str, value: &Option<String>) {
    if let Some(value) = value {
        out.push_str("<a:UserSetting><a:Name>");
        out.push_str(name);
        out.push_str("</a:Name><a:Value>");
        escape_text(value, out);
        out.push_str("</a:Value></a:UserSetting>");
    }
}

/// A discovery as a SOAP GetUserSettings reply.
fn render_soap(discovery: &Discovery) -> String {
    let mut user = String::new();
    match discovery {
        Discovery::Found(UserSettings {
            ews_url,
            grouping,
            cas_version,
            display_name,
        }) => {
            user.push_str("<a:ErrorCode>NoError</a:ErrorCode><a:UserSettings>");
            setting(&mut user, "ExternalEwsUrl", &Some(ews_url.clone()));
            setting(&mut user, "GroupingInformation", grouping);
            setting(&mut user, "CasVersion", cas_version);
            setting(&mut user, "UserDisplayName", display_name);
            user.push_str("</a:UserSettings>");
        }
        Discovery::RedirectAddress(target) | Discovery::RedirectUrl(target) => {
            let code = match discovery {
                Discovery::RedirectAddress(_) => "RedirectAddress",
                _ => "RedirectUrl",
            };
            user.push_str(&format!(
                "<a:ErrorCode>{code}</a:ErrorCode><a:RedirectTarget>"
            ));
            escape_text(target, &mut user);
            user.push_str("</a:RedirectTarget>");
        }
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP_NS}" xmlns:a="{AUTODISCOVER_NS}"><s:Body><a:GetUserSettingsResponseMessage><a:Response><a:ErrorCode>NoError</a:ErrorCode><a:UserResponses><a:UserResponse>{user}</a:UserResponse></a:UserResponses></a:Response></a:GetUserSettingsResponseMessage></s:Body></s:Envelope>"#
    )
}

/// The requests carry the mailbox and URL as given (line ends as XML 1.0 reads them).
fn requests(u: &mut Unstructured) {
    let mailbox = String::arbitrary(u).unwrap_or_default();
    let url = String::arbitrary(u).unwrap_or_default();
    let soap = get_user_settings_request(&mailbox, &url);
    let root = xml::parse(&soap)
        .unwrap_or_else(|e| panic!("GetUserSettings does not parse ({e}):\n{soap}"));
    let named = |name: &str| root.find(AUTODISCOVER_NS, name).map(|e| e.text.clone());
    assert_eq!(named("Mailbox"), Some(eol(&mailbox)), "{soap}");
    let to = root
        .find("http://www.w3.org/2005/08/addressing", "To")
        .map(|e| e.text.clone());
    assert_eq!(to, Some(eol(&url)), "{soap}");
    let pox = pox_request(&mailbox);
    let root =
        xml::parse(&pox).unwrap_or_else(|e| panic!("the POX request does not parse ({e}):\n{pox}"));
    let address = root.find(
        "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006",
        "EMailAddress",
    );
    assert_eq!(
        address.map(|e| e.text.clone()),
        Some(eol(&mailbox)),
        "{pox}"
    );
}
