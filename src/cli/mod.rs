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
    /// Simulate many devices against a platform from one process.
    #[command(subcommand)]
    Load(LoadCommand),
    /// Print the JSON Schema of suite files (or of requirement catalogs).
    Schema {
        #[arg(long)]
        catalog: bool,
    },
    /// Write a report from a results.json, or compare two runs.
    #[command(subcommand)]
    Report(ReportCommand),
    /// Read a pcap or pcapng capture: one line per SIP message, or the flows.
    Decode(DecodeArgs),
    /// Judge a recorded session (pcap, pcapng) or a media file (PS, Annex
    /// B, rtpdump, RFC 4571 or back-to-back RTP) against the requirement IDs
    /// of the live suites; exit 1 if a mandatory requirement failed.
    Lint(LintArgs),
    /// Play one side of a captured session (device or platform) against a
    /// live peer and compare each answer with the captured one; exit 1 on a
    /// difference.
    Replay(ReplayArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// The capture (pcap or pcapng) holding the session.
    pub file: PathBuf,
    /// The side of the session camcert plays: `device` (against the
    /// platform at --target) or `platform` (for the device that registers
    /// to --listen).
    #[arg(long = "as", value_enum, default_value = "device")]
    pub side: ReplaySide,
    /// `--as device`: the live platform, udp://HOST:PORT or tcp://HOST:PORT.
    #[arg(long)]
    pub target: Option<PeerAddr>,
    /// `--as platform`: where to wait for the live device, udp://HOST:PORT
    /// or tcp://HOST:PORT (port 0: an ephemeral port, printed).
    #[arg(long)]
    pub listen: Option<PeerAddr>,
    /// Read the password for the digest responses from this file (first
    /// line) instead of the CAMCERT_PASSWORD environment variable.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Seconds to wait for each answer of the live peer.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReplaySide {
    Device,
    Platform,
}

