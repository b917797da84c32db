//! `camcert lint` on recorded sessions and media files: a session of the
//! reference peers recorded with `camcert serve --pcap`, clean and with one
//! fault switched on, must pass clean and fail the fault's requirement,
//! naming the cause; the committed recordings pass; media files (PS, Annex
//! B, rtpdump, RFC 4571, back-to-back RTP) are judged like a live stream.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use camcert::proto::ps::annexb::{frames_from_annexb, VideoCodec};
use camcert::proto::ps::mux::{MuxConfig, PsMuxer};
use camcert::proto::ps::Codec;
use camcert::proto::rtp::{Packetizer, PacketizerConfig};

const DEV: &str = "34020000001320000001";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn camcert() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camcert"));
    c.current_dir(root()).env("CAMCERT_PASSWORD", "lint-pw-1");
    c
}

fn lint(file: &Path, args: &[&str]) -> (i32, String, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    let out: Output = camcert()
        .arg("lint")
        .arg(file)
        .args(["--profile", "gb28181", "--report-dir"])
        .arg(dir.path())
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let json = std::fs::read(dir.path().join("results.json"))
        .map(|b| serde_json::from_slice(&b).unwrap())
        .unwrap_or(serde_json::Value::Null);
    if json.is_object() {
        let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
        assert!(junit.contains("<testsuite"), "{junit}");
        assert!(dir.path().join("report.html").exists());
    }
    (out.status.code().unwrap_or(-1), text, json)
}

