//! `camcert serve hedgw-gateway` and `camcert serve hedgw-device`: the
//! reference peers in the foreground, printing what happens (logins,
//! findings, refused connections).

use std::future::Future;
use std::net::SocketAddr;

use anyhow::{bail, Context, Result};

use super::{run_device, serve_gateway, tls, ServerEvent};
use crate::proto::hedgw::device::{Device, DeviceConfig, DeviceEvent, DeviceFaults};
use crate::proto::hedgw::gateway::{GatewayConfig, GatewayEvent, GatewayFaults};

fn num(k: &str, v: &str) -> Result<u32> {
    v.trim()
        .parse()
        .with_context(|| format!("--set {k}={v}: not a number"))
}

/// The gateway configuration from `--set` settings, faults and the secret.
pub fn gateway_config(
    settings: &[(String, String)],
    faults: &[String],
    secret: &str,
) -> Result<GatewayConfig> {
    let mut cfg = GatewayConfig {
        access_secret: (!secret.is_empty()).then(|| secret.to_string()),
        ..Default::default()
    };
    for (k, v) in settings {
        match k.as_str() {
            "access_key" => cfg.access_key = Some(v.clone()),
            "device_token" => cfg.device_token = Some(v.clone()),
            "ping_pong_span" => cfg.ping_pong_span = num(k, v)?,
            "device_status" => cfg.device_status = num(k, v)?,
            "login_result" => cfg.login_result = num(k, v)?,
            "max_frame" => cfg.max_frame = num(k, v)? as usize,
            _ => bail!("--set {k}: a HEDGW gateway knows access_key, device_token, ping_pong_span, device_status, login_result, max_frame"),
        }
    }
    for f in faults {
        if !cfg.faults.set(f) {
            bail!(
                "unknown fault {f:?}; known: {}",
                GatewayFaults::NAMES.join(", ")
            );
        }
    }
    Ok(cfg)
}

/// The TD configuration from `--set` settings, faults and the secret.
pub fn device_config(
    settings: &[(String, String)],
    faults: &[String],
    secret: &str,
) -> Result<(DeviceConfig, String)> {
    let mut cfg = DeviceConfig {
        video: Some(include_bytes!("../../../captures/sample-h264-320x240-25fps.h264").to_vec()),
        audio: true,
        reconnect_after: Some(std::time::Duration::from_secs(5)),
        ..Default::default()
    };
    if !secret.is_empty() {
        cfg.login.access_secret = secret.to_string();
    }
    let mut server_name = "localhost".to_string();
    for (k, v) in settings {
        let l = &mut cfg.login;
        match k.as_str() {
            "access_key" => l.access_key = v.clone(),
            "user_name" => l.user_name = v.clone(),
            "device_token" => l.device_token = v.clone(),
            "unified_id" => l.unified_id = v.clone(),
            "device_mac" => l.device_mac = v.clone(),
            "channel_id" => l.channel_id = num(k, v)?,
            "device_id" => cfg.device_id = v.clone(),
            "server_name" => server_name = v.clone(),
            _ => bail!("--set {k}: a HEDGW device knows access_key, user_name, device_token, unified_id, device_mac, channel_id, device_id, server_name"),
        }
    }
    for f in faults {
        if !cfg.faults.set(f) {
            bail!(
                "unknown fault {f:?}; known: {}",
                DeviceFaults::NAMES.join(", ")
            );
        }
    }
    Ok((cfg, server_name))
}

/// Run the reference gateway on `listen` until `stop`.
pub async fn gateway(
    listen: SocketAddr,
    cfg: GatewayConfig,
    verbose: bool,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let id = tls::Identity::self_signed(&["localhost", "camcert-hedgw"])?;
    let mut server = serve_gateway(listen, cfg, tls::server_config(&id)?).await?;
    println!(
        "reference HEDGW gateway listening on {} (TLS 1.2, self-signed certificate)",
        server.addr
    );
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            e = server.events.recv() => match e {
                None => break,
                Some(ServerEvent::Refused { peer, reason }) => println!("{peer}: refused: {reason}"),
                Some(ServerEvent::Session(s)) => {
                    println!("{}: TLS 1.2 connection", s.peer);
                    tokio::spawn(async move {
                        // The whole session moves here: its control
                        // channel keeps the connection's loop running.
                        let mut s = s;
                        while let Some(e) = s.events.recv().await {
                            print_gateway_event(s.peer, &e, verbose);
                        }
                    });
                }
            }
        }
    }
    Ok(())
}

