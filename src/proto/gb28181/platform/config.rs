//! What the reference platform is told before it starts: identity,
//! provisioned devices, timers, the optional redirect target and upper
//! platform, and the deliberate faults. Suites set these by name through
//! [`PlatformConfig::apply_option`] (`peer:` settings).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::proto::gb28181::manscdp::Charset;
use crate::proto::sip::digest::Algorithm;
use crate::proto::Transport;

macro_rules! faults {
    ($( $(#[$m:meta])* $field:ident = $name:literal; )*) => {
        /// Deliberate misbehaviour, so a test can show each check failing.
        #[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub struct PlatformFaults {
            $( $(#[$m])* pub $field: bool, )*
        }

        impl PlatformFaults {
            /// Names accepted by [`PlatformFaults::set`], for `--peer-fault`.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            pub fn set(&mut self, name: &str) -> bool {
                let f = match name {
                    $( $name => &mut self.$field, )*
                    _ => return false,
                };
                *f = true;
                true
            }
        }
    };
}

faults! {
    /// Accept REGISTER without asking for credentials.
    no_challenge = "no-challenge";
    /// Accept a digest computed over any password.
    accept_wrong_password = "accept-wrong-password";
    /// Accept devices that are not provisioned.
    accept_unknown_device = "accept-unknown-device";
    /// Accept a Request-URI naming another platform.
    ignore_platform_id = "ignore-platform-id";
    /// Leave `Date:` out of the final 200.
    no_date = "no-date";
    /// Answer unregistration with 403.
    refuse_unregister = "refuse-unregister";
    /// Answer the first REGISTER with a garbage datagram.
    garbage = "garbage";
    /// Stop answering anything after receiving a datagram that is not SIP.
    wedge_on_garbage = "wedge-on-garbage";
    /// Send no answer to a keepalive.
    no_keepalive_answer = "no-keepalive-answer";
    /// Never hold a device offline for missing keepalives.
    no_offline_detection = "no-offline-detection";
    /// Answer 200 to keepalives from devices that are not registered.
    accept_unregistered_keepalive = "accept-unregistered-keepalive";
    /// Send Catalog queries with SN 0 (the schema minimum is 1).
    catalog_query_bad_sn = "catalog-query-bad-sn";
    /// Send PTZCmd values with a wrong checksum byte.
    bad_ptzcmd = "bad-ptzcmd";
    /// Send RecordInfo queries without StartTime and EndTime.
    recordinfo_no_time = "recordinfo-no-time";
    /// Send no 200 to response MESSAGEs (query answers).
    no_response_200 = "no-response-200";
    /// End a multi-message Catalog/RecordInfo collection after its first message.
    collect_stops_early = "collect-stops-early";
    /// Answer an alarm with 200 only, without the Response MESSAGE.
    no_alarm_response = "no-alarm-response";
    /// Answer an alarm with Result ERROR.
    alarm_result_error = "alarm-result-error";
    /// Send no answer to a NOTIFY.
    notify_no_200 = "notify-no-200";
    /// Send SUBSCRIBE without an Expires header.
    subscribe_no_expires = "subscribe-no-expires";
    /// Register the device instead of redirecting it.
    no_redirect = "no-redirect";
    /// Redirect with a 302 that has no Contact.
    redirect_no_contact = "redirect-no-contact";
    /// Announce one more shared device in SumNum than the catalog holds.
    cascade_wrong_sumnum = "cascade-wrong-sumnum";
    /// Tell the upper platform nothing when a shared device goes on or off line.
    cascade_no_status_notify = "cascade-no-status-notify";
    /// Accept a PTZ control from the upper platform without passing it on.
    no_forward_ptz = "no-forward-ptz";
    /// Accept a RecordInfo query from the upper platform without passing it on.
    no_forward_recordinfo = "no-forward-recordinfo";
    /// Send no keepalives to the upper platform.
    cascade_no_keepalive = "cascade-no-keepalive";
    /// Keep sending keepalives when the upper platform stops answering them.
    cascade_no_reregister = "cascade-no-reregister";
    /// Offer live video with a `y=` whose first digit is 1 (history).
    live_history_ssrc = "live-history-ssrc";
    /// Offer TCP media without `a=setup`.
    tcp_no_setup = "tcp-no-setup";
    /// Offer Playback and Download with `t=0 0` and no `u=`.
    history_no_range = "history-no-range";
    /// Offer Download without `a=downloadspeed`.
    no_downloadspeed = "no-downloadspeed";
    /// Offer talk audio `sendonly` instead of `sendrecv`.
    talk_sendonly = "talk-sendonly";
    /// Answer a download's MediaStatus 121 but never hang up.
    no_eof_bye = "no-eof-bye";
    /// Neither answer nor act on a device's BYE.
    ignore_device_bye = "ignore-device-bye";
    /// Refuse the device's broadcast audio INVITE with 488.
    refuse_broadcast_audio = "refuse-broadcast-audio";
    /// Keep a session up when its media stops arriving, instead of ending it with BYE.
    no_media_timeout = "no-media-timeout";
}

/// The upper platform this platform registers to (platform cascade).
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// The upper platform's 20-digit ID.
    pub platform_id: String,
    pub addr: SocketAddr,
    /// cascade 平台注册: "注册鉴权信息(用户名和密码)由上级提供".
    pub username: Option<String>,
    pub password: String,
    /// Registration expiry requested, seconds.
    pub expires: u32,
}

impl UpstreamConfig {
    pub fn new(platform_id: &str, addr: SocketAddr, password: &str) -> Self {
        UpstreamConfig {
            platform_id: platform_id.into(),
            addr,
            username: None,
            password: password.into(),
            expires: 3600,
        }
    }
}

#[derive(Debug, Clone)]
pub struct PlatformConfig {
    pub platform_id: String,
    /// Digest realm; GB platforms use their 10-digit domain.
    pub realm: String,
    /// SIP domain in the From/To of requests this platform sends.
    pub domain: String,
    /// Provisioned devices (and lower platforms) and their passwords.
    pub devices: HashMap<String, String>,
    pub algorithm: Algorithm,
    pub qop_auth: bool,
    /// Largest expiry granted; a longer request is shortened to this.
    pub max_expires: u32,
    pub time_scale: f64,
    pub user_agent: String,
    /// Where this platform's socket is, for Via and Contact of the
    /// requests it sends; the driver sets it.
    pub local: SocketAddr,
    /// The address media sessions announce in `c=` and receive on; `None`:
    /// the IP of `local`.
    pub media_ip: Option<IpAddr>,
    pub transport: Transport,
    /// §保活: "默认心跳间隔60s".
    pub keepalive_interval: Duration,
    /// §保活: "默认超时次数3次".
    pub keepalive_timeout_count: u32,
    /// Character set of the MANSCDP bodies this platform writes.
    pub charset: Charset,
    /// Items per message when answering a Catalog query as lower platform.
    pub catalog_page_size: usize,
    /// How long a multi-message answer may take before it is closed as incomplete.
    pub collect_timeout: Duration,
    /// Expires of the subscriptions this platform asks for.
    pub subscribe_expires: u32,
    /// Redirect server mode (§注册重定向): server A's ID and address.
    pub redirect_to: Option<(String, SocketAddr)>,
    /// Lower platform mode: the upper platform to register to.
    pub upstream: Option<UpstreamConfig>,
    /// Devices shared with the upper platform; `None` shares every provisioned device.
    pub shared: Option<Vec<String>>,
    pub faults: PlatformFaults,
    pub seed: u64,
    /// Decode MANSCDP bodies strictly: a body with a deviation the lenient
    /// decoder recovers from (a field as an attribute, a name in the wrong
    /// case, no declaration, the wrong declared encoding) is answered 400
    /// and not understood. Off: such bodies are read and their findings kept.
    pub strict_manscdp: bool,
    /// Judge SIP addressing strictly: a REGISTER whose Request-URI names
    /// this platform's SIP domain instead of its ID is refused (403) as one
    /// for another platform. Off: it is taken as meant, and the findings
    /// (`sip.request-uri-domain`, `sip.to-domain`) kept, as for any request
    /// so addressed.
    pub strict_sip: bool,
}

impl PlatformConfig {
    pub fn new(platform_id: &str) -> Self {
        let domain: String = platform_id.get(..10).unwrap_or(platform_id).into();
        PlatformConfig {
            platform_id: platform_id.into(),
            realm: domain.clone(),
            domain,
            devices: HashMap::new(),
            algorithm: Algorithm::Md5,
            qop_auth: false,
            max_expires: 86400,
            time_scale: 1.0,
            user_agent: "camcert reference platform".into(),
            local: SocketAddr::from(([127, 0, 0, 1], 5060)),
            media_ip: None,
            transport: Transport::Udp,
            keepalive_interval: Duration::from_secs(60),
            keepalive_timeout_count: 3,
            charset: Charset::Gb2312,
            catalog_page_size: 2,
            collect_timeout: Duration::from_secs(60),
            subscribe_expires: 3600,
            redirect_to: None,
            upstream: None,
            shared: None,
            faults: PlatformFaults::default(),
            seed: 2,
            strict_manscdp: false,
            strict_sip: false,
        }
    }

    /// Devices shared with the upper platform, in catalog order.
    pub fn shared_devices(&self) -> Vec<String> {
        let mut v = match &self.shared {
            Some(s) => s.clone(),
            None => self.devices.keys().cloned().collect(),
        };
        if let Some(u) = &self.upstream {
            v.retain(|d| *d != u.platform_id);
        }
        v.sort();
        v.dedup();
        v
    }
}

fn num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, String> {
    v.trim()
        .parse()
        .map_err(|_| format!("{key}: {v:?} is not a number"))
}

/// `ID@IP:PORT`.
fn id_at(key: &str, v: &str) -> Result<(String, SocketAddr), String> {
    let (id, addr) = v
        .trim()
        .split_once('@')
        .ok_or_else(|| format!("{key}: {v:?} is not ID@IP:PORT"))?;
    let addr = addr
        .parse()
        .map_err(|_| format!("{key}: {addr:?} is not IP:PORT"))?;
    Ok((id.to_string(), addr))
}

impl PlatformConfig {
    /// Set one option by name (suite `peer:` settings). Keys: `realm`,
    /// `domain`, `algorithm` (`MD5`/`SHA-256`), `qop` (`true`/`false`),
    /// `max_expires`, `user_agent`, `keepalive_interval` and
    /// `collect_timeout` (seconds), `keepalive_timeout_count`, `charset`
    /// (`GB2312`, `UTF-8`, ...), `catalog_page_size`, `subscribe_expires`,
    /// `redirect_to` (`ID@IP:PORT`), `media_ip`, `device` (`ID` or `ID:PASSWORD`, adds a
    /// provisioned device), `share` (comma-separated IDs), `upstream`
    /// (`ID@IP:PORT`), `upstream_username`, `upstream_password`,
    /// `upstream_expires`, `strict_manscdp` and `strict_sip` (`true`/`false`), `fault` (see
    /// [`PlatformFaults::NAMES`]).
    pub fn apply_option(&mut self, key: &str, value: &str) -> Result<(), String> {
        match key {
            "realm" => self.realm = value.to_string(),
            "domain" => self.domain = value.to_string(),
            "algorithm" => {
                self.algorithm = Algorithm::from_param(Some(value))
                    .ok_or_else(|| format!("unknown algorithm {value:?}"))?
            }
            "qop" => self.qop_auth = value.trim() == "true",
            "strict_manscdp" => self.strict_manscdp = value.trim() == "true",
            "strict_sip" => self.strict_sip = value.trim() == "true",
            "max_expires" => self.max_expires = num(key, value)?,
            "user_agent" => self.user_agent = value.to_string(),
            "keepalive_interval" => {
                self.keepalive_interval = Duration::from_secs_f64(num(key, value)?)
            }
            "keepalive_timeout_count" => self.keepalive_timeout_count = num(key, value)?,
            "collect_timeout" => self.collect_timeout = Duration::from_secs_f64(num(key, value)?),
            "charset" => {
                self.charset = Charset::from_label(value).ok_or_else(|| {
                    format!("unknown charset {value:?} (GB2312, GBK, GB18030, UTF-8)")
                })?
            }
            "catalog_page_size" => self.catalog_page_size = num::<usize>(key, value)?.max(1),
            "subscribe_expires" => self.subscribe_expires = num(key, value)?,
            "redirect_to" => self.redirect_to = Some(id_at(key, value)?),
            "media_ip" => {
                self.media_ip = Some(
                    value
                        .trim()
                        .parse()
                        .map_err(|_| format!("{key}: {value:?} is not an IP address"))?,
                )
            }
            "device" => {
                let (id, pw) = value.split_once(':').unwrap_or((value, ""));
                self.devices.insert(id.trim().to_string(), pw.to_string());
            }
            "share" => {
                self.shared = Some(
                    value
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect(),
                )
            }
            "upstream" => {
                let (id, addr) = id_at(key, value)?;
                let password = self
                    .upstream
                    .as_ref()
                    .map(|u| u.password.clone())
                    .unwrap_or_default();
                let mut u = UpstreamConfig::new(&id, addr, &password);
                if let Some(old) = &self.upstream {
                    u.username = old.username.clone();
                    u.expires = old.expires;
                }
                self.upstream = Some(u);
            }
            "upstream_username" | "upstream_password" | "upstream_expires" => {
                let u = self
                    .upstream
                    .as_mut()
                    .ok_or_else(|| format!("{key} needs `upstream` first"))?;
                match key {
                    "upstream_username" => u.username = Some(value.to_string()),
                    "upstream_password" => u.password = value.to_string(),
                    _ => u.expires = num(key, value)?,
                }
            }
            "fault" => {
                if !self.faults.set(value) {
                    return Err(format!("unknown fault {value:?}"));
                }
            }
            _ => {
                return Err(format!(
                    "unknown setting {key:?} for the reference platform"
                ))
            }
        }
        Ok(())
    }
}
