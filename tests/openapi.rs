//! OpenAPI over real sockets on loopback: the reference TD runs §6.1's
//! flow against the reference platform over TLS 1.2, each fault of
//! either peer shows in exactly its findings, and the platform refuses
//! TLS 1.1 and plain HTTP.

use std::net::SocketAddr;
use std::time::Duration;

use camcert::peers::hedgw::{self, probe_tls11, tls};
use camcert::peers::openapi::{self, ApiServer, ServerEvent};
use camcert::proto::hedgw::gateway::GatewayConfig;
use camcert::proto::openapi::client::{ClientConfig, ClientEvent};
use camcert::proto::openapi::msg::Kind;
use camcert::proto::openapi::server::{Exchange, ServerConfig};
use camcert::proto::openapi::{http, wsse, BATCH_PATH};

fn localhost() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

async fn platform(mut cfg: ServerConfig, hedgw: SocketAddr) -> ApiServer {
    let id = tls::Identity::self_signed(&["localhost"]).unwrap();
    cfg.hedgw = vec![(hedgw.ip().to_string(), hedgw.port())];
    openapi::serve(
        localhost(),
        cfg,
        tls::server_config(&id).unwrap(),
        chrono::Duration::zero(),
    )
    .await
    .unwrap()
}

/// The reference HEDGW gateway, whose address the platform hands out.
async fn hedgw_listener() -> (hedgw::GatewayServer, SocketAddr) {
    let id = tls::Identity::self_signed(&["localhost"]).unwrap();
    let g = hedgw::serve_gateway(
        localhost(),
        GatewayConfig::default(),
        tls::server_config(&id).unwrap(),
    )
    .await
    .unwrap();
    let a = g.addr;
    (g, a)
}

async fn exchanges(s: &mut ApiServer, n: usize) -> Vec<Exchange> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), s.events.recv()).await {
            Ok(Some(ServerEvent::Exchange(e))) => out.push(*e),
            Ok(Some(ServerEvent::Refused { reason, .. })) => panic!("refused: {reason}"),
            _ => break,
        }
    }
    out
}

async fn until_done(d: &mut openapi::DeviceRun) -> Vec<ClientEvent> {
    let mut out = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_secs(10), d.events.recv()).await {
        let end = matches!(e, ClientEvent::Done | ClientEvent::Failed(_));
        out.push(e);
        if end {
            break;
        }
    }
    out
}

