//! A black-holed collector (accepts TCP, never answers) never blocks span creation, and the
//! guard's drop returns within its bound — over OTLP /gRPC; the twin is `init_blackhole_http.rs`.
//! (Own test binary: init installs process-wide state.)

mod init_support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn black_holed_grpc_collector_blocks_nothing() {
    init_support::black_holed_collector_blocks_nothing("grpc").await;
}
