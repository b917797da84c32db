//! The suite file format: serde structs that YAML maps onto. The loader
//! ([`super::load`]) checks them and resolves them into a runnable
//! [`super::Suite`]. `camcert schema` prints the JSON Schema generated from
//! these types; `suites/schema.json` is that output.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_saphyr::Spanned;

use crate::proto::Transport;

/// A duration written as `500ms`, `10s`, `2m`, `1h`, or a number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dur(pub Duration);

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        if ms % 1000 == 0 {
            write!(f, "{}s", ms / 1000)
        } else {
            write!(f, "{ms}ms")
        }
    }
}

impl Dur {
    pub fn parse(s: &str) -> Result<Dur, String> {
        let s = s.trim();
        let split = s
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(s.len());
        let (num, unit) = s.split_at(split);
        let n: f64 = num
            .parse()
            .map_err(|_| format!("{s:?} is not a duration like 500ms, 10s, 2m or 1h"))?;
        let secs = match unit.trim() {
            "ms" => n / 1000.0,
            "" | "s" => n,
            "m" | "min" => n * 60.0,
            "h" => n * 3600.0,
            u => return Err(format!("{s:?}: unknown unit {u:?} (use ms, s, m or h)")),
        };
        Ok(Dur(Duration::from_secs_f64(secs)))
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= 0.0 => Ok(Dur(Duration::from_secs_f64(n))),
            Raw::N(n) => Err(serde::de::Error::custom(format!("negative duration {n}"))),
            Raw::S(s) => Dur::parse(&s).map_err(serde::de::Error::custom),
        }
    }
}

impl Serialize for Dur {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl JsonSchema for Dur {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration: `500ms`, `10s`, `2m`, `1h`, or a number of seconds.",
            "anyOf": [
                {"type": "string", "pattern": "^[0-9.]+\\s*(ms|s|m|min|h)?$"},
                {"type": "number", "minimum": 0}
            ]
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Gb28181,
    /// Hemu HEDGW device gateway (protobuf over TLS 1.2); see the README,
    /// "Hemu HEDGW". `platform`: camcert is the gateway, the DUT a TD;
    /// `device`: camcert is the TD, the DUT a gateway.
    Hedgw,
    /// Hemu OpenAPI (HTTPS, WSSE, signed JSON); see the README, "Hemu
    /// OpenAPI". `platform`: camcert is the OpenAPI platform, the DUT a
    /// TD; `device`: camcert is the TD, the DUT the platform.
    Openapi,
}

/// The role camcert plays. The device under test plays the other one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// camcert is the platform (SIP server); the DUT is a camera.
    Platform,
    /// camcert is the device; the DUT is a platform or gateway.
    Device,
    /// camcert is an upper platform (SIP server); the DUT is a lower
    /// platform that registers to it (platform cascade).
    #[serde(rename = "upper-platform")]
    UpperPlatform,
}

/// Requirement levels, strongest first.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Mandatory,
    Conditional,
    Optional,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Mandatory => "mandatory",
            Level::Conditional => "conditional",
            Level::Optional => "optional",
        })
    }
}

/// What a case needs from the session with the device under test. The
/// runner keeps one session per suite and transport and reaches each state
/// the least disruptive way the protocol allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Needs {
    /// Nothing: the case's steps start from whatever state the session is in.
    None,
    /// A registered device: the session's registration is reused (adopted
    /// from a refresh or keepalive when the device registered before the run).
    Registered,
    /// The device is about to register afresh: its next REGISTER goes to the
    /// case's first step. The runner provokes it (refusing a keepalive),
    /// falling back to an operator action.
    FreshRegistration,
    /// As `fresh-registration`, but the runner may reboot the device
    /// (DeviceControl TeleBoot) to provoke the registration.
    Reboot,
}

impl Needs {
    /// Whether a case with these needs disturbs the session (a case that
    /// provokes a registration runs after the cases that reuse it).
    pub fn disruptive(self) -> bool {
        matches!(self, Needs::FreshRegistration | Needs::Reboot)
    }
}

