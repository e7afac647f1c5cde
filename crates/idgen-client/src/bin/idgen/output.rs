//! What `idgen` prints: IDs fetched in chunks, several in flight at once, with a progress bar
//! on a terminal; a decoded ID; the kinds.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use idgen_client::{BoundsResponse, Client, DecodeResponse, IdRequest, Kind, KindsResponse};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;

use crate::Failure;
use crate::args::Format;

/// How `-n` IDs are fetched.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub count: u64,
    pub chunk_size: u32,
    pub parallel: u16,
}

/// Runs of more chunks than this get a progress bar (on a terminal): a few requests finish
/// before a bar would be seen.
const CHUNKS_BEFORE_A_BAR: u64 = 3;

/// Fetches `plan.count` IDs, `plan.parallel` chunks at a time, each as the server's text
/// (one ID per line: no string per ID is made on the way). Each group of chunks is printed
/// once all of it is in, and for a sortable kind in the kind's order: the chunks of one group
/// are served concurrently, and each group is asked for only after the one before has
/// arrived, so an ordered group continues the sequence as one request at a time would. Plain
/// output streams group by group, and a failure says how many IDs were printed (those of the
/// failed group's other chunks included). JSON output has the server's shape (`{"id": ...}`
/// for one ID, `{"ids": [...]}` for more) and is written whole at the end, so stdout holds a
/// complete document or nothing.
pub async fn print_ids(
    client: &Client,
    out: &mut impl Write,
    format: Format,
    kind: Kind,
    request: IdRequest,
    plan: Plan,
) -> Result<(), Failure> {
    let progress = Progress::new(plan);
    let mut document = Vec::new();
    let mut printed = 0u64;
    let mut remaining = plan.count;
    while remaining > 0 {
        let Group { mut chunks, ids, failure } =
            fetch_group(client, kind, &request, plan, &mut remaining).await;
        if kind.info().sortable {
            in_order(&mut chunks);
        }
        if let Some(error) = failure {
            progress.clear();
            if format == Format::Plain {
                write_plain(out, &chunks)?;
                printed += ids;
                if printed > 0 {
                    return Err(Failure::MidWay(error, printed));
                }
            }
            return Err(error.into());
        }
        match format {
            Format::Plain => write_plain(out, &chunks)?,
            Format::Json => {
                for id in chunks.iter().flat_map(|chunk| chunk.lines()) {
                    let separator = match (plan.count, printed) {
                        (1, _) => "{\"id\":",
                        (_, 0) => "{\"ids\":[",
                        _ => ",",
                    };
                    write!(document, "{separator}{}", json_string(id))?;
                    printed += 1;
                }
            }
        }
        if format == Format::Plain {
            printed += ids;
        }
        progress.set(printed);
    }
    progress.clear();
    if format == Format::Json {
        let end = if plan.count == 1 { "}" } else { "]}" };
        writeln!(document, "{end}")?;
        out.write_all(&document)?;
    }
    out.flush()?;
    Ok(())
}

/// What one group of requests brought.
struct Group {
    /// The chunks that came back (each the server's lines), in request order.
    chunks: Vec<String>,
    /// How many IDs they hold (the SDK checked each chunk's count).
    ids: u64,
    /// The first failure among the other chunks (each has had its retries).
    failure: Option<idgen_client::Error>,
}

