//! The chaos suite's books, kept apart from the processes so that they can be tested: what
//! every request got ([`Event`]), every ID issued ([`Issued`]), the repeats among them per
//! kind and scope, and per phase (a fault from its injection to the next one) the answers by
//! outcome, the IDs issued and how long each node refused: from a node's first non-200 answer
//! for a kind to the first 200 after it.

use std::collections::BTreeMap;

use super::answer::{Kind, Outcome, Scope};

/// One request of the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// Milliseconds since the suite started, when the request was sent and answered.
    pub sent_ms: u32,
    pub done_ms: u32,
    /// The phase (0: before the first fault; n: the n-th fault run) when it was answered.
    pub phase: u16,
    /// Index of the node in the suite's node table.
    pub node: u8,
    pub kind: Kind,
    pub outcome: Outcome,
    /// IDs it got (0 unless issued).
    pub ids: u32,
}

/// One ID as the load received it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Issued {
    pub value: u128,
    pub sent_ms: u32,
    pub phase: u16,
    pub node: u8,
}

/// One ID seen twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repeat {
    pub value: u128,
    pub first: Issued,
    pub again: Issued,
}

/// The repeats of one kind in one scope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeats {
    pub kind: Kind,
    pub scope: Scope,
    /// IDs checked.
    pub ids: u64,
    /// IDs that had been issued before (an ID seen three times counts twice).
    pub repeats: u64,
    /// The first few, earliest first.
    pub examples: Vec<Repeat>,
}

/// How many repeats [`count_repeats`] keeps as examples.
const EXAMPLES: usize = 10;

/// Counts the repeats in `ids` (sorted in place by value, then by send time).
pub fn count_repeats(kind: Kind, scope: Scope, ids: &mut [Issued]) -> Repeats {
    ids.sort_unstable_by_key(|id| (id.value, id.sent_ms, id.node));
    let mut repeats = 0;
    let mut examples = Vec::new();
    for pair in ids.windows(2) {
        if pair[0].value == pair[1].value {
            repeats += 1;
            if examples.len() < EXAMPLES {
                examples.push(Repeat { value: pair[1].value, first: pair[0], again: pair[1] });
            }
        }
    }
    examples.sort_by_key(|repeat| repeat.again.sent_ms);
    Repeats { kind, scope, ids: ids.len() as u64, repeats, examples }
}

/// A stretch in which a node did not issue a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outage {
    pub node: u8,
    pub kind: Kind,
    /// When the first non-200 arrived.
    pub start_ms: u32,
    /// When the first 200 after it arrived; `None`: none before the phase ended.
    pub end_ms: Option<u32>,
}

impl Outage {
    /// Its length, up to `phase_end_ms` when it did not end.
    pub fn seconds(&self, phase_end_ms: u32) -> f64 {
        f64::from(self.end_ms.unwrap_or(phase_end_ms).saturating_sub(self.start_ms)) / 1000.0
    }
}

/// The outages in `events` (of one phase, any order), per node and kind. `starts` says which
/// outcomes open one (a 200 closes it; other outcomes neither open nor close).
pub fn outages(events: &[Event], starts: impl Fn(Outcome) -> bool) -> Vec<Outage> {
    let mut ordered: Vec<&Event> = events.iter().collect();
    ordered.sort_by_key(|event| event.done_ms);
    let mut open: BTreeMap<(u8, Kind), u32> = BTreeMap::new();
    let mut found = Vec::new();
    for event in ordered {
        let key = (event.node, event.kind);
        if event.outcome == Outcome::Issued {
            if let Some(start_ms) = open.remove(&key) {
                let (node, kind) = key;
                found.push(Outage { node, kind, start_ms, end_ms: Some(event.done_ms) });
            }
        } else if starts(event.outcome) {
            open.entry(key).or_insert(event.done_ms);
        }
    }
    for ((node, kind), start_ms) in open {
        found.push(Outage { node, kind, start_ms, end_ms: None });
    }
    found.sort_by_key(|outage| (outage.start_ms, outage.node, outage.kind));
    found
}

