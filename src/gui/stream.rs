//! The task stream: a lane per worker of each node, a bar per job from the
//! moment its worker took it to the moment it handed the result back,
//! coloured by where the job came from; the batches between the nodes as
//! arrows from the sender's lanes to the receiver's; idle time as the gaps;
//! and, under it, each node's throughput over time. Live during a run,
//! zoomable and draggable after it.
//!
//! Cheap to draw whatever the run's length: each lane's spans are kept in
//! order, only those in view are looked at (a binary search finds the
//! first), and spans narrower than a pixel are merged with their neighbours
//! into bars of about a pixel, so a frame draws at most a few bars per
//! pixel of width per lane.

use eframe::egui;
use egui_plot::{
    Arrows, Bar, BarChart, GridInput, GridMark, Line, Plot, PlotPoint, PlotPoints, PlotUi,
};

use crate::ids::Role;
use crate::node::NodeView;
use crate::node::core::{Origin, Timeline};
use crate::protocol::{BatchKind, Phase};

/// A bar's colour by the job's origin.
pub fn origin_color(origin: Origin) -> egui::Color32 {
    match origin {
        Origin::Own => egui::Color32::from_rgb(70, 130, 200),
        Origin::Bootstrap => egui::Color32::from_rgb(80, 170, 110),
        Origin::Moved => egui::Color32::from_rgb(230, 160, 40),
        Origin::Reclaimed => egui::Color32::from_rgb(210, 70, 70),
        Origin::Added => egui::Color32::from_rgb(150, 110, 220),
    }
}

/// Each node's colour in the throughput plot.
pub fn node_color(role: Role) -> egui::Color32 {
    match role {
        Role::Master => egui::Color32::from_rgb(70, 130, 200),
        Role::Slave => egui::Color32::from_rgb(200, 100, 60),
    }
}

/// A legend entry: a small square of `color`, then `text`. Drawn, not a
/// glyph: the window's font has no box characters.
pub fn swatch(ui: &mut egui::Ui, color: egui::Color32, text: &str) {
    let size = egui::Vec2::splat(ui.text_style_height(&egui::TextStyle::Body) * 0.7);
    let (rect, _) = ui.allocate_exact_size(size, egui::Sense::hover());
    ui.painter().rect_filled(rect, 2.0, color);
    ui.label(text);
}

/// Width of both plots' y axes, so that their time axes line up.
const AXIS_WIDTH: f32 = 80.0;

/// One bar: a job, or sub-pixel jobs merged.
#[derive(Debug, Clone, Copy, PartialEq)]
struct LaneSpan {
    start_s: f64,
    end_s: f64,
    origin: Origin,
    id: u32,
}

/// One node's part of the stream.
#[derive(Debug, Default)]
struct NodeLanes {
    role: Option<Role>,
    /// Seconds from the stream's zero to this node's run start.
    offset_s: f64,
    /// The node's timeline as last copied from its view.
    timeline: Timeline,
    /// Each worker's kept spans, in order (stream seconds).
    lanes: Vec<Vec<LaneSpan>>,
    /// Spans of `timeline` already put into lanes.
    indexed: usize,
    /// Stream seconds of each kept job's end, in the order they ended.
    ends: Vec<f64>,
}

impl NodeLanes {
    fn catch_up(&mut self, view: &NodeView, zero: Option<std::time::Instant>) {
        let snapshot = view.snapshot();
        self.role = Some(snapshot.role);
        if let (Some(zero), Some(start)) = (zero, snapshot.phase_started[Phase::Bootstrap as usize])
        {
            self.offset_s = start.saturating_duration_since(zero).as_secs_f64();
        }
        let workers = usize::from(snapshot.local.workers).max(1);
        if self.lanes.len() < workers {
            self.lanes.resize_with(workers, Vec::new);
        }
        view.timeline_into(&mut self.timeline);
        for span in &self.timeline.jobs()[self.indexed..] {
            if !span.kept {
                continue;
            }
            let worker = usize::from(span.worker);
            if self.lanes.len() <= worker {
                self.lanes.resize_with(worker + 1, Vec::new);
            }
            let lane = LaneSpan {
                start_s: self.offset_s + span.start_s,
                end_s: self.offset_s + span.end_s,
                origin: span.origin,
                id: span.id,
            };
            // Each lane is kept sorted by start (a worker's jobs come in
            // the order it took them, so this inserts at the end), which the
            // drawing's binary search needs.
            let lane_spans = &mut self.lanes[worker];
            let at = lane_spans.partition_point(|s| s.start_s <= lane.start_s);
            lane_spans.insert(at, lane);
            let at = self.ends.partition_point(|&e| e <= lane.end_s);
            self.ends.insert(at, lane.end_s);
        }
        self.indexed = self.timeline.jobs().len();
    }
}

