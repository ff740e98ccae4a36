//! Which hosts Autodiscover may ask, and where the service account's password may
//! go in clear. A redirect (an http Location, a RedirectUrl, a RedirectAddress's
//! domain) or an SRV record is followed only to a host within the mailbox's domain
//! or in the server's `autodiscover_hosts`; credentials go over plain http, and a
//! discovered `http://` EWS URL is accepted, only for hosts the configuration opts
//! in explicitly (`ssl = false` with the host in `autodiscover_hosts`, or the host
//! of an `http://` `--autodiscover-url`).

use reqwest::Url;

/// `host` is `domain` or a name under it (`mail.flexi.se` in `flexi.se`), compared
/// without case and without a trailing dot. Only whole labels match: `evilflexi.se`
/// is not in `flexi.se`.
pub fn within_domain(host: &str, domain: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    if host.is_empty() || domain.is_empty() {
        return false;
    }
    host == domain
        || host
            .strip_suffix(domain.as_str())
            .is_some_and(|head| head.ends_with('.'))
}

/// `name` as a URL host would be written (lower case, IDN as punycode, no
/// trailing dot), or None when it is not a bare host name (a scheme, port, path or
/// user in it).
pub fn normal_host(name: &str) -> Option<String> {
    let name = name.trim().trim_end_matches('.');
    // A port (`host:443`) is not part of a host; only an IPv6 literal has colons.
    let port = name.contains(':') && !name.starts_with('[') || name.contains("]:");
    if name.is_empty() || port || name.contains(['/', '@', '?', '#']) {
        return None;
    }
    let url = Url::parse(&format!("https://{name}/")).ok()?;
    url.host_str().map(str::to_string)
}

/// The hosts trusted beyond the mailbox's domain, and those allowed plain http.
#[derive(Debug, Clone, Default)]
pub struct HostTrust {
    /// Hosts any mailbox's Autodiscover may be sent to (`autodiscover_hosts`, the
    /// hosts of configured endpoints).
    allowed: Vec<String>,
    /// Hosts that may get credentials over plain http and serve an http EWS URL.
    plain_http: Vec<String>,
}

impl HostTrust {
    /// Also trust these hosts (names that are not bare hosts are left out).
    pub fn allow(&mut self, hosts: &[String]) {
        self.allowed
            .extend(hosts.iter().filter_map(|h| normal_host(h)));
    }

    /// Allow plain http with credentials to these hosts, and an http EWS URL on them.
    pub fn allow_plain_http(&mut self, hosts: &[String]) {
        self.plain_http
            .extend(hosts.iter().filter_map(|h| normal_host(h)));
    }

    /// Whether a mailbox in `domain` may be looked up at `url`: its host is within
    /// the domain or trusted.
    pub fn may_ask(&self, domain: &str, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let domain = normal_host(domain).unwrap_or_else(|| domain.to_ascii_lowercase());
        within_domain(host, &domain) || self.allowed.iter().any(|a| a == host)
    }

    /// Whether credentials may be sent to `url`: https, or http to a host allowed
    /// plain http.
    pub fn carries_credentials(&self, url: &Url) -> bool {
        match url.scheme() {
            "https" => true,
            "http" => url
                .host_str()
                .is_some_and(|host| self.plain_http.iter().any(|p| p == host)),
            _ => false,
        }
    }

    /// Whether a discovered EWS URL may be used: the same rule as for credentials,
    /// since the EWS client signs in there.
    pub fn accepts_ews_url(&self, url: &str) -> bool {
        Url::parse(url).is_ok_and(|url| self.carries_credentials(&url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_within_its_domain_by_whole_labels_only() {
        assert!(within_domain("flexi.se", "flexi.se"));
        assert!(within_domain("Autodiscover.FLEXI.se.", "flexi.se"));
        assert!(within_domain("a.b.flexi.se", "Flexi.SE."));
        assert!(!within_domain("evilflexi.se", "flexi.se"));
        assert!(!within_domain("flexi.se.evil.example", "flexi.se"));
        assert!(!within_domain("se", "flexi.se"));
        assert!(!within_domain("", "flexi.se"));
        assert!(!within_domain("flexi.se", ""));
    }

    #[test]
    fn only_bare_host_names_are_hosts() {
        assert_eq!(
            normal_host("Mail.Contoso.NET."),
            Some("mail.contoso.net".into())
        );
        let idn = normal_host("Räksmörgås.se").unwrap_or_default();
        assert!(idn.starts_with("xn--") && idn.ends_with(".se"), "{idn}");
        assert_eq!(normal_host("127.0.0.1"), Some("127.0.0.1".into()));
        assert_eq!(normal_host("[::1]"), Some("[::1]".into()));
        for bad in [
            "",
            "https://mail.contoso.net",
            "mail.contoso.net:443",
            "[::1]:443",
            "a/b",
            "u@h",
        ] {
            assert_eq!(normal_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_parsed_host_is_compared_never_a_prefix_of_the_text() {
        let mut trust = HostTrust::default();
        trust.allow(&["mail.contoso.net".into()]);
        let ask = |url: &str| trust.may_ask("flexi.se", &Url::parse(url).unwrap());
        assert!(ask(
            "https://autodiscover.flexi.se/autodiscover/autodiscover.svc"
        ));
        assert!(ask("https://MAIL.contoso.net:8443/x"));
        assert!(!ask(
            "https://flexi.se.evil.example/autodiscover/autodiscover.svc"
        ));
        assert!(!ask(
            "https://flexi.se@evil.example/autodiscover/autodiscover.svc"
        ));
        assert!(!ask("https://evil.example/flexi.se/autodiscover.svc"));
        assert!(!ask("https://mail.contoso.net.evil.example/"));
    }

    #[test]
    fn plain_http_only_to_hosts_opted_in() {
        let mut trust = HostTrust::default();
        let url = |u: &str| Url::parse(u).unwrap();
        assert!(trust.carries_credentials(&url("https://mail.flexi.se/EWS/Exchange.asmx")));
        assert!(!trust.carries_credentials(&url("http://mail.flexi.se/EWS/Exchange.asmx")));
        assert!(!trust.accepts_ews_url("http://127.0.0.1:8080/EWS/Exchange.asmx"));
        trust.allow_plain_http(&["127.0.0.1".into()]);
        assert!(trust.accepts_ews_url("http://127.0.0.1:8080/EWS/Exchange.asmx"));
        assert!(!trust.accepts_ews_url("http://localhost:8080/EWS/Exchange.asmx"));
        assert!(!trust.accepts_ews_url("ftp://127.0.0.1/EWS"));
        assert!(!trust.accepts_ews_url("not a url"));
    }
}
