//! Byte-literal and two-party tests of the OpenAPI core, in virtual time.

use super::client::{Client, ClientConfig, ClientEvent};
use super::msg::{self, Kind};
use super::server::{Server, ServerConfig};
use super::wsse::{self, Credentials, Guard};
use super::*;
use proptest::prelude::*;

fn t(s: &str) -> WallTime {
    parse_rfc3339(s).unwrap()
}

fn codes(f: &[crate::finding::Finding]) -> Vec<&'static str> {
    f.iter().map(|f| f.code).collect()
}

#[test]
fn signature_matches_the_spec_example() {
    // §5: "ADtuchbM8TBPhQdSi8U4accessKey=5e2abe86-6aajsonObject={a:1,b:2,c:3}
    // ... signature:1661d0fa85d325c27030af5783f63998".
    assert_eq!(
        sign::signature("ADtuchbM8TBPhQdSi8U4", "5e2abe86-6aa", "{a:1,b:2,c:3}"),
        "1661d0fa85d325c27030af5783f63998"
    );
}

#[test]
fn a_signature_in_the_wrong_order_is_named() {
    let json = "{a:1,b:2,c:3}";
    let mut f = sign::Form::signed("ADtuchbM8TBPhQdSi8U4", "5e2abe86-6aa", json);
    f.signature = sign::signature_wrong_order("ADtuchbM8TBPhQdSi8U4", "5e2abe86-6aa", json);
    let e = f.verify("ADtuchbM8TBPhQdSi8U4").unwrap_err();
    assert_eq!(codes(&e), ["openapi.signature-order"]);
    assert!(
        e[0].message.contains("jsonObject before accessKey"),
        "{}",
        e[0].message
    );
    f.signature = "0ba53e90b829efe05c6c0c420375f21a".into();
    let e = f.verify("ADtuchbM8TBPhQdSi8U4").unwrap_err();
    assert_eq!(codes(&e), ["openapi.signature-mismatch"]);
    assert!(e[0].message.contains("1661d0fa85d325c27030af5783f63998"));
}

#[test]
fn form_round_trip_percent_encodes_and_verifies() {
    let json = r#"{"msgType":"MSG_P_THD_GET_CAMERA_SETTINGS_REQ","title":"a+b & c"}"#;
    let f = sign::Form::signed("s3cr3t", "key", json);
    let body = f.encode();
    assert!(!body.contains(" & "), "{body}");
    let (g, findings) = sign::Form::parse(body.as_bytes(), "");
    assert!(findings.is_empty());
    let g = g.unwrap();
    assert_eq!(g.json_object, json);
    assert_eq!(g.verify("s3cr3t"), Ok(vec![]));
}

#[test]
fn the_spec_s_unencoded_body_is_read() {
    // §5.1.1 请求示例, with its real signature over the decoded text.
    let json = r#"{"deviceMacAddress":"000000300002","msgType":"MSG_P_THD_ADD_CAMERA_REQ"}"#;
    let sig = sign::signature("ADtuchbM8TBPhQdSi8U4", "5e2abe86-6aa", json);
    let body = format!("accessKey=5e2abe86-6aa&signature={sig}&jsonObject={json}");
    let (f, findings) = sign::Form::parse(body.as_bytes(), "");
    assert!(findings.is_empty());
    assert_eq!(f.unwrap().verify("ADtuchbM8TBPhQdSi8U4"), Ok(vec![]));
    let (f, findings) = sign::Form::parse(b"accessKey=k&signature=x", "");
    assert!(f.is_none());
    assert_eq!(codes(&findings), ["openapi.form-field"]);
}

#[test]
fn wsse_digest_is_base64_sha1_of_nonce_created_password() {
    // SHA1("6FQHGU7M01ZMIA5G" "2017-01-01T15:00:00+08:00" "XgijVJq7elp94Ax3cKvq")
    // computed independently (sha1sum | xxd -r -p | base64).
    let d = wsse::password_digest(
        "6FQHGU7M01ZMIA5G",
        "2017-01-01T15:00:00+08:00",
        "XgijVJq7elp94Ax3cKvq",
    );
    assert_eq!(d, EXPECTED_DIGEST);
}

const EXPECTED_DIGEST: &str = include_str!("testdata/digest.txt");

