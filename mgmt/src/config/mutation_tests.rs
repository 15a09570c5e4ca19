//! The example configuration with one value changed, one line dropped or one
//! table repeated, thousands of times: parsing never panics; a refusal names a
//! line or a field; a configuration accepted starts a manager whose snapshot
//! is whole.

use super::parse;
use crate::admin_property_tests::check_snapshot;
use crate::manager_tests::{manager, EXAMPLE};
use proptest::prelude::*;
use std::path::Path;

/// Values a setting may be given, by kind, many of them wrong.
const NUMBERS: &[&str] = &[
    "0",
    "1",
    "-1",
    "2",
    "3",
    "100",
    "1500",
    "9000",
    "65535",
    "65536",
    "4294967296",
    "99999999999999999999",
    "1.5",
];
const STRINGS: &[&str] = &[
    "\"\"",
    "\"x\"",
    "\"web\"",
    "\"dns\"",
    "\"b1\"",
    "\"wan\"",
    "\"tcp\"",
    "\"udp\"",
    "\"http\"",
    "\"dr\"",
    "\"fullnat\"",
    "\"ring_hash\"",
    "\"least_conn\"",
    "\"round_robin\"",
    "\"source\"",
    "\"198.18.0.1\"",
    "\"198.18.0.1/24\"",
    "\"198.18.0.100\"",
    "\"198.18.0.11:8080\"",
    "\"198.18.1.5:80\"",
    "\"10.0.0.1:80\"",
    "\"2001:db8::1/64\"",
    "\"2001:db8::100\"",
    "\"[2001:db8::11]:8080\"",
    "\"300.1.1.1\"",
    "\"198.18.0.1/33\"",
    "\"net_af_packet0,iface=wan0\"",
    "\"net_tap0,iface=x\"",
    "\"0000:03:00.0\"",
    "\"/\"",
    "\"127.0.0.1:9100\"",
];
const ARRAYS: &[&str] = &[
    "[]",
    "[1]",
    "[1, 1]",
    "[0, 0]",
    "[\"198.18.0.2\"]",
    "[\"198.18.0.2\", \"198.18.0.2\"]",
    "[\"198.18.0.1/24\", \"198.18.0.1/24\"]",
    "[\"2001:db8::2\"]",
    "[\"10.1.1.1\"]",
];
const OTHERS: &[&str] = &["true", "false", "{}"];

/// A value for a setting that was `old`: mostly of its kind.
fn value_like(old: &str, pick: usize) -> &'static str {
    let kind = match old.trim().chars().next() {
        Some('"') => STRINGS,
        Some('[') => ARRAYS,
        Some('t' | 'f') => OTHERS,
        _ => NUMBERS,
    };
    let all = [NUMBERS, STRINGS, ARRAYS, OTHERS].concat();
    match pick % 5 {
        0 => all[pick / 5 % all.len()],
        _ => kind[pick / 5 % kind.len()],
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Change {
    /// The `.0`-th `key = value` line gets a value picked by `.1`.
    Value(usize, usize),
    /// The `.0`-th line is left out.
    Drop(usize),
    /// The `.0`-th `[[table]]`, up to the next table, appears twice.
    Repeat(usize),
}

pub(crate) fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        6 => (any::<usize>(), any::<usize>()).prop_map(|(i, v)| Change::Value(i, v)),
        2 => any::<usize>().prop_map(Change::Drop),
        1 => any::<usize>().prop_map(Change::Repeat),
    ]
}

/// The example with `changes` applied, in order.
pub(crate) fn changed(changes: &[Change]) -> String {
    let mut lines: Vec<String> = EXAMPLE.lines().map(String::from).collect();
    let setting = |l: &str| !l.trim_start().starts_with('#') && l.contains(" = ");
    for c in changes {
        match *c {
            Change::Value(i, v) => {
                let at: Vec<usize> = (0..lines.len()).filter(|&k| setting(&lines[k])).collect();
                let k = at[i % at.len()];
                let (key, old) = lines[k].split_once(" = ").unwrap();
                lines[k] = format!("{key} = {}", value_like(old, v));
            }
            Change::Drop(i) => {
                let k = i % lines.len();
                lines.remove(k);
            }
            Change::Repeat(i) => {
                let tables: Vec<usize> = (0..lines.len())
                    .filter(|&k| lines[k].starts_with("[["))
                    .collect();
                if tables.is_empty() {
                    continue;
                }
                let start = tables[i % tables.len()];
                let end = (start + 1..lines.len())
                    .find(|&k| lines[k].starts_with('['))
                    .unwrap_or(lines.len());
                let block: Vec<String> = lines[start..end].to_vec();
                lines.splice(end..end, block);
            }
        }
    }
    lines.join("\n")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn changed_examples_are_refused_by_field_or_run(changes in prop::collection::vec(change(), 1..4)) {
        let src = changed(&changes);
        match parse(&src, Path::new("weir.toml")) {
            Err(e) => {
                prop_assert!(e.line.is_some() || !e.field.is_empty(), "{e} names no line or field");
                prop_assert!(!e.message.trim().is_empty(), "{e:?} says nothing");
            }
            Ok(_) => {
                let (m, _health) = manager(&src);
                check_snapshot(&m);
            }
        }
    }
}
