//! SIP and SDP quirks met in the field, against the reference camera with
//! the fault that mimics each: a MESSAGE addressed to the platform's SIP
//! domain instead of its ID (`request-uri-domain`), and an SDP answer whose
//! `y=` lost its leading zero (`ssrc-9-digits`).
//!
//! By default camcert reads such a message as meant: the case fails on the
//! finding for the rule broken (its code and clause named in the failure)
//! and goes on, so every other step of the case is judged as without the
//! quirk. `--strict` judges the message as written: it does not match, and
//! the case ends there as it always did.

mod common;

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use camcert::report::{CaseResult, Failure, RunResult, Status};
use camcert::suite::load;
use camcert::suite::runner::{self, RunOptions};

const HEAD: &str = r#"
suite: sip and sdp quirks
protocol: gb28181
role: platform
transports: [udp]
vars:
  platform_id: "34020000002000000001"
  device_id: "34020000001320000001"
  channel_id: "34020000001310010001"
  domain: "3402000000"
timeout: 30s
peer:
  keepalive_interval: "3600"
background:
  - request: MESSAGE
    when: { xml.CmdType: { equals: Keepalive } }
    reply: 200
  - request: REGISTER
    when: { expires: { min: 1 } }
    reply: 200
"#;

/// Two queries, each answered by a Response MESSAGE addressed to the
/// platform: steps 3 and 6 receive what the camera sends.
fn two_queries(second_sn: &str) -> String {
    format!(
        r#"      - send:
          request: MESSAGE
          body: |
            <?xml version="1.0" encoding="UTF-8"?>
            <Query>
            <CmdType>DeviceInfo</CmdType>
            <SN>104</SN>
            <DeviceID>${{device_id}}</DeviceID>
            </Query>
      - expect: {{ response: 200 }}
      - expect:
          request: MESSAGE
          when: {{ xml.CmdType: {{ equals: DeviceInfo }} }}
          reply: 200
          match:
            uri.user: {{ equals: "${{platform_id}}" }}
            to.user: {{ equals: "${{platform_id}}" }}
            from.user: {{ equals: "${{device_id}}" }}
            xml.SN: {{ equals: "104" }}
            xml.Result: {{ equals: OK }}
          check:
            - manscdp: {{}}
      - send:
          request: MESSAGE
          body: |
            <?xml version="1.0" encoding="UTF-8"?>
            <Query>
            <CmdType>DeviceStatus</CmdType>
            <SN>105</SN>
            <DeviceID>${{device_id}}</DeviceID>
            </Query>
      - expect: {{ response: 200 }}
      - expect:
          request: MESSAGE
          when: {{ xml.CmdType: {{ equals: DeviceStatus }} }}
          reply: 200
          match:
            uri.user: {{ equals: "${{platform_id}}" }}
            to.user: {{ equals: "${{platform_id}}" }}
            xml.SN: {{ equals: "{second_sn}" }}
            xml.Online: {{ equals: ONLINE }}
"#
    )
}

/// A live session over UDP: INVITE, media, BYE, and the stream judged.
const LIVE: &str = r#"      - invite:
          session: play
          media: udp
          channel: "${channel_id}"
          match:
            sdp.s: { equals: Play }
            sdp.y: { regex: "^0[0-9]{9}$" }
      - media: { frames: 25 }
      - hangup: {}
      - stream:
          match:
            ssrc: { equals: "${session_ssrc}" }
            key_frames: { min: 1 }
            packets_after_bye: { max: 0 }
"#;

/// Runs one case (`steps`) against the reference camera with `faults`.
async fn run_case(steps: &str, faults: &[&str], strict: bool) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(common::root().join("suites/gb28181")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("requirements") {
            std::fs::copy(&p, dir.path().join(name)).unwrap();
        }
    }
    let text = format!(
        "{HEAD}\ncases:\n  - id: QUIRK-001\n    title: quirk\n    requirements: [GB-Q-01]\n    steps:\n{steps}"
    );
    let path = dir.path().join("quirk.yaml");
    std::fs::write(&path, text).unwrap();
    let suites = load::load_all(&[PathBuf::from(&path)]).expect("suite loads");
    let reports = tempfile::tempdir().unwrap();
    let opts = RunOptions {
        report_dir: reports.path().to_path_buf(),
        peer_faults: faults.iter().map(|s| s.to_string()).collect(),
        strict,
        ..Default::default()
    };
    let r = runner::run(&suites, &opts, Arc::new(AtomicBool::new(false)))
        .await
        .expect("run");
    // The strict profile is in results.json's settings, and only when on.
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(reports.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(
        json["settings"][0].get("strict").and_then(|v| v.as_bool()),
        strict.then_some(true),
        "{}",
        json["settings"]
    );
    r
}

fn only_case(r: &RunResult) -> &CaseResult {
    assert_eq!(r.cases.len(), 1, "{:#?}", r.cases);
    &r.cases[0]
}

