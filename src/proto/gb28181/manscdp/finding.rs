//! Findings: deviations from GB/T 28181 that the decoder tolerated, each with
//! the clause it breaks, plus the list of known mistakes in the source
//! documents (`gb28181-features.txt`, `platform-cascade-sip.txt`) and the
//! reading this module chose for each.
//!
//! A decoder never fails on a deviation it can read past; it records a
//! [`Finding`] instead. The harness turns findings into failed or warned
//! checks; [`Severity`] says which.

use serde::Serialize;
use std::fmt;

pub use crate::finding::{Evidence, Finding, Severity};

macro_rules! finding_codes {
    ($( $(#[$m:meta])* $code:ident => $sev:ident, $name:literal, $clause:expr; )*) => {
        /// Machine-readable kind of a [`Finding`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
        #[serde(rename_all = "SCREAMING_SNAKE_CASE")]
        pub enum FindingCode {
            $( $(#[$m])* $code, )*
        }

        impl FindingCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [FindingCode] = &[$(FindingCode::$code),*];

            /// The code with this stable identifier.
            pub fn from_code(code: &str) -> Option<FindingCode> {
                FindingCode::ALL.iter().copied().find(|c| c.as_str() == code)
            }

            /// Stable identifier, as serialised.
            pub fn as_str(self) -> &'static str {
                match self { $(FindingCode::$code => $name,)* }
            }

            /// Severity used unless a check overrides it.
            pub fn severity(self) -> Severity {
                match self { $(FindingCode::$code => Severity::$sev,)* }
            }

            /// The clause of the source document that the finding is measured against.
            pub fn clause(self) -> &'static str {
                match self { $(FindingCode::$code => $clause,)* }
            }
        }
    };
}

/// Clause quoted for rules about the XML prolog.
pub(crate) const CLAUSE_DECL: &str =
    "§目录检索请求格式: <?xml version=\"1.0\" encoding=\"GB2312\"?> (every MANSCDP sample opens with a declaration naming its encoding)";
/// Clause quoted for SN rules.
pub(crate) const CLAUSE_SN: &str =
    "§保活信令xml格式: <elementname=\"SN\" type=\"integer\"minInclusivevalue= \"1\"/>; §目录检索请求格式: 命令序列号(必选)，消息中的SN值用于与请求命令的匹配处理,响应命令中的SN值应使用请求命令中的SN值。";
/// Clause quoted for DeviceID rules.
pub(crate) const CLAUSE_DEVICE_ID: &str =
    "§保活信令xml格式: <elementname=\"DeviceID\" type=\"tg:deviceIDType\"/>; §设备配置: SIP服务域：SIP服务器ID的前10位 (deviceIDType is the 20-digit national code)";
/// Clause quoted for CmdType rules.
pub(crate) const CLAUSE_CMDTYPE: &str =
    "§保活信令xml格式: <! -- 命令类型:设备状态信息报送(必选)--> <elementname=\"CmdType\"fixed=\"Keepalive\"/>";
/// Clause quoted for Num/SumNum rules.
pub(crate) const CLAUSE_NUM: &str =
    "§目录检索响应格式: <! -- 查询结果总数(必选)--> <SumNum>; <! -- 设备目录项列表,Num 表示目录项个数，注意双引号--> <DeviceList Num=\"1\">";
/// Clause quoted for multi-message accumulation.
pub(crate) const CLAUSE_ACCUMULATE: &str =
    "cascade: 平台设备共享 (备注) 上级平台收到下级平台目录查询响应消息后,根据SumNum字段确定共享设备数量,并累计DeviceList的Item数量,当累计数量和SumNum字段值相等时,则说明查询结束。";
/// Clause quoted for the MANSCDP content type.
pub(crate) const CLAUSE_CONTENT_TYPE: &str =
    "§保活信令流程: 设备状态信息报送命令采用`MESSAGE`方法携带 - `Content-type: Application/MANSCDP+xml`";
/// Clause quoted for element names.
pub(crate) const CLAUSE_NAMES: &str =
    "§目录检索响应格式 (element names as written in the MANSCDP schema; XML names are case-sensitive)";
/// Clause quoted when a DeviceInfo answer carries `CmdType` Catalog (the
/// spec's own 设备信息查询响应格式 sample does; erratum deviceinfo-response-cmdtype).
pub(crate) const CLAUSE_DEVICEINFO_BODY: &str =
    "§设备信息查询响应格式 (sample): <CmdType>Catalog</CmdType> followed by <Manufacturer>/<Model>; §设备信息查询请求格式: <CmdType>DeviceInfo</CmdType> (a DeviceInfo answer carries CmdType DeviceInfo)";
/// Clause quoted for the declaration's version.
pub(crate) const CLAUSE_DECL_VERSION: &str =
    "§目录检索请求格式: <?xml version=\"1.0\" encoding=\"GB2312\"?>; XML 1.0 §2.8: VersionInfo ::= S 'version' Eq ('\"1.0\"')";
/// Clause quoted for header fields written as attributes.
pub(crate) const CLAUSE_FIELDS: &str =
    "§保活信令xml格式: <elementname=\"CmdType\"fixed=\"Keepalive\"/> <elementname=\"SN\" type=\"integer\"/> <elementname=\"DeviceID\" type=\"tg:deviceIDType\"/> (fields are child elements of the root, every sample writes them so)";
/// Clause quoted for an answer whose CmdType is not the query's.
pub(crate) const CLAUSE_ANSWER: &str =
    "§设备查询: 源设备向目标设备发送信息查询命令，目标设备将结果通过查询应答命令返回给源设备 (the answer carries the query's CmdType; §目录检索请求格式: 响应命令中的SN值应使用请求命令中的SN值)";
/// Clause quoted for snapshot configuration.
pub(crate) const CLAUSE_SNAPSHOT: &str =
    "§图像抓拍: SnapNum:连拍张数,最多10张,当为手动抓拍时取值为1; Interval:单张抓拍间隔时间,单位:秒,最短为1秒; SessionID:会话ID,由平台生成,用于关联抓拍的图像和平台请求,SessionID由大小写英文字母、数字、短划线组成，长度32~128字节";

finding_codes! {
    /// The body has no `<?xml ...?>` declaration. Recovered: the bytes are
    /// read as UTF-8, else GB18030.
    MissingDeclaration => Error, "manscdp.missing-declaration", CLAUSE_DECL;
    /// The declaration's `version` is missing or not `1.0`.
    DeclarationVersion => Error, "manscdp.declaration-version", CLAUSE_DECL_VERSION;
    /// The declaration has no `encoding` pseudo-attribute.
    DeclarationWithoutEncoding => Warning, "manscdp.declaration-without-encoding",
        "§保活信令流程 (sample <?xml version=\"1.0\"?>, no encoding) versus §目录检索请求格式: <?xml version=\"1.0\" encoding=\"GB2312\"?>";
    /// Something precedes the declaration.
    DeclarationNotAtStart => Warning, "manscdp.declaration-not-at-start", "XML 1.0 §2.8: the XML declaration, if present, is the first thing in the document";
    /// `standalone` is neither `yes` nor `no`.
    InvalidStandalone => Warning, "manscdp.invalid-standalone",
        "§报警格式 (sample): <?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"true\"?> (XML 1.0 §2.9 allows only yes|no)";
    /// The declared encoding is not one this decoder knows.
    UnsupportedEncoding => Error, "manscdp.unsupported-encoding", CLAUSE_DECL;
    /// The declared encoding is not the one the bytes are in.
    EncodingMismatch => Error, "manscdp.encoding-mismatch", CLAUSE_DECL;
    /// No declaration and the bytes are not UTF-8.
    UndeclaredNonUtf8 => Warning, "manscdp.undeclared-non-utf8", "XML 1.0 §4.3.3: without an encoding declaration the entity must be UTF-8 or UTF-16";
    /// Bytes invalid in every candidate encoding; replaced by U+FFFD.
    InvalidBytes => Error, "manscdp.invalid-bytes", CLAUSE_DECL;
    /// `<! -- ... -->`: a comment opener with a space, as in the spec's own samples.
    MalformedComment => Warning, "manscdp.malformed-comment",
        "§目录检索请求格式 (sample): <! -- 命令类型:设备信息查询(必选)--> (XML 1.0 §2.5 comments open with `<!--`)";
    /// Text mixed between child elements, or outside the root element.
    StrayText => Warning, "manscdp.stray-text",
        "§报警格式 (sample): <AlarmPriority>1</AlarmPriority>         报警级别 (annotation text between elements)";
    /// Content after the root element closed.
    TrailingContent => Warning, "manscdp.trailing-content", "XML 1.0 §2.1: document ::= prolog element Misc*";
    /// A bare `&` in text.
    UnescapedAmpersand => Warning, "manscdp.unescaped-ampersand", "XML 1.0 §2.4: the ampersand character (&) must not appear in its literal form";
    /// An entity other than the five predefined ones.
    UnknownEntity => Warning, "manscdp.unknown-entity", "XML 1.0 §4.6: predefined entities are lt, gt, amp, apos, quot";
    /// Attributes on an element whose schema has none; they were not kept in the typed message.
    AttributesIgnored => Info, "manscdp.attributes-ignored", CLAUSE_NAMES;
    /// The root element name matched only case-insensitively. Recovered.
    RootNameCase => Error, "manscdp.root-name-case", "§设备查询流程: root elements <Query>, <Response>, <Control>, <Notify>";
    /// An element name matched only case-insensitively. Recovered.
    ElementNameCase => Error, "manscdp.element-name-case", CLAUSE_NAMES;
    /// A field written as an attribute of the root element
    /// (`<Notify CmdType="Keepalive">`). Recovered: read as the element.
    FieldAsAttribute => Error, "manscdp.field-as-attribute", CLAUSE_FIELDS;
    /// An answer whose CmdType is not the query's (a DeviceInfo query
    /// answered with CmdType Catalog). Recovered by the collector of the
    /// answer: matched by SN.
    AnswerCmdType => Error, "manscdp.answer-cmd-type", CLAUSE_ANSWER;
    /// An element was spelled as a known variant of its schema name.
    ElementAlias => Warning, "manscdp.element-alias", CLAUSE_NAMES;
    /// The same single-valued element appears twice; the first one was used.
    DuplicateElement => Warning, "manscdp.duplicate-element", CLAUSE_NAMES;
    /// An element the typed model does not define; kept verbatim in `extras`.
    UnknownElement => Info, "manscdp.unknown-element", "§目录检索响应格式: ... 其他请参考协议文档 (elements outside the modelled subset are kept verbatim)";
    /// An element the schema defines as a leaf has child elements.
    UnexpectedChildren => Warning, "manscdp.unexpected-children", CLAUSE_NAMES;
    /// `CmdType` is absent.
    MissingCmdType => Error, "manscdp.missing-cmd-type", CLAUSE_CMDTYPE;
    /// `CmdType` value matched a known command only case-insensitively.
    CmdTypeCase => Warning, "manscdp.cmd-type-case", CLAUSE_CMDTYPE;
    /// `SN` is absent.
    MissingSn => Error, "manscdp.missing-sn", CLAUSE_SN;
    /// `SN` is not a decimal integer.
    SnNotNumeric => Error, "manscdp.sn-not-numeric", CLAUSE_SN;
    /// `SN` is below the schema minimum of 1.
    SnOutOfRange => Error, "manscdp.sn-out-of-range", CLAUSE_SN;
    /// `DeviceID` is absent.
    MissingDeviceId => Error, "manscdp.missing-device-id", CLAUSE_DEVICE_ID;
    /// A device/system code is not 20 decimal digits.
    DeviceIdFormat => Error, "manscdp.device-id-format", CLAUSE_DEVICE_ID;
    /// The root element does not fit the command (a reply sent under `<Control>`).
    RootMismatch => Error, "manscdp.root-mismatch",
        "§控制格式 (second sample): <Control><CmdType>DeviceControl</CmdType>...<Result>...</Result></Control> (replies use <Response>, 设备查询流程)";
    /// The body belongs to another command than `CmdType` names.
    BodyMismatch => Error, "manscdp.body-mismatch",
        "§设备状态响应格式 (sample): <CmdType>Catalog</CmdType> followed by <Online>/<Alarmstatus>; §设备状态请求格式: <CmdType>DeviceStatus</CmdType> (a DeviceStatus answer carries CmdType DeviceStatus)";
    /// A mandatory element is absent.
    MissingField => Error, "manscdp.missing-field", "§目录检索响应格式: (必选) marks mandatory elements";
    /// An element's text does not parse as its schema type; the element was kept in `extras`.
    InvalidValue => Error, "manscdp.invalid-value", CLAUSE_NAMES;
    /// An enumerated value matched only case-insensitively.
    ValueCase => Warning, "manscdp.value-case", CLAUSE_NAMES;
    /// An enumerated value outside the defined set; kept verbatim.
    ValueOutOfSet => Warning, "manscdp.value-out-of-set", CLAUSE_NAMES;
    /// A list element has no `Num` attribute.
    ListNumMissing => Warning, "manscdp.list-num-missing", CLAUSE_NUM;
    /// A list's `Num` attribute is not an integer.
    ListNumInvalid => Error, "manscdp.list-num-invalid", CLAUSE_NUM;
    /// A list's `Num` differs from the number of `Item`s it holds.
    ListNumMismatch => Error, "manscdp.list-num-mismatch", CLAUSE_NUM;
    /// Snapshot `SessionID` breaks the character set or 32..=128 length rule.
    SessionIdFormat => Error, "manscdp.session-id-format", CLAUSE_SNAPSHOT;
    /// `SnapNum` outside 1..=10.
    SnapNumRange => Error, "manscdp.snap-num-range", CLAUSE_SNAPSHOT;
    /// `Interval` below 1 second.
    SnapIntervalRange => Error, "manscdp.snap-interval-range", CLAUSE_SNAPSHOT;
    /// `SnapShotList` carried JSON text instead of `SnapShotFileID` elements.
    SnapShotListJson => Warning, "manscdp.snap-shot-list-json",
        "§图像抓拍 (sample code): std::string snapShotList = dynamicStruct.Get(\"SnapShotList\"); reader.parse(snapShotList, value); (JSON) versus SnapShotFileID:抓拍图像唯一标识 (elements)";
    /// `PTZCmd` text is not a valid front-end control command.
    InvalidPtzCmd => Error, "manscdp.invalid-ptz-cmd", "§指令格式 (控制定义): 8-byte command, byte 1 = A5H, byte 8 = (byte1+...+byte7)%256";
    /// Content-Type matched `Application/MANSCDP+xml` only case-insensitively.
    ContentTypeCase => Warning, "manscdp.content-type-case", CLAUSE_CONTENT_TYPE;
    /// Content-Type carries parameters.
    ContentTypeParameters => Info, "manscdp.content-type-parameters", CLAUSE_CONTENT_TYPE;
    /// A generic XML content type was used for a MANSCDP body.
    ContentTypeGenericXml => Warning, "manscdp.content-type-generic-xml",
        "cascade: 平台心跳保活 (sample): Content-Type:application/Xml (versus Application/MANSCDP+xml)";
    /// `SumNum` differs between messages of one multi-message answer.
    SumNumChanged => Error, "manscdp.sum-num-changed", CLAUSE_ACCUMULATE;
    /// An item arrived twice in one multi-message answer.
    DuplicateItem => Warning, "manscdp.duplicate-item", CLAUSE_ACCUMULATE;
    /// More items than `SumNum` announced.
    Overflow => Error, "manscdp.overflow", CLAUSE_ACCUMULATE;
    /// A reply's SN differs from the query's SN.
    SnMismatch => Error, "manscdp.sn-mismatch", CLAUSE_SN;
    /// A message that does not belong to the answer being collected.
    UnexpectedMessage => Error, "manscdp.unexpected-message", CLAUSE_ACCUMULATE;
    /// The answer ended before `SumNum` items arrived.
    Incomplete => Error, "manscdp.incomplete", CLAUSE_ACCUMULATE;
    /// PTZ command version nibble is not 0.
    PtzVersion => Warning, "manscdp.ptz-version", "§指令格式 (GB/T 28181-2016 A.3.1): 字节2 高4位是版本信息, 本标准的版本号是1.0, 版本信息为0H";
    /// A PTZ data field that the instruction does not use is not zero.
    PtzUnusedData => Info, "manscdp.ptz-unused-data", "§指令格式 (GB/T 28181-2016 A.3.1): 在后续叙述中,没有特别指明的高4位, 表示该4位与所指定的功能无关";
    /// Preset number 0.
    PtzPresetZero => Warning, "manscdp.ptz-preset-zero", "GB/T 28181-2016 A.3.4 (预置位指令): 字节6 预置位号, 取值范围 01H~FFH";
    /// Instruction code outside the defined set; kept raw.
    PtzUnknownInstruction => Warning, "manscdp.ptz-unknown-instruction", "§指令格式 (GB/T 28181-2016 A.3): PTZ 00H-3FH, FI 40H-4FH, 预置位 81H-83H, 巡航 84H-88H, 扫描 89H-8AH, 辅助开关 8CH-8DH";
    /// PTZ hex written in lower case.
    PtzHexCase => Info, "manscdp.ptz-hex-case", "§控制格式 (sample): <PTZCmd>A50F010800FA00B7</PTZCmd> (upper-case hex)";
}

impl fmt::Display for FindingCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

crate::finding::code_eq!(FindingCode);

impl FindingCode {
    /// Deviations the lenient decoder recovers from (and reports as
    /// errors) that a strict decoder refuses: see [`super::DecodeOptions`].
    pub const RECOVERED: &'static [FindingCode] = &[
        FindingCode::FieldAsAttribute,
        FindingCode::RootNameCase,
        FindingCode::ElementNameCase,
        FindingCode::MissingDeclaration,
        FindingCode::DeclarationVersion,
        FindingCode::EncodingMismatch,
    ];

    /// A finding of this code with its default severity and clause, located
    /// by an element path (`Root/Child[i]/Leaf`; empty for the whole body).
    pub fn at(self, path: impl Into<String>, message: impl Into<String>) -> Finding {
        let f = Finding::new(self.as_str(), self.severity(), self.clause(), message);
        let path = path.into();
        if path.is_empty() {
            f
        } else {
            f.with_evidence(Evidence::Path(path))
        }
    }
}

