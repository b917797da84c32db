//! 目录检索 (Catalog): the query, the (multi-message) response and the
//! catalog-change notification, which share one item type.
//!
//! Build a response page with [`CatalogList::page`]; split a whole catalog
//! with [`super::paging::catalog_pages`]; collect an answer with
//! [`super::paging::CatalogCollector`].

use super::check::{check_device_id, require, type_code, Validate};
use super::fields::{record, ItemList};
use super::finding::{Finding, CLAUSE_NUM};
use super::values::{CatalogEvent, OnOff};

pub(super) const CLAUSE_ITEM: &str = "§目录检索响应格式: <! -- 设备/区域/系统编码(必选)--> <DeviceID>; <! -- 设备/区域/系统名称(必选)--> <Name>";
pub(super) const CLAUSE_ITEM_DEVICE: &str = "§目录检索响应格式: <! -- 当为设备时,设备厂商(必选)--> ... <! -- 行政区域(必选)--> ... <! -- 注册方式(必选)缺省为1 --> <! -- 保密属性(必选)缺省为0 --> <! -- 设备状态(必选)-->";

record! {
    /// Catalog query body (目录检索请求格式); the optional time window selects
    /// items changed within it.
    pub struct CatalogQuery {
        "StartTime" => leaf start_time: Option<String>;
        "EndTime" => leaf end_time: Option<String>;
    }
}

record! {
    /// Catalog response / notification body: `SumNum` and one page of items.
    pub struct CatalogList {
        /// Total number of items across all messages of the answer.
        "SumNum" => leaf sum_num: Option<u32>;
        "DeviceList" => list device_list: Option<ItemList<CatalogItem>>;
    }
}

record! {
    /// Extended attributes of a catalog item (`Info`).
    pub struct CatalogItemInfo {
        "PTZType" => leaf ptz_type: Option<u32>;
        "PositionType" => leaf position_type: Option<u32>;
        "RoomType" => leaf room_type: Option<u32>;
        "UseType" => leaf use_type: Option<u32>;
        "SupplyLightType" => leaf supply_light_type: Option<u32>;
        "DirectionType" => leaf direction_type: Option<u32>;
        "Resolution" => leaf resolution: Option<String>;
        "BusinessGroupID" => leaf business_group_id: Option<String>;
        "DownloadSpeed" => leaf download_speed: Option<String>;
        "SVCSpaceSupportMode" => leaf svc_space_support_mode: Option<u32>;
        "SVCTimeSupportMode" => leaf svc_time_support_mode: Option<u32>;
    }
}

record! {
    /// One catalog entry: a device, channel, region, business group or system.
    pub struct CatalogItem {
        "DeviceID" => leaf device_id: Option<String>;
        /// Catalog-change notifications only.
        "Event" => leaf event: Option<CatalogEvent>;
        "Name" => leaf name: Option<String>;
        "Manufacturer" => leaf manufacturer: Option<String>;
        "Model" => leaf model: Option<String>;
        "Owner" => leaf owner: Option<String>;
        "CivilCode" => leaf civil_code: Option<String>;
        "Block" => leaf block: Option<String>;
        "Address" => leaf address: Option<String>;
        /// 1: has sub-devices, 0: none.
        "Parental" => leaf parental: Option<u32>;
        "ParentID" => leaf parent_id: Option<String>;
        /// 0 none, 2 S/MIME signature, 3 S/MIME encryption and signature, 4 digest.
        "SafetyWay" => leaf safety_way: Option<u32>;
        /// 1 RFC 3261 digest, 2 password mutual, 3 certificate mutual.
        "RegisterWay" => leaf register_way: Option<u32>;
        "CertNum" => leaf cert_num: Option<String>;
        "Certifiable" => leaf certifiable: Option<u32>;
        "ErrCode" => leaf err_code: Option<u32>;
        "EndTime" => leaf end_time: Option<String>;
        /// 0 not classified, 1 classified.
        "Secrecy" => leaf secrecy: Option<u32>;
        "IPAddress" => leaf ip_address: Option<String>;
        "Port" => leaf port: Option<u16>;
        "Password" => leaf password: Option<String>;
        "Status" => leaf status: Option<OnOff>;
        /// Kept as text so the sender's precision survives re-encoding.
        "Longitude" => leaf longitude: Option<String>;
        "Latitude" => leaf latitude: Option<String>;
        "Info" => rec info: Option<CatalogItemInfo>;
    }
}

impl CatalogList {
    /// One page: `SumNum = total`, `DeviceList Num = items.len()`.
    pub fn page(total: u32, items: Vec<CatalogItem>) -> Self {
        CatalogList {
            sum_num: Some(total),
            device_list: Some(ItemList::new(items)),
            extras: Vec::new(),
        }
    }

    /// The items of this page (empty if the list is absent).
    pub fn items(&self) -> &[CatalogItem] {
        self.device_list
            .as_ref()
            .map(|l| l.items.as_slice())
            .unwrap_or(&[])
    }
}

impl CatalogItem {
    /// An item with only code and name set.
    pub fn new(device_id: impl Into<String>, name: impl Into<String>) -> Self {
        CatalogItem {
            device_id: Some(device_id.into()),
            name: Some(name.into()),
            ..CatalogItem::default()
        }
    }

    /// True when the code's type digits (11..=13) name a device (111..=199),
    /// or when the code cannot tell (then the strict reading applies).
    pub fn is_device(&self) -> bool {
        match self.device_id.as_deref().and_then(type_code) {
            Some(t) => (111..=199).contains(&t),
            None => true,
        }
    }
}

impl Validate for CatalogQuery {
    fn validate(&self, _path: &str, _out: &mut Vec<Finding>) {}
}

impl Validate for CatalogList {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(out, path, "SumNum", self.sum_num.is_some(), CLAUSE_NUM);
        require(
            out,
            path,
            "DeviceList",
            self.device_list.is_some(),
            CLAUSE_NUM,
        );
        for (i, item) in self.items().iter().enumerate() {
            item.validate(&format!("{path}/DeviceList/Item[{i}]"), out);
        }
    }
}

impl Validate for CatalogItem {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(out, path, "DeviceID", self.device_id.is_some(), CLAUSE_ITEM);
        if let Some(id) = &self.device_id {
            check_device_id(out, &format!("{path}/DeviceID"), id);
        }
        // Status-only notifications (ON/OFF/VLOST/DEFECT/DEL) name the item by code alone.
        let full = matches!(
            self.event,
            None | Some(CatalogEvent::Add) | Some(CatalogEvent::Update)
        );
        if full {
            require(out, path, "Name", self.name.is_some(), CLAUSE_ITEM);
        }
        // Decision (erratum required-when-device): the remaining (必选) fields
        // apply to devices only; groups and regions omit them in practice.
        if self.is_device() && self.event.is_none() {
            let fields: [(&str, bool); 10] = [
                ("Manufacturer", self.manufacturer.is_some()),
                ("Model", self.model.is_some()),
                ("Owner", self.owner.is_some()),
                ("CivilCode", self.civil_code.is_some()),
                ("Address", self.address.is_some()),
                ("Parental", self.parental.is_some()),
                ("ParentID", self.parent_id.is_some()),
                ("RegisterWay", self.register_way.is_some()),
                ("Secrecy", self.secrecy.is_some()),
                ("Status", self.status.is_some()),
            ];
            for (name, present) in fields {
                require(out, path, name, present, CLAUSE_ITEM_DEVICE);
            }
        }
    }
}
