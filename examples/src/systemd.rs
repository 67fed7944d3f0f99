//! Telling systemd how the service is doing (`Type=notify`, see `examples/packaging/presenced.service`): `READY=1`
//! once every listener is open, `STOPPING=1` when a stop begins. Outside systemd (no `NOTIFY_SOCKET`) nothing is
//! sent.

/// Sends `state` to the service manager, if there is one; a failure is logged, never fatal.
pub fn notify(state: sd_notify::NotifyState<'_>) {
    if std::env::var_os("NOTIFY_SOCKET").is_none() {
        return;
    }
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}
