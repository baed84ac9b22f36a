//! The page's charts, drawn by plotters into SVG strings (server side, so the live page and
//! the offline report are the same drawing, and the report needs no script).
//!
//! Amounts are plotted in billions as `f64`: a chart's coordinates are only a picture of the
//! figures, which the tables beside each chart give exactly.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::format;
use super::{Port, YtdMonth};
use crate::money::Hundredths;

const WIDTH: u32 = 640;
const FONT: &str = "sans-serif";
const INK: RGBColor = RGBColor(40, 44, 52);
const GRID: RGBColor = RGBColor(226, 229, 234);
/// Bars and the current year.
const BLUE: RGBColor = RGBColor(31, 94, 160);
/// Last year, and bars not singled out.
const GREY: RGBColor = RGBColor(150, 160, 172);
/// What the chart singles out: the chosen region, the current streak, the threshold.
const ACCENT: RGBColor = RGBColor(196, 69, 24);

fn bn(v: Hundredths) -> f64 {
    v.0 as f64 / 1e11
}

/// Turns plotters' SVG document into an inline, scalable element described by `label`.
fn inline(svg: String, label: &str) -> String {
    svg.replacen(
        "<svg ",
        &format!(
            "<svg class=\"chart\" role=\"img\" aria-label=\"{}\" ",
            format::esc(label)
        ),
        1,
    )
}

/// One bar of a horizontal bar chart.
pub struct Bar {
    pub label: String,
    pub value: f64,
    pub highlight: bool,
}

/// The series legend, the same on every chart: upper left, on a near-white ground.
fn draw_legend<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
) {
    let _ = chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 14).into_font().color(&INK))
        .background_style(WHITE.mix(0.9))
        .border_style(GRID)
        .draw();
}

/// Horizontal bars, first at the top; values formatted with `unit` on the axis.
pub fn bars(bars: &[Bar], unit: &str, label: &str) -> String {
    let n = bars.len();
    if n == 0 {
        return String::new();
    }
    let row = 24;
    let height = (n as u32) * row + 56;
    let lo = bars.iter().map(|b| b.value).fold(0.0f64, f64::min);
    let hi = bars.iter().map(|b| b.value).fold(0.0f64, f64::max);
    let pad = ((hi - lo) * 0.05).max(1.0);
    let (lo, hi) = (if lo < 0.0 { lo - pad } else { 0.0 }, hi + pad);
    let longest = bars
        .iter()
        .map(|b| b.label.chars().count())
        .max()
        .unwrap_or(0) as u32;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(24)
            .x_label_area_size(32)
            .y_label_area_size((longest * 8 + 16).min(260))
            .build_cartesian_2d(lo..hi, (0..n).into_segmented())
            .expect("chart geometry");
        let unit = unit.to_string();
        let names: Vec<String> = bars.iter().map(|b| b.label.clone()).collect();
        let _ = chart
            .configure_mesh()
            .disable_y_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .axis_style(GREY)
            .label_style((FONT, 15).into_font().color(&INK))
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) if *i < n => names[n - 1 - *i].clone(),
                _ => String::new(),
            })
            .x_labels(6)
            .x_label_formatter(&|v| format!("{v:.0}{unit}"))
            .draw();
        let _ = chart.draw_series(bars.iter().enumerate().map(|(i, b)| {
            let y = n - 1 - i;
            let colour = if b.highlight { ACCENT } else { BLUE };
            let mut r = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(y)),
                    (b.value, SegmentValue::Exact(y + 1)),
                ],
                colour.filled(),
            );
            r.set_margin(4, 4, 0, 0);
            r
        }));
        let _ = root.present();
    }
    inline(svg, label)
}

