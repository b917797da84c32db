//! MANSCDP XML bodies of GB/T 28181 SIP MESSAGE/NOTIFY requests: 保活,
//! 设备查询 (目录检索, 设备信息, 设备状态), 文件检索, 设备控制 (控制格式), 设备配置,
//! 报警事件通知, 订阅 (alarm subscription query), 语音广播, 图像抓拍 and
//! MediaStatus, as described in `gb28181-features.txt` and
//! `platform-cascade-sip.txt`.
//!
//! Sans-IO: bytes in, typed [`Message`] plus [`Finding`]s out, and back.
//!
//! ```text
//! let d = Message::decode(body_bytes)?;          // lenient; never panics
//! d.findings                                     // what the peer got wrong, with clauses
//! d.message.get("DeviceList/Item[0]/Name")        // assertion by path
//! let reply = d.message.reply(Body::DeviceInfoResponse(..));
//! let bytes = reply.encode(Charset::Gb2312);      // canonical layout
//! ```
//!
//! Decoding detects the encoding (see `charset`), parses into an
//! [`Element`] tree (kept in [`Decoded::tree`] exactly as received), then
//! maps the tree onto a typed body chosen by root element and `CmdType`.
//! Anything the model does not define stays in the body's `extras`, so
//! `decode` then `encode` loses nothing. Encoding is deterministic: fixed
//! element order, four-space indentation, `\n` line ends; a canonical body
//! decoded and encoded in the same charset comes back byte for byte.
//!
//! Multi-message answers (Catalog, RecordInfo) are split with
//! [`catalog_pages`]/[`record_info_pages`] and collected with
//! [`CatalogCollector`]/[`RecordInfoCollector`].

mod catalog;
mod charset;
mod check;
mod content_type;
mod control;
mod device;
mod element;
mod fields;
mod finding;
mod notify;
mod paging;
mod quirks;
mod record;
mod values;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod spec_samples;
#[cfg(test)]
mod tests;

pub use catalog::{CatalogItem, CatalogItemInfo, CatalogList, CatalogQuery};
pub use charset::Charset;
pub use check::{is_device_id, type_code, Validate};
pub use content_type::{match_content_type, ContentTypeMatch, CONTENT_TYPE};
pub use control::{ControlInfo, DeviceControl, DragZoom, HomePosition};
pub use device::{
    AlarmStatusItem, BasicParam, ConfigDownloadQuery, ConfigDownloadResponse, DeviceConfig,
    DeviceInfoResponse, DeviceStatusResponse, KeepaliveInfo, KeepaliveNotify, PlainQuery,
    PresetItem, PresetQueryResponse, SnapShotConfig,
};
pub use element::{Element, MAX_DEPTH};
pub use fields::{FieldReader, ItemList, Record, XmlValue};
pub use finding::{Erratum, Finding, FindingCode, Severity, ERRATA};
pub use notify::{
    AlarmInfo, AlarmNotify, AlarmQuery, AlarmTypeParam, BroadcastNotify, MediaStatusNotify,
    ResultResponse, SnapShotList, UploadSnapShotFinished,
};
pub use paging::{
    catalog_pages, record_info_pages, CatalogCollector, PageCollector, PagedItem, Progress,
    RecordInfoCollector,
};
pub use quirks::Quirks;
pub use record::{RecordInfoQuery, RecordInfoResponse, RecordItem};
pub use values::{
    AlarmCmd, CatalogEvent, CmdType, DutyStatus, GuardCmd, IFrameCmd, OnOff, Online, RecordCmd,
    RecordType, ResultType, TeleBoot,
};

use finding::{CLAUSE_CMDTYPE, CLAUSE_DEVICEINFO_BODY, CLAUSE_DEVICE_ID, CLAUSE_SN};
use serde::{Deserialize, Serialize};

/// Why a body could not be decoded at all. Deviations that can be read
/// past are [`Finding`]s instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty MANSCDP body")]
    Empty,
    #[error("malformed XML at offset {offset} of the decoded text: {message}")]
    Xml { offset: u64, message: String },
    #[error("XML ends inside <{open}>")]
    Truncated { open: String },
    #[error("no root element")]
    NoRootElement,
    #[error("element nesting deeper than {limit}")]
    TooDeep { limit: usize },
    #[error("root element <{name}> is not Query, Response, Control or Notify")]
    UnknownRoot { name: String },
    /// Strict decoding met a deviation the lenient decoder would recover from.
    #[error("strict decoding refuses the body: {}", .0.describe())]
    Strict(Box<Finding>),
}