/// What one phase cost.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Requests by [`Outcome::index`].
    pub answers: [u64; 6],
    pub ids: u64,
    /// Longest refusal of one node for one kind: HTTP answers other than 200 only.
    pub refused: Option<Longest>,
    /// The same counting connection failures too (a node that was down).
    pub unreachable: Option<Longest>,
    /// Outages still going on when the phase ended.
    pub unended: Vec<(u8, Kind)>,
    /// The outages (no answer included) added up, in seconds.
    pub outage_seconds: f64,
    /// The node-kind pairs the phase asked.
    pub streams: u32,
    /// How long the phase lasted, and that times [`Tally::streams`] (see [`Tally::last`]).
    pub seconds: f64,
    pub stream_seconds: f64,
}

/// The longest outage of a phase.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Longest {
    pub seconds: f64,
    pub node: u8,
    pub kind: Kind,
}

impl Tally {
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.answers[outcome.index()]
    }

    /// Records that the phase lasted `seconds` (the caller knows when it began).
    pub fn last(&mut self, seconds: f64) {
        self.seconds = seconds;
        self.stream_seconds = seconds * f64::from(self.streams);
    }

    /// The share of node-kind time without IDs: the availability the phase cost.
    pub fn unavailable_share(&self) -> f64 {
        if self.stream_seconds > 0.0 { self.outage_seconds / self.stream_seconds } else { 0.0 }
    }

    /// Adds `other` (another run of the same fault): sums, and the longer outages.
    pub fn absorb(&mut self, other: &Tally) {
        for (sum, add) in self.answers.iter_mut().zip(other.answers) {
            *sum += add;
        }
        self.ids += other.ids;
        self.seconds += other.seconds;
        self.stream_seconds += other.stream_seconds;
        self.outage_seconds += other.outage_seconds;
        self.streams = self.streams.max(other.streams);
        self.refused = longer(self.refused, other.refused);
        self.unreachable = longer(self.unreachable, other.unreachable);
        self.unended.extend_from_slice(&other.unended);
    }
}

fn longer(a: Option<Longest>, b: Option<Longest>) -> Option<Longest> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.seconds > a.seconds { b } else { a }),
        (a, b) => a.or(b),
    }
}

/// The tally of `events` (all of one phase), which ended at `phase_end_ms`.
pub fn tally(events: &[Event], phase_end_ms: u32) -> Tally {
    let mut tally = Tally::default();
    for event in events {
        tally.answers[event.outcome.index()] += 1;
        if event.outcome == Outcome::Issued {
            tally.ids += u64::from(event.ids);
        }
    }
    let longest = |found: &[Outage]| {
        found
            .iter()
            .map(|outage| Longest {
                seconds: outage.seconds(phase_end_ms),
                node: outage.node,
                kind: outage.kind,
            })
            .fold(None, |best, next| longer(best, Some(next)))
    };
    tally.refused = longest(&outages(events, Outcome::is_refusal));
    let all = outages(events, |outcome| outcome != Outcome::Issued);
    tally.unreachable = longest(&all);
    // A fold from +0.0: an empty f64 sum is -0.0, which prints as "-0.0 %".
    tally.outage_seconds =
        all.iter().map(|outage| outage.seconds(phase_end_ms)).fold(0.0, |sum, s| sum + s);
    let streams: std::collections::BTreeSet<(u8, Kind)> =
        events.iter().map(|event| (event.node, event.kind)).collect();
    tally.streams = streams.len() as u32;
    tally.unended =
        all.iter().filter(|outage| outage.end_ms.is_none()).map(|o| (o.node, o.kind)).collect();
    tally
}

