//! The report's SVG chart of IDs/s against batch size, drawn by hand (log x axis, linear y
//! from 0) so that no plotting crate is needed.

use std::fmt::Write as _;

use crate::model::{BATCH_SIZES, Results};
use crate::target::{millions, thousands};

/// The chart's file name, next to the markdown file.
pub const CHART_FILE: &str = "benchmark-batches.svg";

/// IDs/s the batch target asks for at a batch of 1,000; drawn as a dashed line.
const TARGET_IDS_PER_SECOND: f64 = 10e6;

/// IDs/s against batch size, JSON and text/plain, with the 10 M IDs/s target as a dashed
/// line. `None` when no batch case was measured.
pub fn batch_chart(results: &Results) -> Option<String> {
    let series = batch_series(results);
    let highest = series
        .iter()
        .flat_map(|series| series.points.iter().map(|point| point.1))
        .fold(0.0, f64::max);
    if highest <= 0.0 {
        return None;
    }
    let frame = Frame::new(highest);
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="22" text-anchor="middle" font-size="15">idgen-server: uuid7 IDs/s against batch size (wrk -t2 -c50, {})</text>"##,
        WIDTH / 2.0,
        results.machine.date,
        width = WIDTH,
        height = HEIGHT,
    );
    frame.grid(&mut svg);
    frame.axes(&mut svg);
    for (index, series) in series.iter().enumerate() {
        frame.series(&mut svg, index, series);
    }
    svg.push_str("</svg>\n");
    Some(svg)
}

/// One line of the chart: (batch size, IDs/s) points.
struct Series {
    name: &'static str,
    colour: &'static str,
    points: Vec<(u64, f64)>,
}

fn batch_series(results: &Results) -> Vec<Series> {
    [("JSON", "#1f77b4", "json"), ("text/plain", "#ff7f0e", "text")]
        .into_iter()
        .map(|(name, colour, format)| Series {
            name,
            colour,
            points: BATCH_SIZES
                .iter()
                .filter_map(|&size| {
                    let summary = results.summary(&format!("batch/{format}/{size}"))?;
                    Some((size, summary.ids_per_second))
                })
                .collect(),
        })
        .collect()
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const PLOT_WIDTH: f64 = WIDTH - LEFT - RIGHT;
const PLOT_HEIGHT: f64 = HEIGHT - TOP - BOTTOM;

/// The plot area and its scales: x is log10 of the batch size, from 10 to 10,000; y runs from
/// 0 to a round number a tenth above the highest point or the target, whichever is higher.
struct Frame {
    y_step: f64,
    y_max: f64,
}

impl Frame {
    fn new(highest: f64) -> Frame {
        let top = highest.max(TARGET_IDS_PER_SECOND) * 1.1;
        let y_step = nice_step(top / 5.0);
        Frame { y_step, y_max: (top / y_step).ceil() * y_step }
    }

    fn x_of(size: f64) -> f64 {
        LEFT + (size.log10() - 1.0) / 3.0 * PLOT_WIDTH
    }

    fn y_of(&self, ids: f64) -> f64 {
        TOP + PLOT_HEIGHT - ids / self.y_max * PLOT_HEIGHT
    }

    /// Horizontal lines with the y labels, vertical ones with the batch sizes.
    fn grid(&self, svg: &mut String) {
        let mut tick = 0.0;
        while tick <= self.y_max + self.y_step / 2.0 {
            let y = self.y_of(tick);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{}" y2="{y:.1}" stroke="#ddd"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
                LEFT + PLOT_WIDTH,
                LEFT - 8.0,
                y + 4.0,
                format_millions(tick)
            );
            tick += self.y_step;
        }
        for size in BATCH_SIZES {
            let x = Frame::x_of(size as f64);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{}" stroke="#ddd"/><text x="{x:.1}" y="{}" text-anchor="middle">{}</text>"##,
                TOP + PLOT_HEIGHT,
                TOP + PLOT_HEIGHT + 18.0,
                thousands(size as f64)
            );
        }
    }

    /// The plot's border, the axis titles and the target line.
    fn axes(&self, svg: &mut String) {
        let _ = writeln!(
            svg,
            r##"<rect x="{LEFT}" y="{TOP}" width="{PLOT_WIDTH}" height="{PLOT_HEIGHT}" fill="none" stroke="#333"/>
<text x="{}" y="{}" text-anchor="middle">IDs per request (log scale)</text>
<text transform="translate(20 {}) rotate(-90)" text-anchor="middle">IDs/s (millions)</text>"##,
            LEFT + PLOT_WIDTH / 2.0,
            HEIGHT - 15.0,
            TOP + PLOT_HEIGHT / 2.0
        );
        let target_y = self.y_of(TARGET_IDS_PER_SECOND);
        let _ = writeln!(
            svg,
            r##"<line x1="{LEFT}" y1="{target_y:.1}" x2="{}" y2="{target_y:.1}" stroke="#2ca02c" stroke-dasharray="6 4"/><text x="{}" y="{:.1}" fill="#2ca02c">target: 10 M IDs/s at 1,000</text>"##,
            LEFT + PLOT_WIDTH,
            LEFT + 6.0,
            target_y - 6.0
        );
    }

    /// The `index`th series: its line, a point with a tooltip per batch size, its legend.
    fn series(&self, svg: &mut String, index: usize, series: &Series) {
        let Series { name, colour, points } = series;
        let path: Vec<String> = points
            .iter()
            .map(|&(size, ids)| format!("{:.1},{:.1}", Frame::x_of(size as f64), self.y_of(ids)))
            .collect();
        let _ = writeln!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"##,
            path.join(" ")
        );
        for &(size, ids) in points {
            let (x, y) = (Frame::x_of(size as f64), self.y_of(ids));
            let _ = writeln!(
                svg,
                r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="{colour}"><title>{name}, batch {size}: {} IDs/s</title></circle>"##,
                millions(ids)
            );
        }
        let legend_y = TOP + 16.0 + index as f64 * 18.0;
        let _ = writeln!(
            svg,
            r##"<line x1="{}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"##,
            LEFT + 12.0,
            LEFT + 36.0,
            LEFT + 42.0,
            legend_y + 4.0
        );
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|factor| factor * magnitude)
        .find(|&step| step >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn format_millions(value: f64) -> String {
    let millions = value / 1e6;
    if millions.fract().abs() < 1e-9 { format!("{millions:.0}") } else { format!("{millions:.1}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(1.3e6), 2e6);
        assert_eq!(nice_step(4.0e6), 5e6);
        assert_eq!(nice_step(7.0e6), 1e7);
    }
}
