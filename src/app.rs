//! The commands behind the CLI. Each returns the process exit code, or an
//! error that `main` prints and turns into exit code 2.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{PeerKind, ReportCommand, RunArgs, ServeArgs};
use crate::peers;
use crate::proto::gb28181::device::DeviceConfig;
use crate::proto::gb28181::platform::PlatformConfig;
use crate::proto::sip::digest::Algorithm;
use crate::report::terminal;
use crate::suite::runner::{self, RunOptions};
use crate::suite::vars::Vars;
use crate::suite::{load, model};

pub async fn run(mut a: RunArgs) -> Result<i32> {
    crate::cli::refuse_secret_vars(&a.vars).map_err(anyhow::Error::msg)?;
    if let Some(f) = &a.password_file {
        let pw = crate::cli::read_password_file(f).map_err(anyhow::Error::msg)?;
        a.vars.push(("password".into(), pw));
    }
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
    check_variable_limits(&suites, &a.vars)?;
    let opts = RunOptions {
        target: a.target,
        listen: a.listen,
        vars: a.vars,
        filters: a.filters,
        skips: a.skips,
        report_dir: a.report_dir,
        junit: a.junit,
        time_scale: a.time_scale,
        peer_faults: a.peer_faults,
        strict: a.strict,
        verbose_terminal: true,
        no_operator: a.no_operator,
        operator_hook: a.operator_hook,
        jobs: a.jobs.map(usize::from),
        job_pool: None,
        update_golden: a.update_golden,
    };
    if opts.jobs.is_some_and(|j| j > 1) && runner::effective_jobs(&opts) == 1 {
        println!("note: -j runs groups side by side only against the built-in peers without a fixed --listen; this run is one group at a time");
    }
    let total = planned_runs(&suites, &opts);
    if total == 0 {
        bail!("no case matches the given paths, filters and target transport");
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
    let stop = watch_signals("finishing the reports")?;
    let result = runner::run(&suites, &opts, stop.flag.clone()).await?;
    let html = opts.report_dir.join("report.html");
    crate::report::html::write(&result, &html)?;
    terminal::print_summary(&mut std::io::stdout(), &result);
    println!(
        "reports: {}, {}/results.json, {}, {}/pcap/",
        html.display(),
        opts.report_dir.display(),
        opts.junit
            .clone()
            .unwrap_or_else(|| opts.report_dir.join("junit.xml"))
            .display(),
        opts.report_dir.display()
    );
    Ok(result.exit_code(opts.strict))
}

/// How many case runs `runner::run` will carry out: the selected cases,
/// once per transport, and with `--target` only on the target's transport.
fn planned_runs(suites: &[crate::suite::Suite], opts: &RunOptions) -> usize {
    suites
        .iter()
        .flat_map(|s| s.cases.iter())
        .filter(|c| opts.selects(c))
        .flat_map(|c| c.transports.iter())
        .filter(|&&t| opts.target.is_none_or(|target| target.transport == t))
        .count()
}

/// Expand every suite and case variable once, so one that passes a bound
/// (size, depth, lookups) is a user error before the run, not a stuck run.
fn check_variable_limits(
    suites: &[crate::suite::Suite],
    cli_vars: &[(String, String)],
) -> Result<()> {
    for s in suites {
        let mut v = Vars::new(&s.secrets);
        for (k, val) in s.vars.iter().chain(cli_vars.iter().map(|(k, v)| (k, v))) {
            v.set(k, val.clone());
        }
        v.check_limits()
            .map_err(|e| anyhow::anyhow!("{}: {e}", s.file.display()))?;
        for c in s.cases.iter().filter(|c| !c.vars.is_empty()) {
            let mut cv = v.clone();
            for (k, val) in &c.vars {
                cv.set(k, val.clone());
            }
            cv.check_limits()
                .map_err(|e| anyhow::anyhow!("{}: case {}: {e}", c.loc, c.id))?;
        }
    }
    Ok(())
}

/// Which signal stopped the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sig {
    Int,
    Term,
}

impl Sig {
    /// The conventional exit status of a process ended by this signal.
    fn exit_code(self) -> i32 {
        match self {
            Sig::Int => 130,
            Sig::Term => 143,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Sig::Int => "SIGINT",
            Sig::Term => "SIGTERM",
        }
    }
}

/// Set by the first SIGINT or SIGTERM.
struct Stop {
    flag: Arc<AtomicBool>,
    notify: Arc<tokio::sync::Notify>,
}

impl Stop {
    async fn wait(&self) {
        self.notify.notified().await
    }
}

#[cfg(unix)]
async fn next_signal(
    int: &mut tokio::signal::unix::Signal,
    term: &mut tokio::signal::unix::Signal,
) -> Sig {
    tokio::select! {
        _ = int.recv() => Sig::Int,
        _ = term.recv() => Sig::Term,
    }
}

/// Watch SIGINT and SIGTERM: the first asks for a graceful end (`what`
/// says what that means), the second exits at once with 130 or 143.
fn watch_signals(what: &'static str) -> Result<Stop> {
    let flag = Arc::new(AtomicBool::new(false));
    let notify = Arc::new(tokio::sync::Notify::new());
    let (f2, n2) = (flag.clone(), notify.clone());
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut int = signal(SignalKind::interrupt()).context("watching SIGINT")?;
        let mut term = signal(SignalKind::terminate()).context("watching SIGTERM")?;
        tokio::spawn(async move {
            let first = next_signal(&mut int, &mut term).await;
            eprintln!(
                "\ninterrupted ({}): {what}; send the signal again to exit at once",
                first.name()
            );
            f2.store(true, Ordering::SeqCst);
            n2.notify_one();
            let second = next_signal(&mut int, &mut term).await;
            eprintln!("interrupted again ({}): exiting now", second.name());
            std::process::exit(second.exit_code());
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("\ninterrupted: {what}; press Ctrl-C again to exit at once");
            f2.store(true, Ordering::SeqCst);
            n2.notify_one();
            if tokio::signal::ctrl_c().await.is_ok() {
                std::process::exit(Sig::Int.exit_code());
            }
        }
    });
    Ok(Stop { flag, notify })
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

