//! What a [`super::Device`] is told: identity, server, timers, the shape of
//! the simulated camera (channels, recordings, presets), and the deliberate
//! faults. Suites set these by name through [`DeviceConfig::apply_option`].

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use crate::proto::gb28181::manscdp::Charset;
use crate::proto::sdp::Setup;
use crate::proto::Transport;

macro_rules! faults {
    ($( $(#[$m:meta])* $field:ident = $name:literal, )*) => {
        /// Deliberate misbehaviour, so a test can show each platform-side
        /// check failing. Switch one on by name with [`DeviceFaults::set`].
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct DeviceFaults {
            $( $(#[$m])* pub $field: bool, )*
        }

        impl DeviceFaults {
            /// Names accepted by [`DeviceFaults::set`], for `--peer-fault`.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            /// Switch on the fault called `name`; `false` if there is none.
            pub fn set(&mut self, name: &str) -> bool {
                match name {
                    $( $name => self.$field = true, )*
                    _ => return false,
                }
                true
            }
        }
    };
}

faults! {
    // --- registration ---
    /// Answer the challenge with a digest over the wrong password.
    wrong_digest = "wrong-digest",
    /// Put a different device ID in From/To.
    wrong_device_id = "wrong-device-id",
    /// Register to a different platform ID in the Request-URI.
    wrong_platform_id = "wrong-platform-id",
    /// Never refresh the registration.
    no_refresh = "no-refresh",
    /// Retry a failed registration after 1 s instead of the configured interval.
    fast_retry = "fast-retry",
    /// Ignore a request to unregister.
    no_unregister = "no-unregister",
    /// Send a garbage datagram instead of the first REGISTER.
    garbage = "garbage",
    /// Send the first REGISTER with a Content-Length larger than its body.
    truncated = "truncated",
    /// Send the first REGISTER with bytes after the declared body.
    overlong_body = "overlong-body",
    /// Send the first REGISTER declaring a body of 2,000,000 bytes (over
    /// the 1 MiB a SIP message may have), with none following.
    oversize_content_length = "oversize-content-length",
    // --- keepalive ---
    /// Never send keepalives.
    no_keepalive = "no-keepalive",
    /// Reuse the first keepalive's SN for every keepalive.
    keepalive_same_sn = "keepalive-same-sn",
    /// Send keepalives at twice the configured interval.
    slow_keepalive = "slow-keepalive",
    /// Keep sending keepalives however many go unanswered.
    no_offline_detection = "no-offline-detection",
    /// Report Status OK without the Info list while sub-devices are faulty.
    keepalive_hide_faults = "keepalive-hide-faults",
    // --- queries ---
    /// Catalog answers claim one item more in SumNum than they carry.
    catalog_wrong_sumnum = "catalog-wrong-sumnum",
    /// The first Catalog answer message states a DeviceList Num one too high.
    catalog_wrong_num = "catalog-wrong-num",
    /// The last Catalog answer message repeats an item already sent.
    catalog_duplicate = "catalog-duplicate",
    /// Catalog items carry only DeviceID and Name.
    catalog_incomplete_items = "catalog-incomplete-items",
    /// Every Response MESSAGE carries the query's SN plus one.
    wrong_sn_echo = "wrong-sn-echo",
    /// Answer a query for a DeviceID this device does not have as if it were its own.
    answer_unknown_device = "answer-unknown-device",
    /// Accept DeviceInfo queries with 200 but never send the Response.
    no_deviceinfo = "no-deviceinfo",
    /// Leave Online out of the DeviceStatus Response.
    devicestatus_incomplete = "devicestatus-incomplete",
    /// Add a recording from before the requested window to RecordInfo answers.
    record_outside_window = "record-outside-window",
    /// State a PresetList Num one higher than the presets listed.
    preset_wrong_num = "preset-wrong-num",
    // --- control ---
    /// Act on a PTZCmd whose checksum byte is wrong.
    ptz_accept_bad_checksum = "ptz-accept-bad-checksum",
    /// Send a DeviceControl Response after a PTZ command (§无应答 forbids it).
    ptz_reply = "ptz-reply",
    /// Send no Response after RecordCmd, GuardCmd, AlarmCmd or HomePosition.
    no_control_response = "no-control-response",
    /// Accept TeleBoot but never restart.
    no_teleboot = "no-teleboot",
    /// Answer a DeviceConfig with Result OK without applying it.
    config_not_applied = "config-not-applied",
    /// Report UploadSnapShotFinished with a SessionID other than the configured one.
    snapshot_wrong_session = "snapshot-wrong-session",
    // --- notifications ---
    /// Leave AlarmPriority out of alarm notifications.
    alarm_missing_priority = "alarm-missing-priority",
    /// Do not answer the platform's Alarm Response MESSAGE.
    alarm_ignore_response = "alarm-ignore-response",
    /// Send MediaStatus with NotifyType 122 instead of 121.
    media_status_wrong_type = "media-status-wrong-type",
    /// Accept a Broadcast notify with 200 but send no Broadcast Response.
    no_broadcast_response = "no-broadcast-response",
    // --- MANSCDP quirks (every body the device's signalling sends) ---
    /// CmdType and SN as attributes of the root element instead of child elements.
    attribute_fields = "attribute-fields",
    /// Every element name in lower case.
    element_case = "element-case",
    /// No `<?xml ...?>` declaration.
    no_xml_declaration = "no-xml-declaration",
    /// Bytes in the other charset than the declaration names (UTF-8 under GB2312).
    wrong_encoding_declared = "wrong-encoding-declared",
    // --- subscriptions ---
    /// Refuse every SUBSCRIBE with 489 Bad Event.
    no_subscribe = "no-subscribe",
    /// Accept SUBSCRIBE without stating the granted Expires in the 200.
    subscribe_no_expires = "subscribe-no-expires",
    /// Confirm an unsubscribe but keep notifying.
    notify_after_unsubscribe = "notify-after-unsubscribe",
    /// Keep a subscription alive after its expiry passes unrefreshed.
    subscription_never_expires = "subscription-never-expires",
    /// Send NOTIFYs with a fresh Call-ID and tags instead of the subscription dialog's.
    notify_outside_dialog = "notify-outside-dialog",
    // --- register redirect ---
    /// Treat a 302 to REGISTER as a refusal of the configured server.
    ignore_redirect = "ignore-redirect",
    /// After the redirected-to server refuses, retry it instead of the redirect server.
    no_redirect_fallback = "no-redirect-fallback",
    // --- media sessions ---
    /// Answer an INVITE with a `y=` other than the offered one.
    wrong_ssrc = "wrong-ssrc",
    /// Send RTP with an SSRC other than the answer's `y=`.
    rtp_wrong_ssrc = "rtp-wrong-ssrc",
    /// Never write the PS program stream map.
    missing_psm = "missing-psm",
    /// Never set the RTP marker bit.
    no_marker = "no-marker",
    /// Derive RTP timestamps on a 1 kHz (millisecond) clock instead of 90 kHz.
    ms_timestamps = "ms-timestamps",
    /// Answer BYE but keep streaming for about a second afterwards.
    stream_after_bye = "stream-after-bye",
    /// Stop sending video after 40 frames (1.6 s) while the session stays up and
    /// its TCP connection open, sending no BYE: a stalled encoder.
    stream_stall = "stream-stall",
    /// Neither answer nor obey a BYE: keep streaming.
    ignore_bye = "ignore-bye",
    // --- media quirks met in the field ---
    /// Write the PS program stream map under start code 0x000001BB (the system
    /// header's) instead of 0x000001BC.
    psm_bb = "psm-bb",
    /// Frame RTP over TCP RTSP-style (`$`, channel, length; RFC 2326 §10.12)
    /// instead of RFC 4571.
    rtsp_interleaved = "rtsp-interleaved",
    /// Answer an INVITE without a direction attribute (no `a=sendonly`).
    no_direction = "no-direction",
    /// Write the PSM `CRC_32` least significant byte first.
    psm_crc_byte_swapped = "psm-crc-byte-swapped",
    /// Write the PSM `CRC_32` as zero.
    psm_crc_zero = "psm-crc-zero",
    /// Give the PSM's video entry a descriptor that overruns its descriptor loop.
    psm_descriptor_overrun = "psm-descriptor-overrun",
    /// Never send the first RTP packet of a session, as if lost before the
    /// platform joined: the stream is received from mid-pack.
    drop_first_packet = "drop-first-packet",
    // --- SIP header rules ---
    /// Over TCP, name UDP in the top Via of every request.
    via_udp_on_tcp = "via-udp-on-tcp",
    /// Answer MESSAGE requests with final responses whose To has no tag.
    no_to_tag = "no-to-tag",
    /// Send MESSAGE requests outside a dialog with no From tag.
    no_from_tag = "no-from-tag",
    /// Send MANSCDP MESSAGE bodies with no Content-Type header.
    no_content_type = "no-content-type",
    // --- SIP and SDP quirks met in the field ---
    /// Address MESSAGEs to the platform by its SIP domain (the platform ID's
    /// first 10 digits) in the Request-URI and To instead of its ID.
    request_uri_domain = "request-uri-domain",
    /// Write the SDP answer's `y=` as an unpadded number: a live stream's
    /// `0`-led SSRC loses its leading zero and has 9 digits.
    ssrc_9_digits = "ssrc-9-digits",
    // --- robustness (found by fuzzing; each stays until a reboot) ---
    /// Stop answering anything after a MESSAGE whose DeviceID is over
    /// 1,024 characters.
    robust_hang_long_id = "robust-hang-long-id",
    /// Stop answering anything after an INVITE whose SDP has no `y=` line.
    robust_crash_no_y = "robust-crash-no-y",
    /// Answer 200 to a MESSAGE whose body is not MANSCDP and to a request
    /// missing a mandatory header, instead of 400.
    robust_accept_garbage = "robust-accept-garbage",
}

/// A setting's text: shared, not copied, when a fleet's cameras are set
/// up from one template ([`DeviceConfig`] clones cheaply).
pub type Text = std::sync::Arc<str>;

/// How a reference camera is set up. [`DeviceConfig::new`] gives a
/// single-channel camera with the spec's defaults (60 s keepalive, 3 misses).
#[derive(Debug, Clone)]
pub struct DeviceConfig {
    pub device_id: String,
    /// The server the device is configured with (a redirect server, if it
    /// answers with 302, §注册重定向).
    pub platform_id: Text,
    /// SIP domain for From/To; defaults to the platform ID's first 10 digits.
    pub domain: Text,
    /// Digest username; GB devices commonly use their device ID.
    pub username: String,
    pub password: Text,
    pub local: SocketAddr,
    pub server: SocketAddr,
    pub transport: Transport,
    /// Registration expiry requested, in seconds.
    pub expires: u32,
    /// Refresh when this fraction of the granted expiry has passed.
    pub refresh_ratio: f64,
    /// Wait after a failed registration (spec: not shorter than 60 s).
    pub retry_interval: Duration,
    /// Protocol-to-driver time factor; 1.0 in the field, e.g. 0.01 in suites.
    pub time_scale: f64,
    pub user_agent: Text,
    pub faults: DeviceFaults,
    pub seed: u64,
    /// §保活: "默认心跳间隔60s".
    pub keepalive_interval: Duration,
    /// §保活: "默认超时次数3次".
    pub keepalive_timeout_count: u32,
    /// Sub-devices reported faulty in keepalives (Status ERROR, Info/DeviceID).
    pub faulty_subdevices: Vec<String>,
    /// Character set of every MANSCDP body the device writes.
    pub charset: Charset,
    /// Video channels listed by Catalog (at most 999).
    pub catalog_items: u32,
    /// Catalog items per Response MESSAGE.
    pub catalog_page_size: usize,
    /// Synthetic recordings start at every multiple of this (since midnight).
    pub record_interval: Duration,
    /// Length of each synthetic recording (at most `record_interval`).
    pub record_duration: Duration,
    /// RecordInfo items per Response MESSAGE.
    pub record_page_size: usize,
    /// Presets defined at start (PresetQuery); PTZ set/delete preset changes them.
    pub presets: u32,
    /// Alarm inputs reported under Alarmstatus in DeviceStatus.
    pub alarm_inputs: u32,
    /// Longest subscription granted, seconds.
    pub max_subscription_expires: u32,
    /// How long a TeleBoot restart takes before the device registers again.
    pub boot_time: Duration,
    pub device_name: Text,
    pub manufacturer: Text,
    pub model: Text,
    pub firmware: Text,
    pub owner: Text,
    pub address: Text,
    /// The address media sockets bind to and SDP answers announce; `None`: the
    /// IP of `local` (set it when `local` is a wildcard address).
    pub media_ip: Option<IpAddr>,
    /// The Annex B H.264/H.265 file the camera streams (`.h264`, `.264`, `.avc`,
    /// `.h265`, `.265`, `.hevc`); `None`: the sample H.264 stream built in.
    pub media_file: Option<PathBuf>,
    /// Media time of a Playback/Download stream (the source looped); a Download
    /// at `a=downloadspeed:N` goes N times faster. Not scaled by `time_scale`.
    pub history_seconds: Duration,
    /// The transport of the 语音广播 audio INVITE: `None` UDP, else the `a=setup`
    /// the camera offers (`Passive`: the voice source connects, `Active`: the
    /// camera connects).
    pub broadcast_setup: Option<Setup>,
    /// Media sessions (INVITE dialogs) under way at once; one more INVITE
    /// is answered 486 Busy Here (RFC 3261 §21.4.24).
    pub max_sessions: usize,
}

impl DeviceConfig {
    pub fn new(
        device_id: &str,
        platform_id: &str,
        password: &str,
        local: SocketAddr,
        server: SocketAddr,
    ) -> Self {
        DeviceConfig {
            device_id: device_id.into(),
            platform_id: platform_id.into(),
            domain: platform_id.get(..10).unwrap_or(platform_id).into(),
            username: device_id.into(),
            password: password.into(),
            local,
            server,
            transport: Transport::Udp,
            expires: 3600,
            refresh_ratio: 0.5,
            retry_interval: Duration::from_secs(60),
            time_scale: 1.0,
            user_agent: "camcert reference camera".into(),
            faults: DeviceFaults::default(),
            seed: 1,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout_count: 3,
            faulty_subdevices: Vec::new(),
            charset: Charset::Gb2312,
            catalog_items: 1,
            catalog_page_size: 10,
            record_interval: Duration::from_secs(3600),
            record_duration: Duration::from_secs(900),
            record_page_size: 10,
            presets: 2,
            alarm_inputs: 1,
            max_subscription_expires: 3600,
            boot_time: Duration::from_secs(5),
            device_name: "camcert 参考摄像机".into(),
            manufacturer: "camcert".into(),
            model: "Reference IPC".into(),
            firmware: env!("CARGO_PKG_VERSION").into(),
            owner: "camcert".into(),
            address: "实验室".into(),
            media_ip: None,
            media_file: None,
            history_seconds: Duration::from_secs(2),
            broadcast_setup: None,
            max_sessions: 16,
        }
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{key}: {v:?} is not a number"))
}

fn parse_secs(key: &str, v: &str) -> Result<Duration, String> {
    let s: f64 = parse_num(key, v)?;
    if !(0.0..=1e9).contains(&s) {
        return Err(format!("{key}: {v:?} is not a number of seconds"));
    }
    Ok(Duration::from_secs_f64(s))
}

fn positive<T: PartialOrd + Default>(key: &str, v: T) -> Result<T, String> {
    if v > T::default() {
        Ok(v)
    } else {
        Err(format!("{key} must be at least 1"))
    }
}

/// Setting names [`DeviceConfig::apply_option`] understands.
pub const OPTION_NAMES: &[&str] = &[
    "expires",
    "refresh_ratio",
    "retry_interval",
    "username",
    "user_agent",
    "keepalive_interval",
    "keepalive_timeout_count",
    "faulty_subdevices",
    "charset",
    "catalog_items",
    "catalog_page_size",
    "record_interval",
    "record_duration",
    "record_page_size",
    "presets",
    "alarm_inputs",
    "max_subscription_expires",
    "boot_time",
    "device_name",
    "manufacturer",
    "model",
    "firmware",
    "owner",
    "address",
    "media_file",
    "history_seconds",
    "broadcast_media",
    "max_sessions",
    "fault",
];

impl DeviceConfig {
    /// Set one option by name (suite `peer:` settings); see [`OPTION_NAMES`].
    /// Durations are seconds of protocol time; `faulty_subdevices` is a
    /// comma-separated list of 20-digit IDs or channel numbers (1-based);
    /// `charset` is `GB2312`, `GBK`, `GB18030` or `UTF-8`; `media_file` is a
    /// path to an Annex B `.h264`/`.h265` file (read when the camera starts);
    /// `history_seconds` is media time, not protocol time; `broadcast_media` is
    /// `udp`, `tcp-active` (the voice source, which sends, connects) or
    /// `tcp-passive` (the camera connects); `fault` is a name
    /// from [`DeviceFaults::NAMES`].
    pub fn apply_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "expires" => self.expires = parse_num(key, value)?,
            "max_sessions" => self.max_sessions = positive(key, parse_num(key, value)?)?,
            "refresh_ratio" => self.refresh_ratio = parse_num(key, value)?,
            "retry_interval" => self.retry_interval = parse_secs(key, value)?,
            "username" => self.username = value.to_string(),
            "user_agent" => self.user_agent = value.into(),
            "keepalive_interval" => {
                self.keepalive_interval = parse_secs(key, value)?;
                if self.keepalive_interval.is_zero() {
                    return Err("keepalive_interval must be more than 0".into());
                }
            }
            "keepalive_timeout_count" => {
                self.keepalive_timeout_count = positive(key, parse_num(key, value)?)?
            }
            "faulty_subdevices" => {
                self.faulty_subdevices = value
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        if s.len() < 20 {
                            let k: u32 = parse_num(key, s)?;
                            Ok(super::model::channel_id(&self.device_id, k))
                        } else {
                            Ok(s.to_string())
                        }
                    })
                    .collect::<Result<_, String>>()?
            }
            "charset" => {
                self.charset = Charset::from_label(value).ok_or_else(|| {
                    format!("unknown charset {value:?} (GB2312, GBK, GB18030, UTF-8)")
                })?
            }
            "catalog_items" => {
                let n: u32 = parse_num(key, value)?;
                if n > 999 {
                    return Err("catalog_items: at most 999 channels".into());
                }
                self.catalog_items = n;
            }
            "catalog_page_size" => self.catalog_page_size = positive(key, parse_num(key, value)?)?,
            "record_interval" => {
                self.record_interval = parse_secs(key, value)?;
                if self.record_interval < Duration::from_secs(1) {
                    return Err("record_interval must be at least 1 s".into());
                }
            }
            "record_duration" => self.record_duration = parse_secs(key, value)?,
            "record_page_size" => self.record_page_size = positive(key, parse_num(key, value)?)?,
            "presets" => {
                let n: u32 = parse_num(key, value)?;
                if n > 255 {
                    return Err("presets: at most 255".into());
                }
                self.presets = n;
            }
            "alarm_inputs" => {
                let n: u32 = parse_num(key, value)?;
                if n > 999 {
                    return Err("alarm_inputs: at most 999".into());
                }
                self.alarm_inputs = n;
            }
            "max_subscription_expires" => self.max_subscription_expires = parse_num(key, value)?,
            "boot_time" => self.boot_time = parse_secs(key, value)?,
            "device_name" => self.device_name = value.into(),
            "manufacturer" => self.manufacturer = value.into(),
            "model" => self.model = value.into(),
            "firmware" => self.firmware = value.into(),
            "owner" => self.owner = value.into(),
            "address" => self.address = value.into(),
            "media_file" => {
                let path = PathBuf::from(value.trim());
                let ext = path
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                if !["h264", "264", "avc", "h265", "265", "hevc"].contains(&ext.as_str()) {
                    return Err(format!(
                        "media_file: {value:?} is not an Annex B .h264/.264/.avc/.h265/.265/.hevc file"
                    ));
                }
                self.media_file = Some(path);
            }
            "history_seconds" => {
                self.history_seconds = parse_secs(key, value)?;
                if self.history_seconds.is_zero() {
                    return Err("history_seconds must be more than 0".into());
                }
            }
            "broadcast_media" => {
                // Named from the sender's side, as a suite's `media:` is.
                self.broadcast_setup = match value.trim() {
                    "udp" => None,
                    "tcp-active" => Some(Setup::Passive),
                    "tcp-passive" => Some(Setup::Active),
                    o => {
                        return Err(format!(
                            "broadcast_media: {o:?} is not udp, tcp-active or tcp-passive"
                        ))
                    }
                }
            }
            "fault" => {
                if !self.faults.set(value) {
                    return Err(format!("unknown fault {value:?}"));
                }
            }
            _ => {
                return Err(format!(
                    "unknown setting {key:?} for the reference camera (known: {})",
                    OPTION_NAMES.join(", ")
                ))
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DeviceConfig {
        let a: SocketAddr = "127.0.0.1:5070".parse().unwrap();
        DeviceConfig::new("34020000001320000001", "34020000002000000001", "x", a, a)
    }

    #[test]
    fn every_option_name_is_accepted() {
        for k in OPTION_NAMES {
            let v = match *k {
                "charset" => "UTF-8",
                "fault" => "no-keepalive",
                "refresh_ratio" => "0.5",
                "faulty_subdevices" => "1,34020000001340000009",
                "media_file" => "captures/sample-h265-320x240-25fps.h265",
                "broadcast_media" => "tcp-active",
                _ => "3",
            };
            cfg()
                .apply_option(k, v)
                .unwrap_or_else(|e| panic!("{k}: {e}"));
        }
        assert!(cfg().apply_option("nope", "1").is_err());
    }

    #[test]
    fn bad_values_are_refused() {
        let mut c = cfg();
        assert!(c.apply_option("keepalive_interval", "0").is_err());
        assert!(c.apply_option("keepalive_timeout_count", "0").is_err());
        assert!(c.apply_option("catalog_items", "1000").is_err());
        assert!(c.apply_option("catalog_page_size", "0").is_err());
        assert!(c.apply_option("charset", "latin1").is_err());
        assert!(c.apply_option("fault", "no-such-fault").is_err());
        assert!(c.apply_option("keepalive_interval", "-1").is_err());
        assert!(c.apply_option("media_file", "clip.mp4").is_err());
        assert!(c.apply_option("history_seconds", "0").is_err());
        c.apply_option("faulty_subdevices", "2, 34020000001340000009")
            .unwrap();
        assert_eq!(
            c.faulty_subdevices,
            vec!["34020000001310020001", "34020000001340000009"]
        );
    }

    #[test]
    fn every_fault_name_sets_a_switch() {
        for n in DeviceFaults::NAMES {
            let mut f = DeviceFaults::default();
            assert!(f.set(n), "{n}");
            assert_ne!(f, DeviceFaults::default(), "{n}");
        }
    }
}
