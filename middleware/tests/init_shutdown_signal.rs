//! `shutdown_signal()` resolves on SIGTERM.

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolves_on_sigterm() {
    use std::time::Duration;
    use tokio::signal::unix::{signal, SignalKind};

    // Keep a listener of our own for the whole test: once Tokio handles SIGTERM the default
    // action (terminate) is replaced, so sending it below cannot kill the test process even
    // before shutdown_signal() has registered.
    let mut own = signal(SignalKind::terminate()).unwrap();
    let waiter = tokio::spawn(tracebridge::shutdown_signal());
    let pid = std::process::id().to_string();
    let resolved = tokio::time::timeout(Duration::from_secs(30), async {
        // shutdown_signal registers on its first poll; repeat until it has seen one.
        while !waiter.is_finished() {
            let status = tokio::process::Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .await
                .unwrap();
            assert!(status.success());
            let _ = own.recv().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        resolved.is_ok(),
        "shutdown_signal did not resolve on SIGTERM"
    );
    waiter.await.unwrap();
}
