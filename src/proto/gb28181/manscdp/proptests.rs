//! Property tests: every message family survives encode then decode in
//! GB2312 and UTF-8 (non-ASCII text included), canonical output is a
//! fixpoint, and arbitrary or mutated input never panics.

use super::*;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

/// Text as devices send it: ASCII, markup characters, common Chinese.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,12}",
        "[a-zA-Z0-9 _&<>\"'前门后院摄像机东西南北通道一二三监控点海康大华停车场入口出口]{0,10}",
    ]
}

fn opt_text() -> impl Strategy<Value = Option<String>> {
    of(text())
}

fn opt_u32() -> impl Strategy<Value = Option<u32>> {
    of(any::<u32>())
}

/// Values outside an enumeration that cannot collide with a defined one.
fn other_value() -> impl Strategy<Value = String> {
    "X-[a-z0-9]{1,6}"
}

macro_rules! enum_strategy {
    ($name:ident, $ty:ty, [$($v:expr),*]) => {
        fn $name() -> impl Strategy<Value = Option<$ty>> {
            of(prop_oneof![
                $(Just($v),)*
                other_value().prop_map(<$ty>::Other),
            ])
        }
    };
}

enum_strategy!(result_type, ResultType, [ResultType::Ok, ResultType::Error]);
enum_strategy!(on_off, OnOff, [OnOff::On, OnOff::Off]);
enum_strategy!(online, Online, [Online::Online, Online::Offline]);
enum_strategy!(
    duty,
    DutyStatus,
    [DutyStatus::OnDuty, DutyStatus::OffDuty, DutyStatus::Alarm]
);
enum_strategy!(
    record_type,
    RecordType,
    [
        RecordType::Time,
        RecordType::Alarm,
        RecordType::Manual,
        RecordType::All
    ]
);
enum_strategy!(
    catalog_event,
    CatalogEvent,
    [
        CatalogEvent::On,
        CatalogEvent::Off,
        CatalogEvent::VideoLost,
        CatalogEvent::Defect,
        CatalogEvent::Add,
        CatalogEvent::Delete,
        CatalogEvent::Update
    ]
);
enum_strategy!(
    record_cmd,
    RecordCmd,
    [RecordCmd::Record, RecordCmd::StopRecord]
);
enum_strategy!(
    guard_cmd,
    GuardCmd,
    [GuardCmd::SetGuard, GuardCmd::ResetGuard]
);
enum_strategy!(alarm_cmd, AlarmCmd, [AlarmCmd::ResetAlarm]);
enum_strategy!(tele_boot, TeleBoot, [TeleBoot::Boot]);
enum_strategy!(iframe, IFrameCmd, [IFrameCmd::Send]);

/// Unknown elements a device might add; names cannot collide with modelled ones.
fn extras() -> impl Strategy<Value = Vec<Element>> {
    let leaf = ("X[A-Za-z0-9]{0,6}", text()).prop_map(|(n, t)| Element::leaf(n, t));
    let nested = (
        "X[A-Za-z]{0,4}",
        vec(
            ("X[a-z]{0,3}", text()).prop_map(|(n, t)| Element::leaf(n, t)),
            1..3,
        ),
    )
        .prop_map(|(n, c)| Element::parent(n, c));
    vec(prop_oneof![3 => leaf, 1 => nested], 0..3)
}