/// A suite file.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SuiteInput {
    /// Suite name, shown in reports.
    pub suite: String,
    #[serde(default)]
    pub description: Option<String>,
    pub protocol: Protocol,
    pub role: Role,
    /// Transports every case runs over, one run per transport.
    #[serde(default = "default_transports")]
    pub transports: Vec<Transport>,
    /// Variables (`${name}` in any string); `--var` overrides them.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Settings for the built-in reference peer (ignored with `--target`),
    /// e.g. `keepalive_interval: 60`; see the README for the keys.
    #[serde(default)]
    pub peer: BTreeMap<String, String>,
    /// Names of variables whose values are masked in logs and reports
    /// (variables named like password, secret, key or token are masked anyway).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// Default wait for `expect` steps (protocol time).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Default `needs` of the suite's cases (`registered` where camcert is
    /// the platform or the device, `none` where it is an upper platform).
    #[serde(default)]
    pub needs: Option<Needs>,
    /// Messages the DUT may send at any time (keepalives, refreshes): while a
    /// step waits for something else, a message matching a rule here is
    /// answered as the rule says and does not fail the step.
    #[serde(default)]
    pub background: Vec<BackgroundInput>,
    /// Finding codes that do not fail a case (`sip.via-transport`; a
    /// trailing `*` is a prefix, `"*"` alone makes every protocol finding
    /// a warning). Every message the DUT sends is judged against the
    /// protocol rules, and an error-severity finding fails the step it
    /// arrived in unless listed here or the step has `allow_findings: true`.
    #[serde(default)]
    pub allow_findings: Vec<String>,
    #[schemars(with = "Vec<CaseInput>")]
    pub cases: Vec<Spanned<CaseInput>>,
}

fn default_transports() -> Vec<Transport> {
    vec![Transport::Udp]
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseInput {
    /// Unique case ID, e.g. `CAM-REG-001`.
    pub id: String,
    pub title: String,
    /// Requirement IDs from the catalog (`requirements.yaml`) this case verifies.
    pub requirements: Vec<String>,
    /// Defaults to the weakest level of the case's requirements: a case
    /// that also exercises a conditional feature (talk over TCP) is only as
    /// binding as that feature.
    #[serde(default)]
    pub level: Option<Level>,
    /// The state of the session with the device under test the case starts
    /// from. Defaults to the suite's `needs`.
    #[serde(default)]
    pub needs: Option<Needs>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Spec clause; defaults to the first requirement's clause.
    #[serde(default)]
    pub clause: Option<String>,
    /// Case-local variables, overriding the suite's.
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    /// Restrict the case to these transports.
    #[serde(default)]
    pub transports: Option<Vec<Transport>>,
    /// Built-in peer settings for this case, over the suite's `peer`.
    #[serde(default)]
    pub peer: BTreeMap<String, String>,
    #[schemars(with = "Vec<StepInput>")]
    pub steps: Vec<Spanned<StepInput>>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackgroundInput {
    /// Method of the request this rule covers.
    pub request: String,
    /// Further conditions on the request's fields.
    #[serde(default)]
    pub when: IndexMap<String, MatcherInput>,
    /// Status to answer with; no answer when absent.
    #[serde(default)]
    pub reply: Option<u16>,
}

/// One step. Each step is a map with exactly one of these keys.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum StepInput {
    /// Send a new request to the DUT.
    Send(SendInput),
    /// Answer the last request received from the DUT.
    Reply(ReplyInput),
    /// Wait for a message from the DUT and check it.
    Expect(ExpectInput),
    /// Do nothing for a while (protocol time).
    Wait(Dur),
    /// Ask the DUT to act (the built-in peer does it; a real DUT's operator
    /// is shown `note`).
    Trigger(TriggerInput),
    /// Collect a MANSCDP answer that spans several MESSAGEs (Catalog,
    /// RecordInfo) until SumNum items arrived, answering each.
    Collect(CollectInput),
    /// Place a media session: an INVITE with a GB/T 28181 SDP offer, camcert
    /// receiving. Waits until the session is established (ACK sent) or refused.
    Invite(InviteInput),
    /// Wait for the DUT's INVITE and answer it; camcert sends the sample video
    /// once the ACK arrives.
    Answer(AnswerInput),
    /// Watch the media of the running session (wall-clock time: media runs in
    /// real time whatever `--time-scale` says).
    Media(MediaInput),
    /// Send a MANSRTSP request (录像回放 control) in an INFO and check its answer.
    Control(ControlInput),
    /// End the running session with BYE and check the answer.
    Hangup(HangupInput),
    /// Wait for something of the running session: its end, the DUT's
    /// MediaStatus notification, a MANSRTSP request from the DUT.
    SessionEvent(SessionEventInput),
    /// Once the session's media is over, check the stream received (or sent).
    Stream(StreamInput),
    /// Send a seeded stream of unusual and broken requests to the DUT,
    /// probing after each batch that it still answers; on a failure, shrink
    /// the inputs to a reproducer suite.
    Fuzz(FuzzInput),
    /// HEDGW, camcert as the TD: open a connection to the gateway (TLS 1.2
    /// by default) and log in, or check that it refuses one.
    Connect(ConnectInput),
    /// Play one side of a captured session (pcap, pcapng) against the DUT
    /// and compare each of its answers with the captured one.
    Replay(ReplayInput),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectInput {
    /// `tls` (default), `tcp` (plain TCP, a framed DevLoginReq in the
    /// clear) or `tls1.1` (a ClientHello offering TLS 1.1 only).
    #[serde(default)]
    pub transport: Option<String>,
    /// `accepted` (default) or `refused`: the gateway must close or alert
    /// without answering.
    #[serde(default)]
    pub expect: Option<String>,
    /// Send the TD's DevLoginReq once connected (default true); `false`
    /// leaves the login to a `send` step.
    #[serde(default)]
    pub login: Option<bool>,
    #[serde(default)]
    pub timeout: Option<Dur>,
}

/// The side of a capture a `replay` step plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReplaySideInput {
    /// The device side (the sender of the first REGISTER), against a
    /// platform under test: the suite's role is `device`.
    Device,
    /// The platform side, for a camera under test (the suite's role is
    /// `platform`): the case's first REGISTER from the camera starts it,
    /// so the case says `needs: fresh-registration`.
    Platform,
}

/// The `replay` step: `camcert replay` inside a case.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayInput {
    /// The capture, relative to the folder camcert runs in (variables expanded).
    pub file: String,
    /// The side camcert plays.
    #[serde(rename = "as")]
    pub side: ReplaySideInput,
    /// Play only the messages captured within this long of the first
    /// REGISTER (e.g. the registration and keepalives before a query the
    /// live peer would not send unasked).
    #[serde(default)]
    pub until: Option<Dur>,
    /// Password for the digest responses (default: the variable `password`).
    #[serde(default)]
    pub password: Option<String>,
    /// How long to wait for each answer (protocol time, default 10 s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Accept the protocol findings on the DUT's messages during the step.
    #[serde(default)]
    pub allow_findings: bool,
}

