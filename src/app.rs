//! The commands behind the CLI. Each returns the process exit code, or an
//! error that `main` prints and turns into exit code 2.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{PeerKind, RunArgs, ServeArgs};
use crate::peers;
use crate::proto::gb28181::device::DeviceConfig;
use crate::proto::gb28181::platform::PlatformConfig;
use crate::proto::sip::digest::Algorithm;
use crate::report::terminal;
use crate::suite::runner::{self, RunOptions};
use crate::suite::{load, model};

pub async fn run(a: RunArgs) -> Result<i32> {
    let suites = load::load_all(&a.paths)?;
    if a.target.is_none() && !a.peer_faults.is_empty() {
        runner::check_peer_faults(&suites, &a.peer_faults)?;
    } else if !a.peer_faults.is_empty() {
        bail!("--peer-fault applies to the built-in peers; it cannot be used with --target");
    }
    if let Some(s) = a.time_scale {
        if !(s > 0.0 && s <= 100.0) {
            bail!("--time-scale {s}: expected a factor in (0, 100]");
        }
    }
    let opts = RunOptions {
        target: a.target,
        listen: a.listen,
        vars: a.vars,
        filters: a.filters,
        report_dir: a.report_dir,
        junit: a.junit,
        time_scale: a.time_scale,
        peer_faults: a.peer_faults,
        strict: a.strict,
        verbose_terminal: true,
        no_operator: a.no_operator,
        operator_hook: a.operator_hook,
    };
    let total: usize = suites
        .iter()
        .flat_map(|s| s.cases.iter())
        .filter(|c| opts.filters.is_empty() || opts.filters.iter().any(|f| c.matches_filter(f)))
        .map(|c| c.transports.len())
        .sum();
    if total == 0 {
        bail!("no case matches the given paths and filters");
    }
    println!(
        "camcert {}: {} case runs from {} suite file(s) against {}",
        env!("CARGO_PKG_VERSION"),
        total,
        suites.len(),
        opts.target
            .map(|t| t.to_string())
            .unwrap_or_else(|| "the built-in reference peers".into())
    );
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: finishing the report");
            s2.store(true, Ordering::SeqCst);
        }
    });
    let result = runner::run(&suites, &opts, stop).await?;
    terminal::print_summary(&mut std::io::stdout(), &result);
    println!(
        "reports: {}/results.json, {}, {}/pcap/",
        opts.report_dir.display(),
        opts.junit
            .clone()
            .unwrap_or_else(|| opts.report_dir.join("junit.xml"))
            .display(),
        opts.report_dir.display()
    );
    Ok(result.exit_code(opts.strict))
}

pub fn list(paths: &[PathBuf]) -> Result<i32> {
    let suites = load::load_all(paths)?;
    let mut n = 0;
    for s in &suites {
        let role = match s.role {
            model::Role::Platform => "camcert plays the platform; DUT is a device",
            model::Role::Device => "camcert plays the device; DUT is a platform",
            model::Role::UpperPlatform => {
                "camcert plays the upper platform; DUT is a lower platform"
            }
        };
        let tr: Vec<String> = s.transports.iter().map(|t| t.to_string()).collect();
        println!(
            "{} ({}) [{}; {}]",
            s.name,
            s.file.display(),
            role,
            tr.join(", ")
        );
        for c in &s.cases {
            let reqs: Vec<&str> = c.requirements.iter().map(|r| r.id.as_str()).collect();
            println!(
                "  {:<14} {:<11} {:<28} {}  [{}]",
                c.id,
                c.level.to_string(),
                reqs.join(","),
                c.title,
                c.tags.join(",")
            );
            n += 1;
        }
    }
    println!("{n} cases");
    Ok(0)
}

pub fn schema(catalog: bool) -> Result<i32> {
    let s = if catalog {
        schemars::schema_for!(model::CatalogInput)
    } else {
        schemars::schema_for!(model::SuiteInput)
    };
    println!("{}", serde_json::to_string_pretty(&s)?);
    Ok(0)
}

/// Print the peer's events until `stop` fires or the peer ends.
async fn print_events_until<M: crate::transport::driver::SipMachine>(
    h: &mut peers::PeerHandle<M>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            e = h.events.recv() => match e {
                Some(e) => println!("{e:?}"),
                None => break,
            },
        }
    }
}

