//! `mailbeacon ranges import`: a downloaded list in any publisher's format (plain, Apple's CSV,
//! Google's JSON, Microsoft's endpoints JSON). Whatever parses is loaded as that list, and every
//! range in it is then found again by address lookups.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mailbeacon::classify::ranges::{Ranges, list_names, parse_import, parse_list};
use std::sync::{LazyLock, Mutex};

/// The shipped lists, loaded once; each input replaces one list.
static RANGES: LazyLock<Mutex<Ranges>> = LazyLock::new(|| Mutex::new(Ranges::builtin()));

fuzz_target!(|data: &[u8]| {
    let Some((&sel, text)) = data.split_first() else {
        return;
    };
    let text = String::from_utf8_lossy(text);
    let names: Vec<&'static str> = list_names().collect();
    let list = names[usize::from(sel) % names.len()];

    match parse_list(&text) {
        Ok(nets) => assert!(nets.iter().all(|n| *n == n.trunc())),
        Err(e) => assert!(e.line >= 1 && e.line <= text.lines().count()),
    }
    let Ok((nets, _format)) = parse_import(list, &text) else {
        return;
    };
    let mut ranges = RANGES.lock().unwrap();
    ranges.set(list, &nets);
    for net in nets.iter().take(64) {
        for addr in [net.network(), net.broadcast()] {
            assert!(
                ranges.tags(addr).contains(&list),
                "{net} not found by {addr}"
            );
        }
    }
});
