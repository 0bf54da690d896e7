//! A black-holed collector (accepts TCP, never answers) never blocks span creation, and the
//! guard's drop returns within its bound — over OTLP /HTTP protobuf; the twin is `init_blackhole.rs`.
//! (Own test binary: init installs process-wide state.)

mod init_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_http_collector_blocks_nothing() {
    init_support::black_holed_collector_blocks_nothing("http/protobuf").await;
}
