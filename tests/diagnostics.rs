//! How a failed check explains itself. Small suites run against the
//! built-in reference peers, some with a deliberate fault, and the failure
//! text the terminal shows is kept as a snapshot under golden/diagnostics/:
//! each names the condition that did not hold, what was expected and what
//! was there, the closest candidate message and why every other message
//! was not taken. The per-message protocol checks (Via transport, To tag,
//! From tag) each fail against a camera that breaks them, naming the field,
//! the expected and actual value and the clause.

mod common;

use camcert::report::terminal::failure_text;
use camcert::report::{CaseResult, RunResult, Status};

/// The head every camera-under-test suite here shares: camcert is the
/// platform; keepalives come rarely so they do not interleave.
const HEAD: &str = r#"
suite: diagnostics
protocol: gb28181
role: platform
transports: [udp]
# Each case scripts the registration it judges.
needs: none
vars:
  platform_id: "34020000002000000001"
  device_id: "34020000001320000001"
  domain: "3402000000"
timeout: 30s
peer:
  keepalive_interval: "3600"
"#;

/// Runs one case (`steps`, YAML indented for a case) against the reference
/// camera with `faults`, over `transport`, with `extra` suite keys.
async fn run_case(extra: &str, steps: &str, faults: &[&str], transport: &str) -> RunResult {
    let dir = tempfile::tempdir().unwrap();
    for f in std::fs::read_dir(common::root().join("suites/gb28181")).unwrap() {
        let p = f.unwrap().path();
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.starts_with("requirements") {
            std::fs::copy(&p, dir.path().join(name)).unwrap();
        }
    }
    let head = HEAD.replace("transports: [udp]", &format!("transports: [{transport}]"));
    let text = format!(
        "{head}{extra}\ncases:\n  - id: DIAG-001\n    title: diagnostics\n    requirements: [GB-REG-01]\n    steps:\n{steps}"
    );
    let path = dir.path().join("diag.yaml");
    std::fs::write(&path, text).unwrap();
    let r = common::run_builtin(&[path.to_str().unwrap()], faults, &[]).await;
    // The report mentions the temporary folder; snapshots must not.
    let mut r = r;
    for c in &mut r.cases {
        for f in &mut c.failures {
            f.location = f
                .location
                .replace(&dir.path().display().to_string(), "SUITES");
        }
    }
    r
}

/// The terminal text of every failure of the only case, with the values
/// that change from run to run (ports, tags, branches, Call-IDs, counts of
/// retransmissions) replaced.
fn failures(r: &RunResult) -> String {
    let c: &CaseResult = &r.cases[0];
    assert_eq!(c.status, Status::Failed, "{c:#?}");
    let text: String = c.failures.iter().map(failure_text).collect();
    normalise(&text)
}

