//! The two text formats of `/metrics`: OpenMetrics, as `prometheus-client` writes it and the
//! Prometheus server asks for, and the Prometheus text format 0.0.4 for every other client
//! (`promtool check metrics`, `curl`, older scrapers), which reads only that one.
//!
//! Owns: choosing the format from the `Accept` header, and rewriting OpenMetrics into 0.0.4.
//! Does not own: the metrics themselves (see [`super::metrics`]).
//!
//! The two differ only in their metadata: an OpenMetrics counter family `x` has samples `x_total`,
//! and 0.0.4 names the family `x_total`; an info family `x` is the gauge `x_info`; 0.0.4 has no
//! `# UNIT` lines and no `# EOF`. Samples are the same lines in both.

/// Content type of OpenMetrics.
pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// Content type of the Prometheus text format.
pub const TEXT_0_0_4: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Whether the client asks for OpenMetrics (the Prometheus server does).
pub fn wants_openmetrics(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| a.contains("application/openmetrics-text"))
}

/// Rewrites OpenMetrics text into the Prometheus text format 0.0.4.
pub fn to_text_0_0_4(openmetrics: &str) -> String {
    let mut out = String::with_capacity(openmetrics.len());
    let mut help: Option<(&str, &str)> = None;
    for line in openmetrics.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help = Some((name, text));
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, "untyped"));
            let (name, kind) = match kind {
                "counter" => (format!("{name}_total"), "counter"),
                "info" => (format!("{name}_info"), "gauge"),
                "gaugehistogram" | "stateset" | "unknown" => (name.to_owned(), "untyped"),
                other => (name.to_owned(), other),
            };
            if let Some((_, text)) = help.take() {
                out.push_str(&format!("# HELP {name} {text}\n"));
            }
            out.push_str(&format!("# TYPE {name} {kind}\n"));
            continue;
        }
        if let Some((name, text)) = help.take() {
            // A HELP without a TYPE: keep it as it is.
            out.push_str(&format!("# HELP {name} {text}\n"));
        }
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_infos_units_and_eof() {
        let om = "\
# HELP markoff_readings_ingested Readings committed.
# TYPE markoff_readings_ingested counter
markoff_readings_ingested_total 42
# HELP markoff_build Build.
# TYPE markoff_build info
markoff_build_info{version=\"0.1.0\"} 1
# HELP markoff_buffer_bytes Bytes used.
# TYPE markoff_buffer_bytes gauge
# UNIT markoff_buffer_bytes bytes
markoff_buffer_bytes 4096
# HELP markoff_commit_seconds Latency.
# TYPE markoff_commit_seconds histogram
markoff_commit_seconds_sum 0.5
markoff_commit_seconds_count 2
markoff_commit_seconds_bucket{le=\"+Inf\"} 2
# EOF
";
        let text = to_text_0_0_4(om);
        assert_eq!(
            text,
            "\
# HELP markoff_readings_ingested_total Readings committed.
# TYPE markoff_readings_ingested_total counter
markoff_readings_ingested_total 42
# HELP markoff_build_info Build.
# TYPE markoff_build_info gauge
markoff_build_info{version=\"0.1.0\"} 1
# HELP markoff_buffer_bytes Bytes used.
# TYPE markoff_buffer_bytes gauge
markoff_buffer_bytes 4096
# HELP markoff_commit_seconds Latency.
# TYPE markoff_commit_seconds histogram
markoff_commit_seconds_sum 0.5
markoff_commit_seconds_count 2
markoff_commit_seconds_bucket{le=\"+Inf\"} 2
"
        );
    }

    #[test]
    fn the_prometheus_server_gets_openmetrics() {
        assert!(wants_openmetrics(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(Some("*/*")));
        assert!(!wants_openmetrics(None));
    }
}
