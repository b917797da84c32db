//! 文件检索 (RecordInfo): the record search query and its multi-message
//! response ("当一条Message消息无法传送完所有查询结果时，采用多条消息传送").
//!
//! Split a result set with [`super::paging::record_info_pages`]; collect an
//! answer with [`super::paging::RecordInfoCollector`].

use super::check::{check_device_id, require, Validate};
use super::fields::{record, ItemList};
use super::finding::{Finding, CLAUSE_NUM};
use super::values::RecordType;

pub(super) const CLAUSE_QUERY: &str = "§文件检索流程 (1): <StartTime>2023-10-14T00:00:00</StartTime> <EndTime>2023-10-14T23:00:00</EndTime> (GB/T 28181 A.2.4.5: StartTime, EndTime mandatory)";
pub(super) const CLAUSE_RESPONSE: &str =
    "§文件检索流程 (3): <Name>Camera 01</Name> <SumNum>1</SumNum> <RecordList Num=\"1\">";

record! {
    /// RecordInfo query: time window and filters.
    pub struct RecordInfoQuery {
        "StartTime" => leaf start_time: Option<String>;
        "EndTime" => leaf end_time: Option<String>;
        "FilePath" => leaf file_path: Option<String>;
        "Address" => leaf address: Option<String>;
        "Secrecy" => leaf secrecy: Option<u32>;
        /// time, alarm, manual or all.
        "Type" => leaf record_type: Option<RecordType>;
        "RecorderID" => leaf recorder_id: Option<String>;
        "IndistinctQuery" => leaf indistinct_query: Option<u32>;
    }
}

record! {
    /// One recording of a RecordInfo response.
    pub struct RecordItem {
        "DeviceID" => leaf device_id: Option<String>;
        "Name" => leaf name: Option<String>;
        "FilePath" => leaf file_path: Option<String>;
        "Address" => leaf address: Option<String>;
        "StartTime" => leaf start_time: Option<String>;
        "EndTime" => leaf end_time: Option<String>;
        "Secrecy" => leaf secrecy: Option<u32>;
        "Type" => leaf record_type: Option<RecordType>;
        "RecorderID" => leaf recorder_id: Option<String>;
        /// Bytes.
        "FileSize" => leaf file_size: Option<u64>;
    }
}

record! {
    /// RecordInfo response: one page of recordings.
    pub struct RecordInfoResponse {
        "Name" => leaf name: Option<String>;
        /// Total number of recordings across all messages of the answer.
        "SumNum" => leaf sum_num: Option<u32>;
        "RecordList" => list record_list: Option<ItemList<RecordItem>>;
    }
}

impl RecordInfoResponse {
    /// One page: `SumNum = total`, `RecordList Num = items.len()`.
    pub fn page(name: Option<String>, total: u32, items: Vec<RecordItem>) -> Self {
        RecordInfoResponse {
            name,
            sum_num: Some(total),
            record_list: Some(ItemList::new(items)),
            extras: Vec::new(),
        }
    }

    /// The recordings of this page.
    pub fn items(&self) -> &[RecordItem] {
        self.record_list
            .as_ref()
            .map(|l| l.items.as_slice())
            .unwrap_or(&[])
    }
}

impl Validate for RecordInfoQuery {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(
            out,
            path,
            "StartTime",
            self.start_time.is_some(),
            CLAUSE_QUERY,
        );
        require(out, path, "EndTime", self.end_time.is_some(), CLAUSE_QUERY);
    }
}

impl Validate for RecordInfoResponse {
    fn validate(&self, path: &str, out: &mut Vec<Finding>) {
        require(out, path, "Name", self.name.is_some(), CLAUSE_RESPONSE);
        require(out, path, "SumNum", self.sum_num.is_some(), CLAUSE_NUM);
        // An empty result may omit the list; a non-empty one needs it.
        if self.sum_num.unwrap_or(0) > 0 {
            require(
                out,
                path,
                "RecordList",
                self.record_list.is_some(),
                CLAUSE_NUM,
            );
        }
        for (i, item) in self.items().iter().enumerate() {
            let p = format!("{path}/RecordList/Item[{i}]");
            require(
                out,
                &p,
                "DeviceID",
                item.device_id.is_some(),
                CLAUSE_RESPONSE,
            );
            require(out, &p, "Name", item.name.is_some(), CLAUSE_RESPONSE);
            if let Some(id) = &item.device_id {
                check_device_id(out, &format!("{p}/DeviceID"), id);
            }
        }
    }
}
