//! `Engine::select` (behind `/v1/indicators`) derives only what a filter asks for, and returns
//! exactly the records that `records()` holds for it.

use silkroute::engine::record::{Record, RecordKind};
use silkroute::engine::{Engine, EngineSettings, Selection};
use silkroute::event::{self, ParseRules};
use silkroute::period::Period;

fn sample_engine() -> Engine {
    let mut engine = Engine::new(EngineSettings::default());
    let rules = ParseRules {
        max_message_bytes: 1 << 20,
        current_month: Period::new(2026, 1),
    };
    for (_, text) in silkroute::demo::SAMPLE {
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            engine.apply(&event::parse(line.as_bytes(), &rules).unwrap());
        }
    }
    engine.discard_changes();
    engine
}

/// The filter rule written out independently of the engine.
fn admits(sel: &Selection<'_>, r: &Record) -> bool {
    let (kind, region, port) = match r {
        Record::Trade(t) => (RecordKind::Trade, Some(&*t.region), None),
        Record::Leaders(l) => (RecordKind::Leaders, Some(&*l.region), None),
        Record::Freight(f) => (RecordKind::Freight, None, Some(&*f.port)),
    };
    sel.kind.is_none_or(|k| k == kind)
        && sel.region.is_none_or(|x| region == Some(x))
        && sel.port.is_none_or(|x| port == Some(x))
        && sel.period.is_none_or(|p| r.period() == p)
}

#[test]
fn a_selection_returns_exactly_the_matching_records() {
    let engine = sample_engine();
    let all = engine.records();
    let sep = Period::parse("2024-09");
    let selections = [
        Selection::default(),
        Selection {
            region: Some("XJ"),
            ..Default::default()
        },
        Selection {
            region: Some("XJ"),
            period: sep,
            ..Default::default()
        },
        Selection {
            kind: Some(RecordKind::Leaders),
            region: Some("XJ"),
            ..Default::default()
        },
        Selection {
            kind: Some(RecordKind::Freight),
            port: Some("khorgos"),
            period: sep,
            ..Default::default()
        },
        Selection {
            port: Some("khorgos"),
            ..Default::default()
        },
        Selection {
            region: Some("nowhere"),
            ..Default::default()
        },
        Selection {
            kind: Some(RecordKind::Trade),
            port: Some("khorgos"),
            ..Default::default()
        },
        Selection {
            period: Period::parse("1999-01"),
            ..Default::default()
        },
    ];
    for sel in &selections {
        let expected: Vec<&Record> = all.iter().filter(|r| admits(sel, r)).collect();
        let got = engine.select(sel);
        assert_eq!(got.iter().collect::<Vec<_>>(), expected, "{sel:?}");
    }
    assert_eq!(engine.select(&selections[4]).len(), 1);
    assert!(engine.select(&selections[2]).len() > 30);
}