/// Up to `plan.parallel` chunks of the `remaining` IDs, requested at once.
async fn fetch_group(
    client: &Client,
    kind: Kind,
    request: &IdRequest,
    plan: Plan,
    remaining: &mut u64,
) -> Group {
    let mut requests = JoinSet::new();
    for index in 0..plan.parallel {
        if *remaining == 0 {
            break;
        }
        let size =
            u32::try_from(*remaining).map_or(plan.chunk_size, |rest| rest.min(plan.chunk_size));
        *remaining -= u64::from(size);
        let client = client.clone();
        let request = IdRequest { count: Some(size), ..request.clone() };
        requests.spawn(async move { (index, size, client.ids_text(kind, &request).await) });
    }
    let mut chunks = Vec::with_capacity(usize::from(plan.parallel));
    let mut failure = None;
    let mut ids = 0;
    while let Some(joined) = requests.join_next().await {
        // A chunk's task only awaits the SDK; a panic in it is a bug to surface as such.
        let (index, size, answer) =
            joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        match answer {
            Ok(text) => {
                chunks.push((index, text));
                ids += u64::from(size);
            }
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    chunks.sort_unstable_by_key(|(index, _)| *index);
    Group { chunks: chunks.into_iter().map(|(_, text)| text).collect(), ids, failure }
}

/// A sortable kind's order: integer IDs have no leading zeros, so (length, text) is their
/// numeric order; the other sortable kinds are all of one length.
fn key(id: &str) -> (usize, &str) {
    (id.len(), id)
}

/// Puts a sortable kind's chunks in the kind's order. A chunk is in order already, and chunks
/// of one node do not overlap: ordering the chunks by their first ID is enough, checked in
/// one pass over every line; chunks that do overlap (served by several nodes) are sorted
/// line by line into one.
fn in_order(chunks: &mut Vec<String>) {
    chunks.sort_unstable_by(|a, b| key(first_line(a)).cmp(&key(first_line(b))));
    let mut lines = chunks.iter().flat_map(|chunk| chunk.lines());
    let Some(mut previous) = lines.next() else { return };
    let ordered = lines.all(|line| {
        let ascending = key(previous) < key(line);
        previous = line;
        ascending
    });
    if !ordered {
        let mut all: Vec<&str> = chunks.iter().flat_map(|chunk| chunk.lines()).collect();
        all.sort_unstable_by(|a, b| key(a).cmp(&key(b)));
        let mut merged = String::with_capacity(chunks.iter().map(String::len).sum());
        for line in all {
            merged.push_str(line);
            merged.push('\n');
        }
        *chunks = vec![merged];
    }
}

fn first_line(chunk: &str) -> &str {
    chunk.lines().next().unwrap_or("")
}

fn write_plain(out: &mut impl Write, chunks: &[String]) -> io::Result<()> {
    for chunk in chunks {
        // The server's lines as they came: each ends in `\n` (checked by the SDK).
        out.write_all(chunk.as_bytes())?;
    }
    out.flush()
}

/// The progress bar of a long run, drawn on stderr only when it is a terminal.
struct Progress(Option<ProgressBar>);

impl Progress {
    fn new(plan: Plan) -> Self {
        let long = plan.count > CHUNKS_BEFORE_A_BAR * u64::from(plan.chunk_size);
        if !long || !io::stderr().is_terminal() {
            return Self(None);
        }
        let bar = ProgressBar::with_draw_target(Some(plan.count), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{bar:30} {human_pos}/{human_len} IDs, {per_sec}, {eta} left",
        )
        .expect("a valid template");
        bar.set_style(style);
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(Some(bar))
    }

    fn set(&self, printed: u64) {
        if let Some(bar) = &self.0 {
            bar.set_position(printed);
        }
    }

    /// Takes the bar off the screen: a finished run leaves only its output, a failed one
    /// only its error line.
    fn clear(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}

fn json_string(id: &str) -> String {
    serde_json::to_string(id).expect("a string always serialises")
}

pub fn print_decoded(
    out: &mut impl Write,
    format: Format,
    decoded: &DecodeResponse,
) -> io::Result<()> {
    if format == Format::Json {
        return writeln!(out, "{}", serde_json::to_string(decoded).expect("plain data serialises"));
    }
    let DecodeResponse { id, timestamp_ms, time, worker_id, sequence, version, variant, .. } =
        decoded;
    writeln!(out, "id: {id}")?;
    if let Some(timestamp_ms) = timestamp_ms {
        writeln!(out, "timestamp_ms: {timestamp_ms}")?;
    }
    if let Some(time) = time {
        writeln!(out, "time: {time}")?;
    }
    if let Some(worker_id) = worker_id {
        writeln!(out, "worker_id: {worker_id}")?;
    }
    if let Some(sequence) = sequence {
        writeln!(out, "sequence: {sequence}")?;
    }
    if let Some(version) = version {
        writeln!(out, "version: {version}")?;
    }
    if let Some(variant) = variant {
        writeln!(out, "variant: {variant}")?;
    }
    Ok(())
}

/// `key: value` lines, as for a decoded ID; or the server's JSON.
pub fn print_bounds(
    out: &mut impl Write,
    format: Format,
    bounds: &BoundsResponse,
) -> io::Result<()> {
    if format == Format::Json {
        return writeln!(out, "{}", serde_json::to_string(bounds).expect("plain data serialises"));
    }
    let BoundsResponse { kind, timestamp_ms, time, min, max, .. } = bounds;
    writeln!(
        out,
        "kind: {kind}\ntimestamp_ms: {timestamp_ms}\ntime: {time}\nmin: {min}\nmax: {max}"
    )
}

pub fn print_kinds(out: &mut impl Write, format: Format, kinds: &KindsResponse) -> io::Result<()> {
    if format == Format::Json {
        return writeln!(out, "{}", serde_json::to_string(kinds).expect("plain data serialises"));
    }
    for kind in &kinds.kinds {
        let sortable = if kind.sortable { "yes" } else { "no" };
        writeln!(
            out,
            "{}: {} [sortable: {sortable}, bits: {}]",
            kind.name, kind.description, kind.bits
        )?;
    }
    Ok(())
}