/// `camcert report html|diff`.
pub fn report(r: ReportCommand) -> Result<i32> {
    match r {
        ReportCommand::Html { results, output } => {
            let out = crate::report::html::write_from_json(&results, output.as_deref())?;
            println!("{}", out.display());
            Ok(0)
        }
        ReportCommand::Diff { old, new } => {
            crate::report::diff::run(&old, &new, &mut std::io::stdout())
        }
        ReportCommand::Merge { output, shards } => {
            crate::report::merge::run(&output, &shards, &mut std::io::stdout())
        }
    }
}

/// Log the camera's events until `stop` fires or the camera ends.
async fn print_events_until(
    h: &mut peers::PeerHandle<crate::proto::gb28181::device::Device>,
    stop: impl std::future::Future<Output = ()>,
) {
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            e = h.events.recv() => match e {
                Some(e) => crate::lab::log_camera(&e),
                None => break,
            },
        }
    }
}

/// The peer's password: from --password-file, else the environment
/// variable, else (only when a person is at the terminal) a prompt that does
/// not echo. Never from a flag.
fn serve_password(a: &ServeArgs) -> Result<String> {
    use std::io::IsTerminal;
    if let Some(f) = &a.password_file {
        return crate::cli::read_password_file(f).map_err(anyhow::Error::msg);
    }
    if let Ok(p) = std::env::var(&a.password_env) {
        return Ok(p);
    }
    if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
        let p = rpassword::prompt_password(format!(
            "password ({} is not set; input is not shown): ",
            a.password_env
        ))
        .context("reading the password from the terminal")?;
        return Ok(p.trim_end_matches(['\r', '\n']).to_string());
    }
    Ok(String::new())
}

/// `serve --pcap FILE`: every packet from now on goes to the file as well.
fn spill_evidence(tap: &crate::transport::Tap, pcap: Option<&std::path::Path>) -> Result<()> {
    if let Some(path) = pcap {
        tap.spill_to(path)?;
        println!("writing every packet to {}", path.display());
    }
    Ok(())
}