/// How to decode. The default is lenient: a deviation the decoder can read
/// past (a field written as an attribute, an element name in the wrong case,
/// no XML declaration, an encoding other than the declared one) is recovered
/// and recorded as an error-severity [`Finding`], so one quirk does not hide
/// the rest of the body. `strict` refuses such a body instead
/// ([`DecodeError::Strict`]): the body counts as not understood.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    pub strict: bool,
}

impl DecodeOptions {
    /// Refuse what the lenient decoder would recover from.
    pub const STRICT: DecodeOptions = DecodeOptions { strict: true };
}

/// The four MANSCDP root elements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Root {
    Query,
    Response,
    Control,
    Notify,
}

impl Root {
    /// Element name.
    pub fn as_str(self) -> &'static str {
        match self {
            Root::Query => "Query",
            Root::Response => "Response",
            Root::Control => "Control",
            Root::Notify => "Notify",
        }
    }

    /// Root for an element name; the flag is `true` when only the case differs.
    pub fn from_name(name: &str) -> Option<(Root, bool)> {
        [Root::Query, Root::Response, Root::Control, Root::Notify]
            .into_iter()
            .find_map(|r| {
                if r.as_str() == name {
                    Some((r, false))
                } else if r.as_str().eq_ignore_ascii_case(name) {
                    Some((r, true))
                } else {
                    None
                }
            })
    }
}

/// Body of a message without a typed model: everything is in `extras`.
pub type Generic = PlainQuery;

