//! What `idgen` prints: IDs fetched in chunks, several in flight at once, with a progress bar
//! on a terminal; a decoded ID; the kinds.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use idgen_client::{Client, DecodeResponse, IdRequest, Kind, KindsResponse};
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

/// Fetches `plan.count` IDs, `plan.parallel` chunks at a time. Each group of chunks is
/// printed once all of it is in, and for a sortable kind sorted in the kind's order: the
/// chunks of one group are served concurrently, and each group is asked for only after the
/// one before has arrived, so a sorted group continues the sequence as one request at a time
/// would. Plain output streams group by group, and a failure says how many IDs were printed
/// (those of the failed group's other chunks included). JSON output has the server's shape
/// (`{"id": ...}` for one ID, `{"ids": [...]}` for more) and is written whole at the end, so
/// stdout holds a complete document or nothing.
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
        let (mut ids, failure) = fetch_group(client, kind, &request, plan, &mut remaining).await;
        if kind.info().sortable {
            // Integer IDs have no leading zeros, so (length, text) is their numeric order; the
            // other sortable kinds are all of one length.
            ids.sort_unstable_by(|a, b| (a.len(), a).cmp(&(b.len(), b)));
        }
        if let Some(error) = failure {
            progress.clear();
            if format == Format::Plain {
                write_plain(out, &ids)?;
                printed += ids.len() as u64;
                if printed > 0 {
                    return Err(Failure::MidWay(error, printed));
                }
            }
            return Err(error.into());
        }
        match format {
            Format::Plain => write_plain(out, &ids)?,
            Format::Json => {
                for id in &ids {
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
            printed += ids.len() as u64;
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

/// Up to `plan.parallel` chunks of the `remaining` IDs, requested at once: the IDs of the
/// chunks that came back, in request order, and the first failure among the others (each
/// chunk has had its retries).
async fn fetch_group(
    client: &Client,
    kind: Kind,
    request: &IdRequest,
    plan: Plan,
    remaining: &mut u64,
) -> (Vec<String>, Option<idgen_client::Error>) {
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
        requests.spawn(async move { (index, client.ids(kind, &request).await) });
    }
    let mut chunks = Vec::with_capacity(usize::from(plan.parallel));
    let mut failure = None;
    while let Some(joined) = requests.join_next().await {
        // A chunk's task only awaits the SDK; a panic in it is a bug to surface as such.
        let (index, answer) =
            joined.unwrap_or_else(|error| std::panic::resume_unwind(error.into_panic()));
        match answer {
            Ok(ids) => chunks.push((index, ids)),
            Err(error) => {
                failure.get_or_insert(error);
            }
        }
    }
    chunks.sort_unstable_by_key(|(index, _)| *index);
    (chunks.into_iter().flat_map(|(_, ids)| ids).collect(), failure)
}

fn write_plain(out: &mut impl Write, ids: &[String]) -> io::Result<()> {
    for id in ids {
        writeln!(out, "{id}")?;
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
    let DecodeResponse { id, timestamp_ms, time, worker_id, sequence, version, variant } = decoded;
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
