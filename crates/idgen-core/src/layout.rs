//! Snowflake layouts (`IDGEN_SNOWFLAKE_LAYOUT`): how many bits of a snowflake hold its time,
//! in what unit, its worker id and its sequence, and in which order. `twitter` (41/10/12 over
//! ms) is the default and the layout every snowflake before this setting had.

use std::fmt;
use std::str::FromStr;

/// Where a layout puts each field, from the most significant bit down: always the time first
/// (so IDs sort by time), then the worker id and the sequence (Twitter) or the sequence and
/// the worker id (Sonyflake).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Order {
    /// time | worker | sequence.
    WorkerThenSequence,
    /// time | sequence | worker (Sonyflake's "machine id" in the low bits).
    SequenceThenWorker,
}

/// A snowflake layout: the bits of each field and the time unit. At most 63 bits in all, so
/// every ID is a positive `i64`; see [`Layout::parse`] for the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Layout {
    time_bits: u32,
    worker_bits: u32,
    sequence_bits: u32,
    unit_ms: u64,
    order: Order,
}

impl Layout {
    /// Twitter's: 41 bits of ms (69.7 years), 10 of worker (1024), 12 of sequence (4096 per ms).
    pub const TWITTER: Layout = Layout::of(41, 10, 12, 1, Order::WorkerThenSequence);
    /// Sonyflake's: 39 bits of 10 ms (174 years), 8 of sequence (256 per 10 ms), 16 of machine
    /// id (65,536), the machine id in the low bits.
    pub const SONYFLAKE: Layout = Layout::of(39, 16, 8, 10, Order::SequenceThenWorker);
    /// Every ID at most 2^53 - 1, which a JavaScript `Number` holds exactly: 41 bits of ms
    /// (69.7 years), 5 of worker (32), 7 of sequence (128 per ms, 128,000 a second per worker).
    pub const JS53: Layout = Layout::of(41, 5, 7, 1, Order::WorkerThenSequence);

    const fn of(
        time_bits: u32,
        worker_bits: u32,
        sequence_bits: u32,
        unit_ms: u64,
        order: Order,
    ) -> Self {
        Layout { time_bits, worker_bits, sequence_bits, unit_ms, order }
    }

    /// Reads `twitter`, `sonyflake`, `js53` or `custom:<time bits>/<worker bits>/<sequence
    /// bits>[/<unit ms>]` (time | worker | sequence, unit 1 ms by default). A custom layout has
    /// at least 1 time bit, at most 16 worker bits, 1 to 16 sequence bits, 63 bits or fewer in
    /// all, and a unit of 1 to 1000 ms. (Whether its time reaches far enough past now depends
    /// on the epoch: see [`Layout::end_ms`].)
    pub fn parse(text: &str) -> Result<Layout, String> {
        match text {
            "twitter" => return Ok(Layout::TWITTER),
            "sonyflake" => return Ok(Layout::SONYFLAKE),
            "js53" => return Ok(Layout::JS53),
            _ => {}
        }
        let usage = "must be twitter, sonyflake, js53 or custom:<time bits>/<worker bits>/<sequence bits>[/<unit ms>]";
        let fields = text.strip_prefix("custom:").ok_or_else(|| usage.to_owned())?;
        let numbers: Vec<u64> = fields
            .split('/')
            .map(|field| field.parse::<u64>().map_err(|_| usage.to_owned()))
            .collect::<Result<_, _>>()?;
        let (time, worker, sequence, unit) = match numbers[..] {
            [time, worker, sequence] => (time, worker, sequence, 1),
            [time, worker, sequence, unit] => (time, worker, sequence, unit),
            _ => return Err(usage.to_owned()),
        };
        if time == 0 || worker > 16 || !(1..=16).contains(&sequence) {
            return Err(format!(
                "custom:{fields}: needs at least 1 time bit, at most 16 worker bits and 1 to 16 sequence bits"
            ));
        }
        if time + worker + sequence > 63 {
            let total = time + worker + sequence;
            return Err(format!(
                "custom:{fields}: {total} bits; at most 63 (an ID is a positive i64)"
            ));
        }
        if !(1..=1000).contains(&unit) {
            return Err(format!("custom:{fields}: the time unit must be 1 to 1000 ms"));
        }
        // At most 63 bits in all: each fits a u32.
        Ok(Layout::of(time as u32, worker as u32, sequence as u32, unit, Order::WorkerThenSequence))
    }

    /// Bits of the time field.
    pub fn time_bits(self) -> u32 {
        self.time_bits
    }

    /// Bits of the worker id.
    pub fn worker_bits(self) -> u32 {
        self.worker_bits
    }

    /// Bits of the sequence.
    pub fn sequence_bits(self) -> u32 {
        self.sequence_bits
    }

    /// Milliseconds per unit of the time field.
    pub fn unit_ms(self) -> u64 {
        self.unit_ms
    }

    /// Which of worker and sequence comes first below the time.
    pub fn order(self) -> Order {
        self.order
    }

