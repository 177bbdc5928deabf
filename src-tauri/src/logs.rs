//! Logs for the window: a `tracing` layer that keeps the last lines in a bounded buffer and broadcasts new ones.
//! Messages are what the engine logs; secrets never reach a log line (the engine's `Secret` type redacts).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use serde::Serialize;
use tokio::sync::broadcast;
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

/// Lines kept for `get_logs`.
pub const CAPACITY: usize = 2000;

/// One log line (docs/ui-contract.md `LogLine`).
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LogLine {
    /// Unix milliseconds.
    pub ts: u64,
    /// TRACE..ERROR.
    pub level: String,
    /// Module path.
    pub target: String,
    /// Message and fields.
    pub message: String,
}

/// The shared buffer.
#[derive(Clone)]
pub struct LogBuffer {
    lines: Arc<Mutex<VecDeque<LogLine>>>,
    tx: broadcast::Sender<LogLine>,
}

impl Default for LogBuffer {
    fn default() -> Self {
        LogBuffer { lines: Arc::new(Mutex::new(VecDeque::with_capacity(CAPACITY))), tx: broadcast::channel(1024).0 }
    }
}

impl LogBuffer {
    /// Every kept line, oldest first.
    pub fn snapshot(&self) -> Vec<LogLine> {
        self.lines.lock().map(|l| l.iter().cloned().collect()).unwrap_or_default()
    }

    /// New lines as they come.
    pub fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.tx.subscribe()
    }

    /// Adds a line, dropping the oldest beyond [`CAPACITY`].
    pub fn push(&self, line: LogLine) {
        if let Ok(mut l) = self.lines.lock() {
            if l.len() == CAPACITY {
                l.pop_front();
            }
            l.push_back(line.clone());
        }
        let _ = self.tx.send(line);
    }

    /// The tracing layer feeding this buffer.
    pub fn layer(&self) -> BufferLayer {
        BufferLayer { buf: self.clone() }
    }
}

/// See [`LogBuffer::layer`].
pub struct BufferLayer {
    buf: LogBuffer,
}

#[derive(Default)]
struct Fields(String, String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        } else {
            self.1.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        } else {
            self.1.push_str(&format!(" {}={value}", field.name()));
        }
    }
}

impl<S: tracing::Subscriber> Layer<S> for BufferLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let mut f = Fields::default();
        event.record(&mut f);
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.buf.push(LogLine {
            ts,
            level: event.metadata().level().to_string(),
            target: event.metadata().target().to_string(),
            message: format!("{}{}", f.0, f.1),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[test]
    fn lines_are_captured_bounded_and_broadcast() {
        let buf = LogBuffer::default();
        let mut rx = buf.subscribe();
        let sub = tracing_subscriber::registry().with(buf.layer());
        tracing::subscriber::with_default(sub, || {
            tracing::warn!(proxy = "web", "proxy refused");
            let first = rx.try_recv().unwrap();
            assert_eq!(first.level, "WARN");
            assert_eq!(first.message, "proxy refused proxy=web");
            for i in 0..CAPACITY + 5 {
                tracing::info!(i, "line");
            }
        });
        let all = buf.snapshot();
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all.last().unwrap().message, format!("line i={}", CAPACITY + 4));
    }
}