#[test]
fn the_spec_s_wrapped_header_is_read_with_findings() {
    // §2.1's example, as printed: wrapped lines, a 58-byte "digest".
    let h = "UsernamePwd Username=\"Zhejiang-110234567894562\",\n\nPasswordDigest=\"dGhpcyBpcyBhIGV4YW1wbGUyYmNiOTI4YWM4ZjlzOTMxYTdhOTVhNjM\nyNGMwMmYzMWQxZWQwMjU5\",Nonce=\"6FQHGU7M01ZMIA5G\",Created=\"2017-01-01T\n15:00:00+08:00\"";
    let (c, f) = Credentials::parse(h);
    let c = c.unwrap();
    assert_eq!(c.username, "Zhejiang-110234567894562");
    assert_eq!(c.created, "2017-01-01T15:00:00+08:00");
    assert_eq!(c.split_username(), Some(("Zhejiang", "110234567894562")));
    let cs = codes(&f);
    assert!(cs.contains(&"openapi.wsse-whitespace"), "{cs:?}");
    assert!(cs.contains(&"openapi.wsse-digest-form"), "{cs:?}");
    // §5.1.2's 15-character nonce.
    let (_, f) = Credentials::parse("UsernamePwd Username=\"Zhejiang-110234567894562\",PasswordDigest=\"x\",Nonce=\"6FQHG7M01ZMIA5G\",Created=\"2017-01-01T15:00:00+08:00\"");
    assert!(codes(&f).contains(&"openapi.wsse-nonce"));
}

#[test]
fn built_credentials_parse_back_without_findings() {
    let c = Credentials::new(
        "5e2abe86-6aa-110234567894562",
        "pw",
        "6FQHGU7M01ZMIA5G",
        t("2017-01-01T15:00:00+08:00"),
    );
    let (back, f) = Credentials::parse(&c.header());
    assert_eq!(f, vec![]);
    assert_eq!(back.unwrap(), c);
    assert!(c.verify("pw"));
    assert!(!c.verify("other"));
}

fn req_with(c: &Credentials) -> http::Request {
    let mut r = http::Request::post(BATCH_PATH, "h", "application/x-www-form-urlencoded", vec![]);
    c.apply(&mut r);
    r
}

#[test]
fn the_guard_refuses_stale_and_reused_and_bad_credentials() {
    let now = t("2017-01-01T15:00:00+08:00");
    let pw = |_: &str| Some("pw".to_string());
    let mut g = Guard::default();
    let user = "k-110234567894562";
    let ok = Credentials::new(
        user,
        "pw",
        "AAAAAAAAAAAAAAAA",
        now - chrono::Duration::seconds(299),
    );
    assert!(g.check(now, &req_with(&ok).headers, pw).0.is_ok());
    // The same nonce again.
    assert_eq!(
        g.check(now, &req_with(&ok).headers, pw).0,
        Err(wsse::Refusal::NonceReused)
    );
    // 301 s old.
    let stale = Credentials::new(
        user,
        "pw",
        "BBBBBBBBBBBBBBBB",
        now - chrono::Duration::seconds(301),
    );
    assert!(matches!(
        g.check(now, &req_with(&stale).headers, pw).0,
        Err(wsse::Refusal::Stale(_))
    ));
    // In the future, too.
    let ahead = Credentials::new(
        user,
        "pw",
        "CCCCCCCCCCCCCCCC",
        now + chrono::Duration::minutes(6),
    );
    assert!(matches!(
        g.check(now, &req_with(&ahead).headers, pw).0,
        Err(wsse::Refusal::Stale(_))
    ));
    let bad = Credentials::new(user, "nope", "DDDDDDDDDDDDDDDD", now);
    assert_eq!(
        g.check(now, &req_with(&bad).headers, pw).0,
        Err(wsse::Refusal::BadDigest)
    );
    let none = http::Request::post(BATCH_PATH, "h", "x", vec![]);
    assert_eq!(
        g.check(now, &none.headers, pw).0,
        Err(wsse::Refusal::Missing)
    );
    // A nonce is forgotten once it is older than twice the window.
    let later = now + chrono::Duration::minutes(11);
    let again = Credentials::new(user, "pw", "AAAAAAAAAAAAAAAA", later);
    assert!(g.check(later, &req_with(&again).headers, pw).0.is_ok());
}