    /// The largest worker id.
    pub fn max_worker(self) -> u16 {
        ((1u32 << self.worker_bits) - 1) as u16
    }

    /// The largest sequence number within one unit.
    pub fn max_sequence(self) -> u64 {
        (1 << self.sequence_bits) - 1
    }

    /// The largest value of the time field (units since the epoch).
    pub fn max_time(self) -> u64 {
        (1 << self.time_bits) - 1
    }

    /// The largest ID: every bit of the layout set.
    pub fn max_id(self) -> u64 {
        (1 << (self.time_bits + self.worker_bits + self.sequence_bits)) - 1
    }

    /// Bits below the time field.
    pub fn low_bits(self) -> u32 {
        self.worker_bits + self.sequence_bits
    }

    /// The last Unix ms this layout can hold with `epoch_ms` (saturating).
    pub fn end_ms(self, epoch_ms: u64) -> u64 {
        let span = (self.max_time() + 1).saturating_mul(self.unit_ms);
        epoch_ms.checked_add(span).map_or(u64::MAX, |end| end - 1)
    }

    /// The ID of `time` (units since the epoch), `worker` and `sequence`, each within its field.
    pub fn compose(self, time: u64, worker: u16, sequence: u64) -> u64 {
        let (worker, top) = (u64::from(worker), time << self.low_bits());
        match self.order {
            Order::WorkerThenSequence => top | (worker << self.sequence_bits) | sequence,
            Order::SequenceThenWorker => top | (sequence << self.worker_bits) | worker,
        }
    }

    /// `(time, worker, sequence)` of an ID of this layout (at most [`Layout::max_id`]).
    pub fn split(self, id: u64) -> (u64, u16, u64) {
        let time = id >> self.low_bits();
        let (worker_mask, sequence_mask) = (u64::from(self.max_worker()), self.max_sequence());
        let (worker, sequence) = match self.order {
            Order::WorkerThenSequence => {
                ((id >> self.sequence_bits) & worker_mask, id & sequence_mask)
            }
            Order::SequenceThenWorker => {
                (id & worker_mask, (id >> self.worker_bits) & sequence_mask)
            }
        };
        (time, worker as u16, sequence)
    }

    /// What is recorded in the data dir and in Redis: the fields, their order and the unit,
    /// so that two names of the same layout (`twitter`, `custom:41/10/12`) agree and any
    /// other layout is told apart.
    pub fn fingerprint(self) -> String {
        let (middle, low) = match self.order {
            Order::WorkerThenSequence => {
                (("worker", self.worker_bits), ("sequence", self.sequence_bits))
            }
            Order::SequenceThenWorker => {
                (("sequence", self.sequence_bits), ("worker", self.worker_bits))
            }
        };
        format!(
            "time:{}/{}:{}/{}:{}/unit_ms:{}",
            self.time_bits, middle.0, middle.1, low.0, low.1, self.unit_ms
        )
    }
}

impl Layout {
    /// The layout as one number, for stores that keep numbers (the embedded store's meta
    /// table): the three bit counts, the order and the unit. Equal layouts, equal codes.
    pub fn code(self) -> u64 {
        let order = match self.order {
            Order::WorkerThenSequence => 0,
            Order::SequenceThenWorker => 1,
        };
        u64::from(self.time_bits)
            | u64::from(self.worker_bits) << 8
            | u64::from(self.sequence_bits) << 16
            | order << 24
            | self.unit_ms << 32
    }

    /// The layout of a [`Layout::code`]; `None` for a number no layout has.
    pub fn from_code(code: u64) -> Option<Layout> {
        let order = match (code >> 24) & 0xFF {
            0 => Order::WorkerThenSequence,
            1 => Order::SequenceThenWorker,
            _ => return None,
        };
        let layout = Layout::of(
            (code & 0xFF) as u32,
            ((code >> 8) & 0xFF) as u32,
            ((code >> 16) & 0xFF) as u32,
            code >> 32,
            order,
        );
        (layout.code() == code).then_some(layout)
    }
}

impl Default for Layout {
    fn default() -> Self {
        Layout::TWITTER
    }
}

impl FromStr for Layout {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, String> {
        Layout::parse(text)
    }
}

