//! `camcert report diff`: a clean run of the camera query suite against a run
//! with `record-outside-window`, which tests/camera_behaviours.rs shows
//! failing exactly CAM-Q-006 and CAM-Q-010. The diff names exactly those
//! (on both transports) as newly failing and exits 1; the other way round it
//! names them newly passing and exits 0; unreadable input exits 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::root;

const SUITE: &str = "suites/gb28181/camera-queries.yaml";
const FAULT: &str = "record-outside-window";
/// What tests/camera_behaviours.rs says the fault fails.
const FAILS: &[&str] = &["CAM-Q-006", "CAM-Q-010"];

fn camcert(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_camcert"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("camcert runs")
}

fn run_into(dir: &Path, faults: &[&str]) -> PathBuf {
    let mut args = vec!["run", SUITE, "--report-dir", dir.to_str().unwrap()];
    for f in faults {
        args.extend(["--peer-fault", f]);
    }
    let out = camcert(&args);
    assert!(out.status.code().is_some_and(|c| c < 2), "{out:?}");
    dir.join("results.json")
}

/// The entries (`ID [transport]`) listed under `heading` in the diff text.
fn listed(text: &str, heading: &str) -> Vec<String> {
    let start = text
        .find(&format!("\n{heading} ("))
        .unwrap_or_else(|| panic!("no {heading:?} in\n{text}"));
    let mut v: Vec<String> = text[start + 1..]
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("      "))
        .map(|l| {
            let mut w = l.split_whitespace();
            format!("{} {}", w.next().unwrap(), w.next().unwrap())
        })
        .collect();
    v.sort();
    v
}

fn expected() -> Vec<String> {
    let mut v: Vec<String> = FAILS
        .iter()
        .flat_map(|id| ["udp", "tcp"].map(|t| format!("{id} [{t}]")))
        .collect();
    v.sort();
    v
}

#[test]
fn diff_names_exactly_what_a_fault_breaks_and_mends() {
    let dir = tempfile::tempdir().unwrap();
    let clean = run_into(&dir.path().join("clean"), &[]);
    let faulty = run_into(&dir.path().join("faulty"), &[FAULT]);

    let out = camcert(&[
        "report",
        "diff",
        clean.to_str().unwrap(),
        faulty.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(1), "a regression exits 1:\n{text}");
    assert_eq!(listed(&text, "newly failing"), expected(), "{text}");
    assert!(listed(&text, "newly passing").is_empty(), "{text}");
    assert!(listed(&text, "added").is_empty(), "{text}");
    assert!(listed(&text, "removed").is_empty(), "{text}");
    // The failed check is named under each newly failing case.
    assert!(text.contains("      failed: step "), "{text}");
    assert!(text.contains("regressed: 4 newly failing"), "{text}");

    let out = camcert(&[
        "report",
        "diff",
        faulty.to_str().unwrap(),
        clean.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0), "mending exits 0:\n{text}");
    assert_eq!(listed(&text, "newly passing"), expected(), "{text}");
    assert!(listed(&text, "newly failing").is_empty(), "{text}");
    assert!(text.contains("no regression"), "{text}");

    // A run against itself: nothing listed, exit 0.
    let out = camcert(&[
        "report",
        "diff",
        clean.to_str().unwrap(),
        clean.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(out.status.code(), Some(0));
    for h in [
        "newly failing",
        "newly passing",
        "findings or failed checks changed",
        "added",
        "removed",
    ] {
        assert!(listed(&text, h).is_empty(), "{text}");
    }
}

#[test]
fn unreadable_input_exits_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.json");
    let garbage = dir.path().join("garbage.json");
    std::fs::write(&garbage, b"{\"not\": \"a run\"").unwrap();
    let other = dir.path().join("other.json");
    std::fs::write(&other, b"{\"tool\": \"x\"}").unwrap();
    for (a, b) in [(&missing, &other), (&garbage, &other), (&other, &other)] {
        let out = camcert(&["report", "diff", a.to_str().unwrap(), b.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(
            err.contains(a.file_name().unwrap().to_str().unwrap()),
            "{err}"
        );
    }
    let out = camcert(&["report", "html", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
}