macro_rules! bodies {
    ($( $(#[$m:meta])* $var:ident($ty:ty) = $root:ident, $cmd:ident; )*) => {
        /// Typed body, chosen by root element and `CmdType`.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        pub enum Body {
            $( $(#[$m])* $var($ty), )*
            /// Any other root/CmdType pair; all children are in `extras`.
            Other(Generic),
        }

        impl Body {
            /// The root and CmdType this body is sent with (`None` for `Other`).
            pub fn kind(&self) -> Option<(Root, CmdType)> {
                match self {
                    $( Body::$var(_) => Some((Root::$root, CmdType::$cmd)), )*
                    Body::Other(_) => None,
                }
            }

            fn read_as(root: Root, cmd: Option<&CmdType>, r: &mut FieldReader<'_>) -> Body {
                match (root, cmd) {
                    $( (Root::$root, Some(CmdType::$cmd)) => Body::$var(<$ty as Record>::read(r)), )*
                    _ => Body::Other(<Generic as Record>::read(r)),
                }
            }

            /// Append the body's elements in canonical order.
            pub fn write_children(&self, out: &mut Vec<Element>) {
                match self {
                    $( Body::$var(b) => b.write_children(out), )*
                    Body::Other(b) => b.write_children(out),
                }
            }

            /// Elements kept verbatim.
            pub fn extras(&self) -> &[Element] {
                match self {
                    $( Body::$var(b) => b.extras(), )*
                    Body::Other(b) => b.extras(),
                }
            }

            fn validate_into(&self, path: &str, out: &mut Vec<Finding>) {
                match self {
                    $( Body::$var(b) => b.validate(path, out), )*
                    Body::Other(b) => b.validate(path, out),
                }
            }
        }
    };
}

bodies! {
    Keepalive(KeepaliveNotify) = Notify, Keepalive;
    CatalogQuery(CatalogQuery) = Query, Catalog;
    CatalogResponse(CatalogList) = Response, Catalog;
    /// Catalog change notification (目录订阅).
    CatalogNotify(CatalogList) = Notify, Catalog;
    DeviceInfoQuery(PlainQuery) = Query, DeviceInfo;
    DeviceInfoResponse(DeviceInfoResponse) = Response, DeviceInfo;
    DeviceStatusQuery(PlainQuery) = Query, DeviceStatus;
    DeviceStatusResponse(DeviceStatusResponse) = Response, DeviceStatus;
    RecordInfoQuery(RecordInfoQuery) = Query, RecordInfo;
    RecordInfoResponse(RecordInfoResponse) = Response, RecordInfo;
    ConfigDownloadQuery(ConfigDownloadQuery) = Query, ConfigDownload;
    ConfigDownloadResponse(ConfigDownloadResponse) = Response, ConfigDownload;
    PresetQuery(PlainQuery) = Query, PresetQuery;
    PresetQueryResponse(PresetQueryResponse) = Response, PresetQuery;
    DeviceControl(DeviceControl) = Control, DeviceControl;
    DeviceControlResponse(ResultResponse) = Response, DeviceControl;
    DeviceConfig(DeviceConfig) = Control, DeviceConfig;
    DeviceConfigResponse(ResultResponse) = Response, DeviceConfig;
    /// Alarm subscription (订阅格式).
    AlarmQuery(AlarmQuery) = Query, Alarm;
    AlarmNotify(AlarmNotify) = Notify, Alarm;
    AlarmResponse(ResultResponse) = Response, Alarm;
    MediaStatus(MediaStatusNotify) = Notify, MediaStatus;
    BroadcastNotify(BroadcastNotify) = Notify, Broadcast;
    BroadcastResponse(ResultResponse) = Response, Broadcast;
    UploadSnapShotFinished(UploadSnapShotFinished) = Notify, UploadSnapShotFinished;
}

/// One MANSCDP message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Root element as sent.
    pub root: Root,
    /// `CmdType` (`None` when absent).
    pub cmd_type: Option<CmdType>,
    /// `SN` (`None` when absent or not numeric; a non-numeric SN stays in the body's extras).
    pub sn: Option<u64>,
    /// `DeviceID` (absent in a Broadcast notification).
    pub device_id: Option<String>,
    pub body: Body,
}

/// A decoded body with everything learnt while decoding it.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    pub message: Message,
    /// Deviations, in the order found: prolog and encoding, XML, names, then semantics.
    pub findings: Vec<Finding>,
    /// The encoding the bytes were read in; encoding back in it reproduces the declaration.
    pub charset: Charset,
    /// The `encoding` pseudo-attribute as written.
    pub declared_encoding: Option<String>,
    /// The element tree as received (original names, order, attributes).
    pub tree: Element,
}

impl Decoded {
    /// Text at `path` (see [`Element::get`]): in the tree as received, else
    /// in the recovered message, so a field sent as an attribute or under a
    /// differently cased name is still found under its schema name. A
    /// leading root name is accepted in either spelling.
    pub fn get(&self, path: &str) -> Option<String> {
        let path = self.canonical_path(path);
        match self.tree.get(path) {
            Some(v) => Some(v.to_owned()),
            None => self.message.get(path),
        }
    }

    /// Number of elements matching `path`, as for [`Decoded::get`].
    pub fn count(&self, path: &str) -> usize {
        let path = self.canonical_path(path);
        match self.tree.count(path) {
            0 => self.message.count(path),
            n => n,
        }
    }

    /// The element tree with the structural quirks recovered: the tree as
    /// received when the names and the layout were right, else the
    /// recovered message in canonical form (fields sent as attributes are
    /// elements, names have their schema spelling; nothing sent is lost).
    pub fn recovered_tree(&self) -> std::borrow::Cow<'_, Element> {
        let structural = [
            FindingCode::FieldAsAttribute,
            FindingCode::RootNameCase,
            FindingCode::ElementNameCase,
        ];
        if self
            .findings
            .iter()
            .any(|f| structural.iter().any(|c| f.code == *c))
        {
            std::borrow::Cow::Owned(self.message.to_element())
        } else {
            std::borrow::Cow::Borrowed(&self.tree)
        }
    }

    fn canonical_path<'p>(&self, path: &'p str) -> &'p str {
        for root in [self.tree.name.as_str(), self.message.root.as_str()] {
            match path.strip_prefix(root) {
                Some("") => return "",
                Some(r) if r.starts_with('/') || r.starts_with('@') => {
                    return r.trim_start_matches('/')
                }
                _ => {}
            }
        }
        path
    }

    /// The most severe finding, if any.
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// True if a finding with this code was recorded.
    pub fn has(&self, code: FindingCode) -> bool {
        self.findings.iter().any(|f| f.code == code)
    }

    /// Findings of severity `Error`.
    pub fn errors(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
    }
}

const CONTROL_COMMANDS: &[&str] = &[
    "PTZCmd",
    "TeleBoot",
    "RecordCmd",
    "GuardCmd",
    "AlarmCmd",
    "IFameCmd",
    "IFrameCmd",
    "DragZoomIn",
    "DragZoomOut",
    "HomePosition",
    "BasicParam",
    "SnapShotConfig",
];

