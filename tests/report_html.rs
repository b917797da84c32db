//! report.html, rendered by a real browser: a run against the built-in
//! camera with `preset-wrong-num` (which fails CAM-Q-008 and nothing else in
//! the query suite) writes the page, headless Chromium loads it, and the DOM
//! it builds has the requirement matrix, the failing case's expected and
//! received values, and the message ladder. `ci/install-deps.sh` installs
//! Chromium; with `CAMCERT_INTEROP=1` a missing browser is a failure,
//! otherwise the browser part says it skipped.

mod common;
use common::available;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::root;

const SUITE: &str = "suites/gb28181/camera-queries.yaml";

fn camcert(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_camcert"))
        .current_dir(root())
        .args(args)
        .output()
        .expect("camcert runs")
}

/// Headless Chromium with everything that would reach the network off.
fn chromium(extra: &[String], page: &Path) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,2000",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(extra)
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium runs")
}

/// The part of `dom` from the element with `id` to the end of its section.
fn section<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no element {id} in the page"));
    let end = dom[start..]
        .find("</section>")
        .map(|e| start + e)
        .unwrap_or(dom.len());
    &dom[start..end]
}

/// The matrix row of a requirement.
fn matrix_row<'a>(dom: &'a str, req: &str) -> &'a str {
    let start = dom
        .find(&format!("data-requirement=\"{req}\""))
        .unwrap_or_else(|| panic!("no matrix row for {req}"));
    let end = dom[start..].find("</tr>").unwrap() + start;
    &dom[start..end]
}

#[test]
fn report_html_renders_matrix_failure_and_ladder_in_a_browser() {
    let dir = tempfile::tempdir().unwrap();
    let report_dir = dir.path().join("reports");
    let out = camcert(&[
        "run",
        SUITE,
        "--peer-fault",
        "preset-wrong-num",
        "--report-dir",
        report_dir.to_str().unwrap(),
    ]);
    // CAM-Q-008 is optional: the run passes, with the case failed.
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let page = report_dir.join("report.html");
    let html = std::fs::read_to_string(&page).expect("the run wrote report.html");
    // Self-contained: nothing is fetched from anywhere.
    for external in ["<script src", "<link ", "http://", "https://", "url(http"] {
        let hits: Vec<_> = html
            .match_indices(external)
            .filter(|(i, _)| !html[*i..].starts_with("http://www.w3.org/2000/svg"))
            .collect();
        assert!(hits.is_empty(), "the page refers to {external}");
    }

    // `camcert report html` writes the same page from results.json.
    let again = dir.path().join("again.html");
    let out = camcert(&[
        "report",
        "html",
        report_dir.join("results.json").to_str().unwrap(),
        "-o",
        again.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let again_html = std::fs::read_to_string(&again).unwrap();
    assert!(again_html.contains("data-requirement=\"GB-Q-08\""));
    // Written elsewhere, the evidence links point back to the run's folder.
    assert!(again_html.contains("/reports/pcap/CAM-Q-008-udp.pcap"));

    if !available("chromium") {
        return;
    }
    let out = chromium(&["--dump-dom".into()], &page);
    let dom = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        dom.contains("id=\"requirement-matrix\""),
        "no matrix in the DOM: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The matrix: GB-Q-08 (CAM-Q-008) failed on both transports, GB-Q-04
    // (DeviceInfo) passed on both, each cell linking to its case.
    let q08 = matrix_row(&dom, "GB-Q-08");
    for t in ["udp", "tcp"] {
        assert!(
            q08.contains(&format!("data-transport=\"{t}\" data-verdict=\"fail\"")),
            "{q08}"
        );
        assert!(
            q08.contains(&format!("href=\"#case-CAM-Q-008-{t}\"")),
            "{q08}"
        );
    }
    let q04 = matrix_row(&dom, "GB-Q-04");
    for t in ["udp", "tcp"] {
        assert!(
            q04.contains(&format!("data-transport=\"{t}\" data-verdict=\"pass\"")),
            "{q04}"
        );
    }
    assert!(!dom.contains("data-verdict=\"not run\""));

    // The summary: counts, and the DUT identity from its DeviceInfo answer.
    assert!(dom.contains("20 passed") && dom.contains("2 failed"));
    assert!(dom.contains("Manufacturer: <b>camcert</b>"));
    assert!(dom.contains("Model: <b>Reference IPC</b>"));
    assert!(dom.contains("camera-queries.yaml"));

    // The failing case: the check, what was expected and what came.
    let case = section(&dom, "case-CAM-Q-008-udp");
    assert!(case.contains("data-status=\"failed\""));
    assert!(case.contains("match xml.PresetList@Num"), "{case}");
    assert!(
        case.contains("equals field xml_count.PresetList/Item (\"2\")"),
        "{case}"
    );
    assert!(case.contains("<td class=\"rec mono\">\"3\"</td>"), "{case}");
    assert!(case.contains("href=\"pcap/CAM-Q-008-udp.pcap\""));

    // Its ladder: camcert and the DUT, one arrow per logged message (the
    // query and its 200, the answer and its 200; the camera registered once
    // for the whole run, before this case).
    let ladder_at = case.find("<svg class=\"ladder\"").expect("a ladder");
    let ladder = &case[ladder_at..case[ladder_at..].find("</svg>").unwrap() + ladder_at];
    assert_eq!(ladder.matches("class=\"arrow\"").count(), 4, "{ladder}");
    assert_eq!(ladder.matches("class=\"msg sent\"").count(), 2);
    assert_eq!(ladder.matches("class=\"msg received\"").count(), 2);
    assert!(ladder.contains(">camcert<"));
    assert!(ladder.contains("MESSAGE sip:34020000001320000001"));
    assert!(ladder.contains("200 OK (MESSAGE)"));

    // And it draws.
    let shot = dir.path().join("report.png");
    let out = chromium(&[format!("--screenshot={}", shot.display())], &page);
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000);
}

/// Ctrl-C during a run still leaves a report.html, marked interrupted.
#[test]
fn an_interrupted_run_rewrites_the_page_marked_so() {
    let dir = tempfile::tempdir().unwrap();
    let report_dir = dir.path().join("reports");
    // The keepalive suite waits out minutes of protocol time, long enough
    // to be interrupted.
    let mut child = Command::new(env!("CARGO_BIN_EXE_camcert"))
        .current_dir(root())
        .args([
            "run",
            "suites/gb28181/camera-keepalive.yaml",
            "--report-dir",
            report_dir.to_str().unwrap(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait for the first case to finish, then interrupt.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !report_dir.join("results.json").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "an interrupted run exits 1");
    let html = std::fs::read_to_string(report_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"interrupted\""));
    assert!(html.contains(">INTERRUPTED<"));
    let results = std::fs::read_to_string(report_dir.join("results.json")).unwrap();
    assert!(results.contains("\"interrupted\": true"));
}