fn normalise(s: &str) -> String {
    let rules = [
        (r"127\.0\.0\.1:\d+", "127.0.0.1:PORT"),
        (r"tag=[0-9A-Za-z]+", "tag=TAG"),
        (r"branch=z9hG4bK[0-9A-Za-z]+", "branch=BRANCH"),
        (r"Call-ID: [^\\\s]+", "Call-ID: CALLID"),
        (r"\d+ other messages arrived", "N other messages arrived"),
        (r"<SN>\d+</SN>", "<SN>N</SN>"),
        (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?", "DATETIME"),
    ];
    let mut s = s.to_string();
    for (re, to) in rules {
        s = regex::Regex::new(re)
            .unwrap()
            .replace_all(&s, to)
            .into_owned();
    }
    // A retransmission-only wait sees as many copies as the timers sent.
    let mut out: Vec<&str> = Vec::new();
    // The bytes are cut at a length, so where they end depends on the
    // ports: keep their first line.
    let lines = s
        .lines()
        .filter(|l| !l.trim_start().starts_with("... and "))
        .filter(|l| !l.starts_with("                  "));
    for l in lines {
        if out.last() != Some(&l) {
            out.push(l);
        }
    }
    out.join("\n") + "\n"
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden/diagnostics");
    s.set_prepend_module_to_snapshot(false);
    s
}

const REGISTER: &str = "      - expect: { request: REGISTER, reply: 200 }\n";

fn query(cmd: &str, sn: u32) -> String {
    format!(
        r#"      - send:
          request: MESSAGE
          body: |
            <?xml version="1.0" encoding="GB2312"?>
            <Query>
            <CmdType>{cmd}</CmdType>
            <SN>{sn}</SN>
            <DeviceID>${{device_id}}</DeviceID>
            </Query>
      - expect: {{ response: 200 }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_method() {
    let r = run_case("", "      - expect: { request: MESSAGE }\n", &[], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "message");
    let c = &f.candidates[0];
    assert!(c.closest);
    assert_eq!(c.reasons[0].field, "method");
    assert_eq!(c.reasons[0].expected, "MESSAGE");
    assert_eq!(c.reasons[0].actual, "REGISTER");
    settings().bind(|| insta::assert_snapshot!("diag-wrong-method", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_status() {
    let steps = format!(
        "{REGISTER}{}",
        query("Catalog", 11).replace("response: 200", "response: 404")
    );
    let r = run_case("", &steps, &[], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.received.as_deref(), Some("200 OK"));
    assert_eq!(f.candidates[0].reasons[0].field, "status");
    settings().bind(|| insta::assert_snapshot!("diag-wrong-status", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_cmdtype() {
    let steps = format!(
        "{REGISTER}{}      - expect:\n          request: MESSAGE\n          when: {{ xml.CmdType: {{ equals: Catalog }} }}\n",
        query("DeviceInfo", 12)
    );
    let r = run_case("", &steps, &[], "udp").await;
    let c = &r.cases[0].failures[0].candidates[0];
    assert_eq!(c.reasons[0].field, "xml.CmdType");
    assert_eq!(c.reasons[0].expected, "equals \"Catalog\"");
    assert_eq!(c.reasons[0].actual, "\"DeviceInfo\"");
    settings().bind(|| insta::assert_snapshot!("diag-wrong-cmdtype", failures(&r)));
}

/// Every failed predicate of the step is reported, not just the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_sn_and_every_other_failed_predicate() {
    let steps = format!(
        "{REGISTER}{}      - expect:
          request: MESSAGE
          reply: 200
          match:
            xml.SN: {{ equals: \"13\" }}
            xml.CmdType: {{ equals: DeviceInfo }}
            xml.DeviceID: {{ equals: \"34020000001320000002\" }}
            xml.Result: {{ equals: OK }}
",
        query("DeviceInfo", 13)
    );
    let r = run_case("", &steps, &["wrong-sn-echo"], "udp").await;
    let checks: Vec<&str> = r.cases[0]
        .failures
        .iter()
        .map(|f| f.check.as_str())
        .collect();
    assert_eq!(checks, ["match xml.SN", "match xml.DeviceID"], "{r:#?}");
    settings().bind(|| insta::assert_snapshot!("diag-wrong-sn", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_element() {
    let steps = format!(
        "{REGISTER}{}      - expect:
          request: MESSAGE
          reply: 200
          allow_findings: true
          match:
            xml.Online: {{ one_of: [ONLINE, OFFLINE] }}
",
        query("DeviceStatus", 14)
    );
    let r = run_case("", &steps, &["devicestatus-incomplete"], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "match xml.Online");
    assert!(f
        .message
        .starts_with("xml.Online: expected one of [\"ONLINE\", \"OFFLINE\"], absent in MESSAGE"));
    settings().bind(|| insta::assert_snapshot!("diag-missing-element", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_header_value() {
    let steps = "      - expect:
          request: REGISTER
          match:
            from.user: { equals: \"${device_id}\" }
            header.Expires: { equals: \"7200\" }
";
    let r = run_case("", steps, &["wrong-device-id"], "udp").await;
    let got: Vec<&str> = r.cases[0]
        .failures
        .iter()
        .map(|f| f.check.as_str())
        .collect();
    assert_eq!(got, ["match from.user", "match header.Expires"]);
    settings().bind(|| insta::assert_snapshot!("diag-wrong-header", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_with_no_message_at_all() {
    let steps = format!("{REGISTER}      - expect: {{ request: MESSAGE, timeout: 1s }}\n");
    let r = run_case("", &steps, &["no-keepalive"], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "timeout");
    assert!(f.candidates.is_empty());
    assert_eq!(f.received.as_deref(), Some("no message"));
    settings().bind(|| insta::assert_snapshot!("diag-timeout-nothing", failures(&r)));
}

/// The camera only retransmits its unanswered REGISTER while the step
/// waits: each copy is listed as a retransmission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retransmissions_only() {
    let steps = "      - expect: { request: REGISTER }\n      - expect: { request: MESSAGE, timeout: 1s }\n";
    let r = run_case("", steps, &["no-keepalive"], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "timeout");
    // Timer E (real time): copies at 0.5 s and 1.5 s of the 2 s wait.
    assert!(f.candidates.len() >= 2, "{:#?}", f.candidates);
    assert!(f
        .candidates
        .iter()
        .all(|c| c.note.as_deref() == Some("retransmission of a message already handled")));
    settings().bind(|| insta::assert_snapshot!("diag-retransmissions-only", failures(&r)));
}

/// A keepalive a background rule answers is listed with the rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_answers_are_listed() {
    let extra = "background:\n  - request: MESSAGE\n    when: { xml.CmdType: { equals: Keepalive } }\n    reply: 200\n";
    let steps = format!(
        "{REGISTER}      - trigger: {{ action: keepalive }}\n      - expect: {{ request: MESSAGE, when: {{ xml.CmdType: {{ equals: Alarm }} }}, timeout: 1s }}\n"
    );
    let r = run_case(extra, &steps, &[], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "timeout");
    let c = &f.candidates[0];
    assert_eq!(
        c.note.as_deref(),
        Some("answered 200 by background rule 1 (MESSAGE where xml.CmdType equals \"Keepalive\")")
    );
    settings().bind(|| insta::assert_snapshot!("diag-background", failures(&r)));
}

/// A missing element the MANSCDP decoder reported: the candidate shows the
/// finding that explains the mismatch, and the finding fails the step too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_explains_the_mismatch() {
    let steps = format!(
        "{REGISTER}      - trigger: {{ action: alarm, args: {{ priority: \"1\", method: \"5\" }} }}
      - expect:
          request: MESSAGE
          when: {{ xml.CmdType: {{ equals: Alarm }} }}
          reply: 200
          match:
            xml.AlarmPriority: {{ one_of: [\"1\", \"2\", \"3\", \"4\"] }}
"
    );
    let r = run_case("", &steps, &["alarm-missing-priority"], "udp").await;
    let fs = &r.cases[0].failures;
    assert_eq!(fs[0].check, "match xml.AlarmPriority");
    let c = &fs[0].candidates[0];
    assert!(
        c.findings.iter().any(|f| f.code == "manscdp.missing-field"),
        "{c:#?}"
    );
    assert!(
        fs.iter().any(|f| f.check == "manscdp.missing-field"),
        "{fs:#?}"
    );
    settings().bind(|| insta::assert_snapshot!("diag-finding-explains", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn via_transport_is_checked() {
    let r = run_case("", REGISTER, &["via-udp-on-tcp"], "tcp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "sip.via-transport");
    assert!(f.message.contains("Via: expected SIP/2.0/TCP"), "{f:?}");
    assert_eq!(f.received.as_deref(), Some("SIP/2.0/UDP"));
    assert!(f.message.contains("RFC 3261 §8.1.1.7"), "{f:?}");
    let finding = &r.cases[0].findings[0];
    assert_eq!(finding.code, "sip.via-transport");
    settings().bind(|| insta::assert_snapshot!("diag-via-transport", failures(&r)));
    // Over UDP the camera's Via is right, and the same case passes.
    let r = run_case("", REGISTER, &["via-udp-on-tcp"], "udp").await;
    assert_eq!(r.cases[0].status, Status::Passed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_tag_is_checked() {
    let steps = format!("{REGISTER}{}", query("Catalog", 15));
    let r = run_case("", &steps, &["no-to-tag"], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "sip.to-tag-missing");
    assert_eq!(
        f.expected.as_deref(),
        Some("a tag parameter in the 200 to MESSAGE")
    );
    assert!(f.received.as_deref().unwrap().starts_with("none (<sip:"));
    assert!(f.message.contains("RFC 3261 §8.2.6.2"), "{f:?}");
    settings().bind(|| insta::assert_snapshot!("diag-to-tag", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn from_tag_is_checked() {
    let steps = format!(
        "{REGISTER}{}      - expect: {{ request: MESSAGE, reply: 200 }}\n",
        query("DeviceInfo", 16)
    );
    let r = run_case("", &steps, &["no-from-tag"], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "sip.from-tag-missing");
    assert_eq!(f.expected.as_deref(), Some("a tag parameter"));
    assert!(
        f.message.contains("From: expected a tag parameter"),
        "{f:?}"
    );
    assert!(f.message.contains("RFC 3261 §8.1.1.3"), "{f:?}");
    settings().bind(|| insta::assert_snapshot!("diag-from-tag", failures(&r)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manscdp_content_type_is_checked() {
    let steps = format!(
        "{REGISTER}{}      - expect: {{ request: MESSAGE, reply: 200 }}\n",
        query("DeviceInfo", 18)
    );
    let r = run_case("", &steps, &["no-content-type"], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "gb.content-type-missing");
    assert_eq!(f.expected.as_deref(), Some("Application/MANSCDP+xml"));
    assert_eq!(f.received.as_deref(), Some("absent"));
    assert!(
        f.message
            .contains("Content-Type: expected Application/MANSCDP+xml, got absent"),
        "{f:?}"
    );
    assert!(
        f.message.contains("Content-type: Application/MANSCDP+xml"),
        "{f:?}"
    );
}

/// A collect that gets another answer names the conditions it missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn collect_gets_another_answer() {
    let steps = format!(
        "{REGISTER}{}      - collect: {{ cmd_type: Catalog }}\n",
        query("DeviceInfo", 19)
    );
    let r = run_case("", &steps, &[], "udp").await;
    let f = &r.cases[0].failures[0];
    assert_eq!(f.check, "message");
    let c = &f.candidates[0];
    assert_eq!(c.reasons.len(), 1, "{c:#?}");
    assert_eq!(c.reasons[0].field, "xml.CmdType");
    settings().bind(|| insta::assert_snapshot!("diag-collect-other-answer", failures(&r)));
}

/// A suite can make a code a warning; a step's `allow_findings` accepts
/// the findings on the messages that arrived in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn findings_can_be_allowed() {
    let r = run_case(
        "allow_findings: [\"sip.via-*\"]\n",
        REGISTER,
        &["via-udp-on-tcp"],
        "tcp",
    )
    .await;
    assert_eq!(r.cases[0].status, Status::Passed, "{r:#?}");
    assert_eq!(r.cases[0].findings[0].code, "sip.via-transport");
    let steps = "      - expect: { request: REGISTER, reply: 200, allow_findings: true }\n";
    let r = run_case("", steps, &["via-udp-on-tcp"], "tcp").await;
    assert_eq!(r.cases[0].status, Status::Passed, "{r:#?}");
    // A finding on a message a step did not take still fails the case.
    let steps = format!(
        "{REGISTER}{}      - expect: {{ request: MESSAGE, when: {{ xml.CmdType: {{ equals: Alarm }} }}, absent: true, timeout: 1s }}\n",
        query("DeviceInfo", 17)
    );
    let r = run_case("", &steps, &["no-from-tag"], "udp").await;
    assert_eq!(r.cases[0].status, Status::Failed, "{r:#?}");
}

/// A stream the camera breaks over TCP: what the transport found (the
/// framing fault, with the bytes) is a failure of the step, not only a
/// closed connection and a timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_tcp_stream_is_named_by_the_transport_finding() {
    let steps = "      - expect: { request: REGISTER, timeout: 5s }\n";
    let r = run_case("", steps, &["oversize-content-length"], "tcp").await;
    let c = &r.cases[0];
    assert_eq!(c.status, Status::Failed, "{c:#?}");
    let f = c
        .failures
        .iter()
        .find(|f| f.check == "sip.stream-message-too-large")
        .unwrap_or_else(|| panic!("no transport finding among {:#?}", c.failures));
    assert!(f.message.contains("from 127.0.0.1:"), "{}", f.message);
    assert!(f.message.contains("2000000"), "{f:#?}");
    assert!(c.findings.iter().any(|x| x.code == f.check));
}