impl fmt::Display for Layout {
    /// The name it was given by, for the presets; `custom:T/W/S/U` otherwise.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Layout::TWITTER => f.write_str("twitter"),
            Layout::SONYFLAKE => f.write_str("sonyflake"),
            Layout::JS53 => f.write_str("js53"),
            Layout { time_bits, worker_bits, sequence_bits, unit_ms, .. } => {
                write!(f, "custom:{time_bits}/{worker_bits}/{sequence_bits}/{unit_ms}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn presets_and_custom_layouts_parse_and_print_back() {
        for (text, layout) in [
            ("twitter", Layout::TWITTER),
            ("sonyflake", Layout::SONYFLAKE),
            ("js53", Layout::JS53),
            ("custom:41/10/12", Layout::TWITTER),
            ("custom:40/8/8/2", Layout::of(40, 8, 8, 2, Order::WorkerThenSequence)),
        ] {
            assert_eq!(Layout::parse(text), Ok(layout), "{text}");
            assert_eq!(Layout::parse(&layout.to_string()), Ok(layout), "{layout}");
        }
        assert_eq!(Layout::JS53.max_id(), (1 << 53) - 1);
        assert_eq!(Layout::TWITTER.max_id(), i64::MAX as u64);
        assert_eq!(
            (Layout::SONYFLAKE.max_worker(), Layout::SONYFLAKE.max_sequence()),
            (65_535, 255)
        );
        assert_eq!((Layout::JS53.max_worker(), Layout::JS53.max_sequence()), (31, 127));
        // The same bits by two names are one layout; Sonyflake's order is another.
        assert_eq!(
            Layout::TWITTER.fingerprint(),
            Layout::parse("custom:41/10/12/1").unwrap().fingerprint()
        );
        let sony_bits = Layout::parse("custom:39/16/8/10").unwrap();
        assert_ne!(sony_bits.fingerprint(), Layout::SONYFLAKE.fingerprint());
        assert_eq!(Layout::TWITTER.fingerprint(), "time:41/worker:10/sequence:12/unit_ms:1");
    }

    #[test]
    fn codes_round_trip_and_tell_layouts_apart() {
        let layouts = [
            Layout::TWITTER,
            Layout::SONYFLAKE,
            Layout::JS53,
            Layout::parse("custom:39/16/8/10").unwrap(),
        ];
        for layout in layouts {
            assert_eq!(Layout::from_code(layout.code()), Some(layout), "{layout}");
        }
        let codes: std::collections::HashSet<u64> =
            layouts.iter().map(|layout| layout.code()).collect();
        assert_eq!(codes.len(), layouts.len());
        assert_eq!(Layout::from_code(2 << 24), None);
    }

    #[test]
    fn a_custom_layout_outside_the_rules_is_refused_saying_why() {
        for (text, why) in [
            ("snowflake", "must be twitter"),
            ("custom:41/10", "must be twitter"),
            ("custom:41/10/12/1/1", "must be twitter"),
            ("custom:a/10/12", "must be twitter"),
            ("custom:42/10/12", "64 bits; at most 63"),
            ("custom:0/10/12", "at least 1 time bit"),
            ("custom:30/17/12", "at most 16 worker bits"),
            ("custom:30/10/0", "1 to 16 sequence bits"),
            ("custom:30/10/17", "1 to 16 sequence bits"),
            ("custom:30/10/12/0", "1 to 1000 ms"),
            ("custom:30/10/12/1001", "1 to 1000 ms"),
        ] {
            let error = Layout::parse(text).unwrap_err();
            assert!(error.contains(why), "{text}: {error}");
        }
    }

    #[test]
    fn the_end_of_a_layout_follows_its_bits_and_unit() {
        // 2^41 ms after 2020-01-01 is 2089-09-07T15:47:35.551Z.
        let epoch = 1_577_836_800_000;
        assert_eq!(Layout::TWITTER.end_ms(epoch), epoch + (1 << 41) - 1);
        assert_eq!(Layout::SONYFLAKE.end_ms(epoch), epoch + (1 << 39) * 10 - 1);
        assert_eq!(Layout::parse("custom:63/0/0").ok(), None);
        assert_eq!(Layout::parse("custom:62/0/1").unwrap().end_ms(epoch), epoch + (1 << 62) - 1);
        assert_eq!(
            Layout::parse("custom:62/0/1/1000").unwrap().end_ms(epoch),
            u64::MAX,
            "saturates"
        );
    }

    fn layouts() -> impl Strategy<Value = Layout> {
        prop_oneof![
            Just(Layout::TWITTER),
            Just(Layout::SONYFLAKE),
            Just(Layout::JS53),
            (1u32..=40, 0u32..=16, 1u32..=16, 1u64..=1000).prop_filter_map(
                "at most 63 bits",
                |(time, worker, sequence, unit)| {
                    Layout::parse(&format!("custom:{time}/{worker}/{sequence}/{unit}")).ok()
                }
            ),
        ]
    }

    proptest! {
        /// Composing and splitting are inverse, stay within the layout's bits and sort by
        /// (time, then the middle field, then the low one).
        #[test]
        fn compose_and_split_round_trip_within_the_bits(
            layout in layouts(),
            time: u64,
            worker: u16,
            sequence: u64,
        ) {
            let time = time % (layout.max_time() + 1);
            let worker = worker % (layout.max_worker().saturating_add(1).max(1));
            let worker = worker.min(layout.max_worker());
            let sequence = sequence % (layout.max_sequence() + 1);
            let id = layout.compose(time, worker, sequence);
            prop_assert!(id <= layout.max_id());
            prop_assert_eq!(layout.split(id), (time, worker, sequence));
            if time < layout.max_time() {
                let later = layout.compose(time + 1, 0, 0);
                prop_assert!(later > id, "a later unit sorts above: {} {}", later, id);
            }
        }
    }
}
