//! Byte-literal tests: the spec's own samples, GB2312 round trips, lenient
//! readings, reply constructors, paging and malformed input.

use super::spec_samples as s;
use super::*;

/// Decode a sample as it travels on the wire: in the encoding it declares.
fn decode(text: &str) -> Decoded {
    let bytes = if text.contains("encoding=\"GB2312\"") {
        gb(text)
    } else {
        text.as_bytes().to_vec()
    };
    Message::decode(&bytes).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn codes(d: &Decoded) -> Vec<FindingCode> {
    d.findings
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect()
}

fn gb(text: &str) -> Vec<u8> {
    let (b, _, unmappable) = encoding_rs::GBK.encode(text);
    assert!(!unmappable);
    b.into_owned()
}

/// Decoding then encoding in the decoded charset is a fixpoint after one step.
fn assert_stable(d: &Decoded) {
    let once = d.message.encode(d.charset);
    let again = Message::decode(&once).unwrap();
    assert_eq!(again.message, d.message);
    assert_eq!(again.message.encode(again.charset), once);
}

#[test]
fn spec_keepalive() {
    let d = decode(s::KEEPALIVE);
    assert_eq!(
        codes(&d),
        vec![
            FindingCode::DeclarationWithoutEncoding,
            FindingCode::DeviceIdFormat
        ]
    );
    assert_eq!(d.charset, Charset::Utf8);
    assert_eq!(d.message.root, Root::Notify);
    assert_eq!(d.message.cmd_type, Some(CmdType::Keepalive));
    assert_eq!(d.message.sn, Some(2749));
    assert_eq!(d.message.device_id.as_deref(), Some("130909113319427420"));
    assert_eq!(
        d.message.body,
        Body::Keepalive(KeepaliveNotify::new(ResultType::Ok))
    );
    assert_stable(&d);
}

#[test]
fn spec_catalog_query_and_response_flow() {
    let q = decode(s::CATALOG_QUERY_FLOW);
    assert_eq!(codes(&q), vec![FindingCode::DeviceIdFormat]);
    assert_eq!(q.charset, Charset::Gb2312);
    assert!(matches!(q.message.body, Body::CatalogQuery(_)));

    let r = decode(s::CATALOG_RESPONSE_FLOW);
    assert!(r.findings.is_empty(), "{:?}", r.findings);
    let Body::CatalogResponse(list) = &r.message.body else {
        panic!("{:?}", r.message.body)
    };
    assert_eq!(list.sum_num, Some(1));
    let item = &list.items()[0];
    assert_eq!(item.device_id.as_deref(), Some("62010201001320000393"));
    assert_eq!(item.name.as_deref(), Some("Camera 01"));
    assert_eq!(item.manufacturer.as_deref(), Some("Hikvision"));
    assert_eq!(item.civil_code.as_deref(), Some("5100000000"));
    assert_eq!(item.parental, Some(0));
    assert_eq!(item.parent_id.as_deref(), Some("51000000002000000001"));
    assert_eq!(item.safety_way, Some(0));
    assert_eq!(item.register_way, Some(1));
    assert_eq!(item.secrecy, Some(0));
    assert_eq!(item.status, Some(OnOff::On));
    assert!(item.is_device());
    assert_eq!(
        r.message.get("DeviceList/Item[0]/Name").as_deref(),
        Some("Camera 01")
    );
    assert_eq!(r.message.get("DeviceList@Num").as_deref(), Some("1"));
    assert_eq!(r.tree.get("DeviceList/Item[0]/Owner"), Some("Owner"));
    // Erratum query-response-sn: the flow's response does not echo the query.
    let mut c = CatalogCollector::for_query(&q.message);
    assert_eq!(c.push(&r.message), Progress::Complete { received: 1 });
    assert_eq!(c.findings()[0].code, FindingCode::SnMismatch);
    assert_stable(&r);
}

#[test]
fn spec_catalog_formats_with_broken_comments() {
    let q = decode(s::CATALOG_QUERY_FORMAT);
    assert_eq!(codes(&q), vec![FindingCode::MalformedComment]);
    assert_eq!(q.message.sn, Some(1708));
    // The document itself is UTF-8: its bytes contradict the declaration.
    let raw = Message::decode(s::CATALOG_QUERY_FORMAT.as_bytes()).unwrap();
    assert_eq!(
        raw.findings.iter().map(|f| f.code).collect::<Vec<_>>(),
        vec![FindingCode::EncodingMismatch, FindingCode::MalformedComment]
    );
    assert_eq!(raw.message, q.message);

    let r = decode(s::CATALOG_RESPONSE_FORMAT);
    assert_eq!(
        codes(&r),
        vec![FindingCode::MalformedComment, FindingCode::StrayText]
    );
    assert_eq!(r.findings[1].path(), "Response/DeviceList/Item");
    assert_eq!(
        r.message.get("DeviceList/Item[0]/Status").as_deref(),
        Some("ON")
    );
    assert_stable(&r);
}

#[test]
fn spec_device_info() {
    let q = decode(s::DEVICE_INFO_QUERY);
    assert_eq!(codes(&q), vec![FindingCode::MalformedComment]);
    assert!(matches!(q.message.body, Body::DeviceInfoQuery(_)));

    // Erratum deviceinfo-response-cmdtype.
    let r = decode(s::DEVICE_INFO_RESPONSE);
    assert!(r.has(FindingCode::BodyMismatch));
    assert!(r.has(FindingCode::MissingField));
    assert!(r.has(FindingCode::UnknownElement));
    assert_eq!(r.message.cmd_type, Some(CmdType::Catalog));
    let Body::DeviceInfoResponse(info) = &r.message.body else {
        panic!("{:?}", r.message.body)
    };
    assert_eq!(info.manufacturer.as_deref(), Some("Hikvision"));
    assert_eq!(info.model.as_deref(), Some("IP Camera"));
    assert_eq!(info.result, None);
    assert_eq!(info.extras[0].name, "Name");
    assert_stable(&r);
}

#[test]
fn spec_device_status() {
    assert_eq!(
        codes(&decode(s::DEVICE_STATUS_QUERY)),
        vec![FindingCode::MalformedComment]
    );
    // Erratum devicestatus-response-cmdtype.
    let r = decode(s::DEVICE_STATUS_RESPONSE);
    assert_eq!(
        codes(&r),
        vec![
            FindingCode::MalformedComment,
            FindingCode::BodyMismatch,
            FindingCode::DeviceIdFormat
        ]
    );
    let Body::DeviceStatusResponse(st) = &r.message.body else {
        panic!("{:?}", r.message.body)
    };
    assert_eq!(st.result, Some(ResultType::Ok));
    assert_eq!(st.online, Some(Online::Online));
    assert_eq!(st.status, Some(ResultType::Ok));
    assert_eq!(st.device_time.as_deref(), Some("2023-09-15T21:30:15"));
    assert_eq!(st.encode, Some(OnOff::On));
    assert_eq!(st.record, Some(OnOff::Off));
    let alarms = st.alarm_status.as_ref().unwrap();
    assert_eq!((alarms.num, alarms.items.len()), (Some(0), 0));
    assert_stable(&r);
}

#[test]
fn spec_ptz_control_and_reply() {
    let d = decode(s::PTZ_CONTROL);
    assert_eq!(codes(&d), vec![FindingCode::DeviceIdFormat]);
    let Body::DeviceControl(ctl) = &d.message.body else {
        panic!()
    };
    assert_eq!(
        ctl.ptz().unwrap().unwrap(),
        super::super::ptz::PtzCmd::motion(super::super::ptz::Direction::Up, 0xFA)
    );
    assert!(!ctl.expects_reply());

    // Erratum control-reply-root.
    let r = decode(s::CONTROL_REPLY);
    assert_eq!(
        codes(&r),
        vec![
            FindingCode::RootMismatch,
            FindingCode::ValueOutOfSet,
            FindingCode::DeviceIdFormat
        ]
    );
    assert_eq!(r.message.root, Root::Control);
    assert_eq!(
        r.message.body,
        Body::DeviceControlResponse(ResultResponse {
            result: Some(ResultType::Other("...".into())),
            extras: vec![]
        })
    );
    assert_stable(&r);
}

#[test]
fn spec_record_info() {
    let q = decode(s::RECORD_INFO_QUERY);
    assert_eq!(codes(&q), vec![FindingCode::DeviceIdFormat]);
    let Body::RecordInfoQuery(rq) = &q.message.body else {
        panic!()
    };
    assert_eq!(rq.start_time.as_deref(), Some("2023-10-14T00:00:00"));
    assert_eq!(rq.file_path.as_deref(), Some(""));
    assert_eq!(rq.record_type, Some(RecordType::All));
    assert_eq!(rq.recorder_id.as_deref(), Some("all"));

    let r = decode(s::RECORD_INFO_RESPONSE);
    assert_eq!(
        codes(&r),
        vec![FindingCode::DeviceIdFormat, FindingCode::DeviceIdFormat]
    );
    assert_eq!(r.message.sn, Some(17430));
    let Body::RecordInfoResponse(rr) = &r.message.body else {
        panic!()
    };
    assert_eq!(rr.name.as_deref(), Some("Camera 01"));
    assert_eq!(rr.items()[0].file_size, Some(19396096));
    assert_eq!(rr.items()[0].record_type, Some(RecordType::Time));
    assert_eq!(
        r.message.get("RecordList/Item[0]/EndTime").as_deref(),
        Some("2023-10-14T14:31:28")
    );
    assert_stable(&r);
}

#[test]
fn spec_media_status_and_broadcast() {
    let m = decode(s::MEDIA_STATUS);
    assert_eq!(codes(&m), vec![FindingCode::DeviceIdFormat]);
    assert_eq!(
        m.message.body,
        Body::MediaStatus(MediaStatusNotify::end_of_file())
    );

    let b = decode(s::BROADCAST_NOTIFY);
    assert_eq!(
        codes(&b),
        vec![FindingCode::DeviceIdFormat, FindingCode::DeviceIdFormat]
    );
    assert_eq!(b.message.device_id, None);
    let reply = b.message.reply_result(ResultType::Ok);
    assert_eq!(reply.device_id.as_deref(), Some("xxx"));
    assert_eq!(reply.sn, Some(130));

    let r = decode(s::BROADCAST_RESPONSE);
    assert_eq!(codes(&r), vec![FindingCode::DeviceIdFormat]);
    assert_eq!(r.message, reply);
    assert_stable(&b);
    assert_stable(&r);
}

#[test]
fn spec_alarm() {
    let q = decode(s::ALARM_SUBSCRIBE);
    assert_eq!(
        codes(&q),
        vec![
            FindingCode::ElementAlias,
            FindingCode::ElementAlias,
            FindingCode::DeviceIdFormat
        ]
    );
    let Body::AlarmQuery(aq) = &q.message.body else {
        panic!()
    };
    assert_eq!(aq.start_alarm_priority, Some(0));
    assert_eq!(aq.end_alarm_priority, Some(0));
    assert_eq!(q.message.get("StartAlarmPriority").as_deref(), Some("0"));

    let n = decode(s::ALARM_NOTIFY);
    for c in [
        FindingCode::DeclarationNotAtStart,
        FindingCode::InvalidStandalone,
        FindingCode::StrayText,
        FindingCode::TrailingContent,
        FindingCode::UnknownElement,
        FindingCode::DeviceIdFormat,
    ] {
        assert!(n.has(c), "{c} missing from {:?}", n.findings);
    }
    let Body::AlarmNotify(a) = &n.message.body else {
        panic!()
    };
    assert_eq!(a.alarm_priority, Some(1));
    assert_eq!(a.alarm_method, Some(5));
    assert_eq!(a.alarm_description.as_deref(), Some("视频动检"));
    let info = a.info.as_ref().unwrap();
    assert_eq!(info.alarm_type, Some(2));
    assert_eq!(info.alarm_type_param.as_ref().unwrap().event_type, Some(1));
    assert_eq!(a.extras[0], Element::leaf("AlarmInfo", "11"));

    let r = decode(s::ALARM_RESPONSE);
    assert_eq!(codes(&r), vec![FindingCode::DeviceIdFormat]);
    assert_eq!(r.message, n.message.reply_result(ResultType::Ok));
}

#[test]
fn every_spec_sample_is_stable() {
    for text in [
        s::KEEPALIVE,
        s::CATALOG_QUERY_FLOW,
        s::CATALOG_RESPONSE_FLOW,
        s::CATALOG_QUERY_FORMAT,
        s::CATALOG_RESPONSE_FORMAT,
        s::DEVICE_INFO_QUERY,
        s::DEVICE_INFO_RESPONSE,
        s::DEVICE_STATUS_QUERY,
        s::DEVICE_STATUS_RESPONSE,
        s::PTZ_CONTROL,
        s::CONTROL_REPLY,
        s::RECORD_INFO_QUERY,
        s::RECORD_INFO_RESPONSE,
        s::MEDIA_STATUS,
        s::BROADCAST_NOTIFY,
        s::BROADCAST_RESPONSE,
        s::ALARM_SUBSCRIBE,
        s::ALARM_NOTIFY,
        s::ALARM_RESPONSE,
    ] {
        assert_stable(&decode(text));
    }
}

const CANONICAL_GB: &str = "<?xml version=\"1.0\" encoding=\"GB2312\"?>
<Response>
    <CmdType>Catalog</CmdType>
    <SN>17</SN>
    <DeviceID>34020000001320000001</DeviceID>
    <SumNum>2</SumNum>
    <DeviceList Num=\"1\">
        <Item>
            <DeviceID>34020000001320000001</DeviceID>
            <Name>前门摄像机</Name>
            <Manufacturer>海康威视</Manufacturer>
            <Model>IPC-1</Model>
            <Owner>Owner</Owner>
            <CivilCode>3402000000</CivilCode>
            <Address>北京市 东门 &amp; 西门</Address>
            <Parental>0</Parental>
            <ParentID>34020000002000000001</ParentID>
            <SafetyWay>0</SafetyWay>
            <RegisterWay>1</RegisterWay>
            <Secrecy>0</Secrecy>
            <Status>ON</Status>
            <Longitude>116.397128</Longitude>
            <Latitude>39.916527</Latitude>
            <VendorExtension>保留</VendorExtension>
        </Item>
    </DeviceList>
</Response>
";

#[test]
fn gb2312_canonical_bytes_round_trip_exactly() {
    let bytes = gb(CANONICAL_GB);
    let d = Message::decode(&bytes).unwrap();
    assert!(
        d.findings
            .iter()
            .all(|f| f.code == FindingCode::UnknownElement),
        "{:?}",
        d.findings
    );
    assert_eq!(d.charset, Charset::Gb2312);
    assert_eq!(
        d.message.get("DeviceList/Item[0]/Name").as_deref(),
        Some("前门摄像机")
    );
    assert_eq!(
        d.message.get("DeviceList/Item[0]/Address").as_deref(),
        Some("北京市 东门 & 西门")
    );
    assert_eq!(
        d.message
            .get("DeviceList/Item[0]/VendorExtension")
            .as_deref(),
        Some("保留")
    );
    assert_eq!(d.message.encode(Charset::Gb2312), bytes);
    // The same message in UTF-8 is the same text with another declaration.
    let utf = d.message.encode(Charset::Utf8);
    assert_eq!(
        String::from_utf8(utf).unwrap(),
        CANONICAL_GB.replace("GB2312", "UTF-8")
    );
}

#[test]
fn gb2312_output_is_really_gb2312() {
    let mut m = Message::keepalive(1, "34020000001320000001", ResultType::Ok);
    if let Body::Keepalive(k) = &mut m.body {
        k.extras.push(Element::leaf("Note", "前门摄像机 € 😀 龘"));
    }
    let bytes = m.encode(Charset::Gb2312);
    assert!(bytes.windows(8).any(|w| w == b"&#x20AC;"));
    assert!(bytes.windows(9).any(|w| w == b"&#x1F600;"));
    let name = gb("前门摄像机");
    assert!(bytes.windows(name.len()).any(|w| w == name.as_slice()));
    let back = Message::decode(&bytes).unwrap();
    assert_eq!(back.message, m);
    assert_eq!(back.charset, Charset::Gb2312);
    // GBK and GB18030 keep more characters as bytes.
    for cs in [Charset::Gbk, Charset::Gb18030, Charset::Utf8] {
        let b = m.encode(cs);
        let d = Message::decode(&b).unwrap();
        assert_eq!(d.message, m, "{cs:?}");
        assert_eq!(d.charset, cs);
    }
}

#[test]
fn declared_gb2312_but_utf8_bytes() {
    let text = CANONICAL_GB;
    let d = Message::decode(text.as_bytes()).unwrap();
    assert!(d.has(FindingCode::EncodingMismatch));
    assert_eq!(d.charset, Charset::Utf8);
    assert_eq!(d.declared_encoding.as_deref(), Some("GB2312"));
    assert_eq!(
        d.message.get("DeviceList/Item[0]/Name").as_deref(),
        Some("前门摄像机")
    );
}

#[test]
fn declared_utf8_but_gb_bytes() {
    let bytes = gb(&CANONICAL_GB.replace("GB2312", "UTF-8"));
    let d = Message::decode(&bytes).unwrap();
    assert!(d.has(FindingCode::EncodingMismatch));
    assert_eq!(
        d.message.get("DeviceList/Item[0]/Name").as_deref(),
        Some("前门摄像机")
    );
}

#[test]
fn lower_case_and_alias_labels() {
    let text = "<?xml version=\"1.0\" encoding=\"gb2312\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status></Notify>";
    let d = Message::decode(&gb(text)).unwrap();
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(d.charset, Charset::Gb2312);
    let unknown = text.replace("gb2312", "ISO-8859-1");
    let d = Message::decode(unknown.as_bytes()).unwrap();
    assert!(d.has(FindingCode::UnsupportedEncoding));
}

#[test]
fn lenient_names_and_values() {
    let text = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>
<response>
<cmdtype>devicestatus</cmdtype>
<SN>abc</SN>
<deviceid>34020000001320000001</deviceid>
<Result>ok</Result>
<Online>ONLINE</Online>
<Status>OK</Status>
<AlarmStatus Num=\"2\"><Item><DeviceID>34020000001340000001</DeviceID><DutyStatus>ONDUTY</DutyStatus></Item></AlarmStatus>
<Result>ERROR</Result>
</response>";
    let d = decode(text);
    let c = codes(&d);
    for want in [
        FindingCode::RootNameCase,
        FindingCode::ElementNameCase,
        FindingCode::CmdTypeCase,
        FindingCode::SnNotNumeric,
        FindingCode::ValueCase,
        FindingCode::ListNumMismatch,
        FindingCode::DuplicateElement,
    ] {
        assert!(c.contains(&want), "{want} missing: {c:?}");
    }
    assert!(!c.contains(&FindingCode::MissingSn));
    assert_eq!(d.message.root, Root::Response);
    assert_eq!(d.message.cmd_type, Some(CmdType::DeviceStatus));
    assert_eq!(d.message.sn, None);
    let Body::DeviceStatusResponse(st) = &d.message.body else {
        panic!("{:?}", d.message.body)
    };
    assert_eq!(st.result, Some(ResultType::Ok));
    assert_eq!(st.alarm_status.as_ref().unwrap().items.len(), 1);
    // Nothing lost: the bad SN and the second Result are kept.
    let names: Vec<_> = st.extras.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, vec!["SN", "Result"]);
    let enc = String::from_utf8(d.message.encode(Charset::Utf8)).unwrap();
    assert!(enc.contains("<SN>abc</SN>"));
    assert!(enc.contains("<Alarmstatus Num=\"2\">"));
}