pub async fn serve(a: ServeArgs) -> Result<i32> {
    crate::cli::refuse_secret_settings(&a.settings).map_err(anyhow::Error::msg)?;
    if a.devices.iter().any(|d| d.contains(':')) {
        bail!("--device ID:PASSWORD: a password does not go on the command line; pass --device ID with the password in the environment (--password-env) or in --password-file FILE");
    }
    let password = serve_password(&a)?;
    let deadline = a.duration.map(Duration::from_secs_f64);
    let signals = watch_signals("stopping the peer")?;
    let stop = async move {
        match deadline {
            Some(d) => tokio::select! {
                _ = tokio::time::sleep(d) => {}
                _ = signals.wait() => {}
            },
            None => signals.wait().await,
        }
    };
    match a.peer {
        PeerKind::HedgwGateway => {
            let cfg = peers::hedgw::serve::gateway_config(&a.settings, &a.faults, &password)?;
            peers::hedgw::serve::gateway(a.listen.addr, cfg, a.verbose, stop).await?;
        }
        PeerKind::HedgwDevice => {
            let target = a
                .registrar
                .context("hedgw-device needs --registrar tcp://HOST:PORT (the gateway)")?;
            let (cfg, name) =
                peers::hedgw::serve::device_config(&a.settings, &a.faults, &password)?;
            peers::hedgw::serve::device(target.addr, cfg, name, a.verbose, stop).await?;
        }
        PeerKind::Gb28181Platform => {
            let mut cfg = PlatformConfig::new(&a.platform_id);
            if let Some(d) = &a.domain {
                cfg.realm = d.clone();
            }
            for d in &a.devices {
                cfg.devices.insert(d.clone(), password.clone());
            }
            if let (Some(from), Some(n)) = (&a.devices_from, a.devices_count) {
                for id in crate::load::id_range(from, 0, n)? {
                    cfg.devices.insert(id, password.clone());
                }
            }
            if a.devices.is_empty() && a.devices_from.is_none() {
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
                if k == "device" {
                    // The ID only; its password is the one from the environment or file.
                    cfg.devices.insert(v.trim().to_string(), password.clone());
                    continue;
                }
                cfg.apply_option(k, v)
                    .map_err(|e| anyhow::anyhow!("--set {k}: {e}"))?;
            }
            // A lower platform registers upward with the same password.
            if let Some(u) = &mut cfg.upstream {
                u.password = password.clone();
            }
            crate::lab::init_logging(a.verbose);
            let h = peers::start_platform(cfg, a.listen).await?;
            println!(
                "reference platform {} listening on {}://{}",
                a.platform_id, a.listen.transport, h.addr
            );
            spill_evidence(&h.tap, a.pcap.as_deref())?;
            let h = crate::lab::run(h, a.control, stop).await?;
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
                cfg.domain = d.as_str().into();
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
                cfg.apply_option(k, v)
                    .map_err(|e| anyhow::anyhow!("--set {k}: {e}"))?;
            }
            let bind_ip = if reg.addr.ip().is_loopback() {
                reg.addr.ip()
            } else {
                local.ip()
            };
            crate::lab::init_logging(a.verbose);
            let mut h = peers::start_camera(cfg, bind_ip).await?;
            println!(
                "reference camera {} registering to {reg} from {}",
                a.device_id, h.addr
            );
            spill_evidence(&h.tap, a.pcap.as_deref())?;
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
                                crate::lab::log_camera(&e);
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

/// The built-in platform of a load run, in its own process; killed when dropped.
struct PlatformProcess {
    child: std::process::Child,
    addr: std::net::SocketAddr,
    /// Where it writes what it received of the media when stopped.
    stats: std::path::PathBuf,
}

impl PlatformProcess {
    /// Stop it (SIGTERM), wait up to 10 s for it to write its media
    /// figures, and read them.
    async fn finish(&mut self) -> Option<crate::load::metrics::ReceivedMedia> {
        #[cfg(unix)]
        // SAFETY: kill(2) on the pid of a child this process started and
        // has not yet waited for.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        let until = std::time::Instant::now() + Duration::from_secs(10);
        while std::time::Instant::now() < until {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let text = match std::fs::read_to_string(&self.stats) {
            Ok(t) => t,
            Err(e) => {
                eprintln!(
                    "the reference platform left no media figures in {}: {e}",
                    self.stats.display()
                );
                return None;
            }
        };
        let _ = std::fs::remove_file(&self.stats);
        match serde_json::from_str(&text) {
            Ok(r) => Some(r),
            Err(e) => {
                eprintln!("the reference platform's media figures: {e}");
                None
            }
        }
    }
}

/// The fleet's tick unless told: half the default lag threshold, so that
/// the tick alone cannot make the send lag pass it (half of a lower
/// threshold, where one is given).
const DEFAULT_TICK_MS: f64 = 5.0;

/// The fleet's tick: `--tick-ms` as given, else [`DEFAULT_TICK_MS`] or
/// half the lag threshold, whichever is less.
fn fleet_tick(tick_ms: Option<f64>, lag_threshold_ms: f64) -> Duration {
    let ms = tick_ms.unwrap_or((lag_threshold_ms / 2.0).min(DEFAULT_TICK_MS));
    Duration::from_secs_f64(ms.clamp(0.0, 1000.0) / 1000.0)
}

/// `camcert load platform`: the reference platform as a load run's target.
pub async fn load_platform(a: crate::cli::LoadPlatformArgs) -> Result<i32> {
    let password = std::env::var("CAMCERT_PASSWORD").unwrap_or_default();
    let mut cfg = PlatformConfig::new(&a.platform_id);
    if let Some(d) = &a.domain {
        cfg.realm = d.clone();
        cfg.domain = d.clone();
    }
    for id in crate::load::id_range(&a.devices_from, 0, a.devices_count)? {
        cfg.devices.insert(id, password.clone());
    }
    if !(a.keepalive >= 0.01 && a.keepalive <= 86400.0) {
        bail!(
            "--keepalive {}: expected seconds in [0.01, 86400]",
            a.keepalive
        );
    }
    cfg.keepalive_interval = Duration::from_secs_f64(a.keepalive);
    for f in &a.faults {
        if !cfg.faults.set(f) {
            bail!(
                "unknown fault {f:?}; known: {}",
                crate::proto::gb28181::platform::PlatformFaults::NAMES.join(", ")
            );
        }
    }
    let plan = crate::load::platform::PlatformPlan {
        listen: a.listen.addr,
        transport: a.listen.transport,
        cfg,
        first_id: a.devices_from.clone(),
        streams: a.streams.min(a.devices_count),
        stats: a.stats.clone(),
        duration: a.duration.map(Duration::from_secs_f64),
        tick: Duration::from_secs_f64(a.tick_ms.clamp(0.0, 1000.0) / 1000.0),
    };
    let signals = watch_signals("stopping the platform")?;
    let eof = a.stop_at_stdin_eof;
    let stop = async move {
        let stdin_ends = async {
            if !eof {
                return std::future::pending::<()>().await;
            }
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            std::thread::spawn(move || {
                use std::io::Read;
                let mut buf = [0u8; 256];
                while let Ok(n) = std::io::stdin().read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                }
                let _ = tx.send(());
            });
            let _ = rx.await;
        };
        tokio::select! {
            _ = signals.wait() => {}
            _ = stdin_ends => {}
        }
    };
    crate::load::platform::run(plan, stop).await?;
    Ok(0)
}

impl Drop for PlatformProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Start `camcert load platform` on loopback with the fleet's device range
/// provisioned and the first `streams` to INVITE; the password goes
/// through its environment.
async fn spawn_platform(
    a: &crate::cli::LoadArgs,
    first_id: &str,
    count: u64,
    streams: u64,
    password: &str,
) -> Result<PlatformProcess> {
    use std::io::BufRead;
    let exe = std::env::current_exe().context("finding the camcert executable")?;
    let stats = std::env::temp_dir().join(format!(
        "camcert-load-platform-{}-{}.json",
        std::process::id(),
        a.shard.index
    ));
    let mut cmd = std::process::Command::new(exe);
    let listen = match a.transport {
        crate::cli::LoadTransport::Udp => "udp://127.0.0.1:0",
        crate::cli::LoadTransport::Tcp => "tcp://127.0.0.1:0",
    };
    cmd.args(["load", "platform", "--listen", listen])
        .args(["--platform-id", &a.platform_id])
        .args(["--devices-from", first_id])
        .args(["--devices-count", &count.to_string()])
        .args(["--duration", &format!("{}", a.duration + 60.0)])
        .args(["--keepalive", &format!("{}", a.keepalive)])
        .args(["--streams", &streams.to_string()])
        .arg("--stats")
        .arg(&stats)
        .arg("--stop-at-stdin-eof")
        .env("CAMCERT_PASSWORD", password)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null());
    if let Some(d) = &a.domain {
        cmd.args(["--domain", d]);
    }
    // Its own process group: Ctrl-C at the terminal reaches the run, which
    // then stops the platform itself, after measuring it. Should the run
    // end some other way, the platform's standard input ends and it stops.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().context("starting the reference platform")?;
    let stdout = child.stdout.take().context("platform stdout")?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let addr = line
                .split("listening on udp://")
                .nth(1)
                .or_else(|| line.split("listening on tcp://").nth(1));
            if let Some(addr) = addr {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        }
    });
    let mut p = PlatformProcess {
        child,
        addr: "127.0.0.1:0".parse()?,
        stats,
    };
    let addr = tokio::time::timeout(Duration::from_secs(30), rx)
        .await
        .context("the reference platform did not start within 30 s")?
        .context("the reference platform exited before listening")?;
    p.addr = addr
        .parse()
        .with_context(|| format!("reference platform address {addr:?}"))?;
    Ok(p)
}

