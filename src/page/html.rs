//! The page as HTML: a document with its style (and, live, its script) inline, so that it
//! needs nothing but itself; and the fragment inside it that the live page fetches again.

use std::fmt::Write as _;

use super::chart::{self, Bar};
use super::format::{self, esc};
use super::{Breakdown, Headline, Leaders, Port, Province, View, YtdMonth};
use crate::period::Period;

const STYLE: &str = include_str!("page.css");
const SCRIPT: &str = include_str!("page.js");

/// How the document is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Served at `/`: a chooser, and a script that fetches `/v1/page` as records change.
    Live,
    /// Written by `silkroute report`: no script, no chooser.
    Report,
}

/// The whole document around `fragment` (from [`fragment`] or [`waiting`]).
pub fn document(title: &str, fragment: &str, etag: &str, mode: Mode) -> String {
    let mut out = String::with_capacity(fragment.len() + STYLE.len() + SCRIPT.len() + 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>\n{STYLE}</style>\n</head>\n<body>\n",
        esc(title)
    );
    out.push_str(
        "<header class=\"masthead\"><div class=\"wrap\"><span class=\"brand\">silkroute</span>",
    );
    match mode {
        Mode::Live => out.push_str(
            "<span id=\"status\" class=\"status\" role=\"status\">Live: updates as new figures arrive</span>",
        ),
        Mode::Report => out.push_str("<span class=\"status\">Trade statistics report</span>"),
    }
    out.push_str("</div></header>\n");
    let _ = write!(
        out,
        "<main id=\"view\" class=\"wrap\" data-etag=\"{}\">\n{fragment}</main>\n",
        esc(etag)
    );
    out.push_str(
        "<footer class=\"wrap\"><p>Figures are the indicator records silkroute derived from the \
         customs and freight events it received (contract v2): year to date from January, growth \
         on the same months a year earlier, shares of the region's total, national rank among the \
         provinces. Amounts in yuan unless marked $; dollars at each month's average rate.</p></footer>\n",
    );
    if mode == Mode::Live {
        let _ = write!(out, "<script>\n{SCRIPT}</script>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The title of a view's document.
pub fn title(view: &View) -> String {
    format!(
        "Foreign trade of {}, {}",
        format::region(&view.region),
        format::ytd_window(view.period)
    )
}

/// Shown while the service has no total record yet.
pub fn waiting(asked: Option<&str>) -> String {
    match asked {
        Some(region) => format!(
            "<section class=\"empty\"><h1>No figures for region {}</h1><p>The page fills in \
             once the service holds trade records for it. <a href=\"/\">Show the default \
             region</a>.</p></section>\n",
            esc(region)
        ),
        None => "<section class=\"empty\"><h1>Waiting for figures…</h1><p>The page fills in by \
                 itself as soon as the service has derived its first records.</p></section>\n"
            .into(),
    }
}

/// Everything the page shows of `view`.
pub fn fragment(view: &View, mode: Mode) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let region = format::region(&view.region);
    let _ = writeln!(
        out,
        "<h1>Foreign trade of {}<span class=\"when\">{}</span></h1>",
        esc(&region),
        esc(&format::ytd_window(view.period))
    );
    if mode == Mode::Live {
        chooser(&mut out, view);
    }
    match &view.headline {
        Some(h) => headline(&mut out, view, h),
        None => {
            let _ = writeln!(
                out,
                "<p class=\"note\">No total figure for {} at {}.</p>",
                esc(&region),
                esc(&format::month_name(view.period))
            );
        }
    }
    ytd(&mut out, view);
    if !view.breakdowns.is_empty() {
        out.push_str("<section id=\"composition\"><h2>Composition</h2>\n");
        for b in &view.breakdowns {
            breakdown(&mut out, b);
        }
        out.push_str("</section>\n");
    }
    if !view.leaders.is_empty() {
        out.push_str("<section id=\"leaders\"><h2>Leaders</h2><div class=\"cards\">\n");
        for l in &view.leaders {
            leaders(&mut out, l);
        }
        out.push_str("</div></section>\n");
    }
    provinces(&mut out, view);
    if !view.ports.is_empty() {
        out.push_str("<section id=\"freight\"><h2>Freight trains by port</h2>\n");
        for p in &view.ports {
            port(&mut out, p, view.period);
        }
        out.push_str("</section>\n");
    }
    out
}

fn chooser(out: &mut String, view: &View) {
    out.push_str(
        "<form class=\"choose\" method=\"get\" action=\"/\"><label>Region <select name=\"region\">",
    );
    for r in &view.regions {
        let _ = write!(
            out,
            "<option value=\"{0}\"{1}>{2} ({0})</option>",
            esc(r),
            if *r == view.region { " selected" } else { "" },
            esc(&format::region(r))
        );
    }
    out.push_str("</select></label> <label>Period <select name=\"period\">");
    for p in &view.periods {
        let _ = write!(
            out,
            "<option value=\"{p}\"{}>{}</option>",
            if *p == view.period { " selected" } else { "" },
            esc(&format::month_name(*p))
        );
    }
    out.push_str("</select></label> <button type=\"submit\">Show</button></form>\n");
}

fn tile(out: &mut String, class: &str, key: &str, figure: &str, value: &str, note: &str) {
    let _ = write!(
        out,
        "<div class=\"tile {class}\"><span class=\"k\">{}</span><span class=\"v\" data-figure=\"{figure}\">{}</span>",
        esc(key),
        esc(value)
    );
    if !note.is_empty() {
        let _ = write!(out, "<span class=\"n\">{}</span>", esc(note));
    }
    out.push_str("</div>");
}

fn headline(out: &mut String, view: &View, h: &Headline) {
    out.push_str("<section id=\"headline\" aria-label=\"Headline figures\"><div class=\"tiles\">");
    let partial = if h.months_in_ytd < view.period.month() {
        format!(
            "partial: {} of {} months",
            h.months_in_ytd,
            view.period.month()
        )
    } else {
        String::new()
    };
    tile(
        out,
        "main",
        "Imports and exports",
        "ytd_cny",
        &format::yuan(h.ytd_cny),
        &partial,
    );
    tile(
        out,
        "",
        "In US dollars",
        "ytd_usd",
        &h.ytd_usd.map_or("n/a".into(), format::dollars),
        "",
    );
    tile(
        out,
        "",
        "Growth, year on year",
        "ytd_yoy_pct",
        &format::growth(h.ytd_yoy_pct),
        "in yuan",
    );
    if h.ytd_usd_yoy_pct.is_some() {
        tile(
            out,
            "",
            "Growth in dollars",
            "ytd_usd_yoy_pct",
            &format::growth(h.ytd_usd_yoy_pct),
            "in US dollars",
        );
    }
    let rank_note = h
        .yoy_rank_of
        .map_or(String::new(), |of| format!("of {of} provinces, by growth"));
    tile(
        out,
        "",
        "National rank",
        "yoy_rank",
        &h.yoy_rank.map_or("n/a".into(), |r| r.to_string()),
        &rank_note,
    );
    out.push_str("</div>");
    let flows: Vec<String> = [("Exports", &h.exports), ("Imports", &h.imports)]
        .into_iter()
        .filter_map(|(name, f)| {
            f.as_ref().map(|f| {
                format!(
                    "{name} <b>{}</b> ({})",
                    esc(&format::yuan(f.ytd_cny)),
                    esc(&format::growth(f.ytd_yoy_pct))
                )
            })
        })
        .collect();
    if !flows.is_empty() {
        let _ = write!(out, "<p class=\"flows\">{}</p>", flows.join(" · "));
    }
    out.push_str("</section>\n");
}

fn ytd(out: &mut String, view: &View) {
    let months: Vec<&YtdMonth> = view
        .ytd
        .iter()
        .filter(|m| m.this_year.is_some() || m.last_year.is_some())
        .collect();
    if months.is_empty() {
        return;
    }
    let (year, last) = (view.period.year(), view.period.year() - 1);
    let _ = write!(
        out,
        "<section id=\"ytd\"><h2>Year to date, {year} against {last}</h2>\n<div class=\"pair\">"
    );
    let describe = months
        .iter()
        .filter_map(|m| {
            m.this_year.map(|v| {
                format!(
                    "{}: {} ({})",
                    format::short_month(m.month),
                    format::yuan(v),
                    format::growth(m.yoy_pct)
                )
            })
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(
        out,
        "<figure>{}<figcaption>Cumulative imports and exports from January, {year} (blue) and {last} (grey), billions of yuan.</figcaption></figure>",
        chart::ytd(
            &view.ytd,
            year,
            &format!("Line chart of the year to date, {year} against {last}. {describe}")
        )
    );
    let _ = write!(
        out,
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">January to</th><th scope=\"col\">{year}</th><th scope=\"col\">{last}</th><th scope=\"col\">Growth</th></tr></thead><tbody>"
    );
    for m in months {
        let _ = write!(
            out,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            format::MONTHS[(m.month - 1) as usize],
            m.this_year.map_or("".into(), format::amount),
            m.last_year.map_or("".into(), format::amount),
            if m.this_year.is_some() {
                esc(&format::growth(m.yoy_pct))
            } else {
                String::new()
            }
        );
    }
    out.push_str("</tbody></table></div></div></section>\n");
}

fn breakdown(out: &mut String, b: &Breakdown) {
    let heading = format!(
        "{} by {}",
        capitalise(format::flow(b.flow)),
        format::dimension(&b.dimension)
    );
    let _ = write!(
        out,
        "<div class=\"block\" data-breakdown=\"{}/{}\"><h3>{}</h3><div class=\"pair\">",
        b.flow,
        esc(&b.dimension),
        esc(&heading)
    );
    let bars: Vec<Bar> = b
        .members
        .iter()
        .map(|m| Bar {
            label: format::member(&m.member),
            value: m.share_pct.unwrap_or(0.0),
            highlight: false,
        })
        .collect();
    let describe = b
        .members
        .iter()
        .map(|m| {
            format!(
                "{} {}",
                format::member(&m.member),
                format::share(m.share_pct)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(
        out,
        "<figure>{}<figcaption>Share of the total, per cent.</figcaption></figure>",
        chart::bars(
            &bars,
            " %",
            &format!("Bar chart of shares, {heading}: {describe}")
        )
    );
    out.push_str(
        "<div class=\"scroll\"><table><thead><tr><th scope=\"col\">Member</th><th scope=\"col\">Value, yuan</th><th scope=\"col\">Share</th><th scope=\"col\">Growth</th></tr></thead><tbody>",
    );
    for m in &b.members {
        let _ = write!(
            out,
            "<tr data-member=\"{}\"><th scope=\"row\">{}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&m.member),
            esc(&format::member(&m.member)),
            esc(&format::amount(m.ytd_cny)),
            esc(&format::share(m.share_pct)),
            esc(&format::growth(m.ytd_yoy_pct))
        );
    }
    out.push_str("</tbody></table></div></div></div>\n");
}

fn leaders(out: &mut String, l: &Leaders) {
    let _ = write!(
        out,
        "<div class=\"card\"><h3>{} by {}</h3><p class=\"n\">{} members ranked</p><div class=\"lists\">",
        esc(&capitalise(format::flow(l.flow))),
        esc(&format::dimension(&l.dimension)),
        l.members_ranked
    );
    let _ = write!(
        out,
        "<div><h4>Largest</h4><ol data-leaders=\"{}/{}/by_share\">",
        l.flow,
        esc(&l.dimension)
    );
    for (m, share) in &l.by_share {
        let _ = write!(
            out,
            "<li data-member=\"{}\"><span>{}</span> <b>{}</b></li>",
            esc(m),
            esc(&format::member(m)),
            esc(&format::share(*share))
        );
    }
    let _ = write!(
        out,
        "</ol></div><div><h4>Fastest growing</h4><ol data-leaders=\"{}/{}/by_yoy\">",
        l.flow,
        esc(&l.dimension)
    );
    for (m, yoy) in &l.by_yoy {
        let _ = write!(
            out,
            "<li data-member=\"{}\"><span>{}</span> <b>{}</b></li>",
            esc(m),
            esc(&format::member(m)),
            esc(&format::growth(Some(*yoy)))
        );
    }
    out.push_str("</ol></div></div></div>\n");
}

fn provinces(out: &mut String, view: &View) {
    if view.provinces.is_empty() {
        return;
    }
    let _ = write!(
        out,
        "<section id=\"provinces\"><h2>Growth by province, {}</h2>\n<div class=\"pair\">",
        esc(&format::ytd_window(view.period))
    );
    let bars: Vec<Bar> = view
        .provinces
        .iter()
        .map(|p: &Province| Bar {
            label: format::region(&p.region),
            value: p.ytd_yoy_pct,
            highlight: p.chosen,
        })
        .collect();
    let describe = view
        .provinces
        .iter()
        .map(|p| {
            format!(
                "{}. {} {}",
                p.rank,
                format::region(&p.region),
                format::growth(Some(p.ytd_yoy_pct))
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(
        out,
        "<figure>{}<figcaption>Year-on-year growth of imports and exports, per cent; {} highlighted.</figcaption></figure>",
        chart::bars(&bars, " %", &format!("Bar chart of growth by province, ranked: {describe}")),
        esc(&format::region(&view.region))
    );
    out.push_str(
        "<div class=\"scroll tall\"><table><thead><tr><th scope=\"col\">Rank</th><th scope=\"col\">Province</th><th scope=\"col\">Growth</th></tr></thead><tbody>",
    );
    for p in &view.provinces {
        let _ = write!(
            out,
            "<tr data-region=\"{}\"{}><td>{}</td><th scope=\"row\">{}</th><td>{}</td></tr>",
            esc(&p.region),
            if p.chosen { " class=\"chosen\"" } else { "" },
            p.rank,
            esc(&format::region(&p.region)),
            esc(&format::growth(Some(p.ytd_yoy_pct)))
        );
    }
    out.push_str("</tbody></table></div></div></section>\n");
}

fn port(out: &mut String, p: &Port, period: Period) {
    let name = format!(
        "{} ({})",
        format::port(&p.port),
        format::service(&p.service)
    );
    let _ = write!(
        out,
        "<div class=\"block\" data-port=\"{}/{}\"><h3>{}</h3>",
        esc(&p.port),
        esc(&p.service),
        esc(&name)
    );
    let prior = p.prior_ytd_trains.map_or(String::new(), |t| {
        format!(" on {} a year earlier", format::grouped(t))
    });
    let _ = write!(
        out,
        "<p class=\"facts\"><span data-figure=\"ytd_trains\">{} trains</span> in {}, \
         <span data-figure=\"ytd_yoy_pct\">{}</span>{}; \
         <span data-figure=\"streak\">{} consecutive months above {}</span>.</p>",
        format::grouped(p.ytd_trains),
        esc(&format::ytd_window(period)),
        esc(&format::growth(p.ytd_yoy_pct)),
        esc(&prior),
        p.streak_months,
        p.streak_threshold
    );
    let describe = p
        .months
        .iter()
        .map(|(m, t)| {
            format!(
                "{} {}: {}",
                format::short_month(m.month()),
                m.year(),
                t.map_or("n/a".into(), format::count)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    let _ = write!(
        out,
        "<div class=\"pair\"><figure>{}<figcaption>Trains per month; dashed line: the threshold of {}; the current streak above it in orange.</figcaption></figure>",
        chart::trains(
            p,
            &format!(
                "Bar chart of {name} trains per month, threshold {}, current streak {} months: {describe}",
                p.streak_threshold, p.streak_months
            )
        ),
        p.streak_threshold
    );
    out.push_str(
        "<div class=\"scroll tall\"><table><thead><tr><th scope=\"col\">Month</th><th scope=\"col\">Trains</th></tr></thead><tbody>",
    );
    let streak_from = p.months.len().saturating_sub(p.streak_months as usize);
    for (i, (m, t)) in p.months.iter().enumerate().rev() {
        let _ = write!(
            out,
            "<tr{}><th scope=\"row\">{}</th><td>{}</td></tr>",
            if i >= streak_from {
                " class=\"streak\""
            } else {
                ""
            },
            esc(&format::month_name(*m)),
            t.map_or("n/a".into(), format::count)
        );
    }
    out.push_str("</tbody></table></div></div></div>\n");
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
