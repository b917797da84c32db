//! Media over the HEDGW channel (§5.2.3 TD 上传音视频数据, §5.3).
//!
//! [`Packager`] turns an H.264 Annex B stream into TDMediaPackages: SPS/PPS
//! as `package_type` 3 right before every key frame, pictures as type 2
//! (`sync` 1 for IDR), millisecond `start_time`, `seq_num` counted per
//! package type. [`MediaCheck`] judges a received sequence against the
//! same rules. Both are pure: the driver paces packages by
//! [`Packager::due`] and the time it reads.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{clause, FindingCode, TdMediaPackage};
use crate::finding::{Evidence, Finding};
use crate::proto::ps::annexb::{h264, nal_units, split_access_units, VideoCodec};

pub const AUDIO: u32 = 1;
pub const VIDEO: u32 = 2;
pub const SPS_PPS: u32 = 3;
pub const THUMBNAIL: u32 = 5;

/// Faults the reference device can put in its media.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaFaults {
    /// Key frames without SPS/PPS before them.
    pub no_sps_pps: bool,
    /// Skip one video sequence number (after the 10th picture).
    pub seq_gap: bool,
    /// `start_time` in seconds, not milliseconds.
    pub seconds: bool,
    /// Audio `start_time` advancing 30 ms per 20 ms package.
    pub audio_30ms: bool,
    /// No control_flag on the event-recording plan.
    pub no_control_flag: bool,
    /// No ipcam_time on packages.
    pub no_ipcam_time: bool,
}

/// One picture of the source: its parameter sets (for a key frame) and
/// its slices, Annex B.
#[derive(Debug, Clone)]
struct Picture {
    params: Option<Vec<u8>>,
    data: Vec<u8>,
    key: bool,
}

/// Builds the package sequence of a looping H.264 source.
#[derive(Debug, Clone)]
pub struct Packager {
    pictures: Vec<Picture>,
    frame: Duration,
    next: usize,
    /// Pictures sent so far.
    sent: u64,
    seq: BTreeMap<u32, u32>,
    /// The last parameter sets seen, repeated before a key frame that has none.
    last_params: Option<Vec<u8>>,
    /// G.711A packages (20 ms each) sent so far; `None`: no audio.
    audio_sent: Option<u64>,
    /// §5.2.3 control_flag for every package (event-recording plan): 1
    /// event, 2 client playback.
    pub control_flag: Option<u32>,
    pub faults: MediaFaults,
}

/// One audio package: 20 ms of G.711A at 8 kHz, mono (§5.2.1 audio_type 2).
pub const AUDIO_PACKAGE: Duration = Duration::from_millis(20);
const AUDIO_BYTES: usize = 160;

impl Packager {
    /// A packager of `annexb` at `fps` frames per second. `None` when the
    /// stream has no picture.
    pub fn h264(annexb: &[u8], fps: u32) -> Option<Packager> {
        let mut pictures = Vec::new();
        for au in split_access_units(VideoCodec::H264, annexb) {
            if au.info.vcl_count == 0 {
                continue;
            }
            let (mut params, mut data) = (Vec::new(), Vec::new());
            for nal in nal_units(&au.data) {
                let t = nal[0] & 0x1f;
                let into = if t == h264::SPS || t == h264::PPS {
                    &mut params
                } else {
                    &mut data
                };
                into.extend_from_slice(&[0, 0, 0, 1]);
                into.extend_from_slice(nal);
            }
            pictures.push(Picture {
                params: (!params.is_empty()).then_some(params),
                data,
                key: au.info.key,
            });
        }
        if pictures.is_empty() {
            return None;
        }
        Some(Packager {
            pictures,
            frame: Duration::from_secs(1) / fps.max(1),
            next: 0,
            sent: 0,
            seq: BTreeMap::new(),
            last_params: None,
            audio_sent: None,
            control_flag: None,
            faults: MediaFaults::default(),
        })
    }

    /// Send G.711A audio beside the video.
    pub fn with_audio(mut self) -> Packager {
        self.audio_sent = Some(0);
        self
    }

    /// When the next audio package is due, from the stream start.
    pub fn audio_due(&self) -> Option<Duration> {
        self.audio_sent.map(|n| AUDIO_PACKAGE * n as u32)
    }

