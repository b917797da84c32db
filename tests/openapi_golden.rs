//! Golden snapshots (golden/openapi/) of what camcert sends as an OpenAPI
//! TD and as the platform: each request of §6.1's flow (headers, form,
//! jsonObject) and each answer. The TD runs from a fixed seed and the
//! platform at a fixed time, so nonces, digests and signatures are stable.

use camcert::proto::openapi::client::{Client, ClientConfig};
use camcert::proto::openapi::server::{Server, ServerConfig};
use camcert::proto::openapi::{http, msg, parse_rfc3339, sign, wsse};

fn snap(name: &str, text: String) {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden/openapi");
    s.set_prepend_module_to_snapshot(false);
    s.bind(|| insta::assert_snapshot!(name, text));
}

fn shown_request(r: &http::Request) -> String {
    let mut out = format!("{} {}\n", r.method, r.target);
    for (n, v) in &r.headers.0 {
        out.push_str(&format!("{n}: {v}\n"));
    }
    let (form, f) = sign::Form::parse(&r.body, "");
    assert!(f.is_empty(), "{f:?}");
    let form = form.unwrap();
    out.push_str(&format!(
        "\naccessKey={}\nsignature={}\njsonObject:\n",
        form.access_key, form.signature
    ));
    let d = msg::decode(form.json_object.as_bytes(), false);
    assert!(
        d.findings.is_empty(),
        "camcert sends clean requests: {:?}",
        d.findings
    );
    out.push_str(&serde_json::to_string_pretty(&d.json.unwrap()).unwrap());
    out
}

fn shown_response(r: &http::Response) -> String {
    let mut out = format!("{} {}\n", r.status, r.reason);
    for (n, v) in &r.headers.0 {
        out.push_str(&format!("{n}: {v}\n"));
    }
    if !r.body.is_empty() {
        let d = msg::decode(&r.body, true);
        assert!(
            d.findings.is_empty(),
            "camcert sends clean answers: {:?}",
            d.findings
        );
        out.push('\n');
        out.push_str(&serde_json::to_string_pretty(&d.json.unwrap()).unwrap());
    }
    out
}

#[test]
fn the_flow_as_camcert_sends_it() {
    let now = parse_rfc3339("2017-01-01T15:00:00+08:00").unwrap();
    let mut c = Client::new(ClientConfig::default(), 42);
    let mut s = Server::new(ServerConfig::default());
    let mut next = c.poll_request(now);
    let mut n = 0;
    while let Some(r) = next.take() {
        n += 1;
        let ex = s.handle(now, &r);
        let kind = ex
            .decoded
            .kind
            .unwrap()
            .0
            .req()
            .to_lowercase()
            .replace('_', "-");
        assert_eq!(ex.findings, vec![]);
        snap(&format!("td-{n}-{kind}"), shown_request(&r));
        snap(
            &format!("platform-{n}-{kind}"),
            shown_response(&ex.response),
        );
        next = c.handle_response(now, &ex.response);
        while let Some(e) = c.poll_event() {
            if matches!(e, camcert::proto::openapi::client::ClientEvent::Settings(_)) {
                c.hedgw_connected();
            }
        }
        if next.is_none() {
            next = c.poll_request(now);
        }
    }
    assert_eq!(n, 5);
}

#[test]
fn the_401() {
    let now = parse_rfc3339("2017-01-01T15:00:01+08:00").unwrap();
    snap("platform-401", shown_response(&wsse::unauthorized(now)));
}
