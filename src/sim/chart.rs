//! The comparison's charts: one grouped bar chart per measure (finish time
//! against the ideal, jobs moved, bytes moved), a group per scenario and a
//! bar per policy, as PNG and SVG, drawn with plotters. The font is egui's
//! own (Ubuntu Light), compiled in, so a machine without fonts draws the
//! same picture.

use std::path::{Path, PathBuf};
use std::sync::Once;

use anyhow::Context;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::compare::{Comparison, Row};

const WIDTH: u32 = 1600;
const HEIGHT: u32 = 640;
const LEGEND_WIDTH: u32 = 190;
const FONT: &str = "sans-serif";

/// Colours of the policies, in the order of the comparison.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// One chart: its file name, title, axis and value.
struct Measure {
    file: &'static str,
    title: &'static str,
    axis: &'static str,
    value: fn(&Row) -> Option<f64>,
    /// Draw each scenario's ideal as a line over its group.
    ideal: bool,
    /// A logarithmic axis (finish times from a second to minutes).
    log: bool,
}

const MEASURES: [Measure; 3] = [
    Measure {
        file: "finish_time",
        title: "Finish time per scenario and policy (black line: the ideal)",
        axis: "seconds",
        value: |r| r.finish_s,
        ideal: true,
        log: true,
    },
    Measure {
        file: "jobs_moved",
        title: "Jobs moved by the policy",
        axis: "jobs",
        value: |r| Some(f64::from(r.jobs_moved)),
        ideal: false,
        log: false,
    },
    Measure {
        file: "bytes_moved",
        title: "Bytes moved by the policy",
        axis: "MiB",
        value: |r| Some(r.bytes_moved as f64 / f64::from(1 << 20)),
        ideal: false,
        log: false,
    },
];

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The font is compiled in and known to parse (egui draws with it).
        let _ = plotters::style::register_font(
            FONT,
            FontStyle::Normal,
            epaint_default_fonts::UBUNTU_LIGHT,
        );
    });
}

/// Writes every chart as PNG and SVG into `dir`; returns the files.
pub fn write_all(c: &Comparison, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    register_font();
    let mut written = Vec::new();
    for m in &MEASURES {
        let svg = dir.join(format!("{}.svg", m.file));
        {
            let root = SVGBackend::new(&svg, (WIDTH, HEIGHT)).into_drawing_area();
            draw(c, m, &root).map_err(|e| anyhow::anyhow!("{e}"))?;
            root.present()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot write {}", svg.display()))?;
        }
        written.push(svg);
        let png = dir.join(format!("{}.png", m.file));
        {
            let root = BitMapBackend::new(&png, (WIDTH, HEIGHT)).into_drawing_area();
            draw(c, m, &root).map_err(|e| anyhow::anyhow!("{e}"))?;
            root.present()
                .map_err(|e| anyhow::anyhow!("{e}"))
                .with_context(|| format!("cannot write {}", png.display()))?;
        }
        written.push(png);
    }
    Ok(written)
}

type DrawResult<DB> = Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

fn draw<DB: DrawingBackend>(
    c: &Comparison,
    m: &Measure,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (plot, legend) = root.split_horizontally(WIDTH - LEGEND_WIDTH);
    let scenarios = c.scenarios.len().max(1);
    let policies = c.policies.len().max(1);
    let values: Vec<f64> = c
        .rows
        .iter()
        .filter_map(|r| (m.value)(r))
        .chain(c.rows.iter().filter(|_| m.ideal).map(|r| r.ideal_s))
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let max = values.iter().copied().fold(0.0_f64, f64::max);
    // On a log axis a bar's height is log10 of its value, from a power of
    // ten below the smallest.
    let (bottom, top) = if m.log {
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let lo = if min.is_finite() {
            min.log10().floor()
        } else {
            -1.0
        };
        (
            lo,
            if max > 0.0 {
                max.log10().ceil().max(lo + 1.0)
            } else {
                lo + 1.0
            },
        )
    } else {
        (0.0, if max > 0.0 { max * 1.08 } else { 1.0 })
    };
    let y = |v: f64| {
        if m.log {
            v.max(10f64.powf(bottom)).log10()
        } else {
            v.min(top)
        }
    };
    let mut chart = ChartBuilder::on(&plot)
        .caption(m.title, (FONT, 22))
        .margin(12)
        .x_label_area_size(70)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..scenarios as f64, bottom..top)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(0)
        .y_desc(if m.log {
            format!("{} (log scale)", m.axis)
        } else {
            m.axis.to_owned()
        })
        .y_labels(if m.log {
            ((top - bottom) as usize + 1).max(2)
        } else {
            10
        })
        .y_label_formatter(&|v: &f64| {
            if m.log {
                let x = 10f64.powf(*v);
                if x >= 1.0 {
                    format!("{x:.0}")
                } else {
                    format!("{x}")
                }
            } else {
                format!("{v:.1}")
            }
        })
        .label_style((FONT, 15))
        .axis_desc_style((FONT, 16))
        .draw()?;
    let width = 0.84 / policies as f64;
    for (j, policy) in c.policies.iter().enumerate() {
        let colour = COLOURS[j % COLOURS.len()];
        let bars = c.scenarios.iter().enumerate().filter_map(|(i, sc)| {
            let row = c
                .rows
                .iter()
                .find(|r| r.scenario == sc.name && r.policy == *policy)?;
            let v = (m.value)(row)?;
            let x0 = i as f64 + 0.08 + j as f64 * width;
            Some(Rectangle::new(
                [(x0, bottom), (x0 + width * 0.9, y(v))],
                colour.filled(),
            ))
        });
        chart.draw_series(bars)?;
    }
    if m.ideal {
        let lines = c.scenarios.iter().enumerate().filter_map(|(i, sc)| {
            let ideal = c.rows.iter().find(|r| r.scenario == sc.name)?.ideal_s;
            ideal.is_finite().then(|| {
                PathElement::new(
                    vec![(i as f64 + 0.04, y(ideal)), (i as f64 + 0.96, y(ideal))],
                    BLACK.stroke_width(2),
                )
            })
        });
        chart.draw_series(lines)?;
    }
    // Scenario names under their groups, two lines where they are long.
    for (i, sc) in c.scenarios.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, bottom));
        let (first, second) = match sc.name.split_once(", ") {
            Some((a, b)) => (a.to_owned(), b.to_owned()),
            None => (sc.name.clone(), String::new()),
        };
        let style = TextStyle::from((FONT, 15).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        plot.draw(&Text::new(first, (x, y + 8), style.clone()))?;
        if !second.is_empty() {
            plot.draw(&Text::new(second, (x, y + 26), style))?;
        }
    }
    // The legend beside the plot, never over the bars.
    for (j, policy) in c.policies.iter().enumerate() {
        let y = 60 + 26 * j as i32;
        let colour = COLOURS[j % COLOURS.len()];
        legend.draw(&Rectangle::new([(10, y), (28, y + 16)], colour.filled()))?;
        legend.draw(&Text::new(policy.clone(), (36, y), (FONT, 16)))?;
    }
    if m.ideal {
        let y = 60 + 26 * policies as i32;
        legend.draw(&PathElement::new(
            vec![(10, y + 8), (28, y + 8)],
            BLACK.stroke_width(2),
        ))?;
        legend.draw(&Text::new("ideal", (36, y), (FONT, 16)))?;
    }
    Ok(())
}