/// The task stream of the window's run (one node, or the demo's two).
#[derive(Debug, Default)]
pub struct TaskStream {
    nodes: Vec<NodeLanes>,
    /// The last job's or batch's end, stream seconds.
    end_s: f64,
    /// Throughput points per node, and the (jobs, bin) they were made for.
    throughput: Vec<(Role, Vec<PlotPoint>)>,
    throughput_of: (usize, u64),
    /// Bars drawn in the last frame.
    bars_drawn: usize,
    /// Whether the peer of a lone node gets a row of its own (for the
    /// arrows of the batches it sent and received).
    peer_row: Option<Role>,
    /// [`TaskStream::kept_counts`], counted when spans came in (not on
    /// every frame), and the spans it was counted for.
    kept: (Vec<(Role, usize)>, usize),
    kept_of: usize,
}

impl TaskStream {
    /// Forgets the last run (a new one starts).
    pub fn clear(&mut self) {
        *self = TaskStream::default();
    }

    /// Copies what is new from the nodes' views. `views` is in lane order
    /// (the master's first).
    pub fn update(&mut self, views: &[&NodeView]) {
        let zero = views
            .iter()
            .filter_map(|v| v.snapshot().phase_started[Phase::Bootstrap as usize])
            .min();
        if self.nodes.len() != views.len() {
            self.nodes = views.iter().map(|_| NodeLanes::default()).collect();
        }
        for (node, view) in self.nodes.iter_mut().zip(views) {
            node.catch_up(view, zero);
        }
        self.end_s = self
            .nodes
            .iter()
            .flat_map(|n| {
                let last_batch = n
                    .timeline
                    .batches()
                    .last()
                    .map_or(0.0, |b| n.offset_s + b.end_s);
                [n.ends.last().copied().unwrap_or(0.0), last_batch]
            })
            .fold(0.0, f64::max);
        self.peer_row = match views {
            [one] => Some(one.snapshot().role.peer()),
            _ => None,
        };
        let spans: usize = self.nodes.iter().map(|n| n.indexed).sum();
        if spans != self.kept_of || self.kept.0.len() != self.nodes.len() {
            self.kept = self.count_kept();
            self.kept_of = spans;
        }
    }

    /// Who computed each job so far (the kept span), by id: the node, the
    /// worker, and when (stream seconds).
    ///
    /// The master's own result is the one the run keeps: a job computed by
    /// the slave and then by the master (the slave stopped or was lost
    /// before its result came back) is the master's.
    pub fn computed(&self, jobs: usize) -> Vec<Option<(Role, u16, f64, f64)>> {
        let mut by_id: Vec<Option<(Role, u16, f64, f64)>> = vec![None; jobs];
        for n in &self.nodes {
            let Some(role) = n.role else { continue };
            for s in n.timeline.jobs().iter().filter(|s| s.kept) {
                if let Some(slot) = by_id.get_mut(s.id as usize)
                    && slot.is_none_or(|(had, ..)| had != Role::Master)
                {
                    *slot = Some((role, s.worker, n.offset_s + s.start_s, n.offset_s + s.end_s));
                }
            }
        }
        by_id
    }

    /// Jobs each node computed whose result the run keeps, by lane group,
    /// and the slave's jobs computed again by the master (their results
    /// never reached it), when this stream shows the master.
    pub fn kept_counts(&self) -> (Vec<(Role, usize)>, usize) {
        self.kept.clone()
    }

