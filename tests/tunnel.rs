//! The core tunnel end to end on 127.0.0.1: bulk transfers across the transport matrix, concurrency, restarts.

mod support;

use support::*;

use support::scenarios::{bulk, concurrent, restart};

macro_rules! bulk_test {
    ($name:ident, $client:expr, $server:expr, $proxy:expr) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            tokio::time::timeout(TEST_TIMEOUT, bulk($client, $server, $proxy)).await.expect("test timed out");
        }
    };
}

bulk_test!(bulk_64mib_tls_mux_frp_defaults, "", "", "");
bulk_test!(bulk_64mib_tls_no_mux, "transport.tcpMux = false", "transport.tcpMux = false", "");
bulk_test!(bulk_64mib_plain_mux, "transport.tls.enable = false", "", "");
bulk_test!(
    bulk_64mib_plain_no_mux,
    "transport.tls.enable = false\ntransport.tcpMux = false",
    "transport.tcpMux = false",
    ""
);
bulk_test!(bulk_64mib_encrypted, "", "", "transport.useEncryption = true");
bulk_test!(bulk_64mib_compressed, "", "", "transport.useCompression = true");
bulk_test!(
    bulk_64mib_encrypted_and_compressed_no_mux,
    "transport.tcpMux = false",
    "transport.tcpMux = false",
    "transport.useEncryption = true\ntransport.useCompression = true"
);
bulk_test!(bulk_64mib_custom_tls_first_byte, "transport.tls.disableCustomTLSFirstByte = false", "", "");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_concurrent_connections_through_one_proxy() {
    tokio::time::timeout(TEST_TIMEOUT, concurrent("", "", 200)).await.expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reregisters_after_server_restart() {
    tokio::time::timeout(TEST_TIMEOUT, restart("", "")).await.expect("test timed out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reregisters_after_server_restart_without_mux() {
    tokio::time::timeout(TEST_TIMEOUT, restart("transport.tcpMux = false", "transport.tcpMux = false"))
        .await
        .expect("test timed out");
}