#[test]
fn the_401_carries_an_rfc3339_date_and_the_challenge() {
    let now = t("2017-01-01T15:00:01+08:00");
    let r = wsse::unauthorized(now);
    let text = String::from_utf8(r.encode()).unwrap();
    assert!(text.starts_with("HTTP/1.1 401 Unauthorized\r\n"), "{text}");
    assert!(
        text.contains("Date: 2017-01-01T15:00:01+08:00\r\n"),
        "{text}"
    );
    let (d, f) = wsse::check_unauthorized(&r);
    assert_eq!((d, f), (Some(now), vec![]));
    let mut no_date = r.clone();
    no_date.headers.remove("Date");
    assert_eq!(
        codes(&wsse::check_unauthorized(&no_date).1),
        ["openapi.unauthorized-date"]
    );
    let mut http_date = r.clone();
    http_date
        .headers
        .set("Date", "Sun, 01 Jan 2017 07:00:01 GMT");
    assert_eq!(
        codes(&wsse::check_unauthorized(&http_date).1),
        ["openapi.unauthorized-date"]
    );
    let mut no_chal = r;
    no_chal.headers.remove("WWW-Authenticate");
    assert_eq!(
        codes(&wsse::check_unauthorized(&no_chal).1),
        ["openapi.unauthorized-challenge"]
    );
}

#[test]
fn http_framing_round_trips_and_bounds() {
    let r = http::Request::post(
        BATCH_PATH,
        "h",
        "application/x-www-form-urlencoded",
        b"a=1".to_vec(),
    );
    let b = r.encode();
    let (back, n) = http::Request::parse(&b).unwrap().unwrap();
    assert_eq!(n, b.len());
    assert_eq!(
        (&back.method, &back.target, &back.body),
        (&r.method, &r.target, &r.body)
    );
    assert_eq!(back.headers.get("content-length"), Some("3"));
    assert_eq!(back.headers.get("host"), Some("h"));
    assert_eq!(http::Request::parse(&b[..b.len() - 1]).unwrap(), None);
    let big = format!(
        "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
        http::MAX_BODY + 1
    );
    assert!(http::Request::parse(big.as_bytes()).is_err());
    let long = vec![b'a'; http::MAX_HEAD + 10];
    assert_eq!(
        http::Request::parse(&long),
        Err(http::HttpError::HeadTooLarge)
    );
    let resp = http::Response::json(200, &serde_json::json!({"errorCode": "0"}));
    let b = resp.encode();
    let back = http::Response::parse(&b, false).unwrap().unwrap().0;
    assert_eq!((back.status, &back.body), (200, &resp.body));
}

#[test]
fn spec_register_example_decodes_with_the_comment_finding() {
    // §5.1.1 请求示例's jsonObject, as printed (comment as an array).
    let j = br#"{"deviceMacAddress":"000000300002","userToken":"e10adc3949ba59abbe56e057f20f883e","msgType":"MSG_P_THD_ADD_CAMERA_REQ","userMobile":"13888888888","deviceId":"110234567894562","comment":["HW':3RD-X01','FEATURE':0"],"deviceModelId":"Zhejiang_zj_cnmobile_001"}"#;
    let d = msg::decode(j, false);
    assert_eq!(d.kind, Some((Kind::AddCamera, false)));
    let cs = codes(&d.findings);
    // An array where a string belongs, and the missing quote before 3RD.
    assert!(cs.contains(&"openapi.field-type"), "{cs:?}");
    assert!(cs.contains(&"openapi.field-value"), "{cs:?}");
    let typed: Result<msg::AddCameraReq, _> = serde_json::from_value(
        serde_json::json!({"msgType":"MSG_P_THD_ADD_CAMERA_REQ","userMobile":"13888888888","userToken":"x","deviceMacAddress":"2059a074e0bc","deviceId":"110234567894562","deviceModelId":"Zhejiang_zj_cnmobile_001","comment":"['HW':'3RD-X01','FEATURE':17]"}),
    );
    assert!(typed.is_ok());
    assert_eq!(
        msg::comment_feature("['HW':'3RD-X01','FEATURE':17]"),
        Some(17)
    );
    assert_eq!(msg::comment_feature("['HW':'3RD-X01']"), None);
}

#[test]
fn field_rules_name_field_expected_and_actual() {
    let j = br#"{"msgType":"MSG_P_THD_SET_CAMERA_CAPACITY_REQ","deviceMacAddress":"20:59:a0:74:e0:bc","deviceId":"1102345","deviceToken":"t","supportKey":{"motionRegion":2,"duplexAudioTalk":1,"faceDetect":0,"personStatistic":1,"sdcard":1,"eventRecord":1,"binoCam":1,"motionTrack":1,"peopleDetection":0}}"#;
    let d = msg::decode(j, false);
    let m: Vec<String> = d.findings.iter().map(|f| f.message.clone()).collect();
    assert!(
        m.iter().any(
            |x| x.starts_with("deviceMacAddress: expected 12 hex digits") && x.contains("20:59")
        ),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|x| x.starts_with("deviceId: expected 15 digits")),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|x| x == "supportKey.motionRegion: expected 0 or 1, got 2"),
        "{m:?}"
    );
    assert!(
        m.iter()
            .any(|x| x == "supportKey.ptzPano: expected 0 or 1, absent"),
        "{m:?}"
    );
    assert!(d
        .findings
        .iter()
        .all(|f| f.clause.starts_with("hemu §5.1.3")));
}