fn print_gateway_event(peer: SocketAddr, e: &GatewayEvent, verbose: bool) {
    match e {
        GatewayEvent::Received(d) => {
            for f in &d.findings {
                println!("{peer}: {}", f.describe());
            }
            if verbose {
                println!("{peer}: <- {}", d.summary());
            }
        }
        GatewayEvent::Sent(m) if verbose => {
            println!(
                "{peer}: -> {}",
                crate::proto::hedgw::wire::decode(&crate::proto::hedgw::wire::encode(m)).summary()
            )
        }
        GatewayEvent::Sent(_) => {}
        GatewayEvent::LoggedIn(r) => {
            println!("{peer}: logged in: {} ({})", r.device_mac, r.user_name)
        }
        GatewayEvent::Finding(f) => println!("{peer}: {}", f.describe()),
        GatewayEvent::Closed(why) => println!("{peer}: closed: {why}"),
    }
}

/// Run the reference device against the gateway at `target` until `stop`.
pub async fn device(
    target: SocketAddr,
    cfg: DeviceConfig,
    server_name: String,
    verbose: bool,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let mut client = run_device(
        Device::new(cfg),
        target,
        Some(tls::client_config(None)?),
        server_name,
    );
    println!("reference HEDGW device connecting to {target} (TLS 1.2)");
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            e = client.events.recv() => match e {
                None => break,
                Some(e) => {
                    let closed = matches!(e, DeviceEvent::Closed(_));
                    print_device_event(&e, verbose);
                    if closed {
                        break;
                    }
                }
            }
        }
    }
    client.stop().await;
    Ok(())
}

fn print_device_event(e: &DeviceEvent, verbose: bool) {
    match e {
        DeviceEvent::Connected => println!("connected"),
        DeviceEvent::Received(d) => {
            for f in &d.findings {
                println!("{}", f.describe());
            }
            if verbose {
                println!("<- {}", d.summary());
            }
        }
        DeviceEvent::Sent(m) if verbose => {
            println!(
                "-> {}",
                crate::proto::hedgw::wire::decode(&crate::proto::hedgw::wire::encode(m)).summary()
            )
        }
        DeviceEvent::Sent(_) => {}
        DeviceEvent::LoggedIn(r) => println!(
            "logged in: device_status {:?}, ping_pong_span {:?}",
            r.device_status, r.ping_pong_span
        ),
        DeviceEvent::LoginRefused(r) => println!("login refused: result {r}"),
        DeviceEvent::RetryLogin => println!("logging in again"),
        DeviceEvent::Finding(f) => println!("{}", f.describe()),
        DeviceEvent::Closed(why) => println!("closed: {why}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_and_faults_are_checked() {
        let s = vec![("ping_pong_span".to_string(), "5".to_string())];
        let cfg = gateway_config(&s, &["no-pong".into()], "pw").unwrap();
        assert_eq!(cfg.ping_pong_span, 5);
        assert!(cfg.faults.no_pong);
        assert_eq!(cfg.access_secret.as_deref(), Some("pw"));
        assert!(gateway_config(&s, &["nope".into()], "").is_err());
        let bad = vec![("color".to_string(), "red".to_string())];
        assert!(gateway_config(&bad, &[], "").is_err());
        let (d, name) = device_config(
            &[("device_mac".into(), "00:11:22:33:44:55".into())],
            &["no-ping".into()],
            "",
        )
        .unwrap();
        assert_eq!(d.login.device_mac, "00:11:22:33:44:55");
        assert!(d.faults.no_ping);
        assert_eq!(name, "localhost");
    }
}