/// `camcert load gb28181`: exit 0 when every camera registered with no
/// failure and the generator kept up, 1 otherwise.
pub async fn load(a: crate::cli::LoadArgs) -> Result<i32> {
    use crate::load::{id_range, LoadPlan};
    let password = match &a.password_file {
        Some(f) => crate::cli::read_password_file(f).map_err(anyhow::Error::msg)?,
        None => std::env::var("CAMCERT_PASSWORD").unwrap_or_default(),
    };
    if !(a.ramp > 0.0 && a.ramp <= 1e6) {
        bail!(
            "--ramp {}: expected registrations per second in (0, 1000000]",
            a.ramp
        );
    }
    if !(a.duration > 0.0 && a.duration <= 30.0 * 86400.0) {
        bail!(
            "--duration {}: expected seconds in (0, 30 days]",
            a.duration
        );
    }
    if !(a.keepalive >= 0.01 && a.keepalive <= 86400.0) {
        bail!(
            "--keepalive {}: expected seconds in [0.01, 86400]",
            a.keepalive
        );
    }
    if !(a.retry_interval >= 0.0 && a.retry_interval <= 86400.0) {
        bail!(
            "--retry-interval {}: expected seconds in [0, 86400]",
            a.retry_interval
        );
    }
    if a.cameras == 0 {
        bail!("--cameras 0: nothing to simulate");
    }
    // 0 is allowed: then any lag at all marks the generator saturated.
    if !(a.lag_threshold_ms >= 0.0 && a.lag_threshold_ms.is_finite()) {
        bail!(
            "--lag-threshold-ms {}: expected milliseconds, 0 or more",
            a.lag_threshold_ms
        );
    }
    if let Some(t) = a.tick_ms.filter(|t| !(0.0..=1000.0).contains(t)) {
        bail!("--tick-ms {t}: expected milliseconds in [0, 1000]");
    }
    let transport = a.transport.proto();
    if let Some(t) = &a.target {
        if t.transport != transport {
            bail!(
                "--target {t}: the fleet signals over {} (--transport); give a {} target",
                transport.via_name(),
                transport.via_name().to_ascii_lowercase()
            );
        }
    }
    let (offset, count) = a.shard.block(a.cameras);
    if count == 0 {
        bail!(
            "--shard {} of --cameras {}: this shard has no cameras",
            a.shard,
            a.cameras
        );
    }
    let ids = id_range(&a.id_base, offset, count)?;
    // Shard I binds its ports after those of shards 0..I.
    let per_socket = a.per_socket.max(1) as u64;
    let stride = a.cameras.div_ceil(a.shard.count).div_ceil(per_socket);
    let port_base = match a.port_base {
        Some(p) => {
            let first = p as u64 + a.shard.index * stride;
            if first + stride > 65536 {
                bail!(
                    "--port-base {p}: shard {} needs ports {first}..{} ",
                    a.shard,
                    first + stride
                );
            }
            Some(first as u16)
        }
        None => None,
    };
    let first_id = id_range(&a.id_base, 0, 1)?.remove(0);
    // --streams: the first N cameras of the whole fleet stream; this shard
    // expects those of its block.
    let fleet_streams = match a.streams {
        None => 0,
        Some(crate::cli::StreamCount::All) => a.cameras,
        Some(crate::cli::StreamCount::Count(k)) => k.min(a.cameras),
    };
    let shard_streams = fleet_streams.saturating_sub(offset).min(count);
    if !(a.bitrate > 0.0 && a.bitrate <= 1e6) {
        bail!("--bitrate {}: expected kbit/s in (0, 1000000]", a.bitrate);
    }
    let media = if fleet_streams > 0 {
        let source = match &a.media {
            Some(f) => std::sync::Arc::new(crate::media::MediaSource::from_file(f, None)?),
            None => crate::media::sample_h264(),
        };
        let m = crate::load::media::MediaPackets::build(&source, a.bitrate, a.fps).with_context(
            || match &a.media {
                Some(f) => format!("--media {}", f.display()),
                None => "the built-in sample".to_string(),
            },
        )?;
        Some(std::sync::Arc::new(m))
    } else {
        None
    };
    let mut platform = match a.target {
        Some(_) => None,
        None => Some(spawn_platform(&a, &first_id, a.cameras, fleet_streams, &password).await?),
    };
    let target = match (&a.target, &platform) {
        (Some(t), _) => t.addr,
        (None, Some(p)) => p.addr,
        (None, None) => unreachable!("a platform was started"),
    };
    let bind_ip = a.bind.unwrap_or(if target.ip().is_loopback() {
        target.ip()
    } else if target.is_ipv6() {
        std::net::Ipv6Addr::UNSPECIFIED.into()
    } else {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    });
    let plan = LoadPlan {
        target,
        target_label: match &a.target {
            Some(t) => t.to_string(),
            None => format!(
                "the reference platform at {}://{target}",
                transport.via_name().to_ascii_lowercase()
            ),
        },
        builtin_platform: platform.is_some(),
        platform_id: a.platform_id.clone(),
        domain: a.domain.clone(),
        password,
        ids,
        first_index: offset,
        shard: a.shard,
        ramp: a.ramp,
        duration: Duration::from_secs_f64(a.duration),
        keepalive: Duration::from_secs_f64(a.keepalive),
        expires: a.expires,
        retry_interval: Duration::from_secs_f64(a.retry_interval),
        seed: a.seed,
        per_socket: a.per_socket.max(1),
        bind_ip,
        port_base,
        lag_threshold: Duration::from_secs_f64(a.lag_threshold_ms.max(0.0) / 1000.0),
        calibrate: a.calibrate,
        streams: if media.is_some() { shard_streams } else { 0 },
        media,
        bitrate_kbit_s: a.bitrate,
        transport,
        tick: fleet_tick(a.tick_ms, a.lag_threshold_ms),
    };
    eprintln!(
        "camcert load gb28181: {} cameras ({} .. {}, shard {}) against {}, ramp {}/s, {} s",
        plan.ids.len(),
        plan.ids.first().map(String::as_str).unwrap_or(""),
        plan.ids.last().map(String::as_str).unwrap_or(""),
        plan.shard,
        plan.target_label,
        plan.ramp,
        a.duration
    );
    let stop = watch_signals("ending the run and writing the report")?;
    let pid = platform.as_ref().map(|p| p.child.id());
    let report = crate::load::run(&plan, stop.flag.clone(), pid, || async {
        match platform.as_mut() {
            Some(p) if plan.media.is_some() => p.finish().await,
            _ => None,
        }
    })
    .await?;
    drop(platform);
    report.print_summary(&mut std::io::stdout())?;
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(if report.passed() { 0 } else { 1 })
}

