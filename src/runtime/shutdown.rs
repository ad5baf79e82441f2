//! The stop signal every task of `fleetcare run` watches.

/// A stop signal shared by every live task: `true` once shutdown began.
pub type Shutdown = tokio::sync::watch::Receiver<bool>;

/// Waits until shutdown begins (or its sender is gone, which means the
/// same).
pub async fn stopped(shutdown: &mut Shutdown) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
