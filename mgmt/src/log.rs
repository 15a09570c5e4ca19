//! Logging to stderr with a timestamp, for a process that runs in the foreground.

/// Seconds since the epoch with milliseconds, for log lines.
pub fn stamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        eprintln!("{} weir: {}", $crate::log::stamp(), format_args!($($arg)*))
    };
}