#[test]
fn iframe_alias_and_missing_header() {
    let d = decode("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Control><CmdType>DeviceControl</CmdType><IFrameCmd>Send</IFrameCmd></Control>");
    let c = codes(&d);
    assert!(c.contains(&FindingCode::ElementAlias));
    assert!(c.contains(&FindingCode::MissingSn));
    assert!(c.contains(&FindingCode::MissingDeviceId));
    let Body::DeviceControl(ctl) = &d.message.body else {
        panic!()
    };
    assert_eq!(ctl.i_frame_cmd, Some(IFrameCmd::Send));
    assert!(String::from_utf8(d.message.encode(Charset::Utf8))
        .unwrap()
        .contains("<IFameCmd>Send</IFameCmd>"));

    let d = decode("<Notify><SN>0</SN><DeviceID>34020000001320000001</DeviceID></Notify>");
    let c = codes(&d);
    assert!(c.contains(&FindingCode::MissingDeclaration));
    assert!(c.contains(&FindingCode::MissingCmdType));
    assert!(c.contains(&FindingCode::SnOutOfRange));
    assert!(matches!(d.message.body, Body::Other(_)));
}

#[test]
fn invalid_ptz_cmd_is_a_finding() {
    let d = decode("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><PTZCmd>A50F010800FA00B8</PTZCmd></Control>");
    assert_eq!(codes(&d), vec![FindingCode::InvalidPtzCmd]);
    assert!(d.findings[0].message.contains("expected B7"));
    let d = decode("<?xml version=\"1.0\" encoding=\"UTF-8\"?><Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><PTZCmd>a50f010800fa00b7</PTZCmd></Control>");
    assert_eq!(codes(&d), vec![FindingCode::PtzHexCase]);
    assert_eq!(d.findings[0].path(), "Control/PTZCmd");
}

