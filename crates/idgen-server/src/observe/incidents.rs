//! Logging failures once per incident, not once per request: a server refusing 20,000
//! requests a second because its store is down must not write 20,000 lines a second. The
//! first failure of a kind (a refusal reason, a failing store operation) logs a WARN line
//! with its cause; while it goes on, one line a minute says how many followed; when none has
//! come for [`QUIET`], one INFO line closes it with the total. Every single one is still
//! counted in the metrics (`idgen_refused_total`, `idgen_store_operations_total`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// An incident is over when nothing of its kind happened for this long.
pub const QUIET: Duration = Duration::from_secs(10);
/// How often an incident that goes on is reported.
const REMIND: Duration = Duration::from_secs(60);

/// The incidents going on, by what failed (e.g. `refused:not_durable`, `store:raise_mark`).
#[derive(Default)]
pub struct Incidents {
    open: Mutex<HashMap<String, Open>>,
}

struct Open {
    started: Instant,
    last: Instant,
    reminded: Instant,
    count: u64,
    /// The count at the last reminder.
    reported: u64,
}

impl Incidents {
    pub fn new() -> Self {
        Self::default()
    }

    /// One failure of kind `what`; `cause` (called for the first of an incident only) is what
    /// the log line says about it.
    pub fn record(&self, what: &str, cause: impl FnOnce() -> String) {
        let now = Instant::now();
        let mut open = self.open.lock();
        if let Some(incident) = open.get_mut(what) {
            incident.count += 1;
            incident.last = now;
            return;
        }
        open.insert(
            what.to_owned(),
            Open { started: now, last: now, reminded: now, count: 1, reported: 1 },
        );
        drop(open);
        tracing::warn!(
            incident = what,
            cause = cause(),
            "failing (logged once per incident; the metrics count every occurrence)"
        );
    }

    /// Reminds of the incidents that go on and closes the quiet ones; call every second or so.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut open = self.open.lock();
        open.retain(|what, incident| {
            if now.duration_since(incident.last) >= QUIET {
                tracing::info!(
                    incident = what.as_str(),
                    occurrences = incident.count,
                    lasted_secs = incident.last.duration_since(incident.started).as_secs(),
                    "incident over"
                );
                return false;
            }
            if now.duration_since(incident.reminded) >= REMIND {
                tracing::warn!(
                    incident = what.as_str(),
                    occurrences = incident.count,
                    since_last_report = incident.count - incident.reported,
                    "still failing"
                );
                incident.reminded = now;
                incident.reported = incident.count;
            }
            true
        });
    }

    /// How many failures the incident `what` has had, if it is going on.
    pub fn count(&self, what: &str) -> Option<u64> {
        self.open.lock().get(what).map(|incident| incident.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_incident_per_kind_counts_every_failure() {
        // (The log line itself is checked on the binary: tests/api/store_faults.rs.)
        let incidents = Incidents::new();
        for _ in 0..1000 {
            incidents.record("refused:not_durable", || "disk full".to_owned());
        }
        incidents.record("store:raise_mark", || "timeout".to_owned());
        assert_eq!(incidents.count("refused:not_durable"), Some(1000));
        assert_eq!(incidents.count("store:raise_mark"), Some(1));
        incidents.sweep();
        assert_eq!(incidents.count("refused:not_durable"), Some(1000), "not quiet yet");
    }
}