impl Message {
    /// A message whose root and CmdType follow from `body`
    /// (for [`Body::Other`], root `Query` and no CmdType: set them afterwards).
    pub fn new(sn: u64, device_id: impl Into<String>, body: Body) -> Message {
        let (root, cmd) = match body.kind() {
            Some((r, c)) => (r, Some(c)),
            None => (Root::Query, None),
        };
        Message {
            root,
            cmd_type: cmd,
            sn: Some(sn),
            device_id: Some(device_id.into()),
            body,
        }
    }

    /// A header-only query (`Catalog`, `DeviceInfo`, `DeviceStatus`, `PresetQuery`, ...).
    pub fn query(cmd: CmdType, sn: u64, device_id: impl Into<String>) -> Message {
        let body = match cmd {
            CmdType::Catalog => Body::CatalogQuery(CatalogQuery::default()),
            CmdType::DeviceInfo => Body::DeviceInfoQuery(PlainQuery::default()),
            CmdType::DeviceStatus => Body::DeviceStatusQuery(PlainQuery::default()),
            CmdType::PresetQuery => Body::PresetQuery(PlainQuery::default()),
            CmdType::RecordInfo => Body::RecordInfoQuery(RecordInfoQuery::default()),
            CmdType::ConfigDownload => Body::ConfigDownloadQuery(ConfigDownloadQuery::default()),
            CmdType::Alarm => Body::AlarmQuery(AlarmQuery::default()),
            _ => Body::Other(Generic::default()),
        };
        Message {
            root: Root::Query,
            cmd_type: Some(cmd),
            sn: Some(sn),
            device_id: Some(device_id.into()),
            body,
        }
    }

    /// A keepalive notification.
    pub fn keepalive(sn: u64, device_id: impl Into<String>, status: ResultType) -> Message {
        Message::new(sn, device_id, Body::Keepalive(KeepaliveNotify::new(status)))
    }

    /// A broadcast notification (no DeviceID, 语音广播).
    pub fn broadcast(
        sn: u64,
        source_id: impl Into<String>,
        target_id: impl Into<String>,
    ) -> Message {
        Message {
            root: Root::Notify,
            cmd_type: Some(CmdType::Broadcast),
            sn: Some(sn),
            device_id: None,
            body: Body::BroadcastNotify(BroadcastNotify {
                source_id: Some(source_id.into()),
                target_id: Some(target_id.into()),
                extras: Vec::new(),
            }),
        }
    }

    /// The reply to this message: `<Response>` with the same CmdType and SN
    /// ("响应命令中的SN值应使用请求命令中的SN值") and the same DeviceID
    /// ("取值与目录查询请求相同"); a Broadcast reply takes the TargetID.
    pub fn reply(&self, body: Body) -> Message {
        let device_id = match (&self.device_id, &self.body) {
            (None, Body::BroadcastNotify(b)) => b.target_id.clone(),
            (id, _) => id.clone(),
        };
        Message {
            root: Root::Response,
            cmd_type: self.cmd_type.clone(),
            sn: self.sn,
            device_id,
            body,
        }
    }

    /// The `Result`-only reply to a control, configuration, alarm or broadcast.
    pub fn reply_result(&self, result: ResultType) -> Message {
        let r = ResultResponse::new(result);
        let body = match self.cmd_type {
            Some(CmdType::DeviceControl) => Body::DeviceControlResponse(r),
            Some(CmdType::DeviceConfig) => Body::DeviceConfigResponse(r),
            Some(CmdType::Alarm) => Body::AlarmResponse(r),
            Some(CmdType::Broadcast) => Body::BroadcastResponse(r),
            _ => Body::Other(Generic {
                extras: vec![Element::leaf(
                    "Result",
                    r.result.map(|v| v.to_xml()).unwrap_or_default(),
                )],
            }),
        };
        self.reply(body)
    }

    /// This message as an element tree in canonical order.
    pub fn to_element(&self) -> Element {
        let mut children = Vec::new();
        if let Some(c) = &self.cmd_type {
            children.push(Element::leaf("CmdType", c.as_str()));
        }
        if let Some(sn) = self.sn {
            children.push(Element::leaf("SN", sn.to_string()));
        }
        if let Some(id) = &self.device_id {
            children.push(Element::leaf("DeviceID", id.clone()));
        }
        self.body.write_children(&mut children);
        Element::parent(self.root.as_str(), children)
    }