/// `camcert load hemu`: a fleet of HEDGW devices against a gateway (the
/// reference one on loopback without --target).
pub async fn load_hemu(a: crate::cli::LoadHemuArgs) -> Result<i32> {
    use crate::load::hemu::{self, HemuPlan};
    let secret = match &a.password_file {
        Some(f) => crate::cli::read_password_file(f).map_err(anyhow::Error::msg)?,
        None => std::env::var("CAMCERT_PASSWORD").unwrap_or_default(),
    };
    if !(1..=1_000_000).contains(&a.devices) {
        bail!("--devices {}: expected 1 to 1000000", a.devices);
    }
    if !(a.ramp > 0.0 && a.ramp <= 1e6) {
        bail!(
            "--ramp {}: expected connections per second in (0, 1000000]",
            a.ramp
        );
    }
    if !(a.duration > 0.0 && a.duration <= 30.0 * 86400.0) {
        bail!(
            "--duration {}: expected seconds in (0, 30 days]",
            a.duration
        );
    }
    if !(a.bitrate > 0.0 && a.bitrate <= 1e6) {
        bail!("--bitrate {}: expected kbit/s in (0, 1000000]", a.bitrate);
    }
    if !(1..=240).contains(&a.fps) {
        bail!("--fps {}: expected 1 to 240", a.fps);
    }
    if !(a.lag_threshold_ms > 0.0 && a.lag_threshold_ms.is_finite()) {
        bail!(
            "--lag-threshold-ms {}: expected more than 0",
            a.lag_threshold_ms
        );
    }
    if !(1..=65536).contains(&a.max_handshakes) {
        bail!("--max-handshakes {}: expected 1 to 65536", a.max_handshakes);
    }
    let target = match &a.target {
        None => None,
        Some(t) => Some(
            tokio::net::lookup_host(t.as_str())
                .await
                .with_context(|| format!("--target {t}: expected HOST:PORT"))?
                .next()
                .with_context(|| format!("--target {t}: no address"))?,
        ),
    };
    if target.is_some() && (!a.gateway_faults.is_empty() || a.login_result != 0) {
        bail!("--gateway-fault and --login-result set up the built-in gateway; with --target there is none");
    }
    let settings = vec![
        ("ping_pong_span".to_string(), a.ping_span.to_string()),
        ("login_result".to_string(), a.login_result.to_string()),
    ];
    let gateway = peers::hedgw::serve::gateway_config(&settings, &a.gateway_faults, &secret)?;
    let video = match &a.media {
        Some(f) => {
            let meta = std::fs::metadata(f).with_context(|| format!("--media {}", f.display()))?;
            if meta.len() > 64 * 1024 * 1024 {
                bail!("--media {}: over 64 MiB", f.display());
            }
            std::fs::read(f).with_context(|| format!("reading {}", f.display()))?
        }
        None => include_bytes!("../captures/sample-h264-320x240-25fps.h264").to_vec(),
    };
    let plan = HemuPlan {
        devices: a.devices,
        target,
        server_name: a.server_name.clone(),
        ramp: a.ramp,
        duration: Duration::from_secs_f64(a.duration),
        bitrate_kbit_s: a.bitrate,
        video,
        fps: a.fps,
        access_key: a.access_key.clone(),
        secret,
        gateway,
        lag_threshold: Duration::from_secs_f64(a.lag_threshold_ms / 1000.0),
        max_handshakes: a.max_handshakes,
    };
    let report = hemu::run(plan).await?;
    let mut out = std::io::stdout().lock();
    report.write_text(&mut out)?;
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("writing the report to {}", path.display()))?;
        println!("report: {}", path.display());
    }
    Ok(if report.passed() { 0 } else { 1 })
}

