//! `expect: { golden: ... }`: the reference camera's catalog answer is held
//! to the committed golden file; a camera fault that changes one line of it
//! fails the step with a unified diff naming that line; `--update-golden`
//! rewrites the file from the message received.

mod common;

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::{RunResult, Status};
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};

const SUITE: &str = "tests/suites/golden-catalog.yaml";
const GOLDEN: &str = "golden/suites/catalog-response.txt";

async fn run(faults: &[&str], golden_dir: Option<&Path>, update: bool) -> RunResult {
    let suites = load::load_all(&[common::root().join(SUITE)]).expect("suite loads");
    let reports = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: reports.path().to_path_buf(),
        peer_faults: faults.iter().map(|f| f.to_string()).collect(),
        vars: golden_dir
            .map(|d| vec![("golden_dir".to_string(), d.display().to_string())])
            .unwrap_or_default(),
        update_golden: update,
        job_pool: Some(common::job_pool()),
        ..Default::default()
    };
    runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_camera_s_catalog_answer_matches_the_committed_file() {
    let r = run(&[], None, false).await;
    common::assert_all_passed(&r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_line_fails_the_step_with_a_diff_naming_it() {
    let r = run(&["catalog-wrong-sumnum"], None, false).await;
    assert_eq!(r.cases.len(), 1);
    let c = &r.cases[0];
    assert_eq!(c.status, Status::Failed, "{:#?}", c.failures);
    let f = c
        .failures
        .iter()
        .find(|f| f.check == "golden")
        .unwrap_or_else(|| panic!("no golden failure: {:#?}", c.failures));
    assert_eq!(f.step, 3);
    assert!(f.message.contains(GOLDEN), "{}", f.message);
    assert!(
        f.message
            .contains("-    <SumNum>2</SumNum>\n+    <SumNum>3</SumNum>\n"),
        "{}",
        f.message
    );
    assert!(f.message.contains("@@ -14,7 +14,7 @@"), "{}", f.message);
    assert_eq!(
        f.expected.as_deref(),
        Some("line 17:     <SumNum>2</SumNum>")
    );
    assert_eq!(
        f.received.as_deref(),
        Some("line 17:     <SumNum>3</SumNum>")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_golden_rewrites_the_file() {
    let committed = std::fs::read_to_string(common::root().join(GOLDEN)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("catalog-response.txt");
    std::fs::write(&file, committed.replace("通道2", "Channel 2")).unwrap();

    let r = run(&[], Some(dir.path()), false).await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "golden", "{:#?}", r.cases[0].failures);
    assert!(
        f.message
            .contains("-            <Name>Channel 2</Name>\n+            <Name>通道2</Name>"),
        "{}",
        f.message
    );

    let r = run(&[], Some(dir.path()), true).await;
    common::assert_all_passed(&r);
    assert!(r.cases[0]
        .findings
        .iter()
        .any(|f| f.code == "camcert.golden-written"));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), committed);

    let r = run(&[], Some(dir.path()), false).await;
    common::assert_all_passed(&r);

    // A file that is not there fails the step and says how to write it.
    std::fs::remove_file(&file).unwrap();
    let r = run(&[], Some(dir.path()), false).await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "golden");
    assert!(f.message.contains("--update-golden"), "{}", f.message);
}

/// `tests/suites/golden-catalog.yaml` with its last step's `golden` block
/// replaced by `golden`.
fn with_golden(golden: &str) -> Result<usize, String> {
    let text = std::fs::read_to_string(common::root().join(SUITE)).unwrap();
    let at = text.find("          golden:").unwrap();
    let text = format!("{}{golden}\n", &text[..at]);
    let catalog = load::load_catalog(&common::root().join("tests/suites/requirements.yaml"))
        .map_err(|e| e.to_string())?;
    load::parse_suite(Path::new("golden.yaml"), &text, || Ok(Arc::new(catalog)))
        .map(|s| s.cases.len())
        .map_err(|e| e.to_string())
}

#[test]
fn bad_golden_settings_are_refused_where_they_are_written() {
    assert_eq!(
        with_golden("          golden: { file: x.txt, redact: [xml.SN, sdp.y] }"),
        Ok(1)
    );
    let e = with_golden("          golden: { file: x.txt, redact: [xml_count.Item] }").unwrap_err();
    assert!(
        e.starts_with("golden.yaml:") && e.contains("xml_count.Item"),
        "{e}"
    );
    let e = with_golden("          golden: { file: x.txt, redact: [nosuch] }").unwrap_err();
    assert!(e.contains("golden redact \"nosuch\""), "{e}");
    let e = with_golden("          golden: { file: \" \" }").unwrap_err();
    assert!(e.contains("golden.file"), "{e}");
    let e = with_golden("          absent: true\n          golden: { file: x.txt }").unwrap_err();
    assert!(e.contains("absent"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_step_outside_a_device_suite_says_why_it_cannot_run() {
    let text = std::fs::read_to_string(common::root().join(SUITE))
        .unwrap()
        .replace(
            "      - send:\n",
            "      - replay: { file: captures/gb28181-camcert-device-platform-udp.pcapng, as: device }\n      - send:\n",
        );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("suite.yaml");
    std::fs::write(&file, text).unwrap();
    std::fs::copy(
        common::root().join("tests/suites/requirements.yaml"),
        dir.path().join("requirements.yaml"),
    )
    .unwrap();
    let suites = load::load_all(&[file]).expect("suite loads");
    let opts = RunOptions {
        report_dir: dir.path().join("reports"),
        job_pool: Some(common::job_pool()),
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .unwrap();
    let f = &r.cases[0].failures[0];
    assert_eq!(r.cases[0].status, Status::Error, "{f:#?}");
    assert!(f.message.contains("role: device"), "{}", f.message);
}