#[test]
fn settings_response_example_keys_with_spaces_warn() {
    let j = br#"{"errorCode":"0","description":"","msgType":"MSG_P_THD_GET_CAMERA_SETTINGS_RSP","camRW":{"HDVideo":"On","antiFlicker":"50","nightVision":"Dusk","motionRegions":"1;2;3;26","cameraOffSchedule":{"valueList":[{"repeat":127,"startTime ":"21:00"}],"valueListNum":1}}}"#;
    let d = msg::decode(j, true);
    let cs = codes(&d.findings);
    assert!(cs.contains(&"openapi.field-name"), "{cs:?}");
    let m: Vec<&str> = d.findings.iter().map(|f| f.message.as_str()).collect();
    assert!(
        m.iter()
            .any(|x| x.starts_with("camRW.nightVision: expected Auto, On or Off, got \"Dusk\"")),
        "{m:?}"
    );
    assert!(
        m.iter().any(|x| x.starts_with("camRW.motionRegions")),
        "{m:?}"
    );
    assert_eq!(
        d.field("camRW.cameraOffSchedule.valueList.0.startTime")
            .as_deref(),
        Some("21:00")
    );
}

#[test]
fn unknown_types_and_malformed_json_carry_the_body() {
    let d = msg::decode(br#"{"msgType":"MSG_P_THD_REBOOT_REQ"}"#, false);
    assert_eq!(codes(&d.findings), ["openapi.msg-type-unknown"]);
    assert!(
        matches!(d.findings[0].evidence, Some(crate::finding::Evidence::Bytes(ref b)) if b.starts_with(b"{\"msgType\""))
    );
    let d = msg::decode(b"{\"msgType\": ", false);
    assert_eq!(codes(&d.findings), ["openapi.json-malformed"]);
    assert!(d.findings[0].evidence.is_some());
    let d = msg::decode(b"  ", false);
    assert_eq!(codes(&d.findings), ["openapi.json-empty"]);
    let d = msg::decode(
        br#"{"errorCode":"12345","msgType":"MSG_P_THD_SET_CAMERA_INFO_RSP"}"#,
        true,
    );
    assert_eq!(codes(&d.findings), ["openapi.error-code-unknown"]);
    let d = msg::decode(br#"{"errorCode":0,"msgType":"MSG_P_THD_GET_CAMERA_CHN_ADDR_RSP","serverAddr":"h","serverPort":50922}"#, true);
    assert_eq!(
        codes(&d.findings),
        ["openapi.field-type", "openapi.field-type"]
    );
}

#[test]
fn every_response_builds_valid_json() {
    let s = ServerConfig::default();
    for (k, body) in [
        (
            Kind::AddCamera,
            msg::RspBody::Registered {
                device_token: "t".into(),
                unified_id: "u".into(),
            },
        ),
        (
            Kind::GetChnAddr,
            msg::RspBody::Address {
                server_addr: "h".into(),
                server_port: "1".into(),
            },
        ),
        (
            Kind::GetSettings,
            msg::RspBody::Settings {
                cam_r_w: s.settings.clone(),
            },
        ),
        (Kind::SetInfo, msg::RspBody::Empty {}),
    ] {
        let v = msg::Rsp::new(k, 0, body).to_value();
        let d = msg::decode(v.to_string().as_bytes(), true);
        assert_eq!(d.findings, vec![], "{k:?}: {v}");
        assert_eq!(d.kind, Some((k, true)));
    }
}

/// Run the client against the server until neither has anything to do.
fn converse(
    c: &mut Client,
    s: &mut Server,
    now: WallTime,
) -> (Vec<server::Exchange>, Vec<ClientEvent>) {
    let mut exchanges = Vec::new();
    let mut events = Vec::new();
    let mut next = c.poll_request(now);
    for _ in 0..20 {
        let Some(r) = next.take() else { break };
        let ex = s.handle(now, &r);
        next = c.handle_response(now, &ex.response);
        exchanges.push(ex);
        while let Some(e) = c.poll_event() {
            if matches!(e, ClientEvent::Settings(_)) {
                c.hedgw_connected();
            }
            events.push(e);
        }
        if next.is_none() {
            next = c.poll_request(now);
        }
    }
    (exchanges, events)
}

fn kinds(ex: &[server::Exchange]) -> Vec<String> {
    ex.iter()
        .map(|e| {
            format!(
                "{} {}",
                e.decoded.kind.map(|k| k.0.req()).unwrap_or_default(),
                e.response.status
            )
        })
        .collect()
}

#[test]
fn the_reference_pair_runs_the_section_6_flow_clean() {
    let now = t("2026-12-04T09:00:00+08:00");
    let mut c = Client::new(ClientConfig::default(), 7);
    let mut s = Server::new(ServerConfig::default());
    let (ex, ev) = converse(&mut c, &mut s, now);
    assert_eq!(
        kinds(&ex),
        [
            "MSG_P_THD_ADD_CAMERA_REQ 200",
            "MSG_P_THD_SET_CAMERA_CAPACITY_REQ 200",
            "MSG_P_THD_GET_CAMERA_CHN_ADDR_REQ 200",
            "MSG_P_THD_GET_CAMERA_SETTINGS_REQ 200",
            "MSG_P_THD_SET_CAMERA_INFO_REQ 200",
        ]
    );
    for e in &ex {
        assert_eq!(e.findings, vec![], "{:?}", e.decoded.kind);
        assert_eq!(e.decoded.field("errorCode"), None);
    }
    assert!(ev.contains(&ClientEvent::Done), "{ev:?}");
    assert!(ev.contains(&ClientEvent::Hedgw(vec![("127.0.0.1".into(), 50922)])));
    // A reboot an hour later uses the cached address.
    let later = now + chrono::Duration::hours(1);
    c.reboot();
    let (ex, _) = converse(&mut c, &mut s, later);
    assert_eq!(
        kinds(&ex),
        [
            "MSG_P_THD_GET_CAMERA_SETTINGS_REQ 200",
            "MSG_P_THD_SET_CAMERA_INFO_REQ 200"
        ]
    );
    // After 12 h the cache is stale: the TD asks again.
    let much_later = now + chrono::Duration::hours(13);
    c.reboot();
    let (ex, _) = converse(&mut c, &mut s, much_later);
    assert_eq!(kinds(&ex)[0], "MSG_P_THD_GET_CAMERA_CHN_ADDR_REQ 200");
    assert_eq!(ex[0].findings, vec![]);
}

#[test]
fn a_skewed_td_takes_the_401_date_and_gets_in() {
    let now = t("2026-12-04T09:00:00+08:00");
    let cfg = ClientConfig {
        clock_skew: chrono::Duration::minutes(-20),
        ..Default::default()
    };
    let mut c = Client::new(cfg.clone(), 1);
    let mut s = Server::new(ServerConfig::default());
    let (ex, ev) = converse(&mut c, &mut s, now);
    assert_eq!(
        kinds(&ex)[..2],
        [
            "MSG_P_THD_ADD_CAMERA_REQ 401",
            "MSG_P_THD_ADD_CAMERA_REQ 200"
        ]
    );
    assert_eq!(codes(&ex[0].findings), ["openapi.replay-stale"]);
    assert_eq!(ex[1].findings, vec![]);
    assert!(ev.contains(&ClientEvent::Done));
    // The fault: it keeps its clock, is refused three times, and the
    // server names the cause.
    let mut cfg = cfg;
    cfg.faults.ignore_401_date = true;
    let mut c = Client::new(cfg, 1);
    let mut s = Server::new(ServerConfig::default());
    let (ex, ev) = converse(&mut c, &mut s, now);
    assert_eq!(ex.len(), 3);
    assert!(ex.iter().all(|e| e.response.status == 401));
    assert!(ev.iter().any(|e| matches!(e, ClientEvent::Failed(_))));
}

/// A fault of the client shows exactly in the findings it should.
fn client_fault(name: &str) -> Vec<&'static str> {
    let now = t("2026-12-04T09:00:00+08:00");
    let mut cfg = ClientConfig::default();
    assert!(cfg.faults.set(name));
    let mut c = Client::new(cfg, 3);
    let mut s = Server::new(ServerConfig {
        challenge_first: name == "ignore-401-date",
        ..Default::default()
    });
    let (mut ex, _) = converse(&mut c, &mut s, now);
    c.reboot();
    ex.extend(converse(&mut c, &mut s, now + chrono::Duration::minutes(1)).0);
    let mut v: Vec<&'static str> = ex.iter().flat_map(|e| codes(&e.findings)).collect();
    v.sort();
    v.dedup();
    v
}

#[test]
fn each_client_fault_breaks_exactly_its_rule() {
    assert_eq!(
        client_fault("wrong-signature-order"),
        ["openapi.signature-order"]
    );
    assert_eq!(client_fault("stale-created"), ["openapi.replay-stale"]);
    assert_eq!(client_fault("reuse-nonce"), ["openapi.replay-nonce"]);
    assert_eq!(
        client_fault("ignore-address-cache"),
        ["openapi.address-cache"]
    );
    assert_eq!(client_fault("no-wsse"), ["openapi.wsse-missing"]);
    assert_eq!(client_fault("skip-capacity"), ["openapi.flow-order"]);
    assert_eq!(client_fault("bad-digest"), ["openapi.wsse-digest"]);
    assert_eq!(client_fault("ignore-401-date"), Vec::<&str>::new());
}

#[test]
fn a_td_that_ignores_the_401_date_is_named_by_the_server() {
    // The platform challenges the first request; a TD 20 minutes behind
    // that keeps its clock is refused as stale and named.
    let now = t("2026-12-04T09:00:00+08:00");
    let mut cfg = ClientConfig {
        clock_skew: chrono::Duration::minutes(-2),
        ..Default::default()
    };
    cfg.faults.ignore_401_date = true;
    let mut c = Client::new(cfg, 3);
    let mut s = Server::new(ServerConfig {
        challenge_first: true,
        ..Default::default()
    });
    let (ex, _) = converse(&mut c, &mut s, now);
    assert_eq!(ex[0].response.status, 401);
    assert_eq!(codes(&ex[1].findings), ["openapi.clock-not-updated"]);
    let m = &ex[1].findings[0].message;
    assert!(m.contains("-120 s from the 401's Date"), "{m}");
    // Without the fault, nothing.
    let cfg = ClientConfig {
        clock_skew: chrono::Duration::minutes(-2),
        ..Default::default()
    };
    let mut c = Client::new(cfg, 3);
    let mut s = Server::new(ServerConfig {
        challenge_first: true,
        ..Default::default()
    });
    let (ex, _) = converse(&mut c, &mut s, now);
    assert!(
        ex.iter().all(|e| e.findings.is_empty()),
        "{:?}",
        ex.iter().map(|e| &e.findings).collect::<Vec<_>>()
    );
}

/// A request from a good TD, replayed at `later` or re-sent.
fn server_fault(name: &str) -> (Vec<u16>, Vec<&'static str>) {
    let now = t("2026-12-04T09:00:00+08:00");
    let mut cfg = ServerConfig::default();
    assert!(cfg.faults.set(name));
    let mut s = Server::new(cfg);
    let mut c = Client::new(ClientConfig::default(), 5);
    let r = c.poll_request(now).unwrap();
    let first = s.handle(now, &r);
    // The same bytes again (reused nonce), six minutes later (stale).
    let again = s.handle(now, &r);
    let late = s.handle(
        now + chrono::Duration::minutes(6),
        &c.build(now, Kind::AddCamera),
    );
    let mut bad = r.clone();
    bad.body = String::from_utf8(bad.body)
        .unwrap()
        .replace("signature=", "signature=0")
        .into_bytes();
    let mut c2 = Client::new(ClientConfig::default(), 9);
    let mut bad_sig = c2.poll_request(now).unwrap();
    bad_sig.body = bad.body;
    let sig = s.handle(now, &bad_sig);
    let mut out = Vec::new();
    for x in [&again, &late] {
        out.extend(codes(&wsse::check_unauthorized(&x.response).1));
    }
    let d = msg::decode(&first.response.body, true);
    out.extend(codes(&d.findings));
    let ds = msg::decode(&sig.response.body, true);
    if ds.error_code() == Some(0) {
        out.push("accepted-bad-signature");
    }
    out.sort();
    out.dedup();
    (
        vec![
            first.response.status,
            again.response.status,
            late.response.status,
        ],
        out,
    )
}

#[test]
fn each_server_fault_breaks_exactly_its_rule() {
    assert_eq!(server_fault("accept-stale-created").0, [200, 401, 200]);
    assert_eq!(server_fault("accept-reused-nonce").0, [200, 200, 401]);
    assert_eq!(server_fault("no-date-on-401").0, [200, 401, 401]);
    assert_eq!(
        server_fault("no-date-on-401").1,
        ["openapi.unauthorized-date"]
    );
    assert_eq!(
        server_fault("http-date-on-401").1,
        ["openapi.unauthorized-date"]
    );
    assert_eq!(
        server_fault("accept-bad-signature").1,
        ["accepted-bad-signature"]
    );
    assert_eq!(
        server_fault("echo-msg-type").1,
        ["openapi.msg-type-mismatch"]
    );
    let (st, f) = server_fault("ok-on-bad-json");
    assert_eq!((st, f), (vec![200, 401, 401], Vec::<&str>::new()));
}

#[test]
fn a_good_server_refuses_replays_with_a_proper_401() {
    let now = t("2026-12-04T09:00:00+08:00");
    let mut s = Server::new(ServerConfig::default());
    let mut c = Client::new(ClientConfig::default(), 5);
    let r = c.poll_request(now).unwrap();
    assert_eq!(s.handle(now, &r).response.status, 200);
    let again = s.handle(now, &r);
    assert_eq!(again.response.status, 401);
    assert_eq!(codes(&again.findings), ["openapi.replay-nonce"]);
    assert_eq!(wsse::check_unauthorized(&again.response).1, vec![]);
    let late = s.handle(
        now + chrono::Duration::minutes(6),
        &c.build(now, Kind::AddCamera),
    );
    assert_eq!(late.response.status, 401);
    assert_eq!(codes(&late.findings), ["openapi.replay-stale"]);
}

#[test]
fn wire_input_never_panics() {
    let mut s = Server::new(ServerConfig::default());
    let now = t("2026-12-04T09:00:00+08:00");
    for (i, body) in [
        &b""[..],
        b"jsonObject=%FF%FE",
        b"jsonObject=[1,2",
        b"jsonObject=null&signature=&accessKey=",
        b"&&&===",
    ]
    .into_iter()
    .enumerate()
    {
        let mut r = http::Request::post(BATCH_PATH, "h", "x", body.to_vec());
        Credentials::new(
            "5e2abe86-6aa-110234567894562",
            "ADtuchbM8TBPhQdSi8U4",
            &format!("QQQQQQQQQQQQQQQ{i}"),
            now,
        )
        .apply(&mut r);
        let ex = s.handle(now, &r);
        assert_eq!(ex.response.status, 200);
        assert!(!ex.findings.is_empty());
    }
}

proptest! {
    #[test]
    fn wsse_round_trips(user in "[A-Za-z0-9]{1,12}-[0-9]{15}", nonce in "[A-Z0-9]{16}", pw in "[ -~]{0,40}", secs in 0i64..4_000_000_000) {
        let created = chrono::DateTime::from_timestamp(secs, 0).unwrap().fixed_offset();
        let c = Credentials::new(&user, &pw, &nonce, created);
        let (back, f) = Credentials::parse(&c.header());
        prop_assert_eq!(f, vec![]);
        let back = back.unwrap();
        prop_assert!(back.verify(&pw));
        prop_assert_eq!(back, c);
    }

    #[test]
    fn signature_survives_the_form(key in "[ -~]{1,20}", secret in "[ -~]{1,20}", json in "\\PC{0,200}") {
        let f = sign::Form::signed(&secret, &key, &json);
        let (g, findings) = sign::Form::parse(f.encode().as_bytes(), "");
        prop_assert!(findings.is_empty());
        let g = g.unwrap();
        prop_assert_eq!(&g.json_object, &json);
        prop_assert_eq!(&g.access_key, &key);
        prop_assert!(g.verify(&secret).is_ok());
        // Any other secret fails.
        let other = format!("{secret}x");
        prop_assert!(g.verify(&other).is_err());
    }

    #[test]
    fn the_server_never_panics_on_any_body(body in proptest::collection::vec(any::<u8>(), 0..400), n in 0u32..1000) {
        let now = t("2026-12-04T09:00:00+08:00");
        let mut s = Server::new(ServerConfig::default());
        let mut r = http::Request::post(BATCH_PATH, "h", "x", body);
        Credentials::new("5e2abe86-6aa-110234567894562", "ADtuchbM8TBPhQdSi8U4", &format!("{n:016}"), now).apply(&mut r);
        let ex = s.handle(now, &r);
        prop_assert_eq!(ex.response.status, 200);
        let d = msg::decode(&ex.response.body, true);
        prop_assert!(d.error_code().is_some());
    }

    #[test]
    fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = msg::decode(&b, false);
        let _ = msg::decode(&b, true);
        let _ = http::Request::parse(&b);
        let _ = http::Response::parse(&b, true);
        let _ = sign::Form::parse(&b, "");
        let _ = Credentials::parse(&String::from_utf8_lossy(&b));
    }
}