/// `camcert decode`: read a capture and print its SIP messages (or its
/// flows). A damaged file is decoded up to the damage, which is reported
/// on stderr; exit 2 only when not one frame could be read.
pub fn decode(a: crate::cli::DecodeArgs) -> Result<i32> {
    use crate::capture::{decode, read};
    use crate::cli::DecodeFormat;
    use std::io::Write;

    let data = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let cap = read::read_capture(&data).with_context(|| format!("{}", a.file.display()))?;
    if let (true, Some(stop)) = (cap.frames.is_empty(), &cap.stopped) {
        bail!(
            "{}: no frame could be read: at byte {}: {}",
            a.file.display(),
            stop.offset,
            stop.reason
        );
    }
    let filter = a
        .filter
        .as_deref()
        .map(crate::capture::filter::Filter::parse)
        .transpose()
        .map_err(|e| anyhow::anyhow!("--filter: {e}"))?;
    if let (true, Some(f)) = (a.flows, &filter) {
        let other = f.non_flow_fields();
        if !other.is_empty() {
            bail!(
                "--filter with --flows: a flow has src, dst, transport, proto and ssrc, not {}",
                other.join(", ")
            );
        }
    }
    let keep_flow =
        |k: &decode::FlowKey, st: &decode::FlowStats| filter.as_ref().is_none_or(|f| f.flow(k, st));
    let json = a.format != DecodeFormat::Text;
    let yaml = a.format == DecodeFormat::Yaml;
    // One object: a JSON line, or a YAML document.
    let emit = |w: &mut dyn Write, v: &serde_json::Value| -> std::io::Result<()> {
        if yaml {
            let text = serde_saphyr::to_string(v).map_err(std::io::Error::other)?;
            write!(w, "---\n{text}")?;
            if !text.ends_with('\n') {
                writeln!(w)?;
            }
            Ok(())
        } else {
            writeln!(w, "{v}")
        }
    };
    let stdout = std::io::stdout();
    let mut w = std::io::BufWriter::new(stdout.lock());
    let mut dec = decode::Decoder::new();
    let mut messages = 0u64;
    let mut write_ok = true;
    {
        let mut out = |e: decode::SipEvent| {
            messages += 1;
            if a.flows || !write_ok || filter.as_ref().is_some_and(|f| !f.message(&e)) {
                return;
            }
            let r = if json {
                emit(&mut w, &decode::json(&e))
            } else {
                writeln!(w, "{}", decode::line(&e))
            };
            // A closed pipe (`| head`) ends the output, not the decode.
            write_ok = r.is_ok();
        };
        for f in &cap.frames {
            dec.push(f, &mut out);
        }
        let last = cap.frames.last().map_or(0, |f| f.number);
        dec.finish(last, &mut out);
    }
    let stopped = cap.stopped.as_ref().map(|s| {
        format!(
            "reading stopped at byte {} of {} after frame {}: {}",
            s.offset,
            data.len(),
            cap.frames.len(),
            s.reason
        )
    });
    if json {
        let summary = serde_json::json!({
            "type": "summary",
            "file": a.file.display().to_string(),
            "format": cap.format,
            "frames": cap.frames.len(),
            "skipped_frames": dec.skipped,
            "sip_messages": messages,
            "stopped": cap.stopped.as_ref().map(|s| serde_json::json!({
                "offset": s.offset, "reason": s.reason,
            })),
            "notes": dec.notes,
            "flows": decode::flows_json_where(&dec, &keep_flow),
        });
        let _ = emit(&mut w, &summary);
    } else if a.flows {
        let _ = write!(w, "{}", decode::flow_table_where(&dec, &keep_flow));
    }
    let _ = w.flush();
    drop(w);
    if !json {
        for n in &dec.notes {
            eprintln!("note: frame {}: {}", n.frame, n.text);
        }
        if dec.notes_dropped > 0 {
            eprintln!("note: {} more notes not shown", dec.notes_dropped);
        }
        eprintln!(
            "{}: {} frames, {} SIP messages",
            a.file.display(),
            cap.frames.len(),
            messages
        );
    }
    if let Some(s) = stopped {
        eprintln!("warning: {s}");
    }
    Ok(0)
}

/// `camcert lint`: judge a capture or media file; the reports are those of
/// `camcert run`, and so is the exit code.
pub fn lint(a: crate::cli::LintArgs) -> Result<i32> {
    use crate::capture::lint;
    let data = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    if !(a.keepalive_interval > 0.0 && a.keepalive_interval <= 86400.0) {
        bail!(
            "--keepalive-interval {}: expected seconds in (0, 86400]",
            a.keepalive_interval
        );
    }
    let password = match &a.password_file {
        Some(f) => Some(crate::cli::read_password_file(f).map_err(anyhow::Error::msg)?),
        None => std::env::var("CAMCERT_PASSWORD")
            .ok()
            .filter(|p| !p.is_empty()),
    };
    let opts = lint::LintOptions {
        keepalive_interval: Duration::from_secs_f64(a.keepalive_interval),
        password,
    };
    let label = a.file.display().to_string();
    let result = lint::lint(&data, &label, &opts).map_err(anyhow::Error::msg)?;
    let mut out = std::io::stdout();
    for c in &result.cases {
        terminal::print_case(&mut out, c);
    }
    terminal::print_summary(&mut out, &result);
    if let Some(dir) = &a.report_dir {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        result.write_json(dir)?;
        crate::report::html::write(&result, &dir.join("report.html"))?;
    }
    let junit = a
        .junit
        .clone()
        .or_else(|| a.report_dir.as_ref().map(|d| d.join("junit.xml")));
    if let Some(j) = &junit {
        crate::report::junit::write(&result, j)?;
    }
    if let Some(dir) = &a.report_dir {
        println!(
            "reports: {}/results.json, {}/report.html, {}",
            dir.display(),
            dir.display(),
            junit
                .as_ref()
                .map(|j| j.display().to_string())
                .unwrap_or_default()
        );
    }
    Ok(result.exit_code(a.strict))
}