/// A mistake or ambiguity in the source documents and the reading taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Erratum {
    /// Short stable id.
    pub id: &'static str,
    /// The clause as written.
    pub clause: &'static str,
    /// What is wrong or ambiguous.
    pub problem: &'static str,
    /// What this module does about it.
    pub decision: &'static str,
}

/// Known mistakes in the MANSCDP parts of the source documents.
pub const ERRATA: &[Erratum] = &[
    Erratum {
        id: "comment-syntax",
        clause: "目录检索请求格式: <! -- 命令类型:设备信息查询(必选)-->",
        problem: "Every annotated sample writes comments as `<! --`, which is not an XML comment; a strict parser rejects the samples.",
        decision: "`<! --` is read as `<!--` with finding manscdp.malformed-comment.",
    },
    Erratum {
        id: "deviceinfo-response-cmdtype",
        clause: "设备信息查询响应格式: <! -- 命令类型:设备目录查询(必选)--> <CmdType>Catalog</CmdType> ... <Name>Camera 01</Name> <Owner>Owner</Owner> ...",
        problem: "The DeviceInfo response sample carries CmdType Catalog and a flattened catalog item instead of DeviceName/Result/Firmware/Channel.",
        decision: "A Catalog Response without SumNum/DeviceList but with DeviceInfo fields (Manufacturer, Model, Firmware, DeviceName, Channel) is typed as DeviceInfo with finding manscdp.body-mismatch; the other elements stay in extras.",
    },
    Erratum {
        id: "devicestatus-response-cmdtype",
        clause: "设备状态响应格式: <! -- 命令类型:设备目录查询(必选)--> <CmdType>Catalog</CmdType> ... <Online>ONLINE</Online>",
        problem: "The DeviceStatus response sample carries CmdType Catalog.",
        decision: "A Catalog Response without SumNum/DeviceList but with Online or Alarmstatus is typed as DeviceStatus with finding manscdp.body-mismatch; CmdType is kept as sent so re-encoding reproduces it.",
    },
    Erratum {
        id: "devicestatus-order",
        clause: "设备状态响应格式: Result, Online, Status, DeviceTime, Alarmstatus, Encode, Record",
        problem: "The sample's element order differs from the schema order (Result, Online, Status, Reason, Encode, Record, DeviceTime, Alarmstatus).",
        decision: "Decoding ignores order; encoding uses the schema order.",
    },
    Erratum {
        id: "control-reply-root",
        clause: "控制格式 second sample: <Control><CmdType>DeviceControl</CmdType>...<Result>...</Result></Control>",
        problem: "The control reply is shown under <Control>; every other reply in the document (Alarm, Broadcast, queries) uses <Response>.",
        decision: "Replies are encoded under <Response>; a <Control> carrying only Result is decoded as the reply with finding manscdp.root-mismatch and the root kept as sent.",
    },
    Erratum {
        id: "keepalive-no-encoding",
        clause: "保活信令流程 sample: <?xml version=\"1.0\"?>",
        problem: "The keepalive sample declares no encoding while the other samples declare GB2312 or UTF-8.",
        decision: "Undeclared bodies are read as UTF-8 if valid, else GB18030, with finding manscdp.declaration-without-encoding (Warning).",
    },
    Erratum {
        id: "sample-device-ids",
        clause: "保活信令流程 sample: <DeviceID>130909113319427420</DeviceID>",
        problem: "Sample device codes are 18 digits (130909113319427420) or placeholders (xxx), while deviceIDType is the 20-digit code whose first 10 digits form the SIP domain (设备配置: SIP服务域：SIP服务器ID的前10位).",
        decision: "Any non-empty DeviceID is accepted; not exactly 20 ASCII digits gives finding manscdp.device-id-format.",
    },
    Erratum {
        id: "query-response-sn",
        clause: "设备查询流程: query <SN>471</SN> to 130909113319427420, response <SN>1708</SN> from 62010201001320000393",
        problem: "The flow's response does not echo the query's SN or DeviceID, contradicting 响应命令中的SN值应使用请求命令中的SN值.",
        decision: "The SN rule wins: `Message::reply` echoes SN and DeviceID and the page collector reports `manscdp.sn-mismatch`.",
    },
    Erratum {
        id: "alarm-standalone",
        clause: "报警格式: <?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"true\"?>",
        problem: "`standalone=\"true\"` is not a legal value.",
        decision: "Accepted with finding manscdp.invalid-standalone.",
    },
    Erratum {
        id: "alarm-annotations",
        clause: "报警格式: <AlarmPriority>1</AlarmPriority>  报警级别 ... <AlarmInfo>11</AlarmInfo> ... 经度（Longitude）；纬度（Latitude）；",
        problem: "The alarm sample mixes annotation text into the XML, uses an AlarmInfo element that no schema defines, and names Longitude/Latitude only in prose.",
        decision: "Mixed text gives `manscdp.stray-text`, text after the root gives `manscdp.trailing-content`, AlarmInfo is kept in extras; Longitude/Latitude are modelled after AlarmDescription.",
    },
    Erratum {
        id: "alarm-reply-in-200",
        clause: "报警格式: SIP/2.0 200 OK ... Content-Type: application/MANSCDP+xml ... <Response><CmdType>Alarm</CmdType>...<Result>OK</Result></Response>; 报警流程: 3. 服务端返回Result为OK",
        problem: "The Alarm reply is shown as the body of the 200 OK, while the flow lists it as a separate message.",
        decision: "The codec is transport-agnostic: the Alarm Response decodes the same from either place; the SIP layer decides.",
    },
    Erratum {
        id: "alarm-priority-spelling",
        clause: "订阅格式: <StartAlarmPrority>0</StartAlarmPrority> <EndAlarmPrority>0</EndAlarmPrority>",
        problem: "The alarm subscription spells Priority as Prority.",
        decision: "StartAlarmPriority/EndAlarmPriority are canonical; the misspelling is accepted with finding manscdp.element-alias.",
    },
    Erratum {
        id: "iframe-spelling",
        clause: "设备控制: 强制关键帧 (schema element IFameCmd)",
        problem: "The standard's element is spelled IFameCmd; devices also send IFrameCmd.",
        decision: "IFameCmd is canonical; IFrameCmd is accepted with finding manscdp.element-alias.",
    },
    Erratum {
        id: "alarmstatus-case",
        clause: "设备状态响应格式: <Alarmstatus Num=\"0\">",
        problem: "The element is spelled with a lower-case s, unlike every other element; devices send AlarmStatus too.",
        decision: "Alarmstatus is canonical; AlarmStatus is accepted with finding manscdp.element-alias (a warning: the standard itself is inconsistent), other case variants with manscdp.element-name-case.",
    },
    Erratum {
        id: "snapshot-list-json",
        clause: "图像抓拍: SnapShotList:抓拍图像标识列表 / SnapShotFileID:抓拍图像唯一标识; code: reader.parse(snapShotList, value) (JSON)",
        problem: "The prose defines SnapShotList as a list of SnapShotFileID, the sample code parses it as JSON text.",
        decision: "Child <SnapShotFileID> elements are canonical; JSON text with \"SnapShotFileID\" members is accepted with finding manscdp.snap-shot-list-json.",
    },
    Erratum {
        id: "content-type-variants",
        clause: "保活信令流程: Content-type: Application/MANSCDP+xml; 订阅格式: Content-Type: application/MANSCDP+xml; platform-cascade-sip: Content-Type:application/MANSCDP+XML, Content-Type:application/Xml, Content-Encoding:UTF-8",
        problem: "The documents spell the content type four ways and put a charset into Content-Encoding.",
        decision: "Application/MANSCDP+xml is strict; other case gives `manscdp.content-type-case`, parameters `manscdp.content-type-parameters`, application/xml or text/xml `manscdp.content-type-generic-xml`. The body's XML declaration, not Content-Encoding, decides the charset.",
    },
    Erratum {
        id: "catalog-status-values",
        clause: "目录检索响应格式: <! -- 设备状态(必选)--> <Status>ON</Status>; 设备状态响应格式: <Online>ONLINE</Online>",
        problem: "Catalog item Status is ON/OFF while DeviceStatus uses ONLINE/OFFLINE; devices mix them.",
        decision: "Catalog Status is typed ON/OFF; ONLINE/OFFLINE are kept verbatim with finding manscdp.value-out-of-set.",
    },
    Erratum {
        id: "required-when-device",
        clause: "目录检索响应格式: <! -- 当为设备时,设备厂商(必选)-->",
        problem: "Manufacturer, Model, Owner, Address and Parental are mandatory only for devices, without saying how to tell a device from a group.",
        decision: "DeviceID and Name are always required (Name not for ON/OFF/VLOST/DEFECT/DEL notifications). The other (必选) fields (Manufacturer, Model, Owner, CivilCode, Address, Parental, ParentID, RegisterWay, Secrecy, Status) are required only for a device, i.e. when digits 11-13 of its DeviceID (the type code) lie in 111..=199 or the code is not 20 digits, and only in responses, not change notifications.",
    },
    Erratum {
        id: "sample-content-length",
        clause: "保活信令流程: Content-Length:   150 (the body shown is 159 bytes with LF line ends); 语音广播: Content-Length:   186 (body 231 bytes)",
        problem: "The Content-Length headers of the samples do not match the bodies printed under them (only the catalog response, 586, fits).",
        decision: "Out of scope for the body codec: framing is the SIP layer's job; the samples are used as bodies as printed.",
    },
];