    /// The next audio package: a 400 Hz tone, G.711A.
    pub fn next_audio(&mut self, ipcam_time_ms: u64) -> Option<TdMediaPackage> {
        let n = self.audio_sent?;
        self.audio_sent = Some(n + 1);
        let step = if self.faults.audio_30ms { 30 } else { 20 };
        let start_time = (n * step) as u32;
        let mut data = Vec::with_capacity(AUDIO_BYTES);
        let samples: Vec<i16> = (0..AUDIO_BYTES)
            .map(|i| {
                let t = (n as usize * AUDIO_BYTES + i) as f64 / 8000.0;
                ((t * 400.0 * std::f64::consts::TAU).sin() * 8000.0) as i16
            })
            .collect();
        crate::proto::g711::Law::ALaw.encode_into(&samples, &mut data);
        let seq = self.seq(AUDIO);
        let mut p = package(AUDIO, 0, data, start_time, seq, ipcam_time_ms);
        self.stamp(&mut p);
        Some(p)
    }

    fn flag(&self) -> Option<u32> {
        self.control_flag.filter(|_| !self.faults.no_control_flag)
    }

    fn stamp(&self, p: &mut TdMediaPackage) {
        p.control_flag = self.flag();
        if self.faults.no_ipcam_time {
            p.ipcam_time = None;
        }
    }

    /// When the next picture is due, from the start of the stream.
    pub fn due(&self) -> Duration {
        self.frame * self.sent as u32
    }

    /// Pictures handed out so far.
    pub fn pictures_sent(&self) -> u64 {
        self.sent
    }

    fn seq(&mut self, t: u32) -> u32 {
        let s = self.seq.entry(t).or_insert(0);
        let v = *s;
        *s = s.wrapping_add(1);
        v
    }

    /// The packages of the next picture (SPS/PPS first for a key frame),
    /// stamped `start_time` from the stream start and `ipcam_time` (UTC ms).
    pub fn next_packages(&mut self, ipcam_time_ms: u64) -> Vec<TdMediaPackage> {
        let p = self.pictures[self.next].clone();
        self.next = (self.next + 1) % self.pictures.len();
        let ms = (self.frame * self.sent as u32).as_millis() as u64;
        let start_time = if self.faults.seconds { ms / 1000 } else { ms } as u32;
        self.sent += 1;
        if p.params.is_some() {
            self.last_params = p.params.clone();
        }
        let mut out = Vec::new();
        if p.key && !self.faults.no_sps_pps {
            if let Some(params) = p.params.or_else(|| self.last_params.clone()) {
                let seq = self.seq(SPS_PPS);
                out.push(package(SPS_PPS, 0, params, start_time, seq, ipcam_time_ms));
            }
        }
        if self.faults.seq_gap && self.sent == 10 {
            self.seq(VIDEO);
        }
        let seq = self.seq(VIDEO);
        out.push(package(
            VIDEO,
            p.key as u32,
            p.data,
            start_time,
            seq,
            ipcam_time_ms,
        ));
        for p in &mut out {
            self.stamp(p);
        }
        out
    }
}

fn package(
    package_type: u32,
    sync: u32,
    data: Vec<u8>,
    start_time: u32,
    seq_num: u32,
    ipcam_time: u64,
) -> TdMediaPackage {
    TdMediaPackage {
        package_type,
        sync,
        data_size: data.len() as u32,
        data,
        start_time,
        seq_num,
        ipcam_time: Some(ipcam_time),
        control_flag: None,
    }
}

/// The thumbnail the reference device uploads: a JFIF header and the end
/// marker, JPEG-shaped, no picture data.
pub const THUMBNAIL_JPEG: &[u8] = &[
    0xff, 0xd8, 0xff, 0xe0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0x00, 0x01, 0x01, 0x00, 0x00, 0x01,
    0x00, 0x01, 0x00, 0x00, 0xff, 0xd9,
];

/// A thumbnail package (§5.2.7): `start_time` from the TD's start.
pub fn thumbnail(start_time_ms: u32, seq_num: u32, ipcam_time_ms: u64) -> TdMediaPackage {
    package(
        THUMBNAIL,
        0,
        THUMBNAIL_JPEG.to_vec(),
        start_time_ms,
        seq_num,
        ipcam_time_ms,
    )
}

/// What a media check counted.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct MediaStats {
    pub packages: u64,
    pub video_frames: u64,
    pub key_frames: u64,
    pub sps_pps: u64,
    pub audio_packages: u64,
    pub thumbnails: u64,
    pub bytes: u64,
    pub seq_gaps: u64,
    /// Video frames per second from the first to the last `start_time`.
    pub frame_rate: Option<f64>,
    first_video_ms: Option<u32>,
    last_video_ms: Option<u32>,
}

/// Judges received TDMediaPackages (gateway side).
#[derive(Debug, Default)]
pub struct MediaCheck {
    /// The TD is on the event-recording plan (device_status 3): every
    /// package carries control_flag 1 or 2 (§5.2.3).
    pub event_plan: bool,
    /// The connection carries SD card data (DevLoginReq channel_id 1):
    /// every package says when it was recorded (§5.2.4 上传数据时需要填写音视频包产生时的 UTC 时间戳).
    pub sd_channel: bool,
    pub stats: MediaStats,
    findings: Vec<Finding>,
    /// SPS/PPS since the last video picture.
    params_ready: bool,
    last_seq: BTreeMap<u32, u32>,
    last_time: BTreeMap<u32, u32>,
    index: u64,
}

