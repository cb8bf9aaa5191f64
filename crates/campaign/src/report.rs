//! `report.html`: one self-contained page (no script, no CDN) with SVG plots drawn by
//! `plotters`, inlined, and the figures of `summary.json` beside 2021's published ones.

use plotters::prelude::*;

use crate::observe::Observer;
use crate::summary::Summary;
use crate::{SimulateError, Simulation};

const SIZE: (u32, u32) = (760, 340);
const LIGHTS: [RGBColor; 4] = [
    RGBColor(46, 160, 67),
    RGBColor(230, 180, 20),
    RGBColor(215, 50, 40),
    RGBColor(150, 150, 150),
];

/// What the run measured of itself (not in `summary.json`: it differs from run to run).
#[derive(Debug, Clone, Copy)]
pub struct RunFacts {
    pub wall_s: f64,
    pub peak_rss_bytes: Option<u64>,
}

/// How much of the first night the lights' plot shows.
const LIGHTS_FIRST_NIGHT_H: f64 = 3.0;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws one plot into an SVG string.
fn svg(
    plot: &'static str,
    draw: impl FnOnce(&Area<'_>) -> Result<(), Box<dyn std::error::Error>>,
) -> Result<String, SimulateError> {
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
        let drawn = root
            .fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|_| draw(&root).map_err(|e| e.to_string()))
            .and_then(|_| root.present().map_err(|e| e.to_string()));
        drawn.map_err(|reason| SimulateError::Plot { plot, reason })?;
    }
    Ok(text)
}