#[test]
fn snapshot_config_rules() {
    let mut m = Message::new(
        5,
        "34020000001320000001",
        Body::DeviceConfig(DeviceConfig {
            snap_shot_config: Some(SnapShotConfig {
                snap_num: Some(11),
                interval: Some(0),
                upload_url: Some("http://192.168.1.121/uploadsnapshot?token=xxx&a=b".into()),
                session_id: Some("short".into()),
                extras: vec![],
            }),
            ..DeviceConfig::default()
        }),
    );
    let c: Vec<_> = m
        .validate()
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect();
    assert_eq!(
        c,
        vec![
            FindingCode::SnapNumRange,
            FindingCode::SnapIntervalRange,
            FindingCode::SessionIdFormat
        ]
    );
    let d = Message::decode(&m.encode(Charset::Utf8)).unwrap();
    assert_eq!(d.message, m);
    if let Body::DeviceConfig(cfg) = &mut m.body {
        let s = cfg.snap_shot_config.as_mut().unwrap();
        s.snap_num = Some(1);
        s.interval = Some(1);
        s.session_id = Some("a".repeat(16) + "-" + &"B9".repeat(8));
    }
    assert!(m.validate().is_empty(), "{:?}", m.validate());
}

#[test]
fn upload_snapshot_finished_elements_and_json() {
    let xml = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Notify><CmdType>UploadSnapShotFinished</CmdType><SN>9</SN><DeviceID>34020000001320000001</DeviceID><SessionID>0123456789abcdef0123456789abcdef</SessionID><SnapShotList><SnapShotFileID>f1</SnapShotFileID><SnapShotFileID>f2</SnapShotFileID></SnapShotList></Notify>";
    let d = decode(xml);
    assert!(d.findings.is_empty(), "{:?}", d.findings);
    assert_eq!(
        d.message.get("SnapShotList/SnapShotFileID[1]").as_deref(),
        Some("f2")
    );
    assert_eq!(d.message.count("SnapShotList/SnapShotFileID"), 2);

    let json = "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Notify><CmdType>UploadSnapShotFinished</CmdType><SN>9</SN><DeviceID>34020000001320000001</DeviceID><SessionID>0123456789abcdef0123456789abcdef</SessionID><SnapShotList>[{\"SnapShotFileID\":\"f1\"},{\"SnapShotFileID\":\"f2\"}]</SnapShotList></Notify>";
    let j = decode(json);
    assert_eq!(codes(&j), vec![FindingCode::SnapShotListJson]);
    assert_eq!(j.message, d.message);
}