#[derive(Debug, clap::Args)]
pub struct LintArgs {
    /// The capture or media file.
    pub file: PathBuf,
    /// The requirement set: `gb28181`.
    #[arg(long, default_value = "gb28181")]
    pub profile: LintProfile,
    /// The keepalive interval the device was configured with, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub keepalive_interval: f64,
    /// Read the devices' password from this file (first line) to verify the
    /// digest responses (else from CAMCERT_PASSWORD when set).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Write results.json, junit.xml and report.html here.
    #[arg(long)]
    pub report_dir: Option<PathBuf>,
    /// JUnit XML path (default REPORT_DIR/junit.xml when --report-dir is given).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// Fail on optional and conditional requirements too.
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LintProfile {
    Gb28181,
}

#[derive(Debug, clap::Args)]
pub struct DecodeArgs {
    /// The capture file (pcap or pcapng).
    pub file: PathBuf,
    /// `text`: one line per SIP message; `json`: one JSON object per line;
    /// `yaml`: the same objects as a stream of YAML documents.
    #[arg(long, value_enum, default_value_t = DecodeFormat::Text)]
    pub format: DecodeFormat,
    /// Print the per-flow table (packets, bytes, protocol, RTP SSRCs)
    /// instead of the messages.
    #[arg(long)]
    pub flows: bool,
    /// Show only the messages (with --flows: the flows) the expression
    /// holds for, e.g. `sip.method == MESSAGE`, `call_id == X`,
    /// `ssrc == 0x0bebc201 and dst ~ :6000`; see the README.
    #[arg(long, value_name = "EXPR")]
    pub filter: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DecodeFormat {
    Text,
    Json,
    Yaml,
}

#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// Write the self-contained HTML report of a run.
    Html {
        /// A results.json written by `camcert run`.
        results: PathBuf,
        /// Where to write (default: report.html beside results.json).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List what changed between two runs; exit 1 if something regressed.
    Diff {
        /// The earlier run's results.json.
        old: PathBuf,
        /// The later run's results.json.
        new: PathBuf,
    },
    /// Combine the JSON reports of a load run's shards (`camcert load
    /// gb28181 --shard I/N --json ...`) into one; exit 1 if the merged run
    /// did not pass.
    Merge {
        /// Where to write the merged report.
        output: PathBuf,
        /// The shards' reports.
        #[arg(required = true)]
        shards: Vec<PathBuf>,
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
    /// Leave out cases whose ID, tag or requirement ID matches (`PREFIX*`
    /// allowed), e.g. a feature the device does not have.
    #[arg(long = "skip")]
    pub skips: Vec<String>,
    /// Set a suite variable, e.g. --var device_id=34020000001320000001
    /// (overrides the suite's value). Secrets are refused here: see
    /// --password-file, or --var password='${env:NAME}'.
    #[arg(long = "var", value_parser = parse_kv)]
    pub vars: Vec<(String, String)>,
    /// Read the suite variable `password` from this file (first line).
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
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
    /// The strict profile: fail the run on optional and conditional
    /// failures too, and judge every message as written, without the
    /// lenient reading's recoveries (a Request-URI or To naming the SIP
    /// domain, a `y=` short of ten digits, a quirky MANSCDP body).
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
    /// Run this many groups of cases at a time against the built-in peers
    /// (default 64). A group is a case with a session of its own, or cases
    /// of a suite and transport that share one session; above -j 1 the cases
    /// that keep a shared session are split into sessions of about 3 (those
    /// that break it stay together, after them). Each group has
    /// reference peers of its own on ephemeral ports. With --target (one
    /// device) or a fixed --listen address every group runs one at a time
    /// whatever -j says. Results keep the order and verdicts of -j 1.
    #[arg(short = 'j', long = "jobs", value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub jobs: Option<u16>,
    /// Write the golden files of `expect` steps' `golden` checks from the
    /// messages received, instead of comparing with them.
    #[arg(long)]
    pub update_golden: bool,
}

#[derive(Debug, Subcommand)]
pub enum LoadCommand {
    /// GB/T 28181 cameras over UDP or TCP (--transport): digest
    /// registration, keepalives, and with --streams live video the
    /// platform INVITEs them for (PS over RTP/UDP at real-time pace).
    Gb28181(LoadArgs),
    /// The reference platform as a load run's target; `load gb28181`
    /// starts it in a process of its own when no --target is given.
    #[command(hide = true)]
    Platform(LoadPlatformArgs),
    /// Hemu HEDGW devices (TDs) over TLS 1.2: login, PING/PONG at the
    /// negotiated span, and TDMediaPackage media at --bitrate each.
    Hemu(LoadHemuArgs),
}

#[derive(Debug, clap::Args)]
pub struct LoadHemuArgs {
    /// Simulated devices (TDs), one TLS connection each.
    #[arg(long, default_value_t = 100)]
    pub devices: u64,
    /// The gateway, HOST:PORT. Without it camcert runs the reference
    /// HEDGW gateway for the run on loopback, accepting the fleet.
    #[arg(long, value_name = "HOST:PORT")]
    pub target: Option<String>,
    /// The name sent in SNI (the gateway's certificate is not verified).
    #[arg(long, default_value = "localhost")]
    pub server_name: String,
    /// Connections started per second.
    #[arg(long, default_value_t = 100.0)]
    pub ramp: f64,
    /// Length of the run, seconds (the ramp included).
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Media of each device, kbit/s of framed HEDGW messages.
    #[arg(long, default_value_t = 256.0)]
    pub bitrate: f64,
    /// The H.264 Annex B file every device uploads, looped (default: the
    /// built-in 320x240 25 fps sample).
    #[arg(long, value_name = "FILE")]
    pub media: Option<PathBuf>,
    /// Frames per second of the media.
    #[arg(long, default_value_t = 25)]
    pub fps: u32,
    /// access_key of every device.
    #[arg(long, default_value = "camcert")]
    pub access_key: String,
    /// Read the devices' access_secret from this file (first line) instead
    /// of the CAMCERT_PASSWORD environment variable.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// ping_pong_span the built-in gateway gives, seconds.
    #[arg(long, default_value_t = 30)]
    pub ping_span: u32,
    /// Result the built-in gateway answers a correct login with (0, 2008, 2026).
    #[arg(long, default_value_t = 0)]
    pub login_result: u32,
    /// Switch on a deliberate fault of the built-in gateway (repeatable).
    #[arg(long = "gateway-fault", value_name = "NAME")]
    pub gateway_faults: Vec<String>,
    /// TCP connects and TLS handshakes in flight at once, at most.
    #[arg(long, default_value_t = 256)]
    pub max_handshakes: usize,
    /// p99 send lag above this many milliseconds marks the generator saturated.
    #[arg(long, default_value_t = 10.0)]
    pub lag_threshold_ms: f64,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct LoadPlatformArgs {
    #[arg(long, default_value = "udp://127.0.0.1:0")]
    pub listen: PeerAddr,
    #[arg(long, default_value = "34020000002000000001")]
    pub platform_id: String,
    #[arg(long)]
    pub domain: Option<String>,
    /// Provision this many devices with consecutive IDs from --devices-from
    /// (password: CAMCERT_PASSWORD).
    #[arg(long, value_name = "ID")]
    pub devices_from: String,
    #[arg(long, value_name = "N")]
    pub devices_count: u64,
    /// INVITE the devices among the first N once they register.
    #[arg(long, default_value_t = 0)]
    pub streams: u64,
    /// Keepalive interval the devices use, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub keepalive: f64,
    /// Write what the media receiver saw here (JSON) when stopped.
    #[arg(long, value_name = "FILE")]
    pub stats: Option<PathBuf>,
    /// Stop after this many seconds (default: at SIGTERM or SIGINT).
    #[arg(long)]
    pub duration: Option<f64>,
    /// Switch on a deliberate platform fault (repeatable).
    #[arg(long = "fault")]
    pub faults: Vec<String>,
    /// Stop when standard input ends (the load run holds the other end, so
    /// the platform goes when the run does, however it ends).
    #[arg(long)]
    pub stop_at_stdin_eof: bool,
    /// While there is work, read the UDP signalling socket every this many
    /// milliseconds and answer what queued in one go, instead of waking
    /// for each datagram (0: wake for each). An answer leaves up to one
    /// tick after its request came.
    #[arg(long, default_value_t = 4.0)]
    pub tick_ms: f64,
}

#[derive(Debug, clap::Args)]
pub struct LoadArgs {
    /// Simulated cameras in the whole fleet (split between shards).
    #[arg(long, default_value_t = 100)]
    pub cameras: u64,
    /// The platform, udp://HOST:PORT (tcp://HOST:PORT with --transport
    /// tcp). Without it camcert starts its reference platform in a
    /// separate process on loopback, with the fleet's devices provisioned.
    #[arg(long)]
    pub target: Option<PeerAddr>,
    /// First registrations started per second.
    #[arg(long, default_value_t = 100.0)]
    pub ramp: f64,
    /// Length of the run, seconds (the ramp included).
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Keepalive interval, seconds.
    #[arg(long, default_value_t = 60.0)]
    pub keepalive: f64,
    /// Registration expiry the cameras ask for, seconds.
    #[arg(long, default_value_t = 3600)]
    pub expires: u32,
    /// Seconds a camera waits after a refused registration before it tries again.
    #[arg(long, default_value_t = 60.0)]
    pub retry_interval: f64,
    /// Device ID of the fleet's first camera; the others count up from it.
    #[arg(long, default_value = "34020000001320000001")]
    pub id_base: String,
    #[arg(long, default_value = "34020000002000000001")]
    pub platform_id: String,
    /// SIP domain / digest realm (default: the platform ID's first 10 digits).
    #[arg(long)]
    pub domain: Option<String>,
    /// Read the cameras' password from this file (first line) instead of
    /// the CAMCERT_PASSWORD environment variable.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// Seed of the cameras' Call-IDs, tags and branches.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run shard I of N: this process takes the I-th block of the fleet's
    /// device IDs (and of local ports with --port-base).
    #[arg(long, default_value = "0/1")]
    pub shard: crate::load::Shard,
    /// Cameras per UDP socket; they share its address as Contact and Via
    /// (1: a port, and a file descriptor, per camera).
    #[arg(long, default_value_t = 500)]
    pub per_socket: usize,
    /// Local IP the camera sockets bind (default: loopback for a loopback
    /// target, else all interfaces).
    #[arg(long)]
    pub bind: Option<std::net::IpAddr>,
    /// Bind the camera sockets on consecutive ports from this one (shard I
    /// starts after the ports of shards 0..I); default: ephemeral ports.
    #[arg(long)]
    pub port_base: Option<u16>,
    /// p99 send lag (of signalling, or of media with --streams) above this
    /// many milliseconds marks the generator saturated.
    #[arg(long, default_value_t = 10.0)]
    pub lag_threshold_ms: f64,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Before the run, measure for a second how many datagrams a bare
    /// sender gets out over loopback here; the report gives the run's send
    /// rate as a percentage of it (and, with --streams, the media send rate
    /// against a bare batched sender of media-sized datagrams).
    #[arg(long)]
    pub calibrate: bool,
    /// How many cameras of the fleet the platform INVITEs for live video
    /// (a number, or `all`); the built-in platform INVITEs the first N
    /// as they register and checks every stream it receives. With
    /// --target, the target places the INVITEs and N is how many the
    /// fleet expects.
    #[arg(long, value_name = "N|all")]
    pub streams: Option<StreamCount>,
    /// RTP bit rate of each stream, kbit/s (headers included); the media
    /// is padded with PS padding packets up to it.
    #[arg(long, default_value_t = 256.0)]
    pub bitrate: f64,
    /// The H.264 or H.265 Annex B file every stream sends, looped
    /// (default: the built-in 320x240 25 fps H.264 sample).
    #[arg(long, value_name = "FILE")]
    pub media: Option<PathBuf>,
    /// Frames per second of the media.
    #[arg(long, default_value_t = 25.0)]
    pub fps: f64,
    /// Signalling transport: `udp`, or `tcp` (a connection per camera,
    /// messages framed by Content-Length). A --target's scheme must agree.
    #[arg(long, value_enum, default_value_t = LoadTransport::Udp)]
    pub transport: LoadTransport,
    /// While there is work, the fleet reads its UDP sockets every this
    /// many milliseconds and answers what queued in one go, instead of
    /// waking for each datagram (0: wake for each). Latency figures use
    /// the kernel's arrival time either way; a camera's reply to a
    /// challenge or a request leaves up to one tick later, and a media
    /// frame up to one tick after it was due. Default: 5, half the
    /// default --lag-threshold-ms (half of a lower threshold where one is
    /// given), so the tick alone cannot make the send lag pass it.
    #[arg(long)]
    pub tick_ms: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LoadTransport {
    Udp,
    Tcp,
}

impl LoadTransport {
    pub fn proto(self) -> crate::proto::Transport {
        match self {
            LoadTransport::Udp => crate::proto::Transport::Udp,
            LoadTransport::Tcp => crate::proto::Transport::Tcp,
        }
    }
}

/// `--streams`: a count, or every camera.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamCount {
    All,
    Count(u64),
}

impl std::str::FromStr for StreamCount {
    type Err = String;
    fn from_str(s: &str) -> Result<StreamCount, String> {
        if s.eq_ignore_ascii_case("all") {
            return Ok(StreamCount::All);
        }
        s.trim()
            .parse()
            .map(StreamCount::Count)
            .map_err(|_| format!("{s:?}: expected a number of cameras or `all`"))
    }
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
    /// Reference HEDGW gateway on --listen (TLS 1.2); the access secret, when
    /// given, comes from --password-env or --password-file.
    #[value(name = "hedgw-gateway")]
    HedgwGateway,
    /// Reference HEDGW device (TD) connecting to the gateway at --registrar.
    #[value(name = "hedgw-device")]
    HedgwDevice,
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
    /// The environment variable holding the password (never pass it as a flag).
    #[arg(long = "password-env", default_value = "CAMCERT_PASSWORD")]
    pub password_env: String,
    /// Read the password from this file (first line) instead of the environment.
    #[arg(long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// gb28181-platform: provision a device: ID (password from --password-env
    /// or --password-file).
    #[arg(long = "device")]
    pub devices: Vec<String>,
    /// gb28181-platform: provision --devices-count devices with consecutive
    /// 20-digit IDs from this one, all with the one password (load runs).
    #[arg(long, value_name = "ID", requires = "devices_count")]
    pub devices_from: Option<String>,
    /// gb28181-platform: how many devices --devices-from provisions.
    #[arg(long, value_name = "N", requires = "devices_from")]
    pub devices_count: Option<u64>,
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
    /// gb28181-platform: serve the lab control API (HTTP, JSON) here, e.g. 127.0.0.1:8080.
    #[arg(long)]
    pub control: Option<SocketAddr>,
    /// Log every event, keepalives included.
    #[arg(long, short = 'v')]
    pub verbose: bool,
    /// gb28181-platform: offer SHA-256 instead of MD5.
    #[arg(long)]
    pub sha256: bool,
    /// gb28181-platform: offer qop=auth.
    #[arg(long)]
    pub qop: bool,
    /// A peer setting, as under a suite's `peer:` (repeatable), e.g.
    /// `--set upstream=ID@IP:PORT`, `--set keepalive_interval=30` or
    /// `--set device=ID` (the password comes from --password-env or
    /// --password-file; password settings are refused here).
    #[arg(long = "set", value_parser = parse_kv)]
    pub settings: Vec<(String, String)>,
    /// Write every packet the peer sends and receives to this pcap file as
    /// it goes; the evidence kept in memory stays bounded either way.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

/// How to pass a secret instead of on the command line.
const SECRET_HOWTO: &str =
    "secrets do not go on the command line (other users can read process arguments): \
put it in a file and pass --password-file FILE, or in an environment variable \
(CAMCERT_PASSWORD for `serve`, or --var NAME='${env:VAR}' for `run`)";

/// A `--var` value that is only a reference to an environment variable
/// (`${env:NAME}`, no default) carries no secret itself.
fn is_env_reference(v: &str) -> bool {
    v.strip_prefix("${env:")
        .and_then(|r| r.strip_suffix('}'))
        .is_some_and(|name| {
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

/// Refuse `--var` values that would carry a secret in the process arguments.
pub fn refuse_secret_vars(vars: &[(String, String)]) -> Result<(), String> {
    for (k, v) in vars {
        if crate::suite::vars::looks_secret(k) && !is_env_reference(v) {
            return Err(format!("--var {k}=...: {SECRET_HOWTO}"));
        }
    }
    Ok(())
}

/// Refuse `--set` settings that would carry a secret: a password-like key,
/// or `device=ID:PASSWORD`.
pub fn refuse_secret_settings(settings: &[(String, String)]) -> Result<(), String> {
    for (k, v) in settings {
        if crate::suite::vars::looks_secret(k) {
            return Err(format!("--set {k}=...: {SECRET_HOWTO}"));
        }
        if k == "device" && v.contains(':') {
            return Err(format!(
                "--set device=ID:PASSWORD: {SECRET_HOWTO}; use --set device=ID"
            ));
        }
    }
    Ok(())
}

/// The first line of a password file, without its line ending.
pub fn read_password_file(path: &std::path::Path) -> Result<String, String> {
    let meta =
        std::fs::metadata(path).map_err(|e| format!("--password-file {}: {e}", path.display()))?;
    if meta.len() > 64 * 1024 {
        return Err(format!(
            "--password-file {}: {} bytes is too long for a password file",
            path.display(),
            meta.len()
        ));
    }
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("--password-file {}: {e}", path.display()))?;
    let line = text.lines().next().unwrap_or("");
    if line.is_empty() {
        return Err(format!(
            "--password-file {}: the first line is empty",
            path.display()
        ));
    }
    Ok(line.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> Vec<(String, String)> {
        vec![(k.to_string(), v.to_string())]
    }

    #[test]
    fn secrets_in_flags_are_refused_with_the_way_to_pass_them() {
        for name in [
            "password",
            "upstream_password",
            "API_KEY",
            "token",
            "secret",
        ] {
            let e = refuse_secret_vars(&kv(name, "hunter22")).unwrap_err();
            assert!(e.contains(name) && e.contains("--password-file"), "{e}");
            assert!(!e.contains("hunter22"), "{e}");
        }
        assert!(refuse_secret_vars(&kv("device_id", "34020000001320000001")).is_ok());
        assert!(refuse_secret_vars(&kv("password", "${env:MY_PW}")).is_ok());
        assert!(refuse_secret_vars(&kv("password", "${env:MY_PW:-hunter22}")).is_err());
        assert!(refuse_secret_vars(&kv("password", "x${env:MY_PW}")).is_err());

        let e = refuse_secret_settings(&kv("device", "34020000001320000001:hunter22")).unwrap_err();
        assert!(
            e.contains("--set device=ID") && !e.contains("hunter22"),
            "{e}"
        );
        assert!(refuse_secret_settings(&kv("upstream_password", "x")).is_err());
        assert!(refuse_secret_settings(&kv("device", "34020000001320000001")).is_ok());
        assert!(refuse_secret_settings(&kv("keepalive_interval", "30")).is_ok());
    }

    #[test]
    fn password_file_gives_its_first_line() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pw");
        std::fs::write(&p, "s3cret!\r\nignored\n").unwrap();
        assert_eq!(read_password_file(&p).unwrap(), "s3cret!");
        std::fs::write(&p, "\n").unwrap();
        assert!(read_password_file(&p).unwrap_err().contains("empty"));
        assert!(read_password_file(&d.path().join("missing")).is_err());
    }
}
