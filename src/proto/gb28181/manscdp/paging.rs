//! Multi-message answers: 目录查询应答命令支持多响应消息传输 and 文件检索
//! "当一条Message消息无法传送完所有查询结果时，采用多条消息传送".
//!
//! A responder splits its result set with [`catalog_pages`] or
//! [`record_info_pages`]: every page carries `SumNum` = total and a list whose
//! `Num` = items in that page. A requester feeds each reply to a
//! [`PageCollector`] until [`Progress::Complete`]; the cascade rule is
//! "累计DeviceList的Item数量,当累计数量和SumNum字段值相等时,则说明查询结束".
//! Mismatches (Num vs items, SumNum changing, duplicates, overflow, wrong SN)
//! become findings; the collector keeps going.

use super::catalog::{CatalogItem, CatalogList};
use super::fields::{ItemList, Record};
use super::finding::{Finding, FindingCode, Severity};
use super::record::{RecordInfoResponse, RecordItem};
use super::{Body, Message, Root};
use std::collections::HashSet;

/// An item type of a multi-message answer.
pub trait PagedItem: Record + Clone {
    /// Name of the list element (`DeviceList`, `RecordList`).
    const LIST: &'static str;
    /// Identity used to detect duplicates.
    fn key(&self) -> String;
    /// `SumNum` and the list of a reply body, if the body is this kind of page.
    fn page(body: &Body) -> Option<(Option<u32>, Option<&ItemList<Self>>)>;
}

impl PagedItem for CatalogItem {
    const LIST: &'static str = "DeviceList";
    fn key(&self) -> String {
        match &self.device_id {
            Some(id) => id.clone(),
            None => format!("{self:?}"),
        }
    }
    fn page(body: &Body) -> Option<(Option<u32>, Option<&ItemList<Self>>)> {
        match body {
            Body::CatalogResponse(c) => Some((c.sum_num, c.device_list.as_ref())),
            _ => None,
        }
    }
}

impl PagedItem for RecordItem {
    const LIST: &'static str = "RecordList";
    fn key(&self) -> String {
        format!(
            "{:?}|{:?}|{:?}|{:?}|{:?}",
            self.device_id, self.start_time, self.end_time, self.file_path, self.record_type
        )
    }
    fn page(body: &Body) -> Option<(Option<u32>, Option<&ItemList<Self>>)> {
        match body {
            Body::RecordInfoResponse(r) => Some((r.sum_num, r.record_list.as_ref())),
            _ => None,
        }
    }
}

/// Catalog replies to `query`, `per_message` items each (at least 1); an
/// empty catalog gives one reply with `SumNum` 0 and an empty list.
pub fn catalog_pages(query: &Message, items: &[CatalogItem], per_message: usize) -> Vec<Message> {
    let total = items.len() as u32;
    chunks(items, per_message)
        .into_iter()
        .map(|chunk| {
            query.reply(Body::CatalogResponse(CatalogList::page(
                total,
                chunk.to_vec(),
            )))
        })
        .collect()
}

/// RecordInfo replies to `query`, `per_message` items each (at least 1).
pub fn record_info_pages(
    query: &Message,
    name: Option<&str>,
    items: &[RecordItem],
    per_message: usize,
) -> Vec<Message> {
    let total = items.len() as u32;
    chunks(items, per_message)
        .into_iter()
        .map(|chunk| {
            query.reply(Body::RecordInfoResponse(RecordInfoResponse::page(
                name.map(str::to_owned),
                total,
                chunk.to_vec(),
            )))
        })
        .collect()
}

fn chunks<T>(items: &[T], per_message: usize) -> Vec<&[T]> {
    if items.is_empty() {
        vec![&items[..0]]
    } else {
        items.chunks(per_message.max(1)).collect()
    }
}

/// Where a collection stands after a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More items are expected (`expected` is `None` until a SumNum was seen).
    Pending {
        received: usize,
        expected: Option<u32>,
    },
    /// Unique items reached SumNum.
    Complete { received: usize },
    /// The message is not a page of this answer; it was not used.
    Ignored,
}

/// Collects the pages of one Catalog or RecordInfo answer.
#[derive(Debug, Clone)]
pub struct PageCollector<T> {
    sn: Option<u64>,
    sum_num: Option<u32>,
    items: Vec<T>,
    keys: HashSet<String>,
    messages: usize,
    findings: Vec<Finding>,
}

/// Collector for Catalog answers.
pub type CatalogCollector = PageCollector<CatalogItem>;
/// Collector for RecordInfo answers.
pub type RecordInfoCollector = PageCollector<RecordItem>;