    fn count_kept(&self) -> (Vec<(Role, usize)>, usize) {
        let master_ids: Vec<u32> = self
            .nodes
            .iter()
            .filter(|n| n.role == Some(Role::Master))
            .flat_map(|n| n.timeline.jobs().iter().filter(|s| s.kept).map(|s| s.id))
            .collect();
        let mut by_master = vec![false; master_ids.iter().max().map_or(0, |&m| m as usize + 1)];
        for &id in &master_ids {
            by_master[id as usize] = true;
        }
        let mut counts = Vec::new();
        let mut again = 0;
        for n in &self.nodes {
            let Some(role) = n.role else { continue };
            let mut count = n.ends.len();
            if role == Role::Slave {
                let redone = n
                    .timeline
                    .jobs()
                    .iter()
                    .filter(|s| s.kept && by_master.get(s.id as usize).copied().unwrap_or(false))
                    .count();
                count -= redone;
                again += redone;
            }
            counts.push((role, count));
        }
        (counts, again)
    }

    /// Bars the last frame drew.
    pub fn bars_drawn(&self) -> usize {
        self.bars_drawn
    }

    /// The stream's end: the last job or batch, in stream seconds.
    pub fn end_s(&self) -> f64 {
        self.end_s
    }

    /// The lanes' names, top to bottom; an empty row between the nodes
    /// (the batches' arrows cross it).
    fn lane_names(&self) -> Vec<String> {
        let mut names = Vec::new();
        for n in &self.nodes {
            if !names.is_empty() {
                names.push(String::new());
            }
            let role = n.role.map_or("?", Role::name);
            for w in 0..n.lanes.len() {
                names.push(format!("{role} {w}"));
            }
        }
        if let Some(peer) = self.peer_row {
            names.push(String::new());
            names.push(format!("{} (peer)", peer.name()));
        }
        names
    }

    /// Each node's first and last row (the peer's row for a lone node).
    fn groups(&self) -> Vec<(Role, usize, usize)> {
        let mut groups = Vec::new();
        let mut row = 0;
        for n in &self.nodes {
            let Some(role) = n.role else { continue };
            if row > 0 {
                row += 1;
            }
            let lanes = n.lanes.len().max(1);
            groups.push((role, row, row + lanes - 1));
            row += lanes;
        }
        if let Some(peer) = self.peer_row {
            groups.push((peer, row + 1, row + 1));
        }
        groups
    }

    /// One line on the run's use of its workers: jobs, busy share, the tail.
    pub fn summary(&self) -> String {
        let end = self.end_s();
        let mut parts = Vec::new();
        let mut lanes = 0usize;
        let mut busy = 0.0;
        let (counts, again) = &self.kept;
        let again = *again;
        for (role, count) in counts {
            parts.push(format!("{} {count}", role.name()));
        }
        for n in &self.nodes {
            lanes += n.lanes.len();
            busy += n
                .lanes
                .iter()
                .flatten()
                .map(|s| s.end_s - s.start_s)
                .sum::<f64>();
        }
        let total: usize = counts.iter().map(|(_, c)| c).sum();
        let mut text = format!("{total} jobs computed ({})", parts.join(", "));
        if again > 0 {
            text.push_str(&format!(
                " · {again} more computed by the slave and again by the master (the slave's \
                 results did not reach it)"
            ));
        }
        if end > 0.0 && lanes > 0 {
            text.push_str(&format!(
                " · workers busy {:.0} % of {:.3} s",
                100.0 * busy / (lanes as f64 * end),
                end
            ));
        }
        let last: Vec<(Role, f64)> = self
            .nodes
            .iter()
            .filter_map(|n| Some((n.role?, *n.ends.last()?)))
            .collect();
        if let [(a, a_end), (b, b_end)] = last[..] {
            let (first, wait) = if a_end < b_end {
                (a, b_end - a_end)
            } else {
                (b, a_end - b_end)
            };
            text.push_str(&format!(
                " · the {first} finished its last job {:.3} s before the {}",
                wait,
                first.peer()
            ));
        }
        text
    }

