//! Process signals: SIGTERM/SIGINT start the drain, SIGHUP reloads certificates.

use std::sync::Arc;

use tokio::signal::unix::{SignalKind, signal};

use crate::tls::TlsReloader;

/// Resolves on the first SIGTERM or SIGINT.
pub async fn terminate_signal() -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
    }
    Ok(())
}

/// Reloads every TLS certificate on each SIGHUP; a failed reload keeps the old one.
pub async fn reload_on_hangup(reloaders: Vec<Arc<TlsReloader>>) {
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        return;
    };
    while hangups.recv().await.is_some() {
        for reloader in &reloaders {
            match reloader.reload() {
                Ok(()) => tracing::info!("TLS certificate reloaded"),
                Err(error) => {
                    let message = "TLS reload failed; keeping the old certificate";
                    tracing::error!(error = %error, "{message}")
                }
            }
        }
    }
}