/// (requirement ID, status) of every case.
fn statuses(json: &serde_json::Value) -> Vec<(String, String)> {
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["id"].as_str().unwrap().to_string(),
                c["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn status_of(json: &serde_json::Value, id: &str) -> String {
    statuses(json)
        .into_iter()
        .find(|(i, _)| i == id)
        .map(|(_, s)| s)
        .unwrap_or_else(|| panic!("no case {id}"))
}

fn failures_of(json: &serde_json::Value, id: &str) -> Vec<serde_json::Value> {
    json["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .map(|c| c["failures"].as_array().unwrap().clone())
        .unwrap_or_default()
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The address a `serve` process printed after `marker`.
fn wait_line(child: &mut Child, marker: &str) -> String {
    use std::io::BufRead;
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let t0 = Instant::now();
    while let Some(Ok(line)) = lines.next() {
        if let Some(rest) = line.split(marker).nth(1) {
            // Keep draining so the peer never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return rest.trim().to_string();
        }
        assert!(t0.elapsed() < Duration::from_secs(30), "no {marker:?}");
    }
    panic!("the peer ended before printing {marker:?}");
}

/// Record, with `camcert serve --pcap` on the platform side, the
/// reference camera registering and sending keepalives a second apart for
/// about four seconds, with the given faults on each side.
fn record(dir: &Path, name: &str, platform_faults: &[&str], device_faults: &[&str]) -> PathBuf {
    let pcap = dir.join(format!("{name}.pcap"));
    // A media fault: the platform also calls the camera live (over its
    // control API) a second after it registered.
    let media = device_faults.iter().any(|f| f.contains("ssrc"));
    let control = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = camcert();
    p.args(["serve", "gb28181-platform", "--listen", "udp://127.0.0.1:0"])
        .args([
            "--set",
            "keepalive_interval=1",
            "--duration",
            "30",
            "--pcap",
        ])
        .arg(&pcap)
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for f in platform_faults {
        p.args(["--fault", f]);
    }
    if media {
        p.args(["--control", &format!("127.0.0.1:{control}")]);
    }
    let mut plat = Killed(p.spawn().unwrap());
    let addr = wait_line(&mut plat.0, "listening on udp://");
    let mut d = camcert();
    d.args(["serve", "gb28181-device", "--registrar"])
        .arg(format!("udp://{addr}"))
        .args(["--device-id", DEV, "--set", "keepalive_interval=1"])
        .args(["--duration", "4.5"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for f in device_faults {
        d.args(["--fault", f]);
    }
    let mut dev = d.spawn().unwrap();
    if media {
        // The platform refuses the play until the camera has registered,
        // which on a loaded machine can take a while: ask again, every
        // 200 ms, for up to 3.5 s of the camera's 4.5 s.
        let t0 = Instant::now();
        let mut last = String::new();
        let played = loop {
            let out = Command::new("curl")
                .args(["-s", "-w", "\n%{http_code}", "-XPOST"])
                .arg(format!("127.0.0.1:{control}/devices/{DEV}/play"))
                .output()
                .expect("curl runs");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            if out.status.success() && text.ends_with("\n200") {
                break true;
            }
            last = text;
            if t0.elapsed() > Duration::from_millis(3500) {
                break false;
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        assert!(played, "play refused; the last answer: {last:?}");
    }
    let t0 = Instant::now();
    while dev.try_wait().unwrap().is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the camera never stopped"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The platform writes each packet as it goes.
    drop(plat);
    assert!(pcap.exists(), "{} missing", pcap.display());
    pcap
}

/// A recording: its name, the platform's faults, the camera's faults, and
/// the requirement and check that must fail (none: all pass).
type Run<'a> = (
    &'a str,
    &'a [&'a str],
    &'a [&'a str],
    Option<(&'a str, &'a str)>,
);

#[test]
fn a_recorded_session_passes_clean_and_fails_each_fault_by_requirement() {
    let d = tempfile::tempdir().unwrap();
    // (name, platform faults, camera faults, the requirement that fails,
    // the check that says why)
    let runs: [Run; 7] = [
        ("clean", &[], &[], None),
        (
            "same-sn",
            &[],
            &["keepalive-same-sn"],
            Some(("GB-KA-02", "gb.keepalive.sn")),
        ),
        (
            "slow",
            &[],
            &["slow-keepalive"],
            Some(("GB-KA-01", "gb.keepalive.interval")),
        ),
        (
            "no-date",
            &["no-date"],
            &[],
            Some(("GB-TIME-01", "gb.register.no-date")),
        ),
        (
            "no-challenge",
            &["no-challenge"],
            &[],
            Some(("GB-REG-03", "gb.register.no-challenge")),
        ),
        (
            "wrong-ssrc",
            &[],
            &["wrong-ssrc"],
            Some(("GB-MED-01", "gb.session.answer-ssrc")),
        ),
        (
            "overlong-body",
            &[],
            &["overlong-body"],
            Some(("GB-SIP-01", "sip.body-longer-than-content-length")),
        ),
    ];
    // The media run asks the platform to call the camera with curl.
    let curl = Command::new("curl").arg("--version").output().is_ok();
    if !curl {
        assert!(
            std::env::var("CAMCERT_INTEROP").is_err(),
            "curl is required when CAMCERT_INTEROP is set"
        );
        eprintln!("note: curl is not installed; the wrong-ssrc recording is skipped");
    }
    let runs: Vec<Run> = runs
        .into_iter()
        .filter(|r| curl || r.0 != "wrong-ssrc")
        .collect();
    let pcaps: Vec<PathBuf> = std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .iter()
            .map(|(name, pf, df, _)| {
                let dir = d.path();
                s.spawn(move || record(dir, name, pf, df))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let sip_checks = [
        "GB-SIP-01",
        "GB-REG-03",
        "GB-TIME-01",
        "GB-KA-01",
        "GB-KA-02",
        "GB-KA-03",
    ];
    let pcap_of =
        |name: &str| -> &PathBuf { &pcaps[runs.iter().position(|r| r.0 == name).unwrap()] };
    // The media session's answer (its RTP is not in the platform's pcap).
    if curl {
        let (_, text, json) = lint(pcap_of("wrong-ssrc"), &["--keepalive-interval", "1"]);
        assert!(
            text.contains("expected: y=0") && text.contains("received: y="),
            "{text}"
        );
        assert_eq!(status_of(&json, "GB-MED-05"), "skipped", "{text}");
    }
    for ((name, _, _, fails), pcap) in runs.iter().zip(&pcaps) {
        let (code, text, json) = lint(pcap, &["--keepalive-interval", "1"]);
        let checks: Vec<&str> = if *name == "wrong-ssrc" {
            sip_checks.iter().copied().chain(["GB-MED-01"]).collect()
        } else {
            sip_checks.to_vec()
        };
        for id in checks {
            let want = match fails {
                Some((f, _)) if *f == id => "failed",
                _ => "passed",
            };
            assert_eq!(status_of(&json, id), want, "{name}: {id}\n{text}");
        }
        // Nothing of media in these sessions: skipped, saying so.
        assert_eq!(status_of(&json, "GB-MED-05"), "skipped", "{text}");
        assert!(text.contains("no RTP in the input"), "{text}");
        match fails {
            None => assert_eq!(code, 0, "{name}: {text}"),
            Some((id, check)) => {
                assert_eq!(code, 1, "{name}: {text}");
                let f = failures_of(&json, id);
                assert!(
                    f.iter().any(|f| f["check"] == *check
                        // The SIP codec's own findings say both values in
                        // their message; lint's checks give them apart.
                        && (check.starts_with("sip.")
                            || (f["expected"].is_string() && f["received"].is_string()))
                        && f["message"].as_str().unwrap().contains('[')
                        && f["location"].as_str().unwrap().contains(": frame ")),
                    "{name}: {f:#?}"
                );
                assert!(
                    text.contains(&format!("FAIL  {id}")) && text.contains(check),
                    "{text}"
                );
            }
        }
    }
    // A Content-Length past the datagram: the REGISTER cannot be read at
    // all, so the registration never happens; the datagram is the evidence.
    let pcap = record(d.path(), "oversize", &[], &["oversize-content-length"]);
    let (code, text, json) = lint(&pcap, &["--keepalive-interval", "1"]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(status_of(&json, "GB-SIP-01"), "failed", "{text}");
    assert_eq!(status_of(&json, "GB-REG-03"), "skipped", "{text}");
    let f = &failures_of(&json, "GB-SIP-01")[0];
    assert_eq!(f["check"], "sip.unreadable", "{f}");
    assert!(
        f["received"]
            .as_str()
            .unwrap()
            .contains("Content-Length says 2000000 bytes"),
        "{f}"
    );
    assert!(
        f["bytes"].as_str().unwrap().starts_with("REGISTER sip:"),
        "{f}"
    );
    assert!(text.contains("FAIL  GB-SIP-01      [udp]"), "{text}");
    // The slow keepalive gives its gap against the interval.
    let (_, text, _) = lint(pcap_of("slow"), &["--keepalive-interval", "1"]);
    assert!(text.contains("received: 2.0 s apart"), "{text}");
    // A wrong password makes every authorised REGISTER fail.
    let pw = d.path().join("pw");
    std::fs::write(&pw, "not-the-password\n").unwrap();
    let (code, text, json) = lint(
        pcap_of("clean"),
        &[
            "--keepalive-interval",
            "1",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(status_of(&json, "GB-REG-03"), "failed");
    assert!(text.contains("gb.register.digest-response"), "{text}");
    // ... and the right one (from the environment) verifies them.
    let (code, text, _) = lint(pcap_of("clean"), &["--keepalive-interval", "1"]);
    assert_eq!(code, 0, "{text}");
}

#[test]
fn the_committed_recordings_of_camcert_peers_pass() {
    // ci/captures.sh records with this test password.
    let d = tempfile::tempdir().unwrap();
    let pw = d.path().join("pw");
    std::fs::write(&pw, "capture-pw-1\n").unwrap();
    for name in [
        "gb28181-camcert-device-platform-udp.pcapng",
        "gb28181-camcert-device-platform-tcp.pcap",
    ] {
        let file = root().join("captures").join(name);
        let (code, text, json) = lint(
            &file,
            &[
                "--keepalive-interval",
                "1",
                "--password-file",
                pw.to_str().unwrap(),
            ],
        );
        assert_eq!(code, 0, "{name}: {text}");
        assert!(
            statuses(&json).iter().all(|(_, s)| s == "passed"),
            "{name}: {text}"
        );
        let media = &json["cases"].as_array().unwrap()[8]["media"][0];
        assert_eq!(media["packets"], 60, "{name}");
    }
    // The camera's media faults, each under its requirement; the rest of
    // the session passes.
    let (code, text, json) = lint(
        &root().join("captures/gb28181-camcert-faulty-media-udp.pcapng"),
        &[
            "--keepalive-interval",
            "1",
            "--password-file",
            pw.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 1, "{text}");
    for (id, status) in statuses(&json) {
        let want = if id == "GB-MED-05" || id == "GB-MED-06" {
            "failed"
        } else {
            "passed"
        };
        assert_eq!(status, want, "{id}: {text}");
    }
    let f = &failures_of(&json, "GB-MED-05")[0];
    assert_eq!(f["check"], "rtp.ssrc_mismatch");
    let m = f["message"].as_str().unwrap();
    assert!(
        m.contains("0xdeadbeef") && m.contains("negotiated y=0200002820"),
        "{m}"
    );
    let f = &failures_of(&json, "GB-MED-06")[0];
    assert_eq!(f["check"], "ps.psm_missing_before_key_frame", "{f}");
    // Kamailio is a SIP registrar, not a GB/T 28181 platform: no Date.
    let (code, text, json) = lint(
        &root().join("captures/sipp-kamailio-register-udp.pcapng"),
        &["--password-file", pw.to_str().unwrap()],
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(status_of(&json, "GB-REG-03"), "passed");
    assert_eq!(status_of(&json, "GB-TIME-01"), "failed");
    // ffmpeg sends H.264 in RTP (RFC 6184) and PCMA: not GB/T 28181 media.
    let (code, text, json) = lint(&root().join("captures/ffmpeg-rtp-h264-pcma.pcap"), &[]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("rtp.payload_type_mismatch"), "{text}");
    assert_eq!(status_of(&json, "GB-MED-06"), "failed");
    assert!(text.contains("ps.sync_lost"), "{text}");
}

fn sample_ps(faults: camcert::proto::ps::mux::MuxFaults) -> Vec<(u64, Vec<u8>)> {
    let es = std::fs::read(root().join("captures/sample-h264-320x240-25fps.h264")).unwrap();
    let frames = frames_from_annexb(VideoCodec::H264, &es, 0, 3600);
    let mut cfg = MuxConfig::video(Codec::H264);
    cfg.faults = faults;
    let mut mux = PsMuxer::new(cfg).unwrap();
    frames
        .iter()
        .map(|f| (f.pts, mux.mux(f).unwrap().to_vec()))
        .collect()
}

fn rtp_packets(units: &[(u64, Vec<u8>)], ms_clock: bool) -> Vec<(u64, Vec<u8>)> {
    let mut cfg = PacketizerConfig::with_ssrc(0x0bebc201);
    if ms_clock {
        cfg.faults.timestamp_clock_hz = Some(1000);
    }
    let mut p = Packetizer::new(cfg).unwrap();
    let mut out = Vec::new();
    for (pts, ps) in units {
        for pkt in p.packetize(*pts, ps) {
            out.push((pts / 90, pkt.to_vec()));
        }
    }
    out
}

fn rtpdump(packets: &[(u64, Vec<u8>)]) -> Vec<u8> {
    let mut out = b"#!rtpplay1.0 127.0.0.1/30000\n".to_vec();
    out.extend_from_slice(&[0; 16]);
    for (ms, p) in packets {
        out.extend_from_slice(&((p.len() + 8) as u16).to_be_bytes());
        out.extend_from_slice(&(p.len() as u16).to_be_bytes());
        out.extend_from_slice(&(*ms as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

#[test]
fn media_files_are_judged_like_a_live_stream() {
    let d = tempfile::tempdir().unwrap();
    let write = |name: &str, data: &[u8]| {
        let p = d.path().join(name);
        std::fs::write(&p, data).unwrap();
        p
    };
    let clean = sample_ps(Default::default());
    let ps: Vec<u8> = clean.iter().flat_map(|u| u.1.clone()).collect();

    // PS and Annex B: the PS structure.
    for file in [
        write("clean.ps", &ps),
        root().join("captures/sample-h264-320x240-25fps.h264"),
        root().join("captures/sample-h265-320x240-25fps.h265"),
        root().join("golden/ps-h264-first-gop.ps"),
    ] {
        let (code, text, json) = lint(&file, &[]);
        assert_eq!(code, 0, "{}: {text}", file.display());
        assert_eq!(statuses(&json), [("GB-MED-06".into(), "passed".into())]);
    }
    let no_psm = sample_ps(camcert::proto::ps::mux::MuxFaults {
        omit_psm: true,
        ..Default::default()
    });
    let bad: Vec<u8> = no_psm.iter().flat_map(|u| u.1.clone()).collect();
    let (code, text, json) = lint(&write("no-psm.ps", &bad), &[]);
    assert_eq!(code, 1, "{text}");
    assert_eq!(status_of(&json, "GB-MED-06"), "failed");
    assert!(text.contains("ps.psm_missing_before_key_frame"), "{text}");

    // RTP, three ways: the same verdicts.
    let good = rtp_packets(&clean, false);
    let ms = rtp_packets(&clean, true);
    let framed = |pk: &[(u64, Vec<u8>)]| -> Vec<u8> {
        pk.iter()
            .flat_map(|(_, p)| {
                let mut v = (p.len() as u16).to_be_bytes().to_vec();
                v.extend_from_slice(p);
                v
            })
            .collect()
    };
    let b2b =
        |pk: &[(u64, Vec<u8>)]| -> Vec<u8> { pk.iter().flat_map(|(_, p)| p.clone()).collect() };
    for (name, data) in [
        ("clean.rtpdump", rtpdump(&good)),
        ("clean.rfc4571", framed(&good)),
        ("clean.rtp", b2b(&good)),
    ] {
        let (code, text, json) = lint(&write(name, &data), &[]);
        assert_eq!(code, 0, "{name}: {text}");
        assert_eq!(
            statuses(&json),
            [
                ("GB-MED-05".into(), "passed".into()),
                ("GB-MED-06".into(), "passed".into())
            ],
            "{name}"
        );
        assert!(text.contains("50 frames (2 key)"), "{name}: {text}");
    }
    // A 1 kHz RTP clock: measured against the arrival times of an rtpdump
    // file, and against the PES PTS in every form.
    for (name, data) in [
        ("ms.rtpdump", rtpdump(&ms)),
        ("ms.rfc4571", framed(&ms)),
        ("ms.rtp", b2b(&ms)),
    ] {
        let (code, text, json) = lint(&write(name, &data), &[]);
        assert_eq!(code, 1, "{name}: {text}");
        assert_eq!(status_of(&json, "GB-MED-05"), "failed", "{name}: {text}");
        assert!(text.contains("rtp.timestamp_pts"), "{name}: {text}");
    }
    let (_, text, _) = lint(&write("ms2.rtpdump", &rtpdump(&ms)), &[]);
    assert!(text.contains("rtp.timestamp_clock"), "{text}");

    // Not a known input: exit 2 with what is accepted.
    let (code, text, _) = lint(&write("notes.txt", b"hello"), &[]);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a capture"), "{text}");
}

/// A committed recording with its RTP moved into a TCP connection, framed
/// by RFC 4571 (the same packets, in the same frames' times), written as
/// an Ethernet pcap.
fn media_over_tcp(name: &str, out: &Path) {
    use camcert::capture::{decode, read};
    use etherparse::PacketBuilder;
    use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
    let data = std::fs::read(root().join("captures").join(name)).unwrap();
    let cap = read::read_capture(&data).unwrap();
    let file = std::fs::File::create(out).unwrap();
    let mut w = PcapWriter::with_header(
        file,
        PcapHeader {
            datalink: pcap_file::DataLink::ETHERNET,
            ..Default::default()
        },
    )
    .unwrap();
    let ip = |a: std::net::SocketAddr| match a.ip() {
        std::net::IpAddr::V4(v) => v.octets(),
        _ => panic!("IPv4 recording"),
    };
    let mut seq: Option<u32> = None;
    for f in &cap.frames {
        let Ok(p) = decode::dissect(f.link, &f.data) else {
            continue;
        };
        let b = || {
            PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]).ipv4(
                ip(p.src),
                ip(p.dst),
                64,
            )
        };
        let mut frames = Vec::new();
        let rtp = p.tcp.is_none() && p.payload.len() >= 12 && p.payload[0] >> 6 == 2;
        if rtp {
            let s = *seq.get_or_insert_with(|| {
                let mut syn = Vec::new();
                b().tcp(p.src.port(), p.dst.port(), 1000, 65535)
                    .syn()
                    .write(&mut syn, &[])
                    .unwrap();
                frames.push(syn);
                1001
            });
            let mut framed = (p.payload.len() as u16).to_be_bytes().to_vec();
            framed.extend_from_slice(p.payload);
            let mut seg = Vec::new();
            b().tcp(p.src.port(), p.dst.port(), s, 65535)
                .write(&mut seg, &framed)
                .unwrap();
            seq = Some(s + framed.len() as u32);
            frames.push(seg);
        } else if p.tcp.is_none() {
            let mut d = Vec::new();
            b().udp(p.src.port(), p.dst.port())
                .write(&mut d, p.payload)
                .unwrap();
            frames.push(d);
        }
        for d in frames {
            w.write_packet(&PcapPacket::new(f.time, d.len() as u32, &d))
                .unwrap();
        }
    }
}

#[test]
fn rtp_over_tcp_in_a_capture_is_judged_like_rtp_over_udp() {
    let d = tempfile::tempdir().unwrap();
    let pw = d.path().join("pw");
    std::fs::write(&pw, "capture-pw-1\n").unwrap();
    let args = [
        "--keepalive-interval",
        "1",
        "--password-file",
        pw.to_str().unwrap(),
    ];
    let clean = d.path().join("tcp-media.pcap");
    media_over_tcp("gb28181-camcert-device-platform-udp.pcapng", &clean);
    let flows = camcert()
        .args(["decode", "--flows"])
        .arg(&clean)
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&flows.stdout);
    assert!(
        table.lines().any(|l| l.starts_with("RTP ")
            && l.contains(" TCP ")
            && l.contains("RTP SSRC 0x0bebcd04=60; RFC 4571 framed")),
        "{table}"
    );
    let (code, text, json) = lint(&clean, &args);
    assert_eq!(code, 0, "{text}");
    assert!(statuses(&json).iter().all(|(_, s)| s == "passed"), "{text}");
    let media = &json["cases"].as_array().unwrap()[8]["media"][0];
    assert_eq!(media["packets"], 60, "{text}");
    // The faulty camera's media, over TCP: the same two failures.
    let faulty = d.path().join("tcp-faulty-media.pcap");
    media_over_tcp("gb28181-camcert-faulty-media-udp.pcapng", &faulty);
    let (code, text, json) = lint(&faulty, &args);
    assert_eq!(code, 1, "{text}");
    assert_eq!(status_of(&json, "GB-MED-05"), "failed");
    assert_eq!(status_of(&json, "GB-MED-06"), "failed");
    let f = &failures_of(&json, "GB-MED-05")[0];
    assert_eq!(f["check"], "rtp.ssrc_mismatch");
    assert!(
        f["message"].as_str().unwrap().contains("RTP over TCP"),
        "{f}"
    );
}