    /// Draws the stream and the throughput under it, `height` for the lanes.
    pub fn show(&mut self, ui: &mut egui::Ui, height: f32) {
        ui.horizontal_wrapped(|ui| {
            ui.label("Jobs by origin:");
            for origin in Origin::ALL {
                swatch(ui, origin_color(origin), origin.name());
            }
            ui.add(egui::Label::new("· arrows: batches (orange: moved by the policy)").extend());
        });
        let names = self.lane_names();
        let rows = names.len().max(1);
        let link = ui.make_persistent_id("task-stream-x");
        let end = self.end_s().max(1e-3);
        let mut bars = 0;
        let spacer = |input: GridInput| -> Vec<GridMark> {
            let (lo, hi) = input.bounds;
            let (lo, hi) = (lo.ceil() as i64, hi.floor() as i64);
            (lo..=hi)
                .map(|v| GridMark {
                    value: v as f64,
                    step_size: 1.0,
                })
                .collect()
        };
        let lane_names = names.clone();
        // Both plots: the run's time axis, linked, zoomed and dragged along
        // it only; their y axes equally wide, so the time axes line up.
        let time_plot = |id: &str, height: f32| {
            Plot::new(id)
                .height(height)
                .link_axis(link, [true, false])
                .allow_zoom([true, false])
                .allow_drag([true, false])
                .allow_scroll(false)
                .include_x(0.0)
                .include_x(end)
                .y_axis_min_width(AXIS_WIDTH)
        };
        time_plot("task-stream", height)
            .include_y(0.6)
            .include_y(-(rows as f64) + 0.4)
            .y_grid_spacer(spacer)
            .y_axis_formatter(move |mark, _| {
                let i = (-mark.value).round();
                if (mark.value + i).abs() < 1e-6 && i >= 0.0 {
                    lane_names.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_axis_label("seconds since the run started")
            .show(ui, |p| bars = self.draw_lanes(p));
        self.bars_drawn = bars;
        ui.horizontal_wrapped(|ui| {
            ui.label("Jobs finished per second:");
            for n in &self.nodes {
                if let Some(role) = n.role {
                    swatch(ui, node_color(role), role.name());
                }
            }
        });
        time_plot("task-stream-throughput", (height * 0.45).max(80.0))
            .include_y(0.0)
            .show(ui, |p| {
                self.update_throughput(end);
                for (role, points) in &self.throughput {
                    p.line(
                        Line::new(role.name(), PlotPoints::Borrowed(points))
                            .color(node_color(*role))
                            .width(1.5),
                    );
                }
            });
    }

    /// The bars in view, sub-pixel ones merged; returns how many.
    fn draw_lanes(&self, p: &mut PlotUi<'_>) -> usize {
        let transform = *p.transform();
        let bounds = transform.bounds();
        let (lo, hi) = (bounds.min()[0], bounds.max()[0]);
        let pixel = (hi - lo) / f64::from(transform.frame().width().max(1.0));
        let mut by_origin: [Vec<Bar>; 5] = Default::default();
        let mut drawn = 0;
        let groups = self.groups();
        for n in &self.nodes {
            let Some(&(_, first_row, _)) = groups.iter().find(|g| Some(g.0) == n.role) else {
                continue;
            };
            for (i, lane) in n.lanes.iter().enumerate() {
                let y = -((first_row + i) as f64);
                let first = lane.partition_point(|s| s.end_s < lo);
                let mut pending: Option<LaneSpan> = None;
                let emit = |s: LaneSpan, by_origin: &mut [Vec<Bar>; 5]| {
                    let name = if s.id == u32::MAX {
                        "jobs".to_owned()
                    } else {
                        format!("job {}", s.id)
                    };
                    let index = Origin::ALL.iter().position(|&o| o == s.origin).unwrap_or(0);
                    let color = origin_color(s.origin);
                    by_origin[index].push(
                        Bar::new(y, s.end_s - s.start_s)
                            .base_offset(s.start_s)
                            .width(0.8)
                            .fill(color)
                            .stroke(egui::Stroke::new(0.5, color.gamma_multiply(0.5)))
                            .name(name),
                    );
                };
                for s in lane[first..].iter().take_while(|s| s.start_s <= hi) {
                    // Merged while the bar so far is under a pixel and the
                    // gap to this one is too.
                    pending = Some(match pending {
                        Some(mut m)
                            if m.end_s - m.start_s < pixel && s.start_s - m.end_s < pixel =>
                        {
                            m.end_s = s.end_s;
                            m.id = u32::MAX;
                            m
                        }
                        Some(m) => {
                            emit(m, &mut by_origin);
                            drawn += 1;
                            *s
                        }
                        None => *s,
                    });
                }
                if let Some(m) = pending {
                    emit(m, &mut by_origin);
                    drawn += 1;
                }
            }
        }
        for (origin, bars) in Origin::ALL.into_iter().zip(by_origin) {
            if !bars.is_empty() {
                p.bar_chart(
                    BarChart::new(origin.name(), bars)
                        .horizontal()
                        .color(origin_color(origin))
                        .element_formatter(Box::new(|bar, _| {
                            format!(
                                "{}\n{:.4} - {:.4} s",
                                bar.name,
                                bar.base_offset.unwrap_or(0.0),
                                bar.base_offset.unwrap_or(0.0) + bar.value
                            )
                        })),
                );
            }
        }
        self.draw_batches(p, lo, hi, pixel);
        drawn
    }

    /// Each batch in view as an arrow from the sender's lanes (when it
    /// began) to the receiver's (when it was whole); of batches less than a
    /// pixel apart, one arrow.
    fn draw_batches(&self, p: &mut PlotUi<'_>, lo: f64, hi: f64, pixel: f64) {
        // From the sender's lanes' edge to the receiver's, across the gap
        // between them: an arrow never covers a bar.
        let groups = self.groups();
        let group = |role: Role| groups.iter().find(|g| g.0 == role).map(|g| (g.1, g.2));
        let ends = |from: Role, to: Role| -> Option<(f64, f64)> {
            let (f, t) = (group(from)?, group(to)?);
            Some(if f.0 < t.0 {
                (-(f.1 as f64) - 0.45, -(t.0 as f64) + 0.45)
            } else {
                (-(f.0 as f64) + 0.45, -(t.1 as f64) - 0.45)
            })
        };
        let mut policy = (Vec::new(), Vec::new());
        let mut other = (Vec::new(), Vec::new());
        for n in &self.nodes {
            let Some(role) = n.role else { continue };
            let two_nodes = self.peer_row.is_none();
            for b in n.timeline.batches() {
                // With both nodes here each batch is drawn once, from the
                // receiver's record; a lone node draws both ways.
                if two_nodes && b.outbound {
                    continue;
                }
                let (from, to) = if b.outbound {
                    (role, role.peer())
                } else {
                    (role.peer(), role)
                };
                let Some((y0, y1)) = ends(from, to) else {
                    continue;
                };
                let (start, end) = (n.offset_s + b.start_s, n.offset_s + b.end_s);
                if end < lo || start > hi {
                    continue;
                }
                let target = if b.kind == BatchKind::Jobs {
                    &mut policy
                } else {
                    &mut other
                };
                let near = target
                    .0
                    .last()
                    .is_some_and(|&[x, y]: &[f64; 2]| y == y0 && (start - x).abs() < pixel);
                if b.kind != BatchKind::Jobs && near {
                    continue;
                }
                target.0.push([start, y0]);
                target.1.push([end, y1]);
            }
        }
        for ((origins, tips), name, color) in [
            (other, "batches", egui::Color32::from_gray(140)),
            (policy, "moved by the policy", origin_color(Origin::Moved)),
        ] {
            if !origins.is_empty() {
                p.arrows(
                    Arrows::new(name, PlotPoints::new(origins), PlotPoints::new(tips))
                        .color(color)
                        .tip_length(6.0),
                );
            }
        }
    }

    /// Jobs finished per second on each node, in bins of a fortieth of the
    /// run, and at least a throttle period (100 ms) once the run is long
    /// enough: a throttled worker computes in bursts of one. Made again
    /// only when a job has ended or the bins changed.
    fn update_throughput(&mut self, end: f64) {
        let bin = (end / 40.0).max((end / 10.0).min(0.1));
        let jobs: usize = self.nodes.iter().map(|n| n.ends.len()).sum();
        if self.throughput_of == (jobs, bin.to_bits()) && !self.throughput.is_empty() {
            return;
        }
        self.throughput_of = (jobs, bin.to_bits());
        let bins = (end / bin).ceil().max(1.0) as usize;
        self.throughput = self
            .nodes
            .iter()
            .filter_map(|n| {
                let role = n.role?;
                let mut counts = vec![0u32; bins];
                for &e in &n.ends {
                    let i = ((e / bin) as usize).min(bins - 1);
                    counts[i] += 1;
                }
                // The last bin may end after the run: its point stays in
                // it, so both plots' time axes end at the run's end.
                let points = counts
                    .iter()
                    .enumerate()
                    .map(|(i, &c)| {
                        PlotPoint::new(((i as f64 + 0.5) * bin).min(end), f64::from(c) / bin)
                    })
                    .collect();
                Some((role, points))
            })
            .collect();
    }
}