#[test]
fn keepalive_fault_list() {
    let d = decode("<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Keepalive</CmdType><SN>3</SN><DeviceID>34020000001320000001</DeviceID><Status>ERROR</Status><Info><DeviceID>34020000001310000001</DeviceID><DeviceID>bad</DeviceID></Info></Notify>");
    assert_eq!(codes(&d), vec![FindingCode::DeviceIdFormat]);
    assert_eq!(d.findings[0].path(), "Notify/Info/DeviceID[1]");
    let Body::Keepalive(k) = &d.message.body else {
        panic!()
    };
    assert_eq!(k.status, Some(ResultType::Error));
    assert_eq!(k.info.as_ref().unwrap().device_ids.len(), 2);
    assert_eq!(d.message.get("Info/DeviceID[1]").as_deref(), Some("bad"));
}

#[test]
fn reply_echoes_sn_device_and_cmd() {
    let q = Message::query(CmdType::DeviceInfo, 42, "34020000001320000001");
    let r = q.reply(Body::DeviceInfoResponse(DeviceInfoResponse {
        result: Some(ResultType::Ok),
        device_name: Some("前门".into()),
        channel: Some(1),
        ..DeviceInfoResponse::default()
    }));
    assert_eq!(r.root, Root::Response);
    assert_eq!(r.cmd_type, Some(CmdType::DeviceInfo));
    assert_eq!(r.sn, Some(42));
    assert_eq!(r.device_id, q.device_id);
    assert!(r.validate().is_empty());
    let ctl = Message::new(
        7,
        "34020000001320000001",
        Body::DeviceControl(DeviceControl {
            guard_cmd: Some(GuardCmd::SetGuard),
            ..DeviceControl::default()
        }),
    );
    let Body::DeviceControl(c) = &ctl.body else {
        panic!()
    };
    assert!(c.expects_reply());
    let rr = ctl.reply_result(ResultType::Ok);
    assert_eq!(
        rr.body,
        Body::DeviceControlResponse(ResultResponse::new(ResultType::Ok))
    );
    assert_eq!(
        String::from_utf8(rr.encode(Charset::Utf8)).unwrap(),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response>\n    <CmdType>DeviceControl</CmdType>\n    <SN>7</SN>\n    <DeviceID>34020000001320000001</DeviceID>\n    <Result>OK</Result>\n</Response>\n"
    );
}

