//! Raw flags → a resolved plan. Flag errors exit 2 (clap's own code).

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::transport::PeerAddr;

#[derive(Debug, Parser)]
#[command(
    name = "camcert",
    version,
    about = "Conformance test harness and traffic simulator for video-surveillance camera protocols"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run suites against a device under test, or the built-in reference peers.
    Run(RunArgs),
    /// List the cases in suites with their requirement IDs and levels.
    List {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Run a built-in reference peer in the foreground.
    Serve(ServeArgs),
    /// Print the JSON Schema of suite files (or of requirement catalogs).
    Schema {
        #[arg(long)]
        catalog: bool,
    },
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Suite files or folders.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The device under test, e.g. udp://192.0.2.10:5060 or tcp://[::1]:5060.
    /// Without it each case runs against the matching built-in reference peer.
    #[arg(long)]
    pub target: Option<PeerAddr>,
    /// Address camcert listens on when it plays the platform (default
    /// 0.0.0.0:5060 with --target, an ephemeral loopback port without).
    #[arg(long)]
    pub listen: Option<SocketAddr>,
    /// Run only cases whose ID, tag or requirement ID matches (`PREFIX*` allowed).
    #[arg(long = "filter")]
    pub filters: Vec<String>,
    /// Set a suite variable: --var password=... (overrides the suite's value).
    #[arg(long = "var", value_parser = parse_kv)]
    pub vars: Vec<(String, String)>,
    #[arg(long, default_value = "reports")]
    pub report_dir: PathBuf,
    /// JUnit XML path (default REPORT_DIR/junit.xml).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Protocol-time factor: 0.01 runs a 60 s interval in 0.6 s. Default 0.01
    /// with the built-in peers, 1 against a real target.
    #[arg(long)]
    pub time_scale: Option<f64>,
    /// Switch on a deliberate fault in the built-in peer (repeatable).
    #[arg(long = "peer-fault")]
    pub peer_faults: Vec<String>,
    /// Fail the run on optional and conditional failures too.
    #[arg(long)]
    pub strict: bool,
    /// Skip the cases that need an operator action on a real DUT (reported
    /// as skipped, not failed).
    #[arg(long)]
    pub no_operator: bool,
    /// Command run for an operator action instead of asking a person:
    /// CMD ACTION DEVICE_ID, with CAMCERT_ACTION, CAMCERT_DEVICE_ID,
    /// CAMCERT_NOTE and CAMCERT_ARG_<NAME> in its environment.
    #[arg(long, value_name = "CMD")]
    pub operator_hook: Option<String>,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))?;
    if k.is_empty() {
        return Err(format!("{s:?}: empty variable name"));
    }
    Ok((k.to_string(), v.to_string()))
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PeerKind {
    /// Reference camera: registers to --registrar and keeps its registration.
    #[value(name = "gb28181-device")]
    Gb28181Device,
    /// Reference platform: a GB/T 28181 registrar on --listen.
    #[value(name = "gb28181-platform")]
    Gb28181Platform,
}

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    pub peer: PeerKind,
    /// gb28181-platform: where to listen.
    #[arg(long, default_value = "udp://127.0.0.1:5060")]
    pub listen: PeerAddr,
    /// gb28181-device: the platform to register to.
    #[arg(long)]
    pub registrar: Option<PeerAddr>,
    #[arg(long, default_value = "34020000001320000001")]
    pub device_id: String,
    #[arg(long, default_value = "34020000002000000001")]
    pub platform_id: String,
    /// SIP domain / digest realm (default: the platform ID's first 10 digits).
    #[arg(long)]
    pub domain: Option<String>,
    /// gb28181-device: digest username (default: the device ID).
    #[arg(long)]
    pub username: Option<String>,
    /// The device's password (read from the environment; never pass it as a flag).
    #[arg(long = "password-env", default_value = "CAMCERT_PASSWORD")]
    pub password_env: String,
    /// gb28181-platform: provision a device: ID (password from --password-env).
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// gb28181-device: registration expiry to request, seconds.
    #[arg(long, default_value_t = 3600)]
    pub expires: u32,
    /// gb28181-device: seconds to wait after a failed registration.
    #[arg(long, default_value_t = 60)]
    pub retry_interval: u64,
    /// Protocol-time factor for the peer's timers.
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// Switch on a deliberate fault (repeatable).
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    pub duration: Option<f64>,
    /// gb28181-device: unregister before stopping.
    #[arg(long)]
    pub unregister_on_exit: bool,
    /// gb28181-platform: offer SHA-256 instead of MD5.
    #[arg(long)]
    pub sha256: bool,
    /// gb28181-platform: offer qop=auth.
    #[arg(long)]
    pub qop: bool,
    /// A peer setting, as under a suite's `peer:` (repeatable), e.g.
    /// `--set upstream=ID@IP:PORT` or `--set keepalive_interval=30`.
    #[arg(long = "set", value_parser = parse_kv)]
    pub settings: Vec<(String, String)>,
}