    /// Encode in canonical layout with an XML declaration naming `charset`.
    pub fn encode(&self, charset: Charset) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(charset, &mut out);
        out
    }

    /// Append the encoding to `out`.
    pub fn encode_into(&self, charset: Charset, out: &mut Vec<u8>) {
        self.to_element().write_document(charset, out);
    }

    /// Decode a body leniently. Fails only when no message can be read at all.
    pub fn decode(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        Message::decode_with(bytes, DecodeOptions::default())
    }

    /// Decode with options: lenient (the default), or strict, which refuses
    /// a body with any deviation of [`FindingCode::RECOVERED`].
    pub fn decode_with(bytes: &[u8], opts: DecodeOptions) -> Result<Decoded, DecodeError> {
        let d = Message::decode_lenient(bytes)?;
        if opts.strict {
            if let Some(f) = d
                .findings
                .iter()
                .find(|f| FindingCode::RECOVERED.iter().any(|c| f.code == *c))
            {
                return Err(DecodeError::Strict(Box::new(f.clone())));
            }
        }
        Ok(d)
    }

    fn decode_lenient(bytes: &[u8]) -> Result<Decoded, DecodeError> {
        let mut findings = Vec::new();
        let text = charset::decode_bytes(bytes, &mut findings);
        let tree = element::parse_tree(&text.text, &mut findings)?;
        let message = Message::from_tree(tree.clone(), &mut findings)?;
        findings.extend(message.validate());
        Ok(Decoded {
            message,
            findings,
            charset: text.charset,
            declared_encoding: text.declared,
            tree,
        })
    }

    /// Decode, discarding findings.
    pub fn parse(bytes: &[u8]) -> Result<Message, DecodeError> {
        Message::decode(bytes).map(|d| d.message)
    }

    /// Type an element tree (for example one built by hand, or [`Decoded::tree`]).
    /// Reading findings go to `findings`; call [`Message::validate`] for semantic ones.
    pub fn from_tree(tree: Element, findings: &mut Vec<Finding>) -> Result<Message, DecodeError> {
        let Some((root, case)) = Root::from_name(&tree.name) else {
            return Err(DecodeError::UnknownRoot { name: tree.name });
        };
        let path = root.as_str().to_owned();
        if case {
            findings.push(FindingCode::RootNameCase.at(
                &path,
                format!("<{}> read as <{}>", tree.name, root.as_str()),
            ));
        }
        let children = lift_attributes(tree, &path, findings);
        let mut r = FieldReader::new(children, path.clone(), findings);
        let cmd_type = r.leaf::<String>("CmdType", &[]).map(|s| {
            let (c, case) = CmdType::parse_lenient(&s);
            if case {
                r.push(
                    FindingCode::CmdTypeCase
                        .at(
                            format!("{path}/CmdType"),
                            format!("{s:?} read as {:?}", c.as_str()),
                        )
                        .with_clause(CLAUSE_CMDTYPE),
                );
            }
            c
        });
        let sn = r.leaf_coded::<u64>("SN", &[], FindingCode::SnNotNumeric);
        let device_id = r.leaf::<String>("DeviceID", &[]);
        let (kind_root, kind_cmd) = Self::sniff(root, cmd_type.as_ref(), &mut r);
        let mut body = Body::read_as(kind_root, kind_cmd.as_ref().or(cmd_type.as_ref()), &mut r);
        if let Body::UploadSnapShotFinished(b) = &mut body {
            notify::repair_snapshot_json(b, &path, findings);
        }
        Ok(Message {
            root,
            cmd_type,
            sn,
            device_id,
            body,
        })
    }

    /// Lenient typing for the spec's own inconsistent samples (errata
    /// control-reply-root, devicestatus-response-cmdtype, deviceinfo-response-cmdtype).
    fn sniff(
        root: Root,
        cmd: Option<&CmdType>,
        r: &mut FieldReader<'_>,
    ) -> (Root, Option<CmdType>) {
        let path = r.path().to_owned();
        match (root, cmd) {
            (Root::Control, Some(c @ (CmdType::DeviceControl | CmdType::DeviceConfig)))
                if r.has("Result") && !CONTROL_COMMANDS.iter().any(|n| r.has(n)) =>
            {
                r.push(FindingCode::RootMismatch.at(
                    &path,
                    format!(
                        "{} reply sent under <Control>; read as <Response>",
                        c.as_str()
                    ),
                ));
                (Root::Response, Some(c.clone()))
            }
            (Root::Response, Some(CmdType::Catalog))
                if !r.has("SumNum") && !r.has("DeviceList") =>
            {
                let kind = if r.has("Online") || r.has("Alarmstatus") {
                    Some(CmdType::DeviceStatus)
                } else if ["DeviceName", "Firmware", "Channel", "Manufacturer", "Model"]
                    .iter()
                    .any(|n| r.has(n))
                {
                    Some(CmdType::DeviceInfo)
                } else {
                    None
                };
                if let Some(k) = &kind {
                    let f = FindingCode::BodyMismatch.at(
                        format!("{path}/CmdType"),
                        format!(
                            "CmdType is Catalog but the body is a {} answer; expected CmdType {}",
                            k.as_str(),
                            k.as_str()
                        ),
                    );
                    r.push(if *k == CmdType::DeviceInfo {
                        f.with_clause(CLAUSE_DEVICEINFO_BODY)
                    } else {
                        f
                    });
                }
                (root, kind)
            }
            _ => (root, None),
        }
    }

    /// Semantic checks: header rules, then the body's mandatory fields and formats.
    pub fn validate(&self) -> Vec<Finding> {
        let mut out = Vec::new();
        let path = self.root.as_str();
        let extra = |name: &str| {
            self.body
                .extras()
                .iter()
                .any(|e| e.name.eq_ignore_ascii_case(name))
        };
        if self.cmd_type.is_none() && !extra("CmdType") {
            out.push(FindingCode::MissingCmdType.at(format!("{path}/CmdType"), "no <CmdType>"));
        }
        match self.sn {
            None if !extra("SN") => out.push(
                FindingCode::MissingSn
                    .at(format!("{path}/SN"), "no <SN>")
                    .with_clause(CLAUSE_SN),
            ),
            Some(0) => out.push(
                FindingCode::SnOutOfRange.at(format!("{path}/SN"), "SN 0 is below minInclusive 1"),
            ),
            _ => {}
        }
        let broadcast = matches!(self.body, Body::BroadcastNotify(_));
        match &self.device_id {
            None if !broadcast => out.push(
                FindingCode::MissingDeviceId
                    .at(format!("{path}/DeviceID"), "no <DeviceID>")
                    .with_clause(CLAUSE_DEVICE_ID),
            ),
            Some(id) => check::check_device_id(&mut out, &format!("{path}/DeviceID"), id),
            None => {}
        }
        self.body.validate_into(path, &mut out);
        out
    }

    /// Text at `path` of the canonical tree (see [`Element::get`]), e.g.
    /// `DeviceList/Item[0]/Name`, `DeviceList@Num`, `SN`.
    pub fn get(&self, path: &str) -> Option<String> {
        self.to_element().get(path).map(str::to_owned)
    }

    /// Number of elements matching `path` (see [`Element::find_all`]).
    pub fn count(&self, path: &str) -> usize {
        self.to_element().count(path)
    }
}