fn items(n: usize) -> Vec<CatalogItem> {
    (0..n)
        .map(|i| CatalogItem::new(format!("340200000013200{i:05}"), format!("通道{i}")))
        .collect()
}

#[test]
fn catalog_split_and_collect() {
    let q = Message::query(CmdType::Catalog, 99, "34020000002000000001");
    let pages = catalog_pages(&q, &items(7), 3);
    assert_eq!(pages.len(), 3);
    let nums: Vec<_> = pages
        .iter()
        .map(|p| (p.get("SumNum").unwrap(), p.get("DeviceList@Num").unwrap()))
        .collect();
    assert_eq!(
        nums,
        vec![
            ("7".into(), "3".into()),
            ("7".into(), "3".into()),
            ("7".into(), "1".into())
        ]
    );
    let mut c = CatalogCollector::for_query(&q);
    assert_eq!(
        c.push(&pages[0]),
        Progress::Pending {
            received: 3,
            expected: Some(7)
        }
    );
    c.push(&pages[1]);
    assert_eq!(c.push(&pages[2]), Progress::Complete { received: 7 });
    assert!(c.findings().is_empty());
    let (all, findings) = c.finish();
    assert_eq!(all, items(7));
    assert!(findings.is_empty());

    let empty = catalog_pages(&q, &[], 10);
    assert_eq!(empty.len(), 1);
    assert_eq!(empty[0].get("SumNum").as_deref(), Some("0"));
    let mut c = CatalogCollector::for_query(&q);
    assert_eq!(c.push(&empty[0]), Progress::Complete { received: 0 });
}