/// Year to date month by month: the period's year against the year before.
pub fn ytd(months: &[YtdMonth], year: u32, label: &str) -> String {
    let hi = months
        .iter()
        .flat_map(|m| [m.this_year, m.last_year])
        .flatten()
        .map(bn)
        .fold(0.0f64, f64::max);
    let hi = if hi > 0.0 { hi * 1.08 } else { 1.0 };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 340)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(1u32..12u32, 0f64..hi)
            .expect("chart geometry");
        let _ = chart
            .configure_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .axis_style(GREY)
            .label_style((FONT, 14).into_font().color(&INK))
            .x_labels(12)
            .x_label_formatter(&|m| match m {
                1..=12 => format::short_month(*m).to_string(),
                _ => String::new(),
            })
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0} bn"))
            .draw();
        for (colour, width, name, pick) in [
            (
                GREY,
                2,
                (year - 1).to_string(),
                (|m: &YtdMonth| m.last_year) as fn(&YtdMonth) -> Option<Hundredths>,
            ),
            (BLUE, 3, year.to_string(), |m: &YtdMonth| m.this_year),
        ] {
            let points: Vec<(u32, f64)> = months
                .iter()
                .filter_map(|m| pick(m).map(|v| (m.month, bn(v))))
                .collect();
            if let Ok(series) = chart.draw_series(LineSeries::new(
                points.iter().copied(),
                colour.stroke_width(width),
            )) {
                series.label(name).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3))
                });
            }
            let _ = chart.draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 3 + width / 2, colour.filled())),
            );
        }
        draw_legend(&mut chart);
        let _ = root.present();
    }
    inline(svg, label)
}

/// A port's trains per month as bars, the threshold as a line, the current streak's months
/// in the accent colour.
pub fn trains(port: &Port, label: &str) -> String {
    let n = port.months.len();
    if n == 0 {
        return String::new();
    }
    let threshold = f64::from(port.streak_threshold);
    let hi = port
        .months
        .iter()
        .filter_map(|(_, t)| *t)
        .map(|t| t as f64)
        .fold(threshold, f64::max)
        // Headroom for the legend above the bars.
        * 1.4;
    let streak_from = n.saturating_sub(port.streak_months as usize);
    let periods: Vec<_> = port.months.iter().map(|(p, _)| *p).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 320)).into_drawing_area();
        let _ = root.fill(&WHITE);
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .margin_right(24)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d((0..n).into_segmented(), 0f64..hi)
            .expect("chart geometry");
        let _ = chart
            .configure_mesh()
            .disable_x_mesh()
            .light_line_style(TRANSPARENT)
            .bold_line_style(GRID)
            .axis_style(GREY)
            .label_style((FONT, 13).into_font().color(&INK))
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                // Every third month, and January with its year.
                SegmentValue::CenterOf(i) if *i < n => {
                    let p = periods[*i];
                    if p.month() == 1 {
                        format!("Jan {}", p.year())
                    } else if p.month() % 3 == 1 {
                        format::short_month(p.month()).to_string()
                    } else {
                        String::new()
                    }
                }
                _ => String::new(),
            })
            .y_labels(6)
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw();
        let _ = chart.draw_series(port.months.iter().enumerate().filter_map(|(i, (_, t))| {
            let colour = if i >= streak_from { ACCENT } else { GREY };
            let mut r = Rectangle::new(
                [
                    (SegmentValue::Exact(i), 0.0),
                    (SegmentValue::Exact(i + 1), (*t)? as f64),
                ],
                colour.filled(),
            );
            r.set_margin(0, 0, 2, 2);
            Some(r)
        }));
        if let Ok(series) = chart.draw_series(DashedLineSeries::new(
            [
                (SegmentValue::Exact(0), threshold),
                (SegmentValue::Exact(n), threshold),
            ],
            8,
            5,
            INK.stroke_width(2),
        )) {
            series
                .label(format!("threshold {}", port.streak_threshold))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], INK.stroke_width(2)));
        }
        if port.streak_months > 0 {
            // A legend entry for the streak's colour.
            if let Ok(series) = chart.draw_series(std::iter::empty::<Rectangle<_>>()) {
                series
                    .label(format!("current streak: {} months", port.streak_months))
                    .legend(|(x, y)| {
                        Rectangle::new([(x, y - 6), (x + 20, y + 6)], ACCENT.filled())
                    });
            }
        }
        draw_legend(&mut chart);
        let _ = root.present();
    }
    inline(svg, label)
}