/// `camcert replay`: play the device side of a capture against a live
/// platform; 0 when every answer matched the captured one, 1 otherwise.
pub fn replay(a: crate::cli::ReplayArgs) -> Result<i32> {
    use crate::capture::{decode, read, replay};
    use crate::proto::sip::{Framed, SipMessage, StreamFramer, DEFAULT_MAX_MESSAGE};
    use std::io::{Read, Write};
    use std::time::Instant;

    if !(a.timeout > 0.0 && a.timeout <= 3600.0) {
        bail!("--timeout {}: expected seconds in (0, 3600]", a.timeout);
    }
    let password = match &a.password_file {
        Some(f) => crate::cli::read_password_file(f).map_err(anyhow::Error::msg)?,
        None => std::env::var("CAMCERT_PASSWORD").unwrap_or_default(),
    };
    let data = std::fs::read(&a.file).with_context(|| format!("reading {}", a.file.display()))?;
    let cap = read::read_capture(&data).with_context(|| format!("{}", a.file.display()))?;
    let mut dec = decode::Decoder::new();
    let mut events = Vec::new();
    for f in &cap.frames {
        dec.push(f, &mut |e| events.push(e));
    }
    dec.finish(cap.frames.last().map_or(0, |f| f.number), &mut |e| {
        events.push(e)
    });
    let platform = a.side == crate::cli::ReplaySide::Platform;
    let script = if platform {
        replay::Script::platform_side(&events)
    } else {
        replay::Script::device_side(&events)
    }
    .map_err(|e| anyhow::anyhow!("{}: {e}", a.file.display()))?;

    enum Link {
        /// The socket, and where to send (unknown until a device writes).
        Udp(std::net::UdpSocket, Option<std::net::SocketAddr>),
        Tcp(std::net::TcpStream, StreamFramer),
    }
    let (mut link, local, peer, target) = if platform {
        if a.target.is_some() {
            bail!("--as platform waits for the device on --listen; --target is for --as device");
        }
        let listen = a
            .listen
            .context("--as platform needs --listen udp://HOST:PORT or tcp://HOST:PORT")?;
        match listen.transport {
            crate::proto::Transport::Udp => {
                let s = std::net::UdpSocket::bind(listen.addr)
                    .with_context(|| format!("binding {listen}"))?;
                let local = s.local_addr()?;
                println!("replay: listening on udp://{local}");
                (Link::Udp(s, None), local, None, listen)
            }
            crate::proto::Transport::Tcp => {
                let l = std::net::TcpListener::bind(listen.addr)
                    .with_context(|| format!("binding {listen}"))?;
                let local = l.local_addr()?;
                println!("replay: listening on tcp://{local}");
                l.set_nonblocking(true)?;
                let deadline = std::time::Instant::now() + Duration::from_secs_f64(a.timeout);
                let (s, from) = loop {
                    match l.accept() {
                        Ok(c) => break c,
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            if std::time::Instant::now() > deadline {
                                bail!(
                                    "no device connected to tcp://{local} within {} s",
                                    a.timeout
                                );
                            }
                            std::thread::sleep(Duration::from_millis(20));
                        }
                        Err(e) => return Err(e).context("accepting the device's connection"),
                    }
                };
                s.set_nonblocking(false)?;
                (
                    Link::Tcp(s, StreamFramer::new(DEFAULT_MAX_MESSAGE)),
                    local,
                    Some(from),
                    listen,
                )
            }
        }
    } else {
        if a.listen.is_some() {
            bail!("--listen is for --as platform; --as device sends to --target");
        }
        let target = a
            .target
            .context("--as device needs --target udp://HOST:PORT or tcp://HOST:PORT")?;
        match target.transport {
            crate::proto::Transport::Udp => {
                let bind: std::net::SocketAddr = if target.addr.is_ipv6() {
                    "[::]:0".parse()?
                } else {
                    "0.0.0.0:0".parse()?
                };
                let s = std::net::UdpSocket::bind(bind).context("binding a UDP socket")?;
                s.connect(target.addr)
                    .with_context(|| format!("reaching {target}"))?;
                let local = s.local_addr()?;
                (
                    Link::Udp(s, Some(target.addr)),
                    local,
                    Some(target.addr),
                    target,
                )
            }
            crate::proto::Transport::Tcp => {
                let s = std::net::TcpStream::connect_timeout(
                    &target.addr,
                    Duration::from_secs_f64(a.timeout),
                )
                .with_context(|| format!("connecting to {target}"))?;
                let local = s.local_addr()?;
                (
                    Link::Tcp(s, StreamFramer::new(DEFAULT_MAX_MESSAGE)),
                    local,
                    Some(target.addr),
                    target,
                )
            }
        }
    };
    println!(
        "replay: {} messages of the {} side of {} (captured {} <-> {}) from {local}{}",
        script.steps.len(),
        if platform { "platform" } else { "device" },
        a.file.display(),
        script.local,
        script.peer,
        if platform {
            String::new()
        } else {
            format!(" against {target}")
        }
    );
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(1, |d| d.as_nanos() as u64);
    let mut player = replay::Player::new(
        script,
        local,
        peer.unwrap_or(local),
        target.transport,
        password,
        seed,
    );
    if let Some(p) = peer {
        player.set_peer(p);
    }
    let wait = Duration::from_secs_f64(a.timeout);
    let mut differed = 0usize;
    let mut matched = 0usize;
    let mut last_send: Option<(Instant, Duration)> = None;
    let mut inbox: std::collections::VecDeque<SipMessage> = Default::default();
    let report = |m: &replay::Matched, differed: &mut usize, matched: &mut usize| {
        let summary = decode::summary(&m.live);
        match &m.diff {
            None => {
                *matched += 1;
                println!("  <- {summary}: as captured");
            }
            Some(d) => {
                *differed += 1;
                println!("  <- {summary}: DIFFERS from the capture (- captured, + live):\n{d}");
            }
        }
    };
    'run: while let Some(i) = player.position() {
        let date = chrono::Local::now()
            .format("%Y-%m-%dT%H:%M:%S%.3f")
            .to_string();
        if let Some(next) = player.next_send(&date) {
            let (_, bytes) = next.map_err(|e| anyhow::anyhow!("step {}: {e}", i + 1))?;
            // Keep the captured spacing of the device's messages (at most 5 s).
            let at = player.steps()[i].at;
            if let Some((sent, then)) = last_send {
                let gap = at.saturating_sub(then).min(Duration::from_secs(5));
                let due = sent + gap;
                let now = Instant::now();
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            last_send = Some((Instant::now(), at));
            match &mut link {
                Link::Udp(s, to) => {
                    let to = to.context("nothing to answer yet: no device has written")?;
                    // The device side's socket is connected to its target.
                    let sent = if platform {
                        s.send_to(&bytes, to)
                    } else {
                        s.send(&bytes)
                    };
                    sent.with_context(|| format!("sending to {to}"))?;
                }
                Link::Tcp(s, _) => s
                    .write_all(&bytes)
                    .with_context(|| format!("sending to {target}"))?,
            }
            let shown = SipMessage::parse(&bytes)
                .map(|p| decode::summary(&p.message))
                .unwrap_or_default();
            println!("  -> {shown}");
            continue;
        }
        // Waiting for the live peer: what already arrived first.
        while let Some(m) = inbox.pop_front() {
            if let Some(hit) = player.received(m) {
                report(&hit, &mut differed, &mut matched);
                continue 'run;
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let want = &player.steps()[i].message;
                println!(
                    "  <- nothing within {:.1} s; expected {} (as captured):\n{}",
                    a.timeout,
                    decode::summary(want),
                    replay::shape(want)
                        .iter()
                        .map(|l| format!("    - {l}\n"))
                        .collect::<String>()
                );
                differed += 1;
                break 'run;
            }
            let mut buf = vec![0u8; 65536];
            match &mut link {
                Link::Udp(s, to) => {
                    s.set_read_timeout(Some(left))?;
                    match s.recv_from(&mut buf) {
                        Ok((n, from)) => {
                            if to.is_none() {
                                // The device this platform plays for.
                                *to = Some(from);
                                player.set_peer(from);
                            }
                            if *to == Some(from) {
                                if let Ok(p) = SipMessage::parse(&buf[..n]) {
                                    inbox.push_back(p.message);
                                }
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => {
                            return Err(e).with_context(|| format!("receiving from {target}"))
                        }
                    }
                }
                Link::Tcp(s, framer) => {
                    s.set_read_timeout(Some(left))?;
                    match s.read(&mut buf) {
                        Ok(0) => bail!("{target} closed the connection"),
                        Ok(n) => {
                            framer.push(&buf[..n]);
                            while let Some(item) = framer.next_item() {
                                match item {
                                    Framed::Message(_, p) => {
                                        if let Ok(p) = *p {
                                            inbox.push_back(p.message);
                                        }
                                    }
                                    Framed::Keepalive => {}
                                    Framed::Broken(f) => bail!("{target}: {f}"),
                                }
                            }
                        }
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ) => {}
                        Err(e) => {
                            return Err(e).with_context(|| format!("receiving from {target}"))
                        }
                    }
                }
            }
            if !inbox.is_empty() {
                continue 'run;
            }
        }
    }
    let total = player.steps().iter().filter(|s| !s.send).count();
    println!("replay: {matched} of {total} answers as captured, {differed} differed or missing");
    Ok(if differed == 0 && matched == total {
        0
    } else {
        1
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fleet_ticks_at_half_the_lag_threshold_at_most_5_ms_unless_told() {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        assert_eq!(ms(fleet_tick(None, 10.0)), 5.0);
        assert_eq!(ms(fleet_tick(None, 100_000.0)), 5.0);
        assert_eq!(ms(fleet_tick(None, 4.0)), 2.0);
        assert_eq!(ms(fleet_tick(None, 0.0)), 0.0);
        assert_eq!(ms(fleet_tick(Some(8.0), 10.0)), 8.0);
        assert_eq!(ms(fleet_tick(Some(5000.0), 10.0)), 1000.0);
    }

    #[test]
    fn the_announced_count_is_what_runs_against_a_target() {
        let suites =
            load::load_all(&[PathBuf::from("suites/gb28181/register-camera.yaml")]).unwrap();
        let all: usize = suites[0].cases.iter().map(|c| c.transports.len()).sum();
        let udp: usize = suites[0]
            .cases
            .iter()
            .filter(|c| c.transports.contains(&crate::proto::Transport::Udp))
            .count();
        assert!(udp < all, "the suite runs over more than UDP");
        let mut opts = RunOptions::default();
        assert_eq!(planned_runs(&suites, &opts), all);
        opts.target = Some("udp://127.0.0.1:5060".parse().unwrap());
        assert_eq!(planned_runs(&suites, &opts), udp);
        opts.filters = vec![suites[0].cases[0].id.clone()];
        assert_eq!(planned_runs(&suites, &opts), 1);
    }

    #[test]
    fn variables_that_explode_are_refused_before_the_run() {
        let mut suites =
            load::load_all(&[PathBuf::from("suites/gb28181/register-camera.yaml")]).unwrap();
        assert!(check_variable_limits(&suites, &[]).is_ok());
        let cli = vec![("huge".to_string(), "${random:hex:99999999999}".to_string())];
        let e = check_variable_limits(&suites, &cli)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"huge\"") && e.contains("register-camera.yaml"),
            "{e}"
        );
        suites[0].cases[0]
            .vars
            .insert("boom".into(), "${boom}".into());
        let e = check_variable_limits(&suites, &[]).unwrap_err().to_string();
        assert!(e.contains("\"boom\"") && e.contains("deep"), "{e}");
    }
}