#[test]
fn collector_reports_every_mismatch() {
    let q = Message::query(CmdType::Catalog, 99, "34020000002000000001");
    let mut pages = catalog_pages(&q, &items(4), 2);
    // Page 0: Num says 3 for 2 items. Page 1: SumNum changes, wrong SN, repeats item 0.
    if let Body::CatalogResponse(l) = &mut pages[0].body {
        l.device_list.as_mut().unwrap().num = Some(3);
    }
    if let Body::CatalogResponse(l) = &mut pages[1].body {
        l.sum_num = Some(5);
        l.device_list.as_mut().unwrap().items[0] = items(1).remove(0);
    }
    pages[1].sn = Some(100);
    let mut c = CatalogCollector::for_query(&q);
    c.push(&pages[0]);
    c.push(&pages[1]);
    c.push(&Message::keepalive(
        1,
        "34020000002000000001",
        ResultType::Ok,
    ));
    let (got, findings) = c.finish();
    assert_eq!(got.len(), 3);
    let codes: Vec<_> = findings
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect();
    assert_eq!(
        codes,
        vec![
            FindingCode::ListNumMismatch,
            FindingCode::SnMismatch,
            FindingCode::SumNumChanged,
            FindingCode::DuplicateItem,
            FindingCode::UnexpectedMessage,
            FindingCode::Incomplete,
        ]
    );

    // Overflow: more unique items than SumNum, and a page after completion.
    let mut pages = catalog_pages(&q, &items(3), 2);
    if let Body::CatalogResponse(l) = &mut pages[0].body {
        l.sum_num = Some(1);
    }
    let mut c = CatalogCollector::new();
    assert_eq!(c.push(&pages[0]), Progress::Complete { received: 2 });
    c.push(&pages[1]);
    let codes: Vec<_> = c
        .findings()
        .iter()
        .map(|f| FindingCode::from_code(f.code).expect("a known code"))
        .collect();
    assert_eq!(
        codes,
        vec![
            FindingCode::Overflow,
            FindingCode::Overflow,
            FindingCode::SumNumChanged
        ]
    );
}

#[test]
fn record_info_split_and_collect() {
    let q = Message::new(
        5,
        "34020000001320000001",
        Body::RecordInfoQuery(RecordInfoQuery {
            start_time: Some("2023-10-14T00:00:00".into()),
            end_time: Some("2023-10-14T23:00:00".into()),
            record_type: Some(RecordType::All),
            ..RecordInfoQuery::default()
        }),
    );
    assert!(q.validate().is_empty());
    let recs: Vec<RecordItem> = (0..5)
        .map(|i| RecordItem {
            device_id: Some("34020000001320000001".into()),
            name: Some("前门摄像机".into()),
            start_time: Some(format!("2023-10-14T0{i}:00:00")),
            end_time: Some(format!("2023-10-14T0{i}:30:00")),
            record_type: Some(RecordType::Time),
            file_size: Some(1 << 33),
            ..RecordItem::default()
        })
        .collect();
    let pages = record_info_pages(&q, Some("前门摄像机"), &recs, 2);
    assert_eq!(pages.len(), 3);
    let mut c = RecordInfoCollector::for_query(&q);
    for p in &pages {
        let bytes = p.encode(Charset::Gb2312);
        let d = Message::decode(&bytes).unwrap();
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        c.push(&d.message);
    }
    assert!(c.is_complete());
    assert_eq!(c.items(), recs.as_slice());
}

#[test]
fn malformed_bodies_are_errors() {
    let cases: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"\xff\xfe\x00garbage\x81".to_vec(),
        b"<?xml version=\"1.0\"?>".to_vec(),
        b"<?xml version=\"1.0\" encoding=\"GB2312\"?><Query><CmdType>Catalog</CmdType><SN>1"
            .to_vec(),
        b"<?xml version=\"1.0\"?><Request><CmdType>Catalog</CmdType></Request>".to_vec(),
        b"<Query><CmdType>Catalog</CmdType></Response>".to_vec(),
        b"<Query><SN>1</SN></Query><Query/>".to_vec(),
        b"<Query a=\"1\" a=\"2\"/>".to_vec(),
        b"<Query><SN>&#0;</SN></Query>".to_vec(),
        b"plain text".to_vec(),
    ];
    for c in cases {
        assert!(
            Message::decode(&c).is_err(),
            "{:?}",
            String::from_utf8_lossy(&c)
        );
    }
    assert_eq!(
        Message::decode(b"<?xml version=\"1.0\"?><Request/>").unwrap_err(),
        DecodeError::UnknownRoot {
            name: "Request".into()
        }
    );
}

#[test]
fn every_truncation_of_a_valid_body_fails_cleanly() {
    let full = gb(CANONICAL_GB);
    let root_end = full.len() - "</Response>\n".len();
    for n in 0..full.len() {
        let r = Message::decode(&full[..n]);
        if n < root_end {
            assert!(r.is_err(), "prefix of {n} bytes decoded");
        }
    }
}

#[test]
fn errata_ids_are_unique_and_documented() {
    let mut ids: Vec<_> = ERRATA
        .iter()
        .chain(super::super::ptz::ERRATA)
        .map(|e| e.id)
        .collect();
    let n = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), n);
    for code in FindingCode::ALL {
        assert!(!code.clause().is_empty());
        let name = code.as_str().strip_prefix("manscdp.").expect("namespaced");
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
            "{name}"
        );
        assert_eq!(FindingCode::from_code(code.as_str()), Some(*code));
    }
}

