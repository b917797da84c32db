//! The camera behind the signalling: its channels, alarm inputs, presets,
//! recording and guard state, and the synthetic recordings RecordInfo
//! finds. Controls change this state and queries report it, so a suite can
//! see whether a control was acted on (a preset set by PTZ shows up in
//! PresetQuery; RecordCmd shows up in DeviceStatus).

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::NaiveDateTime;

use super::config::DeviceConfig;
use crate::proto::gb28181::manscdp::{
    CatalogItem, DutyStatus, OnOff, PresetItem, RecordItem, RecordType,
};

/// Format of MANSCDP date-times (`2023-10-14T14:15:52`, §文件检索).
pub(super) const XML_TIME: &str = "%Y-%m-%dT%H:%M:%S";

/// Read a MANSCDP date-time; fractions of a second and a space instead of
/// `T` are tolerated.
pub(super) fn parse_xml_time(s: &str) -> Option<NaiveDateTime> {
    let s = s.trim();
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
}

/// Code of video channel `k` (1-based) of `device_id`: the device code with
/// type 131 (camera) in digits 11-13 and `k` in digits 14-16. Channels of
/// devices that share a centre code and the last four serial digits would
/// collide; that is the price of fitting an index into 20 digits.
pub fn channel_id(device_id: &str, k: u32) -> String {
    sub_id(device_id, "131", k)
}

/// Code of alarm input `k` (1-based): type 134 (报警输入设备).
pub fn alarm_input_id(device_id: &str, k: u32) -> String {
    sub_id(device_id, "134", k)
}

/// `prefix` followed by `k` in decimal.
fn numbered(prefix: &str, k: u32) -> String {
    let mut s = String::with_capacity(prefix.len() + 10);
    s.push_str(prefix);
    crate::proto::sip::push_digits(&mut s, u64::from(k), 1);
    s
}

