//! `camcert decode` on captures: the evidence pcaps camcert's own reference
//! peers leave, and a capture built here with what those pcaps lack (SIP
//! messages split across TCP segments and several in one, RTP on a port an
//! SDP body announced). Where tshark is installed, every SIP message it
//! shows must be shown by camcert too, with the same method or status code
//! and Call-ID (CAMCERT_INTEROP=1 makes a missing tshark a failure).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use etherparse::PacketBuilder;
use pcap_file::pcap::{PcapPacket, PcapWriter};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn camcert() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_camcert"));
    c.current_dir(root());
    c
}

fn decode(args: &[&str], file: &Path) -> Output {
    camcert()
        .arg("decode")
        .args(args)
        .arg(file)
        .output()
        .unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The evidence pcaps of one registration case, over UDP and over TCP.
fn reference_captures(dir: &Path) -> Vec<PathBuf> {
    let out = camcert()
        .args([
            "run",
            "suites/gb28181/register-camera.yaml",
            "--filter",
            "CAM-REG-001",
            "--report-dir",
        ])
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let v: Vec<PathBuf> = ["udp", "tcp"]
        .iter()
        .map(|t| dir.join(format!("pcap/CAM-REG-001-{t}.pcap")))
        .collect();
    for p in &v {
        assert!(p.exists(), "{} missing", p.display());
    }
    v
}

fn sip(start: &str, call_id: &str, cseq: &str, body: &str) -> Vec<u8> {
    let ctype = if body.is_empty() {
        String::new()
    } else {
        "Content-Type: application/sdp\r\n".to_string()
    };
    format!(
        "{start}\r\n\
         Via: SIP/2.0/TCP 192.0.2.10:5060;branch=z9hG4bK{call_id}{cseq}\r\n\
         From: <sip:34020000001320000001@3402000000>;tag=17\r\n\
         To: <sip:34020000002000000001@3402000000>\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: {cseq}\r\n\
         {ctype}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

const CAM: [u8; 4] = [192, 0, 2, 10];
const PLT: [u8; 4] = [192, 0, 2, 20];

enum L4 {
    Udp(u16, u16),
    Tcp(u16, u16, u32),
}

fn frame(src: [u8; 4], dst: [u8; 4], l4: L4, payload: &[u8]) -> Vec<u8> {
    let eth = PacketBuilder::ethernet2([2, 0, 0, 0, 0, src[3]], [2, 0, 0, 0, 0, dst[3]]);
    let ip = eth.ipv4(src, dst, 64);
    let mut out = Vec::new();
    match l4 {
        L4::Udp(s, d) => ip.udp(s, d).write(&mut out, payload).unwrap(),
        L4::Tcp(s, d, seq) => ip
            .tcp(s, d, seq, 65535)
            .ack(1)
            .psh()
            .write(&mut out, payload)
            .unwrap(),
    }
    out
}

fn rtp(seq: u16, ssrc: u32) -> Vec<u8> {
    let mut p = vec![0x80, 96];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(u32::from(seq) * 3600).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    p.extend_from_slice(&[0x00, 0x00, 0x01, 0xba]);
    p.extend_from_slice(&[0; 60]);
    p
}

/// Frames of a session with what the reference pcaps do not have: an
/// INVITE split over three TCP segments (the last one first), two MESSAGEs
/// in one segment, and RTP from two SSRCs to the port the SDP announced.
fn session_frames() -> Vec<Vec<u8>> {
    let mut f = Vec::new();
    f.push(frame(
        CAM,
        PLT,
        L4::Udp(5060, 5060),
        &sip(
            "REGISTER sip:34020000002000000001@3402000000 SIP/2.0",
            "reg-1",
            "1 REGISTER",
            "",
        ),
    ));
    f.push(frame(
        PLT,
        CAM,
        L4::Udp(5060, 5060),
        &sip("SIP/2.0 200 OK", "reg-1", "1 REGISTER", ""),
    ));
    let sdp = "v=0\r\no=- 0 0 IN IP4 192.0.2.20\r\ns=Play\r\nc=IN IP4 192.0.2.20\r\n\
               t=0 0\r\nm=video 30000 RTP/AVP 96\r\na=recvonly\r\na=rtpmap:96 PS/90000\r\n";
    let invite = sip(
        "INVITE sip:34020000001320000001@192.0.2.10:5060 SIP/2.0",
        "inv-1",
        "20 INVITE",
        sdp,
    );
    let (a, rest) = invite.split_at(100);
    let (b, c) = rest.split_at(150);
    // The platform's connection is captured from its SYN; the camera's
    // direction joins mid-stream.
    let s0 = 1u32;
    let mut syn = Vec::new();
    PacketBuilder::ethernet2([2, 0, 0, 0, 0, 20], [2, 0, 0, 0, 0, 10])
        .ipv4(PLT, CAM, 64)
        .tcp(40000, 5060, s0 - 1, 65535)
        .syn()
        .write(&mut syn, &[])
        .unwrap();
    f.push(syn);
    f.push(frame(PLT, CAM, L4::Tcp(40000, 5060, s0 + 250), c));
    f.push(frame(PLT, CAM, L4::Tcp(40000, 5060, s0), a));
    f.push(frame(PLT, CAM, L4::Tcp(40000, 5060, s0 + 100), b));
    let ok = sip("SIP/2.0 200 OK", "inv-1", "20 INVITE", sdp);
    f.push(frame(CAM, PLT, L4::Tcp(5060, 40000, 1), &ok));
    for i in 0..5u16 {
        f.push(frame(CAM, PLT, L4::Udp(20000, 30000), &rtp(i, 0x1111_0001)));
    }
    f.push(frame(CAM, PLT, L4::Udp(20002, 30000), &rtp(0, 0x1111_0002)));
    let mut two = sip(
        "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0",
        "msg-1",
        "2 MESSAGE",
        "",
    );
    two.extend(sip(
        "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0",
        "msg-2",
        "3 MESSAGE",
        "",
    ));
    let s1 = 1 + ok.len() as u32;
    f.push(frame(CAM, PLT, L4::Tcp(5060, 40000, s1), &two));
    f
}

fn write_pcap(path: &Path, frames: &[Vec<u8>]) {
    let mut out = Vec::new();
    {
        let mut w = PcapWriter::new(&mut out).unwrap();
        for (i, fr) in frames.iter().enumerate() {
            let ts = Duration::from_secs(1_780_000_000) + Duration::from_millis(20 * i as u64);
            w.write_packet(&PcapPacket::new(ts, fr.len() as u32, fr))
                .unwrap();
        }
    }
    std::fs::write(path, out).unwrap();
}

/// A pcapng copy of `frames`, nanosecond timestamps.
fn write_pcapng(path: &Path, frames: &[Vec<u8>]) {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{
        InterfaceDescriptionBlock, InterfaceDescriptionOption,
    };
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::DataLink;
    let mut out = Vec::new();
    {
        let mut w = PcapNgWriter::new(&mut out).unwrap();
        let mut idb = InterfaceDescriptionBlock::new(DataLink::ETHERNET, 65535);
        idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
        w.write_pcapng_block(idb).unwrap();
        for (i, fr) in frames.iter().enumerate() {
            let ts = Duration::from_secs(1_780_000_000) + Duration::from_millis(20 * i as u64);
            let epb = EnhancedPacketBlock {
                interface_id: 0,
                timestamp: ts,
                original_len: fr.len() as u32,
                data: std::borrow::Cow::Borrowed(fr),
                options: vec![],
            };
            w.write_pcapng_block(epb).unwrap();
        }
    }
    std::fs::write(path, out).unwrap();
}

/// (method or status code, Call-ID) of each message camcert printed, in
/// `--format json`.
fn camcert_messages(file: &Path) -> Vec<(String, String)> {
    let out = decode(&["--format", "json"], file);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let mut v = Vec::new();
    for line in stdout(&out).lines() {
        let j: serde_json::Value = serde_json::from_str(line).unwrap();
        if j["type"] != "sip" {
            continue;
        }
        let kind = match (&j["method"], &j["status"]) {
            (serde_json::Value::String(m), _) => m.clone(),
            (_, serde_json::Value::Number(n)) => n.to_string(),
            _ => panic!("neither method nor status: {line}"),
        };
        v.push((kind, j["call_id"].as_str().unwrap().to_string()));
    }
    v
}

/// The same pairs as tshark shows them, or `None` without tshark.
fn tshark_messages(file: &Path) -> Option<Vec<(String, String)>> {
    if Command::new("tshark").arg("-v").output().is_err() {
        assert!(
            std::env::var("CAMCERT_INTEROP").is_err(),
            "tshark is required when CAMCERT_INTEROP is set (ci/install-deps.sh installs it)"
        );
        eprintln!("note: tshark is not installed; the comparison with it is skipped");
        return None;
    }
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "tcp.reassemble_out_of_order:TRUE"])
        .args(["-Y", "sip", "-T", "fields", "-E", "occurrence=a"])
        .args([
            "-e",
            "sip.Method",
            "-e",
            "sip.Status-Code",
            "-e",
            "sip.Call-ID",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut v = Vec::new();
    for line in stdout(&out).lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let list = |i: usize| -> Vec<String> {
            cols.get(i)
                .map(|c| {
                    c.split(',')
                        .filter(|s| !s.is_empty())
                        .map(String::from)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (methods, codes, ids) = (list(0), list(1), list(2));
        // Several messages in one frame come as comma-separated lists; the
        // captures here never mix requests and responses in one frame.
        assert!(
            methods.is_empty() || codes.is_empty(),
            "a frame with both requests and responses: {line}"
        );
        let kinds = if methods.is_empty() { codes } else { methods };
        assert_eq!(kinds.len(), ids.len(), "{line}");
        v.extend(kinds.into_iter().zip(ids));
    }
    Some(v)
}

fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort();
    v
}

#[test]
fn reference_pcaps_decode_like_tshark_reads_them() {
    let d = tempfile::tempdir().unwrap();
    for pcap in reference_captures(d.path()) {
        let ours = camcert_messages(&pcap);
        // REGISTER, 401, REGISTER, 200 (the evidence pcap may order the
        // second REGISTER before the 401 it answers: its times are taken
        // where each side recorded), and whatever keepalives (MESSAGE and
        // 200) the case recorded before it ended.
        let kinds: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        let count = |k: &str| kinds.iter().filter(|x| **x == k).count();
        assert_eq!(
            (count("REGISTER"), count("401"), count("200") > 0),
            (2, 1, true),
            "{}: {kinds:?}",
            pcap.display()
        );
        assert_eq!(
            count("200"),
            kinds.len() - 3 - count("MESSAGE"),
            "{kinds:?}"
        );
        let text = stdout(&decode(&[], &pcap));
        assert_eq!(text.lines().count(), ours.len(), "{text}");
        let first = text.lines().next().unwrap();
        assert!(
            first.contains(" REGISTER sip:") && first.contains(" CSeq 1 Call-ID "),
            "{first}"
        );
        assert!(
            text.lines()
                .any(|l| l.contains("401 Unauthorized CSeq 1 REGISTER Call-ID ")),
            "{text}"
        );
        if let Some(theirs) = tshark_messages(&pcap) {
            assert_eq!(ours, theirs, "{}", pcap.display());
        }
    }
}

#[test]
fn split_and_coalesced_tcp_messages_and_rtp() {
    let d = tempfile::tempdir().unwrap();
    let pcap = d.path().join("session.pcap");
    write_pcap(&pcap, &session_frames());
    let ours = camcert_messages(&pcap);
    let want: Vec<(String, String)> = [
        ("REGISTER", "reg-1"),
        ("200", "reg-1"),
        ("INVITE", "inv-1"),
        ("200", "inv-1"),
        ("MESSAGE", "msg-1"),
        ("MESSAGE", "msg-2"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    assert_eq!(ours, want);
    if let Some(theirs) = tshark_messages(&pcap) {
        assert_eq!(sorted(ours), sorted(theirs));
    }

    let text = stdout(&decode(&[], &pcap));
    let invite = text.lines().nth(2).unwrap();
    assert!(
        invite.starts_with("2026-05-28T")
            && invite.contains("192.0.2.20:40000 -> 192.0.2.10:5060 TCP INVITE sip:")
            && invite.ends_with("CSeq 20 Call-ID inv-1"),
        "{invite}"
    );

    let flows = decode(&["--flows"], &pcap);
    let table = stdout(&flows);
    let rtp = table
        .lines()
        .find(|l| l.contains("192.0.2.10:20000 -> 192.0.2.20:30000"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(rtp.starts_with("RTP "), "{rtp}");
    assert!(rtp.contains("RTP SSRC 0x11110001=5"), "{rtp}");
    assert!(rtp.contains("port from SDP"), "{rtp}");
    let sip_tcp = table
        .lines()
        .find(|l| l.contains("192.0.2.10:5060 -> 192.0.2.20:40000"))
        .unwrap();
    assert!(sip_tcp.contains("3 SIP messages"), "{sip_tcp}");

    let json = stdout(&decode(&["--format", "json"], &pcap));
    let lines: Vec<serde_json::Value> = json
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let inv = &lines[2];
    assert_eq!(inv["method"], "INVITE");
    assert_eq!(inv["cseq"], 20);
    assert_eq!(inv["cseq_method"], "INVITE");
    assert_eq!(inv["frame"], 6, "the INVITE completes in the sixth frame");
    assert!(inv["body_length"].as_u64().unwrap() > 100);
    assert!(inv["headers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|h| h[0] == "Content-Type" && h[1] == "application/sdp"));
    let summary = lines.last().unwrap();
    assert_eq!(summary["type"], "summary");
    assert_eq!(summary["frames"], 14);
    assert_eq!(summary["sip_messages"], 6);
    let media = summary["flows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["src"] == "192.0.2.10:20002")
        .unwrap();
    assert_eq!(media["ssrc"]["0x11110002"], 1);
}

#[test]
fn pcapng_reads_like_pcap() {
    let d = tempfile::tempdir().unwrap();
    let frames = session_frames();
    let (a, b) = (d.path().join("s.pcap"), d.path().join("s.pcapng"));
    write_pcap(&a, &frames);
    write_pcapng(&b, &frames);
    let (x, y) = (decode(&[], &a), decode(&[], &b));
    assert_eq!(y.status.code(), Some(0), "{}", stderr(&y));
    assert_eq!(stdout(&x), stdout(&y));
    assert_eq!(stdout(&y).lines().count(), 6);
}

#[test]
fn a_truncated_capture_decodes_its_prefix_and_says_where_it_stopped() {
    let d = tempfile::tempdir().unwrap();
    let full = d.path().join("full.pcap");
    write_pcap(&full, &session_frames());
    let bytes = std::fs::read(&full).unwrap();
    let whole = stdout(&decode(&[], &full));

    // Cut inside the last frame: everything before it still decodes.
    let cut = d.path().join("cut.pcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 30]).unwrap();
    let out = decode(&[], &cut);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = stdout(&out);
    assert_eq!(got.lines().count(), 4, "{got}");
    assert!(
        whole.starts_with(&got),
        "{got}\nis not a prefix of\n{whole}"
    );
    let err = stderr(&out);
    assert!(
        err.contains("reading stopped at byte") && err.contains("after frame 13"),
        "{err}"
    );
    assert!(err.contains("truncated"), "{err}");
    let json = stdout(&decode(&["--format", "json"], &cut));
    let summary: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert_eq!(summary["frames"], 13);
    let off = summary["stopped"]["offset"].as_u64().unwrap() as usize;
    assert!(off < bytes.len() - 30 && off > 24, "{summary}");

    // Cut inside the INVITE's middle segment, which comes last of its three.
    let third_end = 24 + frames_len(&session_frames()[..5]);
    std::fs::write(&cut, &bytes[..third_end + 10]).unwrap();
    let out = decode(&[], &cut);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(stdout(&out).lines().count(), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains(&format!("reading stopped at byte {third_end} ")),
        "{}",
        stderr(&out)
    );

    // Nothing readable at all: exit 2 with the reason.
    for (name, data) in [
        ("header.pcap", &bytes[..12]),
        ("empty.pcap", &bytes[..0]),
        ("text.pcap", &b"REGISTER sip:x SIP/2.0\r\n"[..]),
        ("record.pcap", &bytes[..30]),
    ] {
        let p = d.path().join(name);
        std::fs::write(&p, data).unwrap();
        let out = decode(&[], &p);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stdout(&out));
        assert!(stderr(&out).starts_with("Error: "), "{name}");
    }
}

/// Bytes the pcap records of `frames` take (16-byte record header each).
fn frames_len(frames: &[Vec<u8>]) -> usize {
    frames.iter().map(|f| 16 + f.len()).sum()
}

/// A capture the kernel recorded: `dumpcap -i any` on loopback while the
/// reference peers register (Linux cooked frames, a real TCP handshake,
/// bare ACKs). Skipped with a note where dumpcap is missing or may not
/// capture (CAMCERT_INTEROP=1 makes a missing dumpcap a failure).
#[test]
fn a_loopback_recording_decodes_like_tshark_reads_it() {
    if Command::new("dumpcap").arg("-v").output().is_err() {
        assert!(
            std::env::var("CAMCERT_INTEROP").is_err(),
            "dumpcap is required when CAMCERT_INTEROP is set (ci/install-deps.sh installs it)"
        );
        eprintln!("note: dumpcap is not installed; the loopback recording is skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let rec = d.path().join("lo.pcapng");
    let mut cap = Command::new("dumpcap")
        .args(["-q", "-i", "any", "-f", "host 127.0.0.1 and (udp or tcp)"])
        .args(["-a", "duration:30", "-w"])
        .arg(&rec)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // dumpcap writes its file header once it captures.
    let started = std::time::Instant::now();
    while std::fs::metadata(&rec).map_or(true, |m| m.len() == 0) {
        if let Ok(Some(_)) = cap.try_wait() {
            let out = cap.wait_with_output().unwrap();
            eprintln!(
                "note: dumpcap cannot capture here ({}); the loopback recording is skipped",
                stderr(&out).trim()
            );
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dumpcap never started"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let pcaps = reference_captures(d.path());
    std::thread::sleep(Duration::from_millis(500));
    let _ = Command::new("kill")
        .args(["-INT", &cap.id().to_string()])
        .status();
    let _ = cap.wait();

    // Other processes may use loopback meanwhile: compare the messages of
    // this run's calls (the Call-IDs its own pcaps show).
    let mut own = Vec::new();
    for pcap in pcaps {
        own.extend(camcert_messages(&pcap));
    }
    let ids: std::collections::HashSet<String> = own.iter().map(|(_, id)| id.clone()).collect();
    let mine = |v: Vec<(String, String)>| -> Vec<(String, String)> {
        sorted(v.into_iter().filter(|(_, id)| ids.contains(id)).collect())
    };
    let ours = mine(camcert_messages(&rec));
    assert_eq!(
        ours,
        sorted(own),
        "the recording holds what the run's pcaps hold"
    );
    if let Some(theirs) = tshark_messages(&rec) {
        assert_eq!(ours, mine(theirs));
    }
}

/// A MESSAGE too big for one Ethernet frame, as IPv4 fragments (the last
/// first), as a camera's catalog response often arrives over UDP.
#[test]
fn a_fragmented_udp_message_decodes_like_tshark_reads_it() {
    use etherparse::{EtherType, Ethernet2Header, IpFragOffset, IpNumber, Ipv4Header};
    let body = "<?xml version=\"1.0\"?>\r\n<Response>".to_string()
        + &"<Item><DeviceID>34020000001320000001</DeviceID></Item>".repeat(80)
        + "</Response>\r\n";
    let mut big = sip(
        "MESSAGE sip:34020000002000000001@3402000000 SIP/2.0",
        "catalog-1",
        "9 MESSAGE",
        "",
    );
    // Replace the empty body with the catalog (fix Content-Length).
    let text = String::from_utf8(big).unwrap().replace(
        "Content-Length: 0\r\n\r\n",
        &format!(
            "Content-Type: Application/MANSCDP+xml\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    big = text.into_bytes();
    let whole = frame(CAM, PLT, L4::Udp(5060, 5060), &big);
    let udp = &whole[14 + 20..];
    let step = 1480;
    let mut frames: Vec<Vec<u8>> = udp
        .chunks(step)
        .enumerate()
        .map(|(i, chunk)| {
            let mut h = Ipv4Header::new(chunk.len() as u16, 64, IpNumber::UDP, CAM, PLT).unwrap();
            h.identification = 4242;
            h.more_fragments = (i + 1) * step < udp.len();
            h.fragment_offset = IpFragOffset::try_new((i * step / 8) as u16).unwrap();
            h.header_checksum = h.calc_header_checksum();
            let mut out = Vec::new();
            Ethernet2Header {
                source: [2, 0, 0, 0, 0, 10],
                destination: [2, 0, 0, 0, 0, 20],
                ether_type: EtherType::IPV4,
            }
            .write(&mut out)
            .unwrap();
            h.write(&mut out).unwrap();
            out.extend_from_slice(chunk);
            out
        })
        .collect();
    assert!(frames.len() >= 3);
    let last = frames.pop().unwrap();
    frames.insert(0, last);
    frames.push(frame(
        PLT,
        CAM,
        L4::Udp(5060, 5060),
        &sip("SIP/2.0 200 OK", "catalog-1", "9 MESSAGE", ""),
    ));
    let d = tempfile::tempdir().unwrap();
    let pcap = d.path().join("frag.pcap");
    write_pcap(&pcap, &frames);
    let ours = camcert_messages(&pcap);
    assert_eq!(
        ours,
        [("MESSAGE", "catalog-1"), ("200", "catalog-1")]
            .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    let json = stdout(&decode(&["--format", "json"], &pcap));
    let first: serde_json::Value = serde_json::from_str(json.lines().next().unwrap()).unwrap();
    assert_eq!(first["body_length"], body.len());
    if let Some(theirs) = tshark_messages(&pcap) {
        assert_eq!(sorted(ours), sorted(theirs));
    }
}

/// RTP packets per SSRC (`0x%08x`) as `camcert decode` counts them, all
/// flows together.
fn camcert_rtp(file: &Path) -> std::collections::BTreeMap<String, u64> {
    let out = decode(&["--flows", "--format", "json"], file);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let summary: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let mut m = std::collections::BTreeMap::new();
    for f in summary["flows"].as_array().unwrap() {
        for (ssrc, n) in f["ssrc"].as_object().unwrap() {
            *m.entry(ssrc.clone()).or_insert(0) += n.as_u64().unwrap();
        }
    }
    m
}

/// The same as tshark counts them (RTP found by its heuristic as well as
/// from SDP), or `None` without tshark.
fn tshark_rtp(file: &Path) -> Option<std::collections::BTreeMap<String, u64>> {
    tshark_messages(file)?;
    let out = Command::new("tshark")
        .arg("-r")
        .arg(file)
        .args(["-o", "rtp.heuristic_rtp:TRUE"])
        .args(["-Y", "rtp", "-T", "fields", "-e", "rtp.ssrc"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut m = std::collections::BTreeMap::new();
    for line in stdout(&out).lines().filter(|l| !l.is_empty()) {
        *m.entry(line.trim().to_string()).or_insert(0) += 1;
    }
    Some(m)
}

/// A committed recording: its file, its SIP messages by kind, its RTP
/// packets by SSRC.
type Expected<'a> = (&'a str, &'a str, &'a [(&'a str, u64)]);

/// The recordings `ci/captures.sh` made of real peers on loopback
/// (captures/README.md): what each holds, and where tshark is installed,
/// every SIP message it shows and its RTP packet count per SSRC.
#[test]
fn committed_recordings_decode_like_tshark_reads_them() {
    // File, SIP messages by kind, RTP packets by SSRC.
    let gb = "ACK BYE INVITE MESSAGE*7 REGISTER*4 100 200*11 401*2";
    let want: [Expected; 6] = [
        (
            "sipp-kamailio-register-udp.pcapng",
            "REGISTER*4 200*2 401*2",
            &[],
        ),
        (
            "sipp-kamailio-register-tcp.pcap",
            "REGISTER*4 200*2 401*2",
            &[],
        ),
        (
            "gb28181-camcert-device-platform-udp.pcapng",
            gb,
            &[("0x0bebcd04", 60)],
        ),
        (
            "gb28181-camcert-device-platform-tcp.pcap",
            gb,
            &[("0x0bebcd04", 60)],
        ),
        (
            "gb28181-camcert-faulty-media-udp.pcapng",
            gb,
            &[("0xdeadbeef", 60)],
        ),
        (
            "ffmpeg-rtp-h264-pcma.pcap",
            "",
            &[("0x11223344", 58), ("0x55667788", 16)],
        ),
    ];
    let mut listed: Vec<String> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    listed.sort();
    let mut named: Vec<String> = want.iter().map(|w| w.0.to_string()).collect();
    named.sort();
    assert_eq!(listed, named, "every committed capture is checked here");
    for (name, kinds, rtp) in want {
        let file = root().join("captures").join(name);
        let ours = camcert_messages(&file);
        let mut counts = std::collections::BTreeMap::<String, usize>::new();
        for (k, _) in &ours {
            *counts.entry(k.clone()).or_insert(0) += 1;
        }
        let got: Vec<String> = counts
            .iter()
            .map(|(k, n)| {
                if *n == 1 {
                    k.clone()
                } else {
                    format!("{k}*{n}")
                }
            })
            .collect();
        let mut want_kinds: Vec<&str> = kinds.split_whitespace().collect();
        want_kinds.sort();
        let mut got_sorted: Vec<&str> = got.iter().map(String::as_str).collect();
        got_sorted.sort();
        assert_eq!(got_sorted, want_kinds, "{name}");
        let our_rtp = camcert_rtp(&file);
        let want_rtp: std::collections::BTreeMap<String, u64> =
            rtp.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(our_rtp, want_rtp, "{name}");
        if let Some(theirs) = tshark_messages(&file) {
            assert_eq!(ours, theirs, "{name}: SIP messages");
        }
        if let Some(theirs) = tshark_rtp(&file) {
            assert_eq!(our_rtp, theirs, "{name}: RTP packets per SSRC");
        }
    }
}

/// Golden snapshots (golden/decode/) of what `camcert decode` reads from
/// each committed recording: the one-line view, then every message as
/// `--format json` gives it, then the flows. `INSTA_UPDATE=always cargo
/// test --test decode golden` refreshes them after ci/captures.sh.
#[test]
fn golden_decode_of_the_committed_recordings() {
    let mut s = insta::Settings::clone_current();
    s.set_snapshot_path("../golden/decode");
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let mut names: Vec<String> = std::fs::read_dir(root().join("captures"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".pcap") || n.ends_with(".pcapng"))
        .collect();
    names.sort();
    assert!(names.len() >= 5, "{names:?}");
    for name in names {
        let rel = PathBuf::from("captures").join(&name);
        let text = stdout(&decode(&[], &rel));
        let json = stdout(&decode(&["--format", "json"], &rel));
        let mut shown = format!(
            "# camcert decode {}\n{text}\n# --format json\n",
            rel.display()
        );
        for line in json.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            shown.push_str(&serde_json::to_string_pretty(&v).unwrap());
            shown.push('\n');
        }
        shown.push_str("\n# --flows\n");
        shown.push_str(&stdout(&decode(&["--flows"], &rel)));
        let snap = name.replace('.', "-");
        s.bind(|| insta::assert_snapshot!(snap, shown));
    }
}

#[test]
fn yaml_output_holds_the_json_objects() {
    let file = root().join("captures/gb28181-camcert-device-platform-udp.pcapng");
    let json = decode(&["--format", "json"], &file);
    let yaml = decode(&["--format", "yaml"], &file);
    assert_eq!(yaml.status.code(), Some(0), "{}", stderr(&yaml));
    let objects: Vec<serde_json::Value> = stdout(&json)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let text = stdout(&yaml);
    let docs: Vec<&str> = text.split("---\n").filter(|d| !d.is_empty()).collect();
    assert_eq!(docs.len(), objects.len(), "one document per object");
    for (doc, obj) in docs.iter().zip(&objects) {
        let back: serde_json::Value = serde_saphyr::from_str(doc).unwrap();
        assert_eq!(back["type"], obj["type"]);
        assert_eq!(back["call_id"], obj["call_id"], "{doc}");
        assert_eq!(back["headers"], obj["headers"], "{doc}");
    }
}

#[test]
fn filters_pick_messages_and_flows() {
    let file = root().join("captures/gb28181-camcert-device-platform-udp.pcapng");
    let lines = |args: &[&str]| -> Vec<String> {
        let o = decode(args, &file);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        stdout(&o).lines().map(str::to_string).collect()
    };
    // The session holds two REGISTER exchanges: two 401s.
    let refused = lines(&["--filter", "status == 401"]);
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused.iter().all(|l| l.contains("401 Unauthorized")));
    let invite = lines(&["--filter", "sip.method == INVITE"]);
    assert_eq!(invite.len(), 1, "{invite:?}");
    let call_id = invite[0].rsplit(' ').next().unwrap();
    let dialog = lines(&["--filter", &format!("call_id == {call_id}")]);
    // INVITE, 100, 200, ACK, BYE, 200.
    assert_eq!(dialog.len(), 6, "{dialog:?}");
    // The INVITE's y= picks the INVITE and its answer, written in hex.
    let ssrc = lines(&["--filter", "ssrc == 0x0bebcd04"]);
    assert_eq!(ssrc.len(), 2, "{ssrc:?}");
    assert!(lines(&["--filter", "ssrc == 0x0bebcd05"]).is_empty());
    let catalog = lines(&[
        "--filter",
        "xml.CmdType == Catalog and not method == MESSAGE",
    ]);
    assert!(catalog.is_empty(), "{catalog:?}");
    // Flows: the RTP flow by its SSRC, and the header row.
    let flows = lines(&["--flows", "--filter", "ssrc == 0x0bebcd04"]);
    assert_eq!(flows.len(), 2, "{flows:?}");
    assert!(flows[1].starts_with("RTP "), "{flows:?}");
    // A bad expression is a usage error that says what is wrong.
    let o = decode(&["--filter", "method == "], &file);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("expected a value"), "{}", stderr(&o));
    let o = decode(&["--flows", "--filter", "method == INVITE"], &file);
    assert_eq!(o.status.code(), Some(2));
}