/// Every clause a MANSCDP finding can carry names a section that exists in
/// the GB/T 28181 text (or the cascade text, or an external standard).
#[test]
fn every_finding_clause_names_a_section_that_exists() {
    use crate::finding::{resolves, section};
    let consts = [
        finding::CLAUSE_DECL,
        finding::CLAUSE_SN,
        finding::CLAUSE_DEVICE_ID,
        finding::CLAUSE_CMDTYPE,
        finding::CLAUSE_NUM,
        finding::CLAUSE_ACCUMULATE,
        finding::CLAUSE_CONTENT_TYPE,
        finding::CLAUSE_NAMES,
        finding::CLAUSE_DEVICEINFO_BODY,
        finding::CLAUSE_SNAPSHOT,
        finding::CLAUSE_DECL_VERSION,
        finding::CLAUSE_FIELDS,
        finding::CLAUSE_ANSWER,
        catalog::CLAUSE_ITEM,
        catalog::CLAUSE_ITEM_DEVICE,
        device::CLAUSE_KEEPALIVE,
        device::CLAUSE_DEVICE_STATUS,
        device::CLAUSE_DEVICE_INFO,
        device::CLAUSE_CONFIG,
        notify::CLAUSE_ALARM,
        notify::CLAUSE_RESULT,
        notify::CLAUSE_BROADCAST,
        notify::CLAUSE_MEDIA_STATUS,
        notify::CLAUSE_UPLOAD,
        record::CLAUSE_QUERY,
        record::CLAUSE_RESPONSE,
    ];
    let defaults = FindingCode::ALL.iter().map(|c| c.clause());
    for c in consts.into_iter().chain(defaults) {
        assert!(
            resolves(c),
            "{c:?} names no known section ({:?})",
            section(c)
        );
    }
    // And what the decoder actually attaches, across the spec's samples.
    for text in [
        s::KEEPALIVE,
        s::CATALOG_RESPONSE_FLOW,
        s::DEVICE_INFO_RESPONSE,
        s::DEVICE_STATUS_RESPONSE,
        s::CONTROL_REPLY,
        s::RECORD_INFO_RESPONSE,
        s::BROADCAST_RESPONSE,
        s::ALARM_NOTIFY,
    ] {
        for f in &decode(text).findings {
            assert!(resolves(&f.clause), "{}: {:?}", f.code, f.clause);
        }
    }
}

/// A DeviceInfo answer sent with CmdType Catalog cites the DeviceInfo
/// response format, a DeviceStatus one the DeviceStatus format.
#[test]
fn body_mismatch_cites_the_answer_it_reads() {
    let info = decode(s::DEVICE_INFO_RESPONSE);
    let f = info
        .findings
        .iter()
        .find(|f| f.code == FindingCode::BodyMismatch)
        .expect("body mismatch");
    assert_eq!(f.section(), Some("设备信息查询响应格式"));
    assert!(
        f.message.contains("expected CmdType DeviceInfo"),
        "{}",
        f.message
    );
    let status = decode(s::DEVICE_STATUS_RESPONSE);
    let f = status
        .findings
        .iter()
        .find(|f| f.code == FindingCode::BodyMismatch)
        .expect("body mismatch");
    assert_eq!(f.section(), Some("设备状态响应格式"));
}

#[test]
fn path_lookup_on_messages() {
    let d = decode(s::CATALOG_RESPONSE_FLOW);
    let m = &d.message;
    assert_eq!(m.get("CmdType").as_deref(), Some("Catalog"));
    assert_eq!(m.get("SN").as_deref(), Some("1708"));
    assert_eq!(
        m.get("DeviceList/Item/DeviceID").as_deref(),
        Some("62010201001320000393")
    );
    assert_eq!(m.get("DeviceList/Item[1]/DeviceID"), None);
    assert_eq!(m.count("DeviceList/Item"), 1);
    assert_eq!(m.get("Missing"), None);
}

/// The finding with this code, which must be there once.
fn the(d: &Decoded, code: FindingCode) -> &Finding {
    let mut it = d.findings.iter().filter(|f| f.code == code);
    let f = it
        .next()
        .unwrap_or_else(|| panic!("no {code}: {:?}", d.findings));
    assert!(it.next().is_none(), "{code} twice: {:?}", d.findings);
    f
}

#[test]
fn fields_written_as_attributes_are_recovered() {
    let b: &[u8] = b"<?xml version=\"1.0\" encoding=\"GB2312\"?>\r\n<Notify CmdType=\"Keepalive\" SN=\"5\">\r\n<DeviceID>34020000001320000001</DeviceID>\r\n<Status>OK</Status>\r\n</Notify>\r\n";
    let d = Message::decode(b).unwrap();
    assert_eq!(d.message.cmd_type, Some(CmdType::Keepalive));
    assert_eq!(d.message.sn, Some(5));
    let Body::Keepalive(k) = &d.message.body else {
        panic!("{:?}", d.message.body)
    };
    assert_eq!(k.status, Some(ResultType::Ok));
    assert_eq!(
        codes(&d),
        vec![FindingCode::FieldAsAttribute, FindingCode::FieldAsAttribute]
    );
    let f = &d.findings[0];
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.path(), "Notify@CmdType");
    assert!(
        f.message
            .starts_with("CmdType is an attribute of <Notify>, not an element"),
        "{}",
        f.message
    );
    assert_eq!(f.section(), Some("保活信令xml格式"));
    assert!(!d.has(FindingCode::MissingCmdType) && !d.has(FindingCode::MissingSn));
    // Lookups by schema name see the recovered values; the tree stays as sent.
    assert_eq!(d.get("CmdType").as_deref(), Some("Keepalive"));
    assert_eq!(d.get("Notify/SN").as_deref(), Some("5"));
    assert_eq!(d.get("DeviceID").as_deref(), Some("34020000001320000001"));
    assert_eq!(d.tree.get("CmdType"), None);
    assert_eq!(d.tree.get("@CmdType"), Some("Keepalive"));
    assert_eq!(d.count("SN"), 1);
    // An attribute whose element is also there is not lifted.
    let b: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Notify SN=\"9\" xmlns=\"urn:x\"><CmdType>Keepalive</CmdType><SN>5</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status></Notify>";
    let d = Message::decode(b).unwrap();
    assert_eq!(d.message.sn, Some(5));
    assert_eq!(codes(&d), vec![FindingCode::AttributesIgnored]);
}