#[test]
fn clauses_and_the_catalog_cite_known_sections() {
    for c in [
        clause::WSSE,
        clause::WSSE_401,
        clause::REPLAY,
        clause::CLOCK,
        clause::HTTPS,
        clause::SIGNATURE,
        clause::COMMON,
        clause::ADDRESS_CACHE,
        clause::FLOW,
        clause::TIME,
        clause::JSON,
        clause::ERRORS,
    ]
    .into_iter()
    .chain(Kind::ALL.map(Kind::clause))
    {
        assert!(crate::finding::resolves(c), "{c}");
    }
    let yaml = include_str!("../../../suites/hemu/requirements-openapi.yaml");
    let mut n = 0;
    for line in yaml.lines() {
        let Some(c) = line.trim().strip_prefix("clause: ") else {
            continue;
        };
        assert!(
            crate::finding::resolves(c.trim_matches('"')),
            "catalog clause {c:?}"
        );
        n += 1;
    }
    assert!(n >= 10);
    // Every code is namespaced and distinct.
    let mut codes: Vec<&str> = FindingCode::ALL.iter().map(|c| c.as_str()).collect();
    assert!(codes.iter().all(|c| c.starts_with("openapi.")));
    codes.sort();
    codes.dedup();
    assert_eq!(codes.len(), FindingCode::ALL.len());
}