/// Fields written as attributes of the root element (`<Notify
/// CmdType="Keepalive" SN="5">`) become child elements in front of the
/// others, each with finding `manscdp.field-as-attribute`; an attribute
/// whose element is also present, or a namespace declaration, is left
/// alone (finding `manscdp.attributes-ignored`).
fn lift_attributes(tree: Element, path: &str, findings: &mut Vec<Finding>) -> Vec<Element> {
    let Element {
        name,
        attrs,
        children,
        ..
    } = tree;
    let mut lifted = Vec::new();
    let mut ignored = false;
    for (k, v) in attrs {
        let namespace = k == "xmlns" || k.starts_with("xmlns:") || k.starts_with("xml:");
        let present = children.iter().any(|c| c.name.eq_ignore_ascii_case(&k));
        if namespace || present {
            ignored = true;
            continue;
        }
        findings.push(FindingCode::FieldAsAttribute.at(
            format!("{path}@{k}"),
            format!("{k} is an attribute of <{name}>, not an element (<{k}>{v}</{k}>)"),
        ));
        lifted.push(Element::leaf(k, v));
    }
    if ignored {
        findings.push(
            FindingCode::AttributesIgnored
                .at(path, "attributes of the root element are not modelled"),
        );
    }
    lifted.extend(children);
    lifted
}