impl<T: PagedItem> Default for PageCollector<T> {
    fn default() -> Self {
        PageCollector {
            sn: None,
            sum_num: None,
            items: Vec::new(),
            keys: HashSet::new(),
            messages: 0,
            findings: Vec::new(),
        }
    }
}

impl<T: PagedItem> PageCollector<T> {
    /// A collector that accepts replies with any SN.
    pub fn new() -> Self {
        Self::default()
    }

    /// A collector for the answer to `query`: replies must echo its SN.
    pub fn for_query(query: &Message) -> Self {
        PageCollector {
            sn: query.sn,
            ..Self::default()
        }
    }

    /// Feed one reply.
    pub fn push(&mut self, msg: &Message) -> Progress {
        let Some((sum_num, list)) = T::page(&msg.body).filter(|_| msg.root == Root::Response)
        else {
            self.findings.push(FindingCode::UnexpectedMessage.at(
                "",
                format!(
                    "{} {:?} is not a {} page",
                    msg.root.as_str(),
                    msg.cmd_type.as_ref().map(|c| c.as_str()),
                    T::LIST
                ),
            ));
            return Progress::Ignored;
        };
        let idx = self.messages;
        self.messages += 1;
        let at = |p: &str| format!("message[{idx}]/{p}");
        if self.sn.is_some() && msg.sn != self.sn {
            self.findings.push(FindingCode::SnMismatch.at(
                at("SN"),
                format!("reply SN {:?} differs from query SN {:?}", msg.sn, self.sn),
            ));
        }
        if self.is_complete() {
            self.findings.push(FindingCode::Overflow.at(
                at(""),
                format!(
                    "page after SumNum {:?} items were already received",
                    self.sum_num
                ),
            ));
        }
        match (sum_num, self.sum_num) {
            (None, _) => self.findings.push(
                FindingCode::MissingField
                    .at(at("SumNum"), "page without <SumNum>")
                    .with_severity(Severity::Error),
            ),
            (Some(s), None) => self.sum_num = Some(s),
            (Some(s), Some(first)) if s != first => {
                self.findings.push(FindingCode::SumNumChanged.at(
                    at("SumNum"),
                    format!("SumNum {s} differs from {first} of the first page"),
                ))
            }
            _ => {}
        }
        let items: &[T] = list.map(|l| l.items.as_slice()).unwrap_or(&[]);
        match list {
            None if sum_num.unwrap_or(0) > 0 => self.findings.push(
                FindingCode::MissingField.at(at(T::LIST), format!("page without <{}>", T::LIST)),
            ),
            Some(l) if l.num != Some(l.items.len() as u32) => {
                self.findings.push(FindingCode::ListNumMismatch.at(
                    at(&format!("{}@Num", T::LIST)),
                    format!("Num {:?} but {} Item element(s)", l.num, l.items.len()),
                ))
            }
            _ => {}
        }
        let before = self.items.len();
        for (i, item) in items.iter().enumerate() {
            if self.keys.insert(item.key()) {
                self.items.push(item.clone());
            } else {
                self.findings.push(FindingCode::DuplicateItem.at(
                    at(&format!("{}/Item[{i}]", T::LIST)),
                    format!("item {} already received", item.key()),
                ));
            }
        }
        if let Some(s) = self.sum_num {
            let s = s as usize;
            if self.items.len() > s && before <= s {
                self.findings.push(FindingCode::Overflow.at(
                    at(T::LIST),
                    format!("{} unique items exceed SumNum {s}", self.items.len()),
                ));
            }
        }
        self.progress()
    }

    /// Current progress.
    pub fn progress(&self) -> Progress {
        if self.is_complete() {
            Progress::Complete {
                received: self.items.len(),
            }
        } else {
            Progress::Pending {
                received: self.items.len(),
                expected: self.sum_num,
            }
        }
    }

    /// True once unique items reached SumNum.
    pub fn is_complete(&self) -> bool {
        matches!(self.sum_num, Some(s) if self.items.len() >= s as usize)
    }

    /// Unique items so far, in arrival order.
    pub fn items(&self) -> &[T] {
        &self.items
    }

    /// SumNum of the first page that had one.
    pub fn sum_num(&self) -> Option<u32> {
        self.sum_num
    }

    /// Pages accepted so far.
    pub fn messages(&self) -> usize {
        self.messages
    }

    /// Findings so far.
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// End the collection (for example on timeout): items and findings,
    /// plus `manscdp.incomplete` if SumNum was not reached.
    pub fn finish(mut self) -> (Vec<T>, Vec<Finding>) {
        if !self.is_complete() {
            self.findings.push(FindingCode::Incomplete.at(
                "",
                format!(
                    "{} of {:?} items received in {} message(s)",
                    self.items.len(),
                    self.sum_num,
                    self.messages
                ),
            ));
        }
        (self.items, self.findings)
    }
}