#[test]
fn every_kind_round_trips_its_name_and_the_error_table_is_appendix_c() {
    for k in Kind::ALL {
        assert_eq!(Kind::from_msg_type(&k.req()), Some((k, false)));
        assert_eq!(Kind::from_msg_type(&k.rsp()), Some((k, true)));
    }
    assert_eq!(errors::describe(21001), Some("json 解析错误"));
    assert_eq!(errors::describe(12345), None);
    assert_eq!(errors::TABLE.len(), 12);
}

#[test]
fn the_address_cache_keeps_the_three_freshest_and_asks_again_when_all_fail() {
    let now = t("2026-12-04T09:00:00+08:00");
    let mut c = Client::new(ClientConfig::default(), 7);
    let mut s = Server::new(ServerConfig {
        hedgw: (1..=4).map(|i| (format!("10.0.0.{i}"), 50922)).collect(),
        ..Default::default()
    });
    converse(&mut c, &mut s, now);
    for i in 1..=3 {
        // Every cached address fails: the TD asks the platform again.
        let failed: Vec<(String, u16)> =
            c.cache().iter().map(|x| (x.host.clone(), x.port)).collect();
        for (h, p) in failed {
            c.address_failed(&h, p);
        }
        c.reboot();
        let (ex, ev) = converse(&mut c, &mut s, now + chrono::Duration::minutes(i));
        assert_eq!(kinds(&ex)[0], "MSG_P_THD_GET_CAMERA_CHN_ADDR_REQ 200");
        let fresh = format!("10.0.0.{}", i + 1);
        assert!(
            ev.contains(&ClientEvent::Hedgw(vec![(fresh, 50922)])),
            "{ev:?}"
        );
    }
    let hosts: Vec<&str> = c.cache().iter().map(|x| x.host.as_str()).collect();
    assert_eq!(hosts, ["10.0.0.2", "10.0.0.3", "10.0.0.4"]);
}

#[test]
fn the_register_example_signature_does_not_verify_with_section_5_secret() {
    // §5.1.1 请求示例, body as printed.
    let body = r#"accessKey=5e2abe86-6aa&signature=0ba53e90b829efe05c6c0c420375f21a&jsonObject={"deviceMacAddress":"000000300002","userToken":"e10adc3949ba59abbe56e057f20f883e","msgType":"MSG_P_THD_ADD_CAMERA_REQ","userMobile":"13888888888","deviceId":"110234567894562","comment":["HW':3RD-X01','FEATURE':0"],"deviceModelId":"Zhejiang_zj_cnmobile_001"}"#;
    let (f, _) = sign::Form::parse(body.as_bytes(), "");
    let e = f.unwrap().verify("ADtuchbM8TBPhQdSi8U4").unwrap_err();
    assert_eq!(codes(&e), ["openapi.signature-mismatch"]);
    assert!(
        e[0].message.contains("eada3faeb5e35cc35c01ac561e1dd799"),
        "{}",
        e[0].message
    );
}