impl MediaCheck {
    /// Check one package; new findings are also kept (merged by code).
    pub fn push(&mut self, p: &TdMediaPackage) {
        let i = self.index;
        self.index += 1;
        if self.sd_channel && p.ipcam_time.is_none_or(|t| t < 1_000_000_000_000) {
            self.add(
                FindingCode::BadValue.error(
                    "hemu §5.2.4 TD 上传 SD 卡缓存音视频数据和报警事件",
                    format!(
                        "ipcam_time {:?} on the SD card channel: expected the UTC milliseconds the package was recorded",
                        p.ipcam_time
                    ),
                ),
                i,
            );
        }
        if self.event_plan && !matches!(p.control_flag, Some(1 | 2)) {
            self.add(
                FindingCode::BadValue.error(
                    clause::MEDIA,
                    format!(
                        "control_flag {:?} on the event-recording plan: expected 1 (event) or 2 (client playback) on every package (所有包都需要带上此标记)",
                        p.control_flag
                    ),
                ),
                i,
            );
        }
        let s = &mut self.stats;
        s.packages += 1;
        s.bytes += p.data.len() as u64;
        if p.data_size as usize != p.data.len() {
            self.add(
                FindingCode::DataSizeMismatch.error(
                    clause::MEDIA,
                    format!(
                        "data_size {} but data holds {} bytes (package {i})",
                        p.data_size,
                        p.data.len()
                    ),
                ),
                i,
            );
        }
        match p.package_type {
            AUDIO => {
                self.stats.audio_packages += 1;
                if let Some(prev) = self.last_time.get(&AUDIO) {
                    let step = p.start_time.wrapping_sub(*prev);
                    if step != 20 && step != 40 {
                        self.add(
                            FindingCode::TimestampJump.error(
                                clause::MEDIA,
                                format!("audio start_time advanced {step} ms; expected 20 or 40 (音频打包的时间戳要求是 20ms 或者 40ms)"),
                            ),
                            i,
                        );
                    }
                }
            }
            VIDEO => {
                self.stats.video_frames += 1;
                if p.sync == 1 {
                    self.stats.key_frames += 1;
                    if !self.params_ready {
                        self.add(
                            FindingCode::KeyFrameWithoutSpsPps.error(
                                clause::MEDIA,
                                format!("key frame seq_num {} without an SPS/PPS package (package_type 3) before it (上传关键帧数据之前，需要上传 SPS/PPS 数据)", p.seq_num),
                            ),
                            i,
                        );
                    }
                }
                self.params_ready = false;
                if let Some(prev) = self.last_time.get(&VIDEO) {
                    let step = p.start_time.wrapping_sub(*prev);
                    if step == 0 || step > 1000 {
                        self.add(
                            FindingCode::TimestampJump.error(
                                clause::MEDIA,
                                format!(
                                    "video start_time went from {prev} to {} ms; expected it to advance by one frame's milliseconds (1-1000)",
                                    p.start_time
                                ),
                            ),
                            i,
                        );
                    }
                }
                let st = &mut self.stats;
                st.first_video_ms.get_or_insert(p.start_time);
                st.last_video_ms = Some(p.start_time);
                if let (Some(a), Some(b)) = (st.first_video_ms, st.last_video_ms) {
                    let span = b.wrapping_sub(a);
                    if span > 0 && st.video_frames > 1 {
                        st.frame_rate =
                            Some((st.video_frames - 1) as f64 * 1000.0 / f64::from(span));
                    }
                }
            }
            SPS_PPS => {
                self.stats.sps_pps += 1;
                self.params_ready = true;
            }
            THUMBNAIL => {
                self.stats.thumbnails += 1;
                // §5.2.7: data is a JPG picture.
                if !(p.data.starts_with(&[0xff, 0xd8]) && p.data.ends_with(&[0xff, 0xd9])) {
                    self.add(
                        FindingCode::BadValue.error(
                            "hemu §5.2.7 TD 上传设备缩略图",
                            format!(
                                "thumbnail seq_num {} is not a JPEG (no FFD8 start or FFD9 end marker)",
                                p.seq_num
                            ),
                        ),
                        i,
                    );
                }
            }
            t => {
                self.add(
                    FindingCode::BadValue.error(
                        clause::MEDIA,
                        format!("package_type {t}: expected 1 (audio), 2 (video), 3 (sps/pps) or 5 (thumbnail)"),
                    ),
                    i,
                );
                return;
            }
        }
        if p.sync > 1 || (p.sync == 1 && p.package_type != VIDEO) {
            self.add(
                FindingCode::BadValue.error(
                    clause::MEDIA,
                    format!(
                        "sync {} on package_type {}: 1 marks a video key frame, 0 anything else",
                        p.sync, p.package_type
                    ),
                ),
                i,
            );
        }
        if let Some(prev) = self.last_seq.get(&p.package_type) {
            let want = prev.wrapping_add(1);
            if p.seq_num != want {
                self.stats.seq_gaps += 1;
                self.add(
                    FindingCode::SequenceGap.error(
                        clause::MEDIA,
                        format!(
                            "package_type {} seq_num {} after {prev}; expected {want} (音视频分别编号)",
                            p.package_type, p.seq_num
                        ),
                    ),
                    i,
                );
            }
        }
        self.last_seq.insert(p.package_type, p.seq_num);
        self.last_time.insert(p.package_type, p.start_time);
    }