fn shown(fs: &[Failure]) -> String {
    fs.iter()
        .map(|f| format!("step {} {}: {}", f.step, f.check, f.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn domain_in_request_uri_and_to_is_reported_and_the_case_goes_on() {
    let r = run_case(&two_queries("105"), &["request-uri-domain"], false).await;
    let c = only_case(&r);
    assert_eq!(c.status, Status::Failed, "{}", shown(&c.failures));
    // Every failure is the quirk's own finding, named with its clause, with
    // the expected and the actual value.
    for f in &c.failures {
        assert!(
            ["sip.request-uri-domain", "sip.to-domain"].contains(&f.check.as_str()),
            "a failure other than the quirk's:\n{}",
            shown(&c.failures)
        );
        assert!(f.message.contains("§保活信令流程"), "{}", f.message);
        assert!(
            f.message.contains(
                "expected the server ID 34020000002000000001, got its SIP domain 3402000000"
            ),
            "{}",
            f.message
        );
    }
    // Both Response MESSAGEs were judged (steps 3 and 6): the case did not
    // stop at the first, and their matchers on uri.user, to.user, xml.*
    // held on the message read as meant.
    let steps: Vec<usize> = c.failures.iter().map(|f| f.step).collect();
    assert!(
        steps.contains(&3) && steps.contains(&6),
        "{}",
        shown(&c.failures)
    );
    assert!(
        c.failures
            .iter()
            .any(|f| f.step == 3 && f.check == "sip.request-uri-domain"),
        "{}",
        shown(&c.failures)
    );
    assert!(c.findings.iter().any(|f| f.code == "sip.to-domain"));

    // The rest of the case is still judged: a real mismatch after the quirk
    // fails on its own check too.
    let r = run_case(&two_queries("999"), &["request-uri-domain"], false).await;
    let c = only_case(&r);
    assert!(
        c.failures
            .iter()
            .any(|f| f.step == 6 && f.check == "match xml.SN" && f.message.contains("999")),
        "{}",
        shown(&c.failures)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_profile_does_not_match_a_request_uri_naming_the_domain() {
    let r = run_case(&two_queries("105"), &["request-uri-domain"], true).await;
    let c = only_case(&r);
    assert_eq!(c.status, Status::Failed);
    // The message is judged as written: the matchers on uri.user and to.user
    // fail, and the case ends at that step as before.
    let checks: Vec<&str> = c.failures.iter().map(|f| f.check.as_str()).collect();
    assert!(
        checks.contains(&"match uri.user") && checks.contains(&"match to.user"),
        "{}",
        shown(&c.failures)
    );
    assert!(
        c.failures.iter().all(|f| f.step == 3),
        "{}",
        shown(&c.failures)
    );
    let uri = c
        .failures
        .iter()
        .find(|f| f.check == "match uri.user")
        .unwrap();
    assert!(uri.message.contains("3402000000"), "{}", uri.message);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_camera_passes_both_profiles() {
    for strict in [false, true] {
        let r = run_case(&two_queries("105"), &[], strict).await;
        let c = only_case(&r);
        assert_eq!(c.status, Status::Passed, "{}", shown(&c.failures));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nine_digit_ssrc_is_reported_and_the_session_is_still_judged() {
    let r = run_case(LIVE, &["ssrc-9-digits"], false).await;
    let c = only_case(&r);
    assert_eq!(c.status, Status::Failed);
    for f in &c.failures {
        assert_eq!(
            f.check,
            "gb.sdp.y-not-10-digits",
            "a failure other than the quirk's:\n{}",
            shown(&c.failures)
        );
        assert_eq!(f.step, 1, "{}", shown(&c.failures));
        assert!(f.message.contains("附录F"), "{}", f.message);
        assert!(
            f.message.contains("has 9 digits instead of 10"),
            "{}",
            f.message
        );
    }
    assert!(!c.failures.is_empty());
    // The session ran to its end: the answer's y= read as 0100000001 met
    // the matcher, media flowed with that SSRC, the BYE went out, and the
    // stream step judged it.
    assert!(!c.media.is_empty(), "no media summary");
    assert!(
        c.messages
            .iter()
            .any(|m| m.direction == "sent" && m.summary.starts_with("BYE")),
        "no BYE sent"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_profile_fails_the_nine_digit_answer_itself() {
    let r = run_case(LIVE, &["ssrc-9-digits"], true).await;
    let c = only_case(&r);
    assert_eq!(c.status, Status::Failed);
    assert!(
        c.failures.iter().all(|f| f.step == 1),
        "{}",
        shown(&c.failures)
    );
    assert!(
        c.failures
            .iter()
            .any(|f| f.check == "session.gb.sdp.y-not-10-digits"),
        "{}",
        shown(&c.failures)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_profile_refuses_a_quirky_manscdp_body_in_the_manscdp_check() {
    // Lenient: the body is read and the check names the recovered deviation.
    let r = run_case(&two_queries("105"), &["attribute-fields"], false).await;
    let c = only_case(&r);
    let m = c
        .failures
        .iter()
        .find(|f| f.step == 3 && f.check == "manscdp")
        .unwrap_or_else(|| panic!("{}", shown(&c.failures)));
    assert!(
        m.message.contains("manscdp.field-as-attribute"),
        "{}",
        m.message
    );
    // Strict: the body is refused as it was before lenient decoding.
    let r = run_case(&two_queries("105"), &["attribute-fields"], true).await;
    let c = only_case(&r);
    let m = c
        .failures
        .iter()
        .find(|f| f.step == 3 && f.check == "manscdp")
        .unwrap_or_else(|| panic!("{}", shown(&c.failures)));
    assert!(
        m.message.contains("strict decoding refuses the body"),
        "{}",
        m.message
    );
}