pub async fn serve(a: ServeArgs) -> Result<i32> {
    let password = std::env::var(&a.password_env).unwrap_or_default();
    let deadline = a.duration.map(Duration::from_secs_f64);
    let stop = async move {
        match deadline {
            Some(d) => tokio::time::sleep(d).await,
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    };
    match a.peer {
        PeerKind::Gb28181Platform => {
            let mut cfg = PlatformConfig::new(&a.platform_id);
            if let Some(d) = &a.domain {
                cfg.realm = d.clone();
            }
            for d in &a.devices {
                cfg.devices.insert(d.clone(), password.clone());
            }
            if a.devices.is_empty() {
                cfg.devices.insert(a.device_id.clone(), password.clone());
            }
            cfg.time_scale = a.time_scale;
            if a.sha256 {
                cfg.algorithm = Algorithm::Sha256;
            }
            cfg.qop_auth = a.qop;
            for f in &a.faults {
                if !cfg.faults.set(f) {
                    bail!(
                        "unknown fault {f:?}; known: {}",
                        crate::proto::gb28181::platform::PlatformFaults::NAMES.join(", ")
                    );
                }
            }
            for (k, v) in &a.settings {
                if k.contains("password") {
                    bail!("--set {k}: passwords come from the environment (--password-env)");
                }
                cfg.apply_option(k, v)
                    .map_err(|e| anyhow::anyhow!("--set {k}: {e}"))?;
            }
            // A lower platform registers upward with the same password.
            if let Some(u) = &mut cfg.upstream {
                u.password = password.clone();
            }
            let mut h = peers::start_platform(cfg, a.listen).await?;
            println!(
                "reference platform {} listening on {}://{}",
                a.platform_id, a.listen.transport, h.addr
            );
            print_events_until(&mut h, stop).await;
            h.stop().await?;
        }
        PeerKind::Gb28181Device => {
            let reg = a
                .registrar
                .context("gb28181-device needs --registrar udp://HOST:PORT")?;
            let local = std::net::SocketAddr::new(
                if reg.addr.is_ipv6() {
                    "::".parse()?
                } else {
                    std::net::Ipv4Addr::UNSPECIFIED.into()
                },
                0,
            );
            let mut cfg =
                DeviceConfig::new(&a.device_id, &a.platform_id, &password, local, reg.addr);
            if let Some(d) = &a.domain {
                cfg.domain = d.clone();
            }
            if let Some(u) = &a.username {
                cfg.username = u.clone();
            }
            cfg.transport = reg.transport;
            cfg.expires = a.expires;
            cfg.retry_interval = Duration::from_secs(a.retry_interval);
            cfg.time_scale = a.time_scale;
            for f in &a.faults {
                if !cfg.faults.set(f) {
                    bail!(
                        "unknown fault {f:?}; known: {}",
                        crate::proto::gb28181::device::DeviceFaults::NAMES.join(", ")
                    );
                }
            }
            for (k, v) in &a.settings {
                if k.contains("password") {
                    bail!("--set {k}: passwords come from the environment (--password-env)");
                }
                cfg.apply_option(k, v)
                    .map_err(|e| anyhow::anyhow!("--set {k}: {e}"))?;
            }
            let bind_ip = if reg.addr.ip().is_loopback() {
                reg.addr.ip()
            } else {
                local.ip()
            };
            let mut h = peers::start_camera(cfg, bind_ip).await?;
            println!(
                "reference camera {} registering to {reg} from {}",
                a.device_id, h.addr
            );
            print_events_until(&mut h, stop).await;
            if a.unregister_on_exit {
                h.command(|d, now| d.unregister(now)).await;
                let wait = tokio::time::sleep(Duration::from_secs(3));
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        e = h.events.recv() => match e {
                            Some(e) => {
                                println!("{e:?}");
                                if matches!(e, crate::proto::gb28181::device::DeviceEvent::Unregistered) { break; }
                            }
                            None => break,
                        },
                    }
                }
            }
            h.stop().await?;
        }
    }
    Ok(0)
}