/// A number written as such or as a string with variables.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum NumberOrVar {
    Number(u64),
    Text(String),
}

/// The `fuzz` step, against a camera (role platform) or a platform (role
/// device).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FuzzInput {
    /// How many inputs to send (at most 100,000): a number, or a string
    /// with variables such as `"${fuzz_count}"`.
    pub count: NumberOrVar,
    /// Seed of the inputs (a number; variables allowed). Default:
    /// `${fuzz_seed}` if set, else 1. The same seed gives the same inputs.
    #[serde(default)]
    pub seed: Option<String>,
    /// Inputs between two liveness probes (default 10).
    #[serde(default)]
    pub batch: Option<u64>,
    /// Inputs sent per second of real time (default 50).
    #[serde(default)]
    pub rate: Option<f64>,
    /// `unusual` (valid requests with unusual values) and/or `mutate`
    /// (valid requests broken at one layer); default both.
    #[serde(default)]
    pub generators: Vec<String>,
    /// Layers the inputs work on: `sip`, `manscdp`, `ptz`, `sdp`; default all.
    #[serde(default)]
    pub layers: Vec<String>,
    /// How long the probe's answers may take, real time (default 5 s).
    #[serde(default)]
    pub probe_timeout: Option<Dur>,
    /// Shrink a failure to a minimal reproducer (default true). Needs the
    /// DUT reset between attempts: the reference camera reboots on its
    /// own; a real one through `--operator-hook` (action `reboot`).
    #[serde(default)]
    pub shrink: Option<bool>,
    /// Most attempts shrinking may make (default 40).
    #[serde(default)]
    pub shrink_attempts: Option<u32>,
}

/// Media transport of a session, named from the media sender's side as the
/// spec does: `tcp-active` means the device (sender) connects, `tcp-passive`
/// means the platform (receiver) connects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum MediaMode {
    Udp,
    TcpActive,
    TcpPassive,
}