fn queue_plot(o: &Observer) -> Result<String, SimulateError> {
    let max = o
        .queue_series
        .iter()
        .flatten()
        .map(|p| p.1)
        .max()
        .unwrap_or(0)
        .max(1);
    // Up to where every day's queue has fallen under 1% of the highest it reached.
    let busy_h = o
        .queue_series
        .iter()
        .flatten()
        .filter(|p| p.1 * 100 > max)
        .map(|p| p.0)
        .fold(0.0f64, f64::max);
    let x_max = (busy_h * 1.2).clamp(0.5, 22.0);
    svg("queue", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Tickets waiting, per booking day", ("sans-serif", 18))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, 0u64..max + max / 10)?;
        chart
            .configure_mesh()
            .x_desc("hours since the opening (20:00)")
            .y_desc("tickets waiting")
            .draw()?;
        for (d, series) in o.queue_series.iter().enumerate() {
            let color = Palette99::pick(d).to_rgba();
            chart
                .draw_series(LineSeries::new(
                    series.iter().filter(|p| p.0 <= x_max).copied(),
                    color.stroke_width(2),
                ))?
                .label(format!("day {}", d + 1))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

fn waits_plot(o: &Observer, s: &Summary) -> Result<String, SimulateError> {
    let minutes = o.waits.buckets(60);
    let max = minutes.iter().copied().max().unwrap_or(0).max(1);
    let x_max = (minutes.len() as u64).max(55);
    svg("waits", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Actual waits (queue to admission) against the seed's 30-50 min",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0u64..x_max, 0u64..max + max / 10)?;
        chart
            .configure_mesh()
            .x_desc("wait (minutes)")
            .y_desc("tickets")
            .draw()?;
        chart.draw_series(std::iter::once(Rectangle::new(
            [(30, 0), (50, max + max / 10)],
            RGBColor(200, 220, 255).filled(),
        )))?;
        chart.draw_series(minutes.iter().enumerate().map(|(m, n)| {
            Rectangle::new([(m as u64, 0), (m as u64 + 1, *n)], BLUE.mix(0.7).filled())
        }))?;
        for (label, s_value, color) in [
            ("p50", s.waits.p50_s, BLACK),
            ("p95", s.waits.p95_s, RED),
            ("max", s.waits.max_s, MAGENTA),
        ] {
            let x = s_value / 60;
            chart
                .draw_series(LineSeries::new(
                    vec![(x, 0), (x, max)],
                    color.stroke_width(2),
                ))?
                .label(format!("{label} {} s", s_value))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

fn eta_plot(o: &Observer) -> Result<String, SimulateError> {
    let max = o
        .eta_samples
        .iter()
        .map(|(e, w)| (*e).max(*w))
        .max()
        .unwrap_or(0)
        .max(60) as f64
        / 60.0;
    svg("eta", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Displayed ETA against the wait that followed",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..max * 1.05, 0f64..max * 1.05)?;
        chart
            .configure_mesh()
            .x_desc("ETA shown at the ticket (minutes)")
            .y_desc("actual wait (minutes)")
            .draw()?;
        chart.draw_series(LineSeries::new(vec![(0.0, 0.0), (max, max)], BLACK))?;
        chart.draw_series(o.eta_samples.iter().map(|(e, w)| {
            Circle::new(
                (f64::from(*e) / 60.0, f64::from(*w) / 60.0),
                2,
                BLUE.mix(0.5).filled(),
            )
        }))?;
        Ok(())
    })
}

fn verifications_plot(o: &Observer, s: &Summary) -> Result<String, SimulateError> {
    let hours = &o.verifications_per_hour;
    let reference = (s.published_2021.seed_reservations_per_hour as f64 * s.scale) as u64;
    let max = hours
        .iter()
        .copied()
        .max()
        .unwrap_or(0)
        .max(reference)
        .max(1);
    let x_max = (hours.len() as u64).max(24);
    svg("verifications", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Verifications per hour, against the seed's 2 million per hour (scaled)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(70)
            .build_cartesian_2d(0u64..x_max, 0u64..max + max / 10)?;
        chart
            .configure_mesh()
            .x_desc("hours since the first opening (9 Aug 20:00)")
            .y_desc("verifications")
            .draw()?;
        chart.draw_series(hours.iter().enumerate().map(|(h, n)| {
            Rectangle::new([(h as u64, 0), (h as u64 + 1, *n)], GREEN.mix(0.7).filled())
        }))?;
        chart
            .draw_series(LineSeries::new(
                vec![(0, reference), (x_max, reference)],
                RED.stroke_width(2),
            ))?
            .label(format!("2 M/h x scale = {reference}"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    })
}

fn lights_plot(o: &Observer) -> Result<String, SimulateError> {
    // The first night's stampede: the lights change within its first hours.
    let x_max = LIGHTS_FIRST_NIGHT_H;
    let methods: Vec<(&str, &Vec<(f64, u8)>)> = o.lights.iter().map(|(m, l)| (*m, l)).collect();
    let rows = methods.len().max(1) as f64;
    svg("lights", |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(
                "Each method's light as reported, the first night (rows: methods)",
                ("sans-serif", 18),
            )
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(150)
            .build_cartesian_2d(0f64..x_max, 0f64..rows)?;
        let names: Vec<String> = methods.iter().map(|(m, _)| m.to_string()).collect();
        chart
            .configure_mesh()
            .x_desc("hours since the first opening (9 Aug 20:00)")
            .y_labels(methods.len() * 2 + 1)
            .y_label_formatter(&|y: &f64| {
                let row = (*y - 0.5).round();
                if (*y - 0.5 - row).abs() < 0.01 && row >= 0.0 {
                    names.get(row as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .disable_y_mesh()
            .draw()?;
        for (row, (_, reports)) in methods.iter().enumerate() {
            let y = row as f64;
            let spans = light_spans(reports, x_max)
                .into_iter()
                .map(|(from, to, level)| {
                    let color = LIGHTS[usize::from(level).min(3)];
                    Rectangle::new([(from, y + 0.1), (to, y + 0.9)], color.filled())
                });
            chart.draw_series(spans)?;
        }
        Ok(())
    })
}

/// A method's reports as spans of one light, `(from, to, level)`, up to `x_max` hours.
fn light_spans(reports: &[(f64, u8)], x_max: f64) -> Vec<(f64, f64, u8)> {
    let mut spans: Vec<(f64, f64, u8)> = Vec::new();
    for (t, level) in reports.iter().copied().filter(|(t, _)| *t < x_max) {
        match spans.last_mut() {
            Some(last) if last.2 == level => {}
            Some(last) => {
                last.1 = t;
                spans.push((t, x_max, level));
            }
            None => spans.push((t.max(0.0), x_max, level)),
        }
    }
    spans
}

fn fill_plot(o: &Observer, s: &Summary) -> Result<String, SimulateError> {
    let fills = &s.reservations.fill_by_day_share_permille;
    let mut clinic_buckets = [0u64; 21];
    for (booked, cap) in o.clinics.values() {
        let p = (booked * 20).checked_div(*cap).unwrap_or(0).min(20);
        clinic_buckets[p as usize] += 1;
    }
    let clinic_max = clinic_buckets.iter().copied().max().unwrap_or(0).max(1);
    svg("fill", |root| {
        let (left, right) = root.split_horizontally((50).percent_width());
        let mut days = ChartBuilder::on(&left)
            .caption("Fill per day share (%)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(40)
            .build_cartesian_2d(0u64..fills.len() as u64, 0u64..100)?;
        days.configure_mesh().x_desc("booking day - 1").draw()?;
        days.draw_series(fills.iter().enumerate().map(|(d, f)| {
            Rectangle::new(
                [(d as u64, 0), (d as u64 + 1, f / 10)],
                Palette99::pick(d).filled(),
            )
        }))?;
        let mut clinics = ChartBuilder::on(&right)
            .caption("Clinics by fill (%)", ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(0u64..105, 0u64..clinic_max + clinic_max / 10)?;
        clinics
            .configure_mesh()
            .x_desc("fill %")
            .y_desc("clinics")
            .draw()?;
        clinics.draw_series(clinic_buckets.iter().enumerate().map(|(b, n)| {
            let x = b as u64 * 5;
            Rectangle::new([(x, 0), (x + 5, *n)], BLUE.mix(0.6).filled())
        }))?;
        Ok(())
    })
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page.
pub fn html(simulation: &Simulation, facts: &RunFacts) -> Result<String, SimulateError> {
    let (o, s) = (&simulation.observer, &simulation.summary);
    let plots = [
        ("queue", queue_plot(o)?),
        ("waits", waits_plot(o, s)?),
        ("eta", eta_plot(o)?),
        ("verifications", verifications_plot(o, s)?),
        ("lights", lights_plot(o)?),
        ("fill", fill_plot(o, s)?),
    ];
    let mut page = String::new();
    page.push_str(&format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>yeyak simulate: {people} people, seed {seed}</title>\
         <style>body{{font-family:sans-serif;max-width:800px;margin:2em auto;color:#222}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}\
         th:first-child,td:first-child{{text-align:left}}figure{{margin:1.5em 0}}</style></head><body>\n\
         <h1>yeyak simulate</h1>\n<p>{people} people ({eligible} in the 18-49 group), {clinics} clinics \
         over {regions} regions, seed {seed}, scale {scale} of 2021. {events} events from {commands} \
         commands, every decision by the domain's <code>decide</code>/<code>apply</code>. \
         Invariant violations: <b>{violations}</b>. Run: {wall:.1} s, {rate:.0} events/s, peak RSS {rss} MiB.</p>\n",
        people = s.people.population,
        eligible = s.people.eligible,
        clinics = s.supply.clinics,
        regions = s.supply.regions,
        seed = s.seed,
        scale = s.scale,
        events = s.ledger.events,
        commands = s.ledger.commands,
        violations = s.ledger.violations.len(),
        wall = facts.wall_s,
        rate = s.ledger.events as f64 / facts.wall_s.max(1e-9),
        rss = facts.peak_rss_bytes.unwrap_or(0) / (1 << 20),
    ));
    page.push_str(&comparison_table(s));
    page.push_str(&fairness_table(s));
    for (id, svg) in plots {
        page.push_str(&format!("<figure id=\"plot-{id}\">\n{svg}\n</figure>\n"));
    }
    page.push_str(&rejections_table(s));
    page.push_str("</body></html>\n");
    Ok(page)
}

fn comparison_table(s: &Summary) -> String {
    let p = &s.published_2021;
    let scaled = |v: u64| format!("{} (x scale: {:.0})", v, v as f64 * s.scale);
    let rows = [
        (
            "first night: cohort",
            scaled(p.first_night_cohort),
            s.first_night.cohort.to_string(),
        ),
        (
            "first night: booked within 4 h",
            format!(
                "{} ({:.1}%)",
                scaled(p.first_night_booked_within_4h),
                p.first_night_booked_within_4h as f64 * 100.0 / p.first_night_cohort as f64
            ),
            format!(
                "{} ({:.1}%)",
                s.first_night.booked_within_4h,
                s.first_night.booked_within_4h_permille as f64 / 10.0
            ),
        ),
        (
            "first night: mean wait",
            format!("about {} s", p.first_night_mean_wait_s),
            format!("{} s", s.first_night.mean_wait_s),
        ),
        (
            "wait, whole campaign (p50 / p95 / max)",
            "30-50 min estimated (seed)".to_owned(),
            format!(
                "{} / {} / {} s",
                s.waits.p50_s, s.waits.p95_s, s.waits.max_s
            ),
        ),
        (
            "verifications, 9-20 Aug",
            scaled(p.verifications_9_to_20_aug),
            s.verifications.through_first_change_day.to_string(),
        ),
        (
            "verifications, peak day",
            scaled(p.verifications_peak_day),
            format!(
                "{} ({})",
                s.verifications.peak_day.1, s.verifications.peak_day.0
            ),
        ),
    ];
    let mut t = String::from(
        "<h2>2021 beside the simulation</h2>\n<table><tr><th></th><th>2021 published</th><th>simulated</th></tr>\n",
    );
    for (what, published, simulated) in rows {
        t.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(what),
            escape(&published),
            escape(&simulated)
        ));
    }
    t.push_str("</table>\n");
    t
}

fn fairness_table(s: &Summary) -> String {
    let f = &s.fairness;
    let deviation = f
        .day_share_deviation_doses
        .iter()
        .map(|d| d.abs())
        .max()
        .unwrap_or(0);
    format!(
        "<h2>Fairness, from the events</h2>\n<table>\
         <tr><td>largest day share's deviation from the even split</td><td>{deviation} doses</td></tr>\
         <tr><td>day shares' fill, highest minus lowest</td><td>{:.1}%</td></tr>\
         <tr><td>first-come-first-served inversions in admission (after the opening draws: {})</td><td>{}</td></tr>\
         <tr><td>ETA error, p95 (p50)</td><td>{} s ({} s)</td></tr></table>\n",
        f.day_share_fill_spread_permille as f64 / 10.0,
        f.pre_queue_draws,
        f.fcfs_inversions,
        f.eta_error_p95_s,
        s.eta.error_p50_s,
    )
}

fn rejections_table(s: &Summary) -> String {
    let max = s.rejections.values().copied().max().unwrap_or(0).max(1);
    let mut t = String::from("<h2>Rejections by code</h2>\n<table>\n");
    for (code, n) in &s.rejections {
        t.push_str(&format!(
            "<tr><td><code>{code}</code></td><td>{n}</td><td style=\"text-align:left\">\
             <span style=\"display:inline-block;background:#d33;height:10px;width:{}px\"></span></td></tr>\n",
            n * 300 / max
        ));
    }
    t.push_str("</table>\n");
    t
}