#[test]
fn element_names_in_other_case_are_recovered_as_errors() {
    let b: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><notify><cmdtype>Keepalive</cmdtype><Sn>7</Sn><DeviceID>34020000001320000001</DeviceID><status>OK</status></notify>";
    let d = Message::decode(b).unwrap();
    assert_eq!(d.message.root, Root::Notify);
    assert_eq!(d.message.cmd_type, Some(CmdType::Keepalive));
    assert_eq!(d.message.sn, Some(7));
    assert!(matches!(&d.message.body, Body::Keepalive(k) if k.status == Some(ResultType::Ok)));
    assert_eq!(
        codes(&d),
        vec![
            FindingCode::RootNameCase,
            FindingCode::ElementNameCase,
            FindingCode::ElementNameCase,
            FindingCode::ElementNameCase
        ]
    );
    assert!(d.findings.iter().all(|f| f.severity == Severity::Error));
    let sn = d.findings.iter().find(|f| f.path() == "Notify/Sn").unwrap();
    assert_eq!(sn.message, "<Sn> read as <SN>");
    assert_eq!(d.get("CmdType").as_deref(), Some("Keepalive"));
    assert_eq!(d.get("Notify/SN").as_deref(), Some("7"));
    assert_eq!(
        d.get("notify/Sn").as_deref(),
        Some("7"),
        "as sent works too"
    );
    assert!(matches!(
        Message::decode_with(b, DecodeOptions::STRICT),
        Err(DecodeError::Strict(f)) if f.code == FindingCode::RootNameCase
    ));
}

#[test]
fn missing_or_wrong_declaration_is_an_error() {
    let body = "<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Status>OK</Status></Notify>";
    let d = Message::decode(body.as_bytes()).unwrap();
    assert_eq!(codes(&d), vec![FindingCode::MissingDeclaration]);
    assert_eq!(
        the(&d, FindingCode::MissingDeclaration).severity,
        Severity::Error
    );
    assert_eq!(d.message.cmd_type, Some(CmdType::Keepalive));

    let v2 = format!("<?xml version=\"2.0\" encoding=\"UTF-8\"?>{body}");
    let d = Message::decode(v2.as_bytes()).unwrap();
    let f = the(&d, FindingCode::DeclarationVersion);
    assert_eq!(f.severity, Severity::Error);
    assert!(
        f.message
            .contains("version=\"2.0\", expected version=\"1.0\""),
        "{}",
        f.message
    );
    assert_eq!(d.message.sn, Some(1));

    let none = format!("<?xml encoding=\"UTF-8\"?>{body}");
    let d = Message::decode(none.as_bytes()).unwrap();
    assert!(the(&d, FindingCode::DeclarationVersion)
        .message
        .contains("no version"));

    for bad in [body.to_string(), v2, none] {
        assert!(
            matches!(
                Message::decode_with(bad.as_bytes(), DecodeOptions::STRICT),
                Err(DecodeError::Strict(_))
            ),
            "{bad}"
        );
    }
}

#[test]
fn encoding_declared_one_way_and_used_another() {
    // "东门" is E4 B8 9C E9 97 A8 in UTF-8 and B6 AB C3 C5 in GB2312.
    let utf8_under_gb: &[u8] = b"<?xml version=\"1.0\" encoding=\"GB2312\"?><Response><CmdType>DeviceInfo</CmdType><SN>3</SN><DeviceID>34020000001320000001</DeviceID><DeviceName>\xe4\xb8\x9c\xe9\x97\xa8</DeviceName><Result>OK</Result></Response>";
    let d = Message::decode(utf8_under_gb).unwrap();
    assert_eq!(codes(&d), vec![FindingCode::EncodingMismatch]);
    assert_eq!(d.charset, Charset::Utf8);
    assert_eq!(d.declared_encoding.as_deref(), Some("GB2312"));
    assert_eq!(d.get("DeviceName").as_deref(), Some("东门"));
    let f = the(&d, FindingCode::EncodingMismatch);
    assert_eq!(f.severity, Severity::Error);
    assert_eq!(f.message, "declared GB2312 but the bytes are UTF-8");

    let gb_under_utf8: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><CmdType>DeviceInfo</CmdType><SN>3</SN><DeviceID>34020000001320000001</DeviceID><DeviceName>\xb6\xab\xc3\xc5</DeviceName><Result>OK</Result></Response>";
    let d = Message::decode(gb_under_utf8).unwrap();
    assert_eq!(codes(&d), vec![FindingCode::EncodingMismatch]);
    assert_eq!(d.get("DeviceName").as_deref(), Some("东门"));
    for b in [utf8_under_gb, gb_under_utf8] {
        assert!(matches!(
            Message::decode_with(b, DecodeOptions::STRICT),
            Err(DecodeError::Strict(f)) if f.code == FindingCode::EncodingMismatch
        ));
    }
}

#[test]
fn every_quirk_at_once_leaves_the_message_readable() {
    let b: &[u8] = b"<notify cmdtype=\"Keepalive\" sn=\"11\"><deviceid>34020000001320000001</deviceid><status>OK</status></notify>";
    let d = Message::decode(b).unwrap();
    assert_eq!(
        d.message,
        Message::keepalive(11, "34020000001320000001", ResultType::Ok)
    );
    for code in [
        FindingCode::MissingDeclaration,
        FindingCode::RootNameCase,
        FindingCode::FieldAsAttribute,
        FindingCode::ElementNameCase,
    ] {
        assert!(d.has(code), "{code}: {:?}", d.findings);
    }
    assert_eq!(d.get("CmdType").as_deref(), Some("Keepalive"));
    assert_eq!(d.get("SN").as_deref(), Some("11"));
}