    fn add(&mut self, f: Finding, index: u64) {
        if let Some(prev) = self.findings.iter_mut().find(|x| x.code == f.code) {
            prev.add_count(1);
        } else {
            self.findings.push(f.with_evidence(Evidence::Packets {
                first: index,
                count: 1,
            }));
        }
    }

    /// Findings so far, one per code with its count.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/captures/sample-h264-320x240-25fps.h264"
        ))
        .unwrap()
    }

    fn run(faults: MediaFaults, pictures: usize) -> MediaCheck {
        let mut p = Packager::h264(&sample(), 25).unwrap();
        p.faults = faults;
        let mut c = MediaCheck::default();
        for _ in 0..pictures {
            for pkg in p.next_packages(1_700_000_000_000) {
                c.push(&pkg);
            }
        }
        c
    }

    #[test]
    fn the_sample_packages_cleanly() {
        let c = run(MediaFaults::default(), 60);
        assert!(c.findings().is_empty(), "{:?}", c.findings());
        assert_eq!(c.stats.video_frames, 60);
        assert!(c.stats.key_frames >= 1);
        assert_eq!(c.stats.sps_pps, c.stats.key_frames);
        assert!((c.stats.frame_rate.unwrap() - 25.0).abs() < 0.01);
    }

    #[test]
    fn audio_is_20_ms_packages_of_g711a() {
        let mut p = Packager::h264(&sample(), 25).unwrap().with_audio();
        let mut c = MediaCheck::default();
        for _ in 0..50 {
            c.push(&p.next_audio(0).unwrap());
        }
        assert!(c.findings().is_empty(), "{:?}", c.findings());
        assert_eq!(c.stats.audio_packages, 50);
        assert_eq!(p.audio_due(), Some(Duration::from_secs(1)));
        let mut p = Packager::h264(&sample(), 25).unwrap().with_audio();
        p.faults.audio_30ms = true;
        let mut c = MediaCheck::default();
        for _ in 0..3 {
            c.push(&p.next_audio(0).unwrap());
        }
        assert_eq!(c.findings()[0].code, "hedgw.timestamp-jump");
        assert_eq!(c.findings()[0].count(), 2);
    }

    #[test]
    fn thumbnails_must_be_jpeg() {
        let mut c = MediaCheck::default();
        let mut t = package(THUMBNAIL, 0, THUMBNAIL_JPEG.to_vec(), 0, 0, 0);
        c.push(&t);
        assert!(c.findings().is_empty(), "{:?}", c.findings());
        t.data = vec![1, 2, 3];
        t.data_size = 3;
        t.seq_num = 1;
        c.push(&t);
        assert_eq!(c.findings()[0].code, "hedgw.bad-value");
    }

    #[test]
    fn each_media_fault_is_caught() {
        let c = run(
            MediaFaults {
                no_sps_pps: true,
                ..Default::default()
            },
            30,
        );
        assert_eq!(c.findings()[0].code, "hedgw.key-frame-without-sps-pps");
        let c = run(
            MediaFaults {
                seq_gap: true,
                ..Default::default()
            },
            30,
        );
        let codes: Vec<_> = c.findings().iter().map(|f| f.code).collect();
        assert_eq!(codes, ["hedgw.sequence-gap"]);
        assert!(
            c.findings()[0].message.contains("expected 9"),
            "{}",
            c.findings()[0].message
        );
        let c = run(
            MediaFaults {
                seconds: true,
                ..Default::default()
            },
            30,
        );
        assert_eq!(c.findings()[0].code, "hedgw.timestamp-jump");
        assert!(c.findings()[0].count() > 20);
    }
}