/// Kinds of media session (`s=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionKindInput {
    /// 实时预览, `s=Play`.
    Play,
    /// 录像回放, `s=Playback`.
    Playback,
    /// 文件下载, `s=Download`.
    Download,
    /// 语音对讲, `s=Talk` (audio, both ways).
    Talk,
    /// 语音广播: the device's audio INVITE to the voice source (`channel` is
    /// the SourceID), `s=Play`, audio PCMA/PS recvonly.
    Broadcast,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteInput {
    /// `play` (default), `playback`, `download` or `talk`.
    #[serde(default)]
    pub session: Option<SessionKindInput>,
    /// `udp` (default), `tcp-active` or `tcp-passive`.
    #[serde(default)]
    pub media: Option<MediaMode>,
    /// The channel asked for (Request-URI user); defaults to the remote ID.
    #[serde(default)]
    pub channel: Option<String>,
    /// History sessions: start of the time range (Unix seconds).
    #[serde(default)]
    pub start: Option<String>,
    /// History sessions: end of the time range (Unix seconds).
    #[serde(default)]
    pub end: Option<String>,
    /// Download: `a=downloadspeed`.
    #[serde(default)]
    pub speed: Option<u32>,
    /// `y=` to offer (10 digits); generated when absent.
    #[serde(default)]
    pub ssrc: Option<String>,
    /// Final status expected (default 200). Any other status than a 2xx
    /// expects the INVITE to be refused with it.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Field checks on the final response (`sdp.y`, `sdp.a.setup`, ...).
    #[serde(default, rename = "match")]
    pub matches: IndexMap<String, MatcherInput>,
    /// Accept answers the session rules find fault with (they become findings).
    #[serde(default)]
    pub allow_findings: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnswerInput {
    /// Status to answer with (default 200, streaming once the ACK arrives);
    /// another status refuses the INVITE.
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Field checks on the INVITE (`sdp.s`, `sdp.y`, `uri.user`, ...).
    #[serde(default, rename = "match")]
    pub matches: IndexMap<String, MatcherInput>,
    /// Accept offers the session rules find fault with (they become findings).
    #[serde(default)]
    pub allow_findings: bool,
    /// Robustness: damage a share of the RTP packets camcert streams.
    #[serde(default)]
    pub damage: Option<DamageInput>,
}

/// Seeded damage to the media camcert sends: bit flips, truncation,
/// sequence and timestamp jumps, wrong payload types, duplicated and
/// dropped packets, a broken PSM length.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DamageInput {
    /// Share of packets damaged, 0 to 1.
    pub rate: f64,
    /// Seed (a number; variables allowed). Default `${fuzz_seed}`, else 1.
    #[serde(default)]
    pub seed: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaInput {
    /// Wait until this many more RTP frames have arrived (or, when camcert
    /// sends, have been sent).
    #[serde(default)]
    pub frames: Option<u64>,
    /// Wait until this many more RTP packets have arrived (or been sent).
    #[serde(default)]
    pub packets: Option<u64>,
    /// Pass only if no packet arrives for this long (after `settle`).
    #[serde(default)]
    pub quiet: Option<Dur>,
    /// Packets still in flight are ignored for this long before `quiet`
    /// starts counting (default 200ms).
    #[serde(default)]
    pub settle: Option<Dur>,
    /// Give up waiting for `frames`/`packets` after this long (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Count the other direction: what camcert sends in a session it placed
    /// (talk), or receives in one it answered.
    #[serde(default)]
    pub other_direction: bool,
    /// Stop sending video in the running session without ending it (no BYE; a TCP
    /// connection stays open), to see the DUT notice the stream is gone.
    #[serde(default)]
    pub stop: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlInput {
    /// `PLAY`, `PAUSE` or `TEARDOWN`.
    pub method: String,
    /// PLAY: `Scale`.
    #[serde(default)]
    pub scale: Option<f64>,
    /// PLAY: `Range` start in seconds from the start of the recording, or
    /// `now` to resume.
    #[serde(default)]
    pub range: Option<String>,
    /// Status expected for the INFO (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub timeout: Option<Dur>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HangupInput {
    /// Status expected for the BYE (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub timeout: Option<Dur>,
}

/// Events of a session a step can wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionEventKind {
    /// The session ended (see `reason`).
    Ended,
    /// The DUT sent MediaStatus (see `notify_type`), answered 200.
    MediaStatus,
    /// The DUT sent a MANSRTSP request in an INFO (see `method`), answered 200.
    Control,
    /// The DUT answered camcert's MediaStatus notification (see `status`,
    /// default 200).
    MediaStatusAnswered,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionEventInput {
    pub event: SessionEventKind,
    /// `ended`: why, e.g. `bye_received`, `bye_sent`, `end_of_file`,
    /// `media_timeout`, `no_ack`.
    #[serde(default)]
    pub reason: Option<String>,
    /// `media_status`: the NotifyType (121: end of file).
    #[serde(default)]
    pub notify_type: Option<u32>,
    /// `control`: the MANSRTSP method.
    #[serde(default)]
    pub method: Option<String>,
    /// `media_status_answered`: the status expected (default 200).
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Accept what the session rules find fault with in the messages that
    /// brought the event.
    #[serde(default)]
    pub allow_findings: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StreamInput {
    /// How long to wait for the session's media to finish (default 10s).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Validator finding codes to tolerate (`rtp.packet_loss`, ...); any other
    /// finding of error severity fails the step.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Field checks on the stream: `frames`, `packets`, `video_frames`,
    /// `key_frames`, `ssrc`, `lost_packets`, `loss_ratio`, `jitter_ms`,
    /// `frame_rate`, `bitrate_kbps`, `first_key_frame_ms`, `psm_count`,
    /// `video_stream_type`, `clock_hz`, `findings`, `packets_after_bye`;
    /// `sent.frames`, `sent.packets`, `sent.key_frames` when camcert sent;
    /// for G.711 audio `audio.packets`, `audio.ssrc`, `audio.payload_type`,
    /// `audio.lost_packets`, `audio.timestamp_step`, `audio.clock_hz`,
    /// `audio.findings`, `audio.packets_after_bye`, `audio_sent.packets`,
    /// `audio_sent.samples`.
    #[serde(default, rename = "match")]
    pub matches: IndexMap<String, MatcherInput>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CollectInput {
    /// `Catalog` or `RecordInfo`.
    pub cmd_type: String,
    /// SN of the query being answered (defaults to the SN of the last MANSCDP request sent).
    #[serde(default)]
    pub sn: Option<String>,
    /// Status each part is answered with (default 200).
    #[serde(default)]
    pub reply: Option<u16>,
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Checks on the collected answer: `items` (count), `sum_num`, `messages`,
    /// `item[N].FIELD`, and `item[*].FIELD` (every item).
    #[serde(default, rename = "match")]
    pub matches: IndexMap<String, MatcherInput>,
    /// Accept paging mismatches (Num vs items, SumNum changes, duplicates,
    /// SumNum never reached before the timeout); they become findings.
    #[serde(default)]
    pub allow_findings: bool,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SendInput {
    /// Method, e.g. `REGISTER` or `MESSAGE`.
    #[serde(default)]
    pub request: Option<String>,
    /// Request-URI; defaults to `sip:<remote ID>@<target>`.
    #[serde(default)]
    pub uri: Option<String>,
    /// Headers to add or replace (in this order), after the defaults.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Default headers to leave out.
    #[serde(default)]
    pub remove_headers: Vec<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Character set the body is written in: `UTF-8` (default) or `GB2312`,
    /// `GBK`, `GB18030`.
    #[serde(default)]
    pub encoding: Option<String>,
    /// Force this Content-Length instead of the body's length.
    #[serde(default)]
    pub content_length: Option<u64>,
    /// Answer the last challenge received with digest credentials.
    #[serde(default)]
    pub authorize: Option<AuthorizeInput>,
    /// Send these bytes as they are (variables substituted, line ends made
    /// CRLF); every other field is ignored.
    #[serde(default)]
    pub raw: Option<String>,
    /// Send these bytes, given in base64, exactly as they are (no
    /// variables, no line-end changes); every other field is ignored.
    #[serde(default)]
    pub raw_base64: Option<String>,
    /// Send inside the dialog the last request received opened (a NOTIFY
    /// for a SUBSCRIBE): its Call-ID, From and To swapped with this side's
    /// tag, and its Contact as Request-URI.
    #[serde(default)]
    pub dialog: bool,
    /// HEDGW: the message type to send (`DevAppCmd`, `PING`, ...), built
    /// from a template and `fields`. With `raw`, `raw` is the hex of the
    /// serialized message instead, framed as it is.
    #[serde(default)]
    pub message: Option<String>,
    /// HEDGW: field values over the template, by path
    /// (`dev_app_cmd.type: "33"`, `dev_app_cmd.msg: '{...}'`).
    #[serde(default)]
    pub fields: IndexMap<String, String>,
    /// OpenAPI: the credentials: `valid` (default), `none`, `stale`
    /// (Created 6 minutes old), `future` (6 minutes ahead), `bad-digest`,
    /// `reuse-nonce` (the last request's nonce, a fresh Created) or
    /// `replay` (the last request again, byte for byte).
    #[serde(default)]
    pub auth: Option<String>,
    /// OpenAPI: the signature: `valid` (default), `wrong-order`, `bad`
    /// or `none`.
    #[serde(default)]
    pub signature: Option<String>,
    /// OpenAPI: this `jsonObject` text instead of the message built from
    /// `message` and `fields` (malformed JSON, unknown types).
    #[serde(default)]
    pub json: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeInput {
    /// Defaults to the local ID (a GB device uses its device ID).
    #[serde(default)]
    pub username: Option<String>,
    pub password: String,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyInput {
    pub status: u16,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    #[serde(default)]
    pub remove_headers: Vec<String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Character set of `body` (see `send.encoding`).
    #[serde(default)]
    pub encoding: Option<String>,
    /// Add a `WWW-Authenticate: Digest` challenge.
    #[serde(default)]
    pub challenge: Option<ChallengeInput>,
    /// Add a GB/T 28181 `Date:` header with the current time (§校时).
    #[serde(default)]
    pub date: bool,
    #[serde(default)]
    pub raw: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChallengeInput {
    pub realm: String,
    /// `MD5` (default) or `SHA-256`.
    #[serde(default)]
    pub algorithm: Option<String>,
    /// Offer `qop="auth"`.
    #[serde(default)]
    pub qop: bool,
    /// Defaults to a fresh random nonce.
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub opaque: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExpectInput {
    /// Wait for a request with this method.
    #[serde(default)]
    pub request: Option<String>,
    /// Wait for a response with this status code (to the last request sent).
    #[serde(default)]
    pub response: Option<u16>,
    /// Conditions that pick the message out of others of the same kind; a
    /// message failing them is skipped if a `background` rule covers it.
    /// Without `request` or `response`, `when` alone says what to wait for
    /// (e.g. `status: { min: 400 }` for any refusal of the last request).
    #[serde(default)]
    pub when: IndexMap<String, MatcherInput>,
    /// Answer the request with this status as soon as it is picked.
    #[serde(default)]
    pub reply: Option<u16>,
    /// Give up after this long (protocol time; at least 2 s of real time,
    /// 0.5 s for `absent`).
    #[serde(default)]
    pub timeout: Option<Dur>,
    /// Field checks: `field path: matcher`.
    #[serde(default, rename = "match")]
    pub matches: IndexMap<String, MatcherInput>,
    /// Protocol-aware checks.
    #[serde(default)]
    pub check: Vec<CheckInput>,
    /// Store field values in variables: `name: field path`.
    #[serde(default)]
    pub capture: IndexMap<String, String>,
    /// When the message must arrive, measured from the end of the previous step.
    #[serde(default)]
    pub after: Option<DelayInput>,
    /// Pass when no such message arrives before the timeout.
    #[serde(default)]
    pub absent: bool,
    /// Accept the protocol findings on every message that arrives during
    /// the step, such as a message that breaks SIP framing rules (an
    /// error-severity finding fails the step otherwise).
    #[serde(default)]
    pub allow_findings: bool,
    /// HEDGW: wait for a message of this type (`DevLoginReq`, `PING`,
    /// `DevIpCamCmd`, ...).
    #[serde(default)]
    pub message: Option<String>,
    /// HEDGW: wait for the DUT to close the connection (what arrives
    /// meanwhile is judged as usual).
    #[serde(default)]
    pub closed: bool,
    /// Compare the message taken with a golden file (its canonical text,
    /// volatile fields redacted); `camcert run --update-golden` writes the
    /// file instead.
    #[serde(default)]
    pub golden: Option<GoldenInput>,
}

/// A golden file for the message an `expect` step takes.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenInput {
    /// The file, relative to the folder camcert runs in (variables
    /// expanded: `golden/suites/catalog-${transport}.txt`).
    pub file: String,
    /// Fields whose values change from run to run, replaced by `<FIELD>`
    /// where they occur (`call_id`, `from.tag`, `via.branch`, `xml.SN`,
    /// `cseq.seq`, `header.User-Agent`, `sdp.y`, ...). The addresses of
    /// camcert and the device under test are always replaced (`<camcert>`,
    /// `<dut>`).
    #[serde(default)]
    pub redact: Vec<String>,
}

/// Every condition given must hold.
#[derive(Debug, Default, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MatcherInput {
    #[serde(default)]
    pub equals: Option<String>,
    #[serde(default)]
    pub not_equals: Option<String>,
    /// Case-insensitive equality.
    #[serde(default)]
    pub equals_ignore_case: Option<String>,
    #[serde(default)]
    pub contains: Option<String>,
    #[serde(default)]
    pub not_contains: Option<String>,
    /// Regular expression that must match somewhere in the value (anchor it with ^…$).
    #[serde(default)]
    pub regex: Option<String>,
    /// Numeric lower bound (inclusive).
    #[serde(default)]
    pub min: Option<f64>,
    /// Numeric upper bound (inclusive).
    #[serde(default)]
    pub max: Option<f64>,
    /// The value is a number larger than this one (variables allowed,
    /// e.g. `"${previous_sn}"`).
    #[serde(default)]
    pub greater_than: Option<String>,
    /// The value is a number smaller than this one (variables allowed).
    #[serde(default)]
    pub less_than: Option<String>,
    /// The value equals the value of this other field of the same message
    /// (e.g. `xml_count.PresetList/Item` for `xml.PresetList@Num`).
    #[serde(default)]
    pub equals_field: Option<String>,
    /// `true`: the field must exist; `false`: it must not.
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub one_of: Option<Vec<String>>,
    /// The value is a 20-digit GB/T 28181 code of this kind.
    #[serde(default)]
    pub gb_id: Option<GbIdKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GbIdKind {
    Any,
    Device,
    Platform,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum CheckInput {
    /// The Authorization digest response is right for this password.
    Digest(DigestCheckInput),
    /// The message carries a GB/T 28181 `Date:` (§校时).
    GbDate(GbDateCheckInput),
    /// The body is MANSCDP: right Content-Type, decodable XML, required
    /// elements present (findings of error severity fail the check).
    Manscdp(ManscdpCheckInput),
    /// The PTZCmd element holds a valid 8-byte command (lead byte, check nibble, checksum).
    Ptzcmd(PtzCheckInput),
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ManscdpCheckInput {
    /// Fail on warnings too (e.g. `application/manscdp+xml` in lower case).
    #[serde(default)]
    pub strict: bool,
    /// The charset the body must be in (`GB2312`, `UTF-8`, ...).
    #[serde(default)]
    pub charset: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PtzCheckInput {
    /// Field holding the command (default `xml.PTZCmd`).
    #[serde(default)]
    pub field: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DigestCheckInput {
    pub password: String,
    /// The username the credentials must carry.
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GbDateCheckInput {
    /// Require milliseconds (`yyyy-MM-ddTHH:mm:ss.SSS`); otherwise their
    /// absence is only reported as a finding.
    #[serde(default)]
    pub strict: bool,
    /// Largest allowed difference from the harness clock.
    #[serde(default)]
    pub max_skew: Option<Dur>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelayInput {
    /// At least this long (a duration, or one written with suite variables
    /// such as `"${register_retry_interval}s"`, expanded when the step runs).
    #[serde(default)]
    pub min: Option<DurVar>,
    /// At most this long (as `min`).
    #[serde(default)]
    pub max: Option<DurVar>,
    /// A window around an interval, e.g. `around: "${keepalive_interval}s"`,
    /// so `--var` sets it to the device's configuration. With `min`/`max`,
    /// the tighter bound wins.
    #[serde(default)]
    pub around: Option<DurVar>,
    /// How far from `around` the message may arrive: a duration (`10s`) or
    /// a share of the interval (`20%`, the default).
    #[serde(default)]
    pub tolerance: Option<String>,
}

/// A duration, or text naming suite variables that becomes one when the
/// step runs (`"${keepalive_interval}s"`).
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum DurVar {
    Fixed(Dur),
    Var(String),
}

impl<'de> Deserialize<'de> for DurVar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(f64),
            S(String),
        }
        match Raw::deserialize(d)? {
            Raw::N(n) if n >= 0.0 => Ok(DurVar::Fixed(Dur(Duration::from_secs_f64(n)))),
            Raw::N(n) => Err(serde::de::Error::custom(format!("negative duration {n}"))),
            Raw::S(s) if s.contains("${") => Ok(DurVar::Var(s)),
            Raw::S(s) => Dur::parse(&s)
                .map(DurVar::Fixed)
                .map_err(serde::de::Error::custom),
        }
    }
}

impl DurVar {
    /// The duration, expanding variables with `x`.
    pub fn get(
        &self,
        what: &str,
        x: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<Dur, String> {
        match self {
            DurVar::Fixed(d) => Ok(*d),
            DurVar::Var(s) => {
                let v = x(s)?;
                Dur::parse(&v).map_err(|e| format!("{what} {s:?} became {v:?}: {e}"))
            }
        }
    }

    /// The duration when no variable is involved.
    pub fn fixed(&self) -> Option<Dur> {
        match self {
            DurVar::Fixed(d) => Some(*d),
            DurVar::Var(_) => None,
        }
    }
}

impl DelayInput {
    /// The `[min, max]` window the step allows, variables expanded with `x`.
    pub fn window(
        &self,
        x: &dyn Fn(&str) -> Result<String, String>,
    ) -> Result<(Option<Dur>, Option<Dur>), String> {
        let mut min = self
            .min
            .as_ref()
            .map(|d| d.get("after.min", x))
            .transpose()?;
        let mut max = self
            .max
            .as_ref()
            .map(|d| d.get("after.max", x))
            .transpose()?;
        if let Some(a) = &self.around {
            let a = a.get("after.around", x)?.0;
            let t = match &self.tolerance {
                Some(t) => x(t)?,
                None => "20%".to_string(),
            };
            let t = t.trim();
            let tol = if let Some(p) = t.strip_suffix('%') {
                let p: f64 = p
                    .trim()
                    .parse()
                    .ok()
                    .filter(|p: &f64| (0.0..=100.0).contains(p))
                    .ok_or_else(|| {
                        format!("after.tolerance: {t:?} is not a percentage from 0% to 100%")
                    })?;
                a.mul_f64(p / 100.0)
            } else {
                Dur::parse(t)
                    .map_err(|e| format!("after.tolerance: {e}"))?
                    .0
            };
            let lo = Dur(a.saturating_sub(tol));
            let hi = Dur(a + tol);
            min = Some(min.map_or(lo, |m| m.max(lo)));
            max = Some(max.map_or(hi, |m| m.min(hi)));
        }
        Ok((min, max))
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerInput {
    /// What the DUT should do, e.g. `unregister`, `register`, `alarm`. The
    /// built-in peers list the actions they know in `camcert serve --help`
    /// and in the README.
    pub action: String,
    /// Action parameters (variables are expanded).
    #[serde(default)]
    pub args: BTreeMap<String, String>,
    /// What a person operating a real DUT should do now.
    #[serde(default)]
    pub note: Option<String>,
}

/// `requirements.yaml`: the requirement catalog of a suite folder.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogInput {
    pub spec: String,
    #[schemars(with = "Vec<RequirementInput>")]
    pub requirements: Vec<Spanned<RequirementInput>>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequirementInput {
    pub id: String,
    pub clause: String,
    pub level: Level,
    /// One sentence: what must hold.
    pub text: String,
}

#[cfg(test)]
mod delay_tests {
    use super::*;

    fn delay(yaml: &str) -> DelayInput {
        serde_saphyr::from_str(yaml).unwrap()
    }

    fn vars(s: &str) -> Result<String, String> {
        Ok(s.replace("${keepalive_interval}", "10")
            .replace("${retry}", "60"))
    }

    fn secs(d: Option<Dur>) -> Option<f64> {
        d.map(|d| d.0.as_secs_f64())
    }

    #[test]
    fn around_a_variable_gives_a_window_of_the_device_s_interval() {
        let (min, max) = delay("around: \"${keepalive_interval}s\"")
            .window(&vars)
            .unwrap();
        assert_eq!((secs(min), secs(max)), (Some(8.0), Some(12.0)));
        let (min, max) = delay("{ around: \"${keepalive_interval}s\", tolerance: 3s }")
            .window(&vars)
            .unwrap();
        assert_eq!((secs(min), secs(max)), (Some(7.0), Some(13.0)));
        // An explicit bound that is tighter wins.
        let (min, max) = delay("{ around: 10s, min: 9s }").window(&vars).unwrap();
        assert_eq!((secs(min), secs(max)), (Some(9.0), Some(12.0)));
    }

    #[test]
    fn min_and_max_take_variables_and_plain_durations() {
        let (min, max) = delay("{ min: \"${retry}s\", max: 2m }")
            .window(&vars)
            .unwrap();
        assert_eq!((secs(min), secs(max)), (Some(60.0), Some(120.0)));
    }

    #[test]
    fn bad_values_name_the_field() {
        let e = delay("min: \"${keepalive_interval}x\"")
            .window(&vars)
            .unwrap_err();
        assert!(e.contains("after.min") && e.contains("10x"), "{e}");
        let e = delay("{ around: 10s, tolerance: 150% }")
            .window(&vars)
            .unwrap_err();
        assert!(e.contains("after.tolerance"), "{e}");
        assert!(serde_saphyr::from_str::<DelayInput>("min: soon").is_err());
    }
}