/// `events` split by phase (index = phase), for `phases` phases.
pub fn by_phase(events: &[Event], phases: usize) -> Vec<Vec<Event>> {
    let mut split = vec![Vec::new(); phases];
    for event in events {
        if let Some(bucket) = split.get_mut(usize::from(event.phase)) {
            bucket.push(*event);
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    fn issued(value: u128, sent_ms: u32, node: u8) -> Issued {
        Issued { value, sent_ms, phase: 1, node }
    }

    fn event(done_ms: u32, node: u8, kind: Kind, outcome: Outcome) -> Event {
        let ids = u32::from(outcome == Outcome::Issued) * 10;
        Event { sent_ms: done_ms.saturating_sub(1), done_ms, phase: 1, node, kind, outcome, ids }
    }

    #[test]
    fn counts_every_second_sighting_as_a_repeat() {
        let mut ids = vec![issued(5, 30, 1), issued(3, 10, 0), issued(5, 20, 0), issued(9, 1, 2)];
        let found = count_repeats(Kind::Counter, Scope::Redis, &mut ids);
        assert_eq!((found.ids, found.repeats), (4, 1));
        assert_eq!(found.examples[0].first, issued(5, 20, 0));
        assert_eq!(found.examples[0].again, issued(5, 30, 1));
        ids.push(issued(5, 40, 2));
        assert_eq!(count_repeats(Kind::Counter, Scope::Redis, &mut ids).repeats, 2);
        assert_eq!(count_repeats(Kind::Ulid, Scope::All, &mut []).repeats, 0);
    }

    #[test]
    fn an_outage_runs_from_the_first_refusal_to_the_next_200_per_node_and_kind() {
        use Kind::{Counter, Snowflake};
        use Outcome::{Issued, NoAnswer, Regressed, Unavailable};
        let events = [
            event(100, 0, Counter, Issued),
            event(200, 0, Counter, Regressed),
            event(250, 0, Snowflake, Issued), // another kind does not end it
            event(300, 0, Counter, Unavailable),
            event(1_700, 0, Counter, Issued),
            event(400, 1, Counter, NoAnswer), // node 1 was down
            event(900, 1, Counter, Unavailable),
            event(1_000, 1, Counter, Issued),
            event(1_100, 1, Snowflake, Unavailable), // never ends in this phase
        ];
        let refusals = outages(&events, Outcome::is_refusal);
        assert_eq!(
            refusals,
            [
                Outage { node: 0, kind: Counter, start_ms: 200, end_ms: Some(1_700) },
                Outage { node: 1, kind: Counter, start_ms: 900, end_ms: Some(1_000) },
                Outage { node: 1, kind: Snowflake, start_ms: 1_100, end_ms: None },
            ]
        );
        let tally = tally(&events, 2_000);
        assert_eq!(tally.ids, 40);
        assert_eq!((tally.count(Issued), tally.count(NoAnswer), tally.count(Regressed)), (4, 1, 1));
        let refused = tally.refused.unwrap();
        assert_eq!((refused.seconds, refused.node, refused.kind), (1.5, 0, Counter));
        // Counting the connection failure, node 1's counter outage starts at 400 (0.6 s), but
        // node 0's 1.5 s stays the longest; the unended snowflake outage lasts 0.9 s.
        assert_eq!(tally.unreachable.unwrap().seconds, 1.5);
        assert_eq!(tally.unended, [(1, Snowflake)]);
        // 1.5 s (node 0 counter) + 0.6 s (node 1 counter) + 0.9 s (node 1 snowflake), over
        // the 4 node-kind pairs of a 2 s phase.
        let mut tally = tally;
        tally.last(2.0);
        assert_eq!(tally.streams, 4);
        assert!((tally.outage_seconds - 3.0).abs() < 1e-9, "{}", tally.outage_seconds);
        assert!((tally.unavailable_share() - 0.375).abs() < 1e-9);
    }

    #[test]
    fn runs_of_one_fault_add_up() {
        let mut first = tally(&[event(10, 0, Kind::Ulid, Outcome::Issued)], 100);
        let second = tally(
            &[
                event(10, 2, Kind::Counter, Outcome::Unavailable),
                event(60, 2, Kind::Counter, Outcome::Issued),
            ],
            100,
        );
        first.absorb(&second);
        assert_eq!((first.ids, first.count(Outcome::Issued)), (20, 2));
        assert_eq!(first.refused.unwrap().node, 2);
        assert_eq!(format!("{:.1}", tally(&[], 10).outage_seconds), "0.0");
        let split = by_phase(&[event(1, 0, Kind::Ulid, Outcome::Issued)], 3);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [0, 1, 0]);
    }
}