fn sub_id(device_id: &str, type_code: &str, k: u32) -> String {
    if device_id.len() == 20 && device_id.bytes().all(|b| b.is_ascii_digit()) {
        // Written piece by piece: a fleet mints these for every camera.
        let mut id = String::with_capacity(20);
        id.push_str(&device_id[..10]);
        id.push_str(type_code);
        crate::proto::sip::push_digits(&mut id, u64::from(k % 1000), 3);
        id.push_str(&device_id[16..]);
        id
    } else {
        format!("{device_id}-{type_code}-{k}")
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Channel {
    pub index: u32,
    pub id: String,
    pub name: String,
    pub on: bool,
}

impl Channel {
    fn new(device_id: &str, index: u32) -> Channel {
        Channel {
            index,
            id: channel_id(device_id, index),
            name: numbered("通道", index),
            on: true,
        }
    }
}

/// The simulated camera, made from the configuration when first looked
/// at ([`Model::get`]) and kept from then on.
#[derive(Debug, Clone, Default)]
pub(super) struct Model(std::sync::OnceLock<Camera>);

impl Model {
    /// The camera, made from `cfg` (the device's own) if not yet made.
    pub fn get(&self, cfg: &DeviceConfig) -> &Camera {
        self.0.get_or_init(|| Camera::new(cfg))
    }

    /// [`Model::get`], to change.
    pub fn get_mut(&mut self, cfg: &DeviceConfig) -> &mut Camera {
        self.get(cfg);
        self.0.get_mut().expect("made just above")
    }

    /// The camera, if made already.
    pub fn built_mut(&mut self) -> Option<&mut Camera> {
        self.0.get_mut()
    }
}

/// The simulated camera.
#[derive(Debug, Clone)]
pub(super) struct Camera {
    pub channels: Vec<Channel>,
    pub alarm_inputs: Vec<String>,
    pub presets: BTreeMap<u8, String>,
    pub recording: bool,
    pub guard: bool,
    pub alarming: bool,
    pub home_position: Option<(u32, u32, u32)>,
}

impl Camera {
    pub fn new(cfg: &DeviceConfig) -> Camera {
        // Built by plain pushes and inserts (the indices come in order): a
        // fleet builds one of these for each of its cameras.
        let mut presets = BTreeMap::new();
        for k in 1..=cfg.presets.min(255) {
            presets.insert(k as u8, numbered("预置点", k));
        }
        let mut cam = Camera {
            channels: Vec::with_capacity(cfg.catalog_items as usize),
            alarm_inputs: (1..=cfg.alarm_inputs)
                .map(|k| alarm_input_id(&cfg.device_id, k))
                .collect(),
            presets,
            recording: false,
            guard: false,
            alarming: false,
            home_position: None,
        };
        for index in 1..=cfg.catalog_items {
            cam.channels.push(Channel::new(&cfg.device_id, index));
        }
        cam
    }

    pub fn add_channel(&mut self, device_id: &str, index: u32) -> &Channel {
        self.channels.retain(|c| c.index != index);
        self.channels.push(Channel::new(device_id, index));
        self.channels.sort_by_key(|c| c.index);
        self.channels
            .iter()
            .find(|c| c.index == index)
            .expect("just added")
    }

    /// True for the device itself and every channel and alarm input it has.
    pub fn owns(&self, device_id: &str, id: &str) -> bool {
        id == device_id
            || self.channels.iter().any(|c| c.id == id)
            || self.alarm_inputs.iter().any(|a| a == id)
    }

    /// A catalog item with every field §目录检索响应格式 marks 必选.
    pub fn catalog_item(&self, cfg: &DeviceConfig, ch: &Channel) -> CatalogItem {
        CatalogItem {
            device_id: Some(ch.id.clone()),
            name: Some(ch.name.clone()),
            manufacturer: Some(cfg.manufacturer.to_string()),
            model: Some(cfg.model.to_string()),
            owner: Some(cfg.owner.to_string()),
            civil_code: Some(cfg.device_id.get(..6).unwrap_or(&cfg.device_id).to_string()),
            address: Some(cfg.address.to_string()),
            parental: Some(0),
            parent_id: Some(cfg.device_id.clone()),
            safety_way: Some(0),
            register_way: Some(1),
            secrecy: Some(0),
            status: Some(if ch.on { OnOff::On } else { OnOff::Off }),
            ..CatalogItem::default()
        }
    }

    pub fn duty_status(&self) -> DutyStatus {
        if self.alarming {
            DutyStatus::Alarm
        } else if self.guard {
            DutyStatus::OnDuty
        } else {
            DutyStatus::OffDuty
        }
    }

    pub fn preset_items(&self) -> Vec<PresetItem> {
        self.presets
            .iter()
            .map(|(k, name)| PresetItem {
                preset_id: Some(u32::from(*k)),
                preset_name: Some(name.clone()),
                ..PresetItem::default()
            })
            .collect()
    }
}

/// Most recordings one RecordInfo answer lists.
pub(super) const MAX_RECORDINGS: usize = 10_000;

/// Synthetic recordings of `target` overlapping `[start, end)`: one every
/// `record_interval` since midnight, `record_duration` long, clipped to
/// the window ("主要用于...录像时间段...为条件的查询": the answer covers the
/// requested period). Only `time` recordings exist; a query for another
/// type finds none.
pub(super) fn recordings(
    cfg: &DeviceConfig,
    target: &str,
    start: NaiveDateTime,
    end: NaiveDateTime,
    wanted: Option<&RecordType>,
) -> Vec<RecordItem> {
    if matches!(wanted, Some(t) if !matches!(t, RecordType::All | RecordType::Time)) {
        return Vec::new();
    }
    let interval = cfg.record_interval.as_secs().max(1) as i64;
    let duration = (cfg.record_duration.as_secs() as i64).clamp(1, interval);
    let (s, e) = (start.and_utc().timestamp(), end.and_utc().timestamp());
    let mut out = Vec::new();
    if e <= s {
        return out;
    }
    let mut slot = s.div_euclid(interval) * interval;
    while slot < e && out.len() < MAX_RECORDINGS {
        let (a, b) = (slot.max(s), (slot + duration).min(e));
        if a < b {
            out.push(record_item(cfg, target, a, b));
        }
        slot += interval;
    }
    out
}

/// One recording from `a` to `b` (seconds since the epoch, local time).
pub(super) fn record_item(cfg: &DeviceConfig, target: &str, a: i64, b: i64) -> RecordItem {
    let t = |s: i64| {
        chrono::DateTime::from_timestamp(s, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default()
    };
    RecordItem {
        device_id: Some(target.to_string()),
        name: Some(cfg.device_name.to_string()),
        file_path: Some(format!(
            "/record/{target}/{}.ps",
            t(a).format("%Y%m%d%H%M%S")
        )),
        address: Some(cfg.address.to_string()),
        start_time: Some(t(a).format(XML_TIME).to_string()),
        end_time: Some(t(b).format(XML_TIME).to_string()),
        secrecy: Some(0),
        record_type: Some(RecordType::Time),
        // 4 Mbit/s.
        file_size: Some((b - a).max(0) as u64 * 500_000),
        ..RecordItem::default()
    }
}

/// `d` in protocol seconds, for config reports.
pub(super) fn secs(d: Duration) -> u32 {
    d.as_secs().min(u64::from(u32::MAX)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> DeviceConfig {
        let a = "127.0.0.1:5070".parse().unwrap();
        DeviceConfig::new("34020000001320000001", "34020000002000000001", "x", a, a)
    }

    fn t(s: &str) -> NaiveDateTime {
        parse_xml_time(s).unwrap()
    }

    #[test]
    fn a_device_with_its_model_stays_send_and_sync() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Model>();
        shareable::<crate::proto::gb28181::device::Device>();
    }

    #[test]
    fn the_model_is_made_on_first_look_and_keeps_its_changes() {
        let cfg = cfg();
        let mut m = Model::default();
        assert!(m.built_mut().is_none(), "nothing made before a look");
        assert_eq!(m.get(&cfg).channels, Camera::new(&cfg).channels);
        m.get_mut(&cfg).presets.clear();
        m.get_mut(&cfg).recording = true;
        assert!(m.get(&cfg).presets.is_empty() && m.get(&cfg).recording);
        assert!(m.built_mut().is_some_and(|c| c.recording));
    }

    #[test]
    fn sub_device_codes() {
        assert_eq!(
            channel_id("34020000001320000001", 1),
            "34020000001310010001"
        );
        assert_eq!(
            channel_id("34020000001320000001", 12),
            "34020000001310120001"
        );
        assert_eq!(
            alarm_input_id("34020000001320000001", 1),
            "34020000001340010001"
        );
        assert_eq!(channel_id("abc", 2), "abc-131-2");
    }

    #[test]
    fn recordings_are_clipped_to_the_window() {
        let c = cfg();
        let r = recordings(
            &c,
            "x",
            t("2026-01-01T08:10:00"),
            t("2026-01-01T11:05:00"),
            None,
        );
        let spans: Vec<_> = r
            .iter()
            .map(|i| (i.start_time.clone().unwrap(), i.end_time.clone().unwrap()))
            .collect();
        assert_eq!(
            spans,
            vec![
                ("2026-01-01T08:10:00".into(), "2026-01-01T08:15:00".into()),
                ("2026-01-01T09:00:00".into(), "2026-01-01T09:15:00".into()),
                ("2026-01-01T10:00:00".into(), "2026-01-01T10:15:00".into()),
                ("2026-01-01T11:00:00".into(), "2026-01-01T11:05:00".into()),
            ]
        );
        assert!(recordings(
            &c,
            "x",
            t("2026-01-01T08:20:00"),
            t("2026-01-01T08:50:00"),
            None
        )
        .is_empty());
        assert!(recordings(
            &c,
            "x",
            t("2026-01-01T08:00:00"),
            t("2026-01-01T12:00:00"),
            Some(&RecordType::Alarm)
        )
        .is_empty());
        assert!(recordings(
            &c,
            "x",
            t("2026-01-02T00:00:00"),
            t("2026-01-01T00:00:00"),
            None
        )
        .is_empty());
        assert_eq!(
            parse_xml_time("2026-01-01 08:00:00.5"),
            Some(t("2026-01-01T08:00:00.5"))
        );
    }
}
