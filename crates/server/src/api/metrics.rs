//! `/metrics`: frps's Prometheus families and labels, built from the statistics registry at each scrape, plus
//! the process's own metrics (`process_*`, on Linux).
//!
//! Families as frps v0.70 names them, so its Grafana dashboards work unchanged: `frp_server_client_counts`,
//! `frp_server_proxy_counts{type}`, `frp_server_proxy_counts_detailed{name,type}`,
//! `frp_server_connection_counts{name,type}`, and the counters `frp_server_traffic_in{name,type}` and
//! `frp_server_traffic_out{name,type}` (bytes since the proxy was first seen; a pruned proxy's series ends).

use prometheus::{Encoder, IntCounterVec, IntGauge, IntGaugeVec, Opts, TextEncoder};

use super::routes::Reply;
use crate::stats::Registry;

/// The `Content-Type` of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Renders the metrics now. Errors (which the encoder only has for invalid names) become a 500.
pub fn render(reg: &Registry, now: i64) -> Reply {
    match try_render(reg, now) {
        Ok(body) => Reply { status: 200, content_type: Some(CONTENT_TYPE), location: None, cache_control: None, body },
        Err(e) => {
            tracing::warn!(error = %e, "cannot render /metrics");
            Reply::text(500, "cannot render metrics\n")
        }
    }
}

fn try_render(reg: &Registry, now: i64) -> prometheus::Result<Vec<u8>> {
    let r = prometheus::Registry::new();
    let clients = IntGauge::new("frp_server_client_counts", "The current client counts of frps")?;
    let proxies = IntGaugeVec::new(Opts::new("frp_server_proxy_counts", "The current proxy counts"), &["type"])?;
    let detailed = IntGaugeVec::new(
        Opts::new("frp_server_proxy_counts_detailed", "The current number of proxies grouped by type and name"),
        &["name", "type"],
    )?;
    let conns = IntGaugeVec::new(
        Opts::new("frp_server_connection_counts", "The current connection counts"),
        &["name", "type"],
    )?;
    let traffic_in = IntCounterVec::new(Opts::new("frp_server_traffic_in", "The total in traffic"), &["name", "type"])?;
    let traffic_out =
        IntCounterVec::new(Opts::new("frp_server_traffic_out", "The total out traffic"), &["name", "type"])?;

    let totals = reg.totals(now);
    clients.set(totals.client_counts);
    for (ty, n) in &totals.proxy_type_counts {
        proxies.with_label_values(&[ty.as_str()]).set(*n);
    }
    for p in reg.proxies(now) {
        let labels = [p.name.as_str(), p.proxy_type.as_str()];
        detailed.with_label_values(&labels).set(i64::from(p.online));
        // UDP proxies have no connections (frps shows none for them either).
        if p.proxy_type != "udp" {
            conns.with_label_values(&labels).set(p.cur_conns());
        }
        traffic_in.with_label_values(&labels).inc_by(p.total_in);
        traffic_out.with_label_values(&labels).inc_by(p.total_out);
    }
    r.register(Box::new(clients))?;
    r.register(Box::new(proxies))?;
    r.register(Box::new(detailed))?;
    r.register(Box::new(conns))?;
    r.register(Box::new(traffic_in))?;
    r.register(Box::new(traffic_out))?;
    #[cfg(target_os = "linux")]
    r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
    let mut buf = Vec::new();
    TextEncoder::new().encode(&r.gather(), &mut buf)?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::ClientLogin;
    use portway_proto::msg::NewProxy;
    use std::sync::atomic::Ordering;

    #[test]
    fn families_keep_frps_names_and_labels() {
        let reg = Registry::default();
        let (key, _) = reg.client_online(ClientLogin { run_id: "r".into(), ..Default::default() }, 1_000);
        let np = NewProxy { proxy_name: "web".into(), proxy_type: "tcp".into(), ..Default::default() };
        reg.proxy_started(&key, np, 16001, 1_000).bytes_in.fetch_add(39, Ordering::Relaxed);
        let r = render(&reg, 1_001);
        let text = String::from_utf8(r.body).unwrap();
        assert!(text.contains("# TYPE frp_server_traffic_in counter"), "{text}");
        assert!(text.contains("frp_server_traffic_in{name=\"web\",type=\"tcp\"} 39"), "{text}");
        assert!(text.contains("frp_server_client_counts 1"), "{text}");
        assert!(text.contains("frp_server_proxy_counts{type=\"tcp\"} 1"), "{text}");
        assert!(!text.contains("_total{"), "no suffix added to frp's counters: {text}");
    }
}
