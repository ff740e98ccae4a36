//! Reading the service's `/metrics` text (Prometheus format) in tests.

#![allow(dead_code)]

/// The value of one series, `name` with its labels exactly as printed (e.g.
/// `calvert_calendar_reads_total{outcome="ok"}`); 0 when the series is absent (a
/// counter not yet incremented is not printed).
pub fn value(metrics: &str, series: &str) -> f64 {
    metrics
        .lines()
        .filter_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .find_map(|rest| rest.trim().parse().ok())
        .unwrap_or(0.0)
}

#[test]
fn a_series_is_found_by_its_exact_name_and_labels() {
    let text = "# HELP x\ncalvert_outbox_depth 30\ncalvert_reads_total{outcome=\"ok\"} 6\n";
    assert_eq!(value(text, "calvert_outbox_depth"), 30.0);
    assert_eq!(value(text, "calvert_outbox_dep"), 0.0);
    assert_eq!(value(text, "calvert_reads_total{outcome=\"ok\"}"), 6.0);
    assert_eq!(value(text, "calvert_reads_total{outcome=\"failed\"}"), 0.0);
}