fn list<T: std::fmt::Debug + Clone>(
    item: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<ItemList<T>>> {
    of(
        (vec(item, 0..4), any::<bool>(), of(0u32..10)).prop_map(|(items, consistent, num)| {
            let mut l = ItemList::new(items);
            if !consistent {
                l.num = num;
            }
            l
        }),
    )
}

fn catalog_item_info() -> impl Strategy<Value = CatalogItemInfo> {
    (
        (
            opt_u32(),
            opt_u32(),
            opt_u32(),
            opt_u32(),
            opt_u32(),
            opt_u32(),
        ),
        (opt_text(), opt_text(), opt_text(), opt_u32(), opt_u32()),
        extras(),
    )
        .prop_map(
            |((a, b, c, d, e, f), (g, h, i, j, k), extras)| CatalogItemInfo {
                ptz_type: a,
                position_type: b,
                room_type: c,
                use_type: d,
                supply_light_type: e,
                direction_type: f,
                resolution: g,
                business_group_id: h,
                download_speed: i,
                svc_space_support_mode: j,
                svc_time_support_mode: k,
                extras,
            },
        )
}

fn catalog_item() -> impl Strategy<Value = CatalogItem> {
    (
        (
            opt_text(),
            catalog_event(),
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
        ),
        (
            opt_text(),
            opt_u32(),
            opt_text(),
            opt_u32(),
            opt_u32(),
            opt_text(),
            opt_u32(),
            opt_u32(),
        ),
        (
            opt_text(),
            opt_u32(),
            opt_text(),
            of(any::<u16>()),
            opt_text(),
            on_off(),
            opt_text(),
            opt_text(),
        ),
        (of(catalog_item_info()), extras()),
    )
        .prop_map(
            |(
                (a, b, c, d, e, f, g, h),
                (i, j, k, l, m, n, o, p),
                (q, r, s, t, u, v, w, x),
                (info, extras),
            )| {
                CatalogItem {
                    device_id: a,
                    event: b,
                    name: c,
                    manufacturer: d,
                    model: e,
                    owner: f,
                    civil_code: g,
                    block: h,
                    address: i,
                    parental: j,
                    parent_id: k,
                    safety_way: l,
                    register_way: m,
                    cert_num: n,
                    certifiable: o,
                    err_code: p,
                    end_time: q,
                    secrecy: r,
                    ip_address: s,
                    port: t,
                    password: u,
                    status: v,
                    longitude: w,
                    latitude: x,
                    info,
                    extras,
                }
            },
        )
}

fn catalog_list() -> impl Strategy<Value = CatalogList> {
    (opt_u32(), list(catalog_item()), extras()).prop_map(|(sum_num, device_list, extras)| {
        CatalogList {
            sum_num,
            device_list,
            extras,
        }
    })
}

fn record_item() -> impl Strategy<Value = RecordItem> {
    (
        (
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
        ),
        (
            opt_u32(),
            record_type(),
            opt_text(),
            of(any::<u64>()),
            extras(),
        ),
    )
        .prop_map(|((a, b, c, d, e, f), (g, h, i, j, extras))| RecordItem {
            device_id: a,
            name: b,
            file_path: c,
            address: d,
            start_time: e,
            end_time: f,
            secrecy: g,
            record_type: h,
            recorder_id: i,
            file_size: j,
            extras,
        })
}

fn basic_param() -> impl Strategy<Value = BasicParam> {
    (
        (
            opt_text(),
            opt_text(),
            opt_text(),
            opt_text(),
            of(any::<u16>()),
            opt_text(),
            opt_u32(),
        ),
        (
            opt_text(),
            opt_u32(),
            opt_u32(),
            opt_u32(),
            opt_text(),
            opt_text(),
            extras(),
        ),
    )
        .prop_map(
            |((a, b, c, d, e, f, g), (h, i, j, k, l, m, extras))| BasicParam {
                name: a,
                device_id: b,
                sip_server_id: c,
                sip_server_ip: d,
                sip_server_port: e,
                domain_name: f,
                expiration: g,
                password: h,
                heart_beat_interval: i,
                heart_beat_count: j,
                position_capability: k,
                longitude: l,
                latitude: m,
                extras,
            },
        )
}

fn snap_shot_config() -> impl Strategy<Value = SnapShotConfig> {
    (opt_u32(), opt_u32(), opt_text(), opt_text(), extras()).prop_map(|(a, b, c, d, extras)| {
        SnapShotConfig {
            snap_num: a,
            interval: b,
            upload_url: c,
            session_id: d,
            extras,
        }
    })
}

fn drag_zoom() -> impl Strategy<Value = DragZoom> {
    (
        opt_u32(),
        opt_u32(),
        opt_u32(),
        opt_u32(),
        opt_u32(),
        opt_u32(),
        extras(),
    )
        .prop_map(|(a, b, c, d, e, f, extras)| DragZoom {
            length: a,
            width: b,
            mid_point_x: c,
            mid_point_y: d,
            length_x: e,
            length_y: f,
            extras,
        })
}

fn device_control() -> impl Strategy<Value = DeviceControl> {
    (
        (
            opt_text(),
            tele_boot(),
            record_cmd(),
            guard_cmd(),
            alarm_cmd(),
            iframe(),
        ),
        (of(drag_zoom()), of(drag_zoom())),
        (
            of(
                (opt_u32(), opt_u32(), opt_u32(), extras()).prop_map(|(a, b, c, extras)| {
                    HomePosition {
                        enabled: a,
                        reset_time: b,
                        preset_index: c,
                        extras,
                    }
                }),
            ),
            of(
                (opt_u32(), opt_text(), opt_text(), extras()).prop_map(|(a, b, c, extras)| {
                    ControlInfo {
                        control_priority: a,
                        alarm_method: b,
                        alarm_type: c,
                        extras,
                    }
                }),
            ),
        ),
        extras(),
    )
        .prop_map(
            |((a, b, c, d, e, f), (g, h), (i, j), extras)| DeviceControl {
                ptz_cmd: a,
                tele_boot: b,
                record_cmd: c,
                guard_cmd: d,
                alarm_cmd: e,
                i_frame_cmd: f,
                drag_zoom_in: g,
                drag_zoom_out: h,
                home_position: i,
                info: j,
                extras,
            },
        )
}

fn result_response() -> impl Strategy<Value = ResultResponse> {
    (result_type(), extras()).prop_map(|(result, extras)| ResultResponse { result, extras })
}

fn plain() -> impl Strategy<Value = PlainQuery> {
    extras().prop_map(|extras| PlainQuery { extras })
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        (
            result_type(),
            of(vec(text(), 0..3).prop_map(|ids| KeepaliveInfo {
                device_ids: ids,
                extras: vec![]
            })),
            extras()
        )
            .prop_map(|(status, info, extras)| Body::Keepalive(KeepaliveNotify {
                status,
                info,
                extras
            })),
        (opt_text(), opt_text(), extras()).prop_map(|(s, e, extras)| Body::CatalogQuery(
            CatalogQuery {
                start_time: s,
                end_time: e,
                extras
            }
        )),
        catalog_list().prop_map(Body::CatalogResponse),
        catalog_list().prop_map(Body::CatalogNotify),
        plain().prop_map(Body::DeviceInfoQuery),
        (
            (
                opt_text(),
                result_type(),
                opt_text(),
                opt_text(),
                opt_text(),
                opt_text(),
                opt_u32()
            ),
            extras()
        )
            .prop_map(|((a, b, c, d, e, f, g), extras)| Body::DeviceInfoResponse(
                DeviceInfoResponse {
                    device_name: a,
                    result: b,
                    device_type: c,
                    manufacturer: d,
                    model: e,
                    firmware: f,
                    channel: g,
                    extras,
                }
            )),
        plain().prop_map(Body::DeviceStatusQuery),
        (
            (
                result_type(),
                online(),
                result_type(),
                opt_text(),
                on_off(),
                on_off(),
                opt_text()
            ),
            list(
                (opt_text(), duty(), extras()).prop_map(|(a, b, extras)| AlarmStatusItem {
                    device_id: a,
                    duty_status: b,
                    extras
                })
            ),
            extras()
        )
            .prop_map(
                |((a, b, c, d, e, f, g), h, extras)| Body::DeviceStatusResponse(
                    DeviceStatusResponse {
                        result: a,
                        online: b,
                        status: c,
                        reason: d,
                        encode: e,
                        record: f,
                        device_time: g,
                        alarm_status: h,
                        extras,
                    }
                )
            ),
        (
            (
                opt_text(),
                opt_text(),
                opt_text(),
                opt_text(),
                opt_u32(),
                record_type(),
                opt_text(),
                opt_u32()
            ),
            extras()
        )
            .prop_map(|((a, b, c, d, e, f, g, h), extras)| Body::RecordInfoQuery(
                RecordInfoQuery {
                    start_time: a,
                    end_time: b,
                    file_path: c,
                    address: d,
                    secrecy: e,
                    record_type: f,
                    recorder_id: g,
                    indistinct_query: h,
                    extras,
                }
            )),
        (opt_text(), opt_u32(), list(record_item()), extras()).prop_map(
            |(name, sum_num, record_list, extras)| {
                Body::RecordInfoResponse(RecordInfoResponse {
                    name,
                    sum_num,
                    record_list,
                    extras,
                })
            }
        ),
        (opt_text(), extras()).prop_map(|(c, extras)| Body::ConfigDownloadQuery(
            ConfigDownloadQuery {
                config_type: c,
                extras
            }
        )),
        (
            result_type(),
            of(basic_param()),
            of(snap_shot_config()),
            extras()
        )
            .prop_map(|(r, b, s, extras)| {
                Body::ConfigDownloadResponse(ConfigDownloadResponse {
                    result: r,
                    basic_param: b,
                    snap_shot_config: s,
                    extras,
                })
            }),
        plain().prop_map(Body::PresetQuery),
        (
            list(
                (opt_u32(), opt_text(), extras()).prop_map(|(a, b, extras)| PresetItem {
                    preset_id: a,
                    preset_name: b,
                    extras
                })
            ),
            extras()
        )
            .prop_map(
                |(l, extras)| Body::PresetQueryResponse(PresetQueryResponse {
                    preset_list: l,
                    extras
                })
            ),
        device_control().prop_map(Body::DeviceControl),
        result_response().prop_map(Body::DeviceControlResponse),
        (of(basic_param()), of(snap_shot_config()), extras()).prop_map(|(b, s, extras)| {
            Body::DeviceConfig(DeviceConfig {
                basic_param: b,
                snap_shot_config: s,
                extras,
            })
        }),
        result_response().prop_map(Body::DeviceConfigResponse),
        (
            (
                opt_u32(),
                opt_u32(),
                opt_text(),
                opt_text(),
                opt_text(),
                opt_text()
            ),
            extras()
        )
            .prop_map(|((a, b, c, d, e, f), extras)| Body::AlarmQuery(AlarmQuery {
                start_alarm_priority: a,
                end_alarm_priority: b,
                alarm_method: c,
                alarm_type: d,
                start_time: e,
                end_time: f,
                extras,
            })),
        (
            (
                opt_u32(),
                opt_u32(),
                opt_text(),
                opt_text(),
                opt_text(),
                opt_text()
            ),
            of((
                opt_u32(),
                of(
                    (opt_u32(), extras()).prop_map(|(e, extras)| AlarmTypeParam {
                        event_type: e,
                        extras
                    })
                ),
                extras()
            )
                .prop_map(|(t, p, extras)| AlarmInfo {
                    alarm_type: t,
                    alarm_type_param: p,
                    extras
                })),
            extras()
        )
            .prop_map(|((a, b, c, d, e, f), info, extras)| Body::AlarmNotify(
                AlarmNotify {
                    alarm_priority: a,
                    alarm_method: b,
                    alarm_time: c,
                    alarm_description: d,
                    longitude: e,
                    latitude: f,
                    info,
                    extras,
                }
            )),
        result_response().prop_map(Body::AlarmResponse),
        (opt_u32(), extras()).prop_map(|(n, extras)| Body::MediaStatus(MediaStatusNotify {
            notify_type: n,
            extras
        })),
        (opt_text(), opt_text(), extras()).prop_map(|(s, t, extras)| Body::BroadcastNotify(
            BroadcastNotify {
                source_id: s,
                target_id: t,
                extras
            }
        )),
        result_response().prop_map(Body::BroadcastResponse),
        (
            opt_text(),
            of(
                (vec(text(), 0..3), extras()).prop_map(|(ids, extras)| SnapShotList {
                    file_ids: ids,
                    extras
                })
            ),
            extras()
        )
            .prop_map(|(s, l, extras)| Body::UploadSnapShotFinished(
                UploadSnapShotFinished {
                    session_id: s,
                    snap_shot_list: l,
                    extras,
                }
            )),
        plain().prop_map(Body::Other),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (any::<u64>(), text(), body(), any::<bool>(), any::<bool>()).prop_map(
        |(sn, id, body, keep_sn, keep_id)| {
            let mut m = Message::new(sn, id, body);
            if !keep_sn {
                m.sn = None;
            }
            if !keep_id {
                m.device_id = None;
            }
            m
        },
    )
}

fn charset() -> impl Strategy<Value = Charset> {
    prop_oneof![Just(Charset::Gb2312), Just(Charset::Utf8)]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_family_round_trips(m in message(), cs in charset()) {
        let bytes = m.encode(cs);
        let d = Message::decode(&bytes).map_err(|e| TestCaseError::fail(format!("{e}: {}", String::from_utf8_lossy(&bytes))))?;
        prop_assert_eq!(&d.message, &m);
        prop_assert_eq!(d.charset, cs);
        prop_assert!(!d.has(FindingCode::EncodingMismatch));
        // Canonical bytes are a fixpoint.
        prop_assert_eq!(d.message.encode(cs), bytes);
        // The generic tree agrees with the typed message.
        prop_assert_eq!(d.tree, m.to_element());
    }

    #[test]
    fn chinese_names_round_trip_in_both_charsets(name in "[前门后院摄像机东西南北通道一二三监控点停车场入口出口a-z0-9 ]{1,16}", cs in charset()) {
        let q = Message::query(CmdType::Catalog, 1, "34020000002000000001");
        let pages = catalog_pages(&q, &[CatalogItem::new("34020000001320000001", name.clone())], 1);
        let d = Message::decode(&pages[0].encode(cs)).unwrap();
        prop_assert_eq!(d.message.get("DeviceList/Item[0]/Name"), Some(name));
        prop_assert_eq!(&d.message, &pages[0]);
    }

    #[test]
    fn split_then_collect_restores_items(n in 0usize..40, per in 1usize..10) {
        let q = Message::query(CmdType::Catalog, 8, "34020000002000000001");
        let items: Vec<_> = (0..n)
            .map(|i| CatalogItem::new(format!("3402000000132{i:07}"), format!("通道{i}")))
            .collect();
        let pages = catalog_pages(&q, &items, per);
        prop_assert_eq!(pages.len(), n.div_ceil(per).max(1));
        let mut c = CatalogCollector::for_query(&q);
        for (i, p) in pages.iter().enumerate() {
            let d = Message::decode(&p.encode(Charset::Gb2312)).unwrap();
            let progress = c.push(&d.message);
            prop_assert_eq!(matches!(progress, Progress::Complete { .. }), i + 1 == pages.len());
        }
        let (got, findings) = c.finish();
        prop_assert_eq!(got, items);
        prop_assert!(findings.is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic(b in vec(any::<u8>(), 0..200)) {
        let _ = Message::decode(&b);
    }

    #[test]
    fn arbitrary_text_never_panics(s in "\\PC{0,120}") {
        let _ = Message::decode(s.as_bytes());
        let _ = match_content_type(&s);
    }

    #[test]
    fn xml_shaped_text_never_panics(s in "(<[A-Za-z]{1,4}( [a-z]=\"[^\"]{0,3}\")?>|</[A-Za-z]{1,4}>|<[A-Za-z]{1,3}/>|[a-z0-9&;#]{0,4}|<!--|-->|<! --|<\\?xml version=\"1.0\" encoding=\"GB2312\"\\?>){0,20}") {
        let _ = Message::decode(s.as_bytes());
    }

    #[test]
    fn mutated_messages_never_panic(m in message(), cs in charset(), cuts in vec((any::<prop::sample::Index>(), any::<u8>()), 1..4), trunc in any::<prop::sample::Index>()) {
        let mut bytes = m.encode(cs);
        for (idx, v) in cuts {
            let i = idx.index(bytes.len());
            bytes[i] = v;
        }
        let _ = Message::decode(&bytes);
        let t = trunc.index(bytes.len() + 1);
        let _ = Message::decode(&bytes[..t]);
    }
}