fn kinds(ex: &[Exchange]) -> Vec<String> {
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

fn codes(ex: &[Exchange]) -> Vec<&'static str> {
    let mut v: Vec<_> = ex
        .iter()
        .flat_map(|e| e.findings.iter().map(|f| f.code))
        .collect();
    v.sort();
    v.dedup();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_td_runs_the_flow_over_tls_and_reuses_its_cached_address() {
    let (mut gw, hedgw) = hedgw_listener().await;
    let mut s = platform(ServerConfig::default(), hedgw).await;
    let client_tls = tls::client_config(None).unwrap();
    let mut d = openapi::run_device(s.addr, ClientConfig::default(), client_tls, 11);
    let ev = until_done(&mut d).await;
    assert_eq!(ev.last(), Some(&ClientEvent::Done), "{ev:?}");
    let at = (hedgw.ip().to_string(), hedgw.port());
    assert!(ev.contains(&ClientEvent::Hedgw(vec![at.clone()])));
    // §6.1: the address the platform gave is where the TD logs in to
    // HEDGW, before it reports its version.
    let login = ev
        .iter()
        .position(|e| *e == ClientEvent::HedgwLoggedIn(at.0.clone(), at.1));
    assert!(login.is_some_and(|i| i + 1 < ev.len()), "{ev:?}");
    let mut session = gw
        .next_session(Duration::from_secs(5))
        .await
        .expect("a HEDGW session");
    let mut logged_in = false;
    while let Ok(Some(e)) =
        tokio::time::timeout(Duration::from_secs(2), session.events.recv()).await
    {
        if let camcert::proto::hedgw::gateway::GatewayEvent::LoggedIn(req) = e {
            assert_eq!(req.access_key, "5e2abe86-6aa");
            assert!(!req.device_token.is_empty());
            logged_in = true;
            break;
        }
    }
    assert!(logged_in, "the gateway saw no login");
    let ex = exchanges(&mut s, 5).await;
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
    assert_eq!(codes(&ex), Vec::<&str>::new());
    d.reboot().await;
    assert_eq!(until_done(&mut d).await.last(), Some(&ClientEvent::Done));
    let ex = exchanges(&mut s, 2).await;
    assert_eq!(
        kinds(&ex),
        [
            "MSG_P_THD_GET_CAMERA_SETTINGS_REQ 200",
            "MSG_P_THD_SET_CAMERA_INFO_REQ 200"
        ]
    );
}

/// The findings the platform records on a TD with `fault`, over two boots.
async fn td_with(fault: &str) -> Vec<&'static str> {
    let (_l, hedgw) = hedgw_listener().await;
    let mut s = platform(ServerConfig::default(), hedgw).await;
    let mut cfg = ClientConfig::default();
    assert!(cfg.faults.set(fault));
    let mut d = openapi::run_device(s.addr, cfg, tls::client_config(None).unwrap(), 12);
    until_done(&mut d).await;
    d.reboot().await;
    until_done(&mut d).await;
    drop(d);
    let mut ex = Vec::new();
    while let Ok(Some(ServerEvent::Exchange(e))) =
        tokio::time::timeout(Duration::from_millis(300), s.events.recv()).await
    {
        ex.push(*e);
    }
    codes(&ex)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_td_fault_fails_exactly_its_check() {
    assert_eq!(
        td_with("wrong-signature-order").await,
        ["openapi.signature-order"]
    );
    assert_eq!(td_with("stale-created").await, ["openapi.replay-stale"]);
    assert_eq!(td_with("reuse-nonce").await, ["openapi.replay-nonce"]);
    assert_eq!(
        td_with("ignore-address-cache").await,
        ["openapi.address-cache"]
    );
    assert_eq!(td_with("no-wsse").await, ["openapi.wsse-missing"]);
    assert_eq!(td_with("skip-capacity").await, ["openapi.flow-order"]);
}

/// A good TD's first request, then replays of it against a platform with `fault`.
async fn replays(fault: Option<&str>) -> (Vec<u16>, Vec<String>) {
    let (_l, hedgw) = hedgw_listener().await;
    let mut cfg = ServerConfig::default();
    if let Some(f) = fault {
        assert!(cfg.faults.set(f));
    }
    let s = platform(cfg, hedgw).await;
    let ctls = tls::client_config(None).unwrap();
    let mut c = camcert::proto::openapi::client::Client::new(ClientConfig::default(), 3);
    let now = openapi::wall_now(chrono::Duration::zero());
    let first = c.poll_request(now).unwrap();
    let stale = c.build(now - chrono::Duration::minutes(6), Kind::AddCamera);
    let mut statuses = Vec::new();
    let mut notes = Vec::new();
    for r in [&first, &first, &stale] {
        let a = openapi::request(s.addr, ctls.clone(), r, Duration::from_secs(5))
            .await
            .unwrap();
        statuses.push(a.status);
        if a.status == 401 {
            notes.extend(
                wsse::check_unauthorized(&a)
                    .1
                    .into_iter()
                    .map(|f| f.code.to_string()),
            );
        }
    }
    (statuses, notes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_and_stale_requests_get_401_unless_the_platform_is_broken() {
    assert_eq!(replays(None).await, (vec![200, 401, 401], vec![]));
    assert_eq!(
        replays(Some("accept-reused-nonce")).await.0,
        [200, 200, 401]
    );
    assert_eq!(
        replays(Some("accept-stale-created")).await.0,
        [200, 401, 200]
    );
    let (st, notes) = replays(Some("no-date-on-401")).await;
    assert_eq!(st, [200, 401, 401]);
    assert_eq!(
        notes,
        ["openapi.unauthorized-date", "openapi.unauthorized-date"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_refuses_tls11_and_plain_http() {
    let (_l, hedgw) = hedgw_listener().await;
    let mut s = platform(ServerConfig::default(), hedgw).await;
    let p = probe_tls11(s.addr, Duration::from_secs(3)).await.unwrap();
    assert!(p.refused, "{}", p.answer);
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    let r = http::Request::post(
        BATCH_PATH,
        "h",
        "application/x-www-form-urlencoded",
        b"a=1".to_vec(),
    );
    tcp.write_all(&r.encode()).await.unwrap();
    let mut got = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), tcp.read_to_end(&mut got)).await;
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP answered: {:?}",
        String::from_utf8_lossy(&got)
    );
    let mut refused = 0;
    while let Ok(Some(e)) = tokio::time::timeout(Duration::from_millis(500), s.events.recv()).await
    {
        assert!(matches!(e, ServerEvent::Refused { .. }), "{e:?}");
        refused += 1;
    }
    assert_eq!(refused, 2);
}
