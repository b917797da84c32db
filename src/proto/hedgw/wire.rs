//! Lenient HEDGWMessage decoding (附录D).
//!
//! prost alone would refuse a message with a wrong wire type or a string
//! that is not UTF-8, and would silently accept a missing `required` field
//! or an unknown one. camcert walks the wire first, against the schema
//! compiled from `proto/hedgw.proto` (build.rs keeps its descriptor set):
//! every deviation becomes a [`Finding`], the bytes prost can take are
//! copied into a cleaned buffer, and prost decodes that. The walk also
//! builds a JSON view (field names as in 附录D) that suites match on and
//! golden snapshots show. Decoding never fails: what could not be read is
//! a finding, and the message holds what could.

use std::collections::HashMap;
use std::sync::OnceLock;

use prost::Message as _;
use prost_types::field_descriptor_proto::{Label, Type};
use serde_json::{Map, Value};

use super::{clause, type_name, FindingCode, HedgwMessage, MessageType};
use crate::finding::{Evidence, Finding, Severity};

static DESCRIPTOR: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/hedgw_descriptor.bin"));

/// Bytes fields longer than this show in the view as a prefix and a length.
const VIEW_BYTES: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    U32,
    U64,
    Enum,
    Str,
    Bytes,
    Msg,
}

impl Kind {
    fn wire_type(self) -> u8 {
        match self {
            Kind::U32 | Kind::U64 | Kind::Enum => 0,
            Kind::Str | Kind::Bytes | Kind::Msg => 2,
        }
    }
}

#[derive(Debug)]
struct FieldSchema {
    number: u32,
    name: String,
    kind: Kind,
    required: bool,
    /// Full name of the message type, for `Msg`.
    type_name: String,
}

#[derive(Debug)]
struct MsgSchema {
    name: String,
    fields: Vec<FieldSchema>,
}

/// The messages of 附录D, by full name (`.hedgw.Ping`).
struct Schema {
    messages: HashMap<String, MsgSchema>,
}

fn schema() -> &'static Schema {
    static S: OnceLock<Schema> = OnceLock::new();
    S.get_or_init(|| {
        let fds = prost_types::FileDescriptorSet::decode(DESCRIPTOR)
            .expect("build.rs wrote a valid descriptor set");
        let mut messages = HashMap::new();
        for file in &fds.file {
            let pkg = file.package();
            for m in &file.message_type {
                let fields = m
                    .field
                    .iter()
                    .map(|f| FieldSchema {
                        number: f.number() as u32,
                        name: f.name().to_string(),
                        kind: match f.r#type() {
                            Type::Uint32 => Kind::U32,
                            Type::Uint64 => Kind::U64,
                            Type::Enum => Kind::Enum,
                            Type::String => Kind::Str,
                            Type::Bytes => Kind::Bytes,
                            Type::Message => Kind::Msg,
                            t => panic!("hedgw.proto uses {t:?}, which wire.rs does not walk"),
                        },
                        required: f.label() == Label::Required,
                        type_name: f.type_name().to_string(),
                    })
                    .collect();
                messages.insert(
                    format!(".{pkg}.{}", m.name()),
                    MsgSchema {
                        name: m.name().to_string(),
                        fields,
                    },
                );
            }
        }
        Schema { messages }
    })
}

/// A decoded HEDGWMessage: the typed message (what could be read), the
/// findings, and the JSON view.
#[derive(Debug, Clone)]
pub struct Decoded {
    pub message: HedgwMessage,
    pub findings: Vec<Finding>,
    /// Field names as in 附录D; `message_type` as its name when known;
    /// bytes as hex (a prefix and `_len` for long ones).
    pub view: Value,
}

impl Decoded {
    /// The message type, when it is a known one.
    pub fn message_type(&self) -> Option<MessageType> {
        // prost fills an absent required enum with its first value.
        self.view.get("message_type")?;
        MessageType::try_from(self.message.message_type).ok()
    }

    /// The value at a dotted path of the view (`dev_login_resp.result`),
    /// as text; `None` when absent.
    pub fn field(&self, path: &str) -> Option<String> {
        let mut v = &self.view;
        for part in path.split('.') {
            v = v.get(part)?;
        }
        Some(match v {
            Value::String(s) => s.clone(),
            Value::Null => return None,
            other => other.to_string(),
        })
    }

    /// One line: `DevLoginResp result=0` and the like.
    pub fn summary(&self) -> String {
        let name = type_name(self.message.message_type)
            .map(str::to_string)
            .unwrap_or_else(|| format!("type {}", self.message.message_type));
        let payload = self.view.as_object().and_then(|o| {
            o.iter()
                .find(|(k, v)| k.as_str() != "message_type" && v.is_object())
        });
        match payload {
            Some((_, Value::Object(p))) => {
                let parts: Vec<String> = p
                    .iter()
                    .filter(|(k, _)| !k.ends_with("_len") && k.as_str() != "data")
                    .take(4)
                    .map(|(k, v)| match v {
                        // A summary goes to logs: credentials stay out.
                        Value::String(_) if k.contains("secret") || k.contains("token") => {
                            format!("{k}=\"******\"")
                        }
                        Value::String(s) if s.len() > 24 => format!("{k}=\"{}…\"", trunc(s, 24)),
                        Value::String(s) => format!("{k}={s:?}"),
                        v => format!("{k}={v}"),
                    })
                    .collect();
                format!("{name} {}", parts.join(" "))
            }
            _ => name,
        }
    }
}

fn trunc(s: &str, n: usize) -> &str {
    let mut end = n.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// Decode one HEDGWMessage (the frame's payload, without the length).
pub fn decode(bytes: &[u8]) -> Decoded {
    let s = schema();
    let root = &s.messages[".hedgw.HEDGWMessage"];
    let mut findings = Vec::new();
    let mut clean = Vec::with_capacity(bytes.len());
    let mut view = Map::new();
    walk(s, root, bytes, 0, "", &mut clean, &mut view, &mut findings);
    // The clean buffer holds only what the schema allows, so prost takes it.
    let message = match HedgwMessage::decode(clean.as_slice()) {
        Ok(m) => m,
        Err(e) => {
            findings.push(
                FindingCode::Malformed
                    .error(clause::APPENDIX_D, format!("protobuf decoding failed: {e}")),
            );
            HedgwMessage::default()
        }
    };
    check_payload(&message, &view, &mut findings);
    Decoded {
        message,
        findings,
        view: Value::Object(view),
    }
}

/// Is `path` a field of HEDGWMessage (`message_type`,
/// `dev_login_req.device_mac`, `td_media_package.data_len`)?
pub fn check_path(path: &str) -> Result<(), String> {
    let s = schema();
    let root = &s.messages[".hedgw.HEDGWMessage"];
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    let Some(f) = root.fields.iter().find(|f| f.name == head) else {
        let names: Vec<&str> = root.fields.iter().map(|f| f.name.as_str()).collect();
        return Err(format!(
            "unknown field {head:?}; expected one of {}",
            names.join(", ")
        ));
    };
    if rest.is_empty() {
        return Ok(());
    }
    let Some(sub) = s.messages.get(&f.type_name) else {
        return Err(format!("{head} has no fields"));
    };
    let name = rest.strip_suffix("_len").filter(|n| {
        sub.fields
            .iter()
            .any(|f| f.name == *n && f.kind == Kind::Bytes)
    });
    if sub.fields.iter().any(|f| f.name == rest) || name.is_some() {
        Ok(())
    } else {
        let names: Vec<&str> = sub.fields.iter().map(|f| f.name.as_str()).collect();
        Err(format!(
            "{:?} is not a field of {}; expected one of {}",
            rest,
            sub.name,
            names.join(", ")
        ))
    }
}

/// Set the field at `path` of `m` to `value` (text: a number, a string,
/// hex for bytes, an enum name or number for `message_type`), by merging
/// an encoded fragment: protobuf's own rule that the last value wins.
pub fn set_field(m: &mut HedgwMessage, path: &str, value: &str) -> Result<(), String> {
    check_path(path)?;
    let s = schema();
    let root = &s.messages[".hedgw.HEDGWMessage"];
    let (head, rest) = path.split_once('.').unwrap_or((path, ""));
    let f = root
        .fields
        .iter()
        .find(|f| f.name == head)
        .ok_or_else(|| format!("unknown field {head:?}"))?;
    let mut frag = Vec::new();
    if rest.is_empty() {
        encode_value(&mut frag, f, value)?;
    } else {
        let sub = &s.messages[&f.type_name];
        let inner_f = sub
            .fields
            .iter()
            .find(|x| x.name == rest)
            .ok_or_else(|| format!("{rest:?} cannot be set"))?;
        let mut inner = Vec::new();
        encode_value(&mut inner, inner_f, value)?;
        put_varint(&mut frag, u64::from(f.number) << 3 | 2);
        put_varint(&mut frag, inner.len() as u64);
        frag.extend_from_slice(&inner);
    }
    m.merge(frag.as_slice()).map_err(|e| format!("{path}: {e}"))
}

fn encode_value(out: &mut Vec<u8>, f: &FieldSchema, value: &str) -> Result<(), String> {
    let v = value.trim();
    match f.kind {
        Kind::U32 | Kind::U64 | Kind::Enum => {
            let n: u64 = match v.parse() {
                Ok(n) => n,
                Err(_) if f.kind == Kind::Enum => super::type_by_name(v)
                    .map(|t| t as u64)
                    .ok_or_else(|| format!("{}: {v:?} is not a message type", f.name))?,
                Err(_) => return Err(format!("{}: {v:?} is not a number", f.name)),
            };
            if f.kind != Kind::U64 && n > u64::from(u32::MAX) {
                return Err(format!("{}: {n} does not fit 32 bits", f.name));
            }
            put_varint(out, u64::from(f.number) << 3);
            put_varint(out, n);
        }
        Kind::Str | Kind::Bytes => {
            let bytes = if f.kind == Kind::Bytes {
                hex::decode(v.replace([' ', '\n'], ""))
                    .map_err(|e| format!("{}: not hex: {e}", f.name))?
            } else {
                value.as_bytes().to_vec()
            };
            put_varint(out, u64::from(f.number) << 3 | 2);
            put_varint(out, bytes.len() as u64);
            out.extend_from_slice(&bytes);
        }
        Kind::Msg => return Err(format!("{} is a message; set its fields", f.name)),
    }
    Ok(())
}

/// Encode a message (without the frame's length).
pub fn encode(m: &HedgwMessage) -> Vec<u8> {
    m.encode_to_vec()
}

fn read_varint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v: u64 = 0;
    for i in 0..10 {
        let byte = *b.get(*pos)?;
        *pos += 1;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some(v);
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn wire_name(wt: u8) -> &'static str {
    match wt {
        0 => "varint",
        1 => "64-bit",
        2 => "length-delimited",
        3 => "start-group",
        4 => "end-group",
        5 => "32-bit",
        _ => "invalid",
    }
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

fn hex_view(b: &[u8]) -> String {
    hex::encode(&b[..b.len().min(VIEW_BYTES)])
}

/// Walk the fields of `bytes` (a `m` message at `base` in the frame):
/// copy what the schema allows into `out`, fill `view`, report the rest.
#[allow(clippy::too_many_arguments)]
fn walk(
    s: &Schema,
    m: &MsgSchema,
    bytes: &[u8],
    base: usize,
    path: &str,
    out: &mut Vec<u8>,
    view: &mut Map<String, Value>,
    findings: &mut Vec<Finding>,
) {
    let mut pos = 0;
    let mut seen: Vec<u32> = Vec::new();
    let here = if path.is_empty() {
        m.name.clone()
    } else {
        format!("{path} ({})", m.name)
    };
    while pos < bytes.len() {
        let start = pos;
        let Some(key) = read_varint(bytes, &mut pos) else {
            findings.push(
                FindingCode::Malformed
                    .error(
                        clause::APPENDIX_D,
                        format!(
                            "{here}: a field key is cut off or too long at byte {}",
                            base + start
                        ),
                    )
                    .with_evidence(Evidence::Span {
                        start: base + start,
                        end: base + bytes.len(),
                    }),
            );
            break;
        };
        let number = key >> 3;
        let wt = (key & 7) as u8;
        if number == 0 || number > u64::from(u32::MAX >> 3) {
            findings.push(
                FindingCode::Malformed
                    .error(
                        clause::APPENDIX_D,
                        format!(
                            "{here}: field number {number} is not valid (byte {})",
                            base + start
                        ),
                    )
                    .with_evidence(Evidence::Span {
                        start: base + start,
                        end: base + pos,
                    }),
            );
            break;
        }
        let number = number as u32;
        // The value: a varint, or a byte range.
        let value_start = pos;
        let (varint, payload): (Option<u64>, &[u8]) = match wt {
            0 => match read_varint(bytes, &mut pos) {
                Some(v) => (Some(v), &[]),
                None => {
                    findings.push(cut_off(&here, number, base + start, base + bytes.len()));
                    break;
                }
            },
            1 | 5 => {
                let n = if wt == 1 { 8 } else { 4 };
                if bytes.len() - pos < n {
                    findings.push(cut_off(&here, number, base + start, base + bytes.len()));
                    break;
                }
                pos += n;
                (None, &bytes[value_start..pos])
            }
            2 => {
                let Some(len) = read_varint(bytes, &mut pos) else {
                    findings.push(cut_off(&here, number, base + start, base + bytes.len()));
                    break;
                };
                let avail = (bytes.len() - pos) as u64;
                if len > avail {
                    findings.push(
                        FindingCode::Malformed
                            .error(
                                clause::APPENDIX_D,
                                format!(
                                    "{here}: field {number} announces {len} bytes, {avail} remain"
                                ),
                            )
                            .with_evidence(Evidence::Span {
                                start: base + start,
                                end: base + bytes.len(),
                            }),
                    );
                    break;
                }
                let p = &bytes[pos..pos + len as usize];
                pos += len as usize;
                (None, p)
            }
            _ => {
                findings.push(
                    FindingCode::Malformed
                        .error(
                            clause::APPENDIX_D,
                            format!(
                                "{here}: field {number} uses wire type {wt} ({}), which 附录D never needs; the rest of the message cannot be read",
                                wire_name(wt)
                            ),
                        )
                        .with_evidence(Evidence::Span {
                            start: base + start,
                            end: base + bytes.len(),
                        }),
                );
                break;
            }
        };
        let span = Evidence::Span {
            start: base + start,
            end: base + pos,
        };
        let Some(f) = m.fields.iter().find(|f| f.number == number) else {
            findings.push(
                FindingCode::UnknownField
                    .warning(
                        clause::APPENDIX_D,
                        format!(
                            "{here}: field number {number} ({}) is not defined in 附录D; skipped",
                            wire_name(wt)
                        ),
                    )
                    .with_evidence(span),
            );
            continue;
        };
        let fpath = join(path, &f.name);
        if wt != f.kind.wire_type() {
            findings.push(
                FindingCode::WrongWireType
                    .error(
                        clause::APPENDIX_D,
                        format!(
                            "{fpath}: expected wire type {} ({}), got {wt} ({}); the value is ignored",
                            f.kind.wire_type(),
                            wire_name(f.kind.wire_type()),
                            wire_name(wt)
                        ),
                    )
                    .with_evidence(span),
            );
            continue;
        }
        if seen.contains(&number) {
            findings.push(
                FindingCode::DuplicateField
                    .warning(
                        clause::APPENDIX_D,
                        format!("{fpath}: appears more than once; the last one counts"),
                    )
                    .with_evidence(span.clone()),
            );
        } else {
            seen.push(number);
        }
        let key_bytes = |out: &mut Vec<u8>| put_varint(out, u64::from(number) << 3 | u64::from(wt));
        match f.kind {
            Kind::U32 | Kind::U64 | Kind::Enum => {
                let mut v = varint.unwrap_or(0);
                if f.kind != Kind::U64 && v > u64::from(u32::MAX) {
                    findings.push(
                        FindingCode::ValueOutOfRange
                            .error(
                                clause::APPENDIX_D,
                                format!("{fpath}: {v} does not fit a 32-bit field"),
                            )
                            .with_evidence(span.clone()),
                    );
                    v &= u64::from(u32::MAX);
                }
                key_bytes(out);
                put_varint(out, v);
                let shown = if f.kind == Kind::Enum {
                    match type_name(v as i32) {
                        Some(n) => Value::String(n.to_string()),
                        None => Value::from(v),
                    }
                } else {
                    Value::from(v)
                };
                view.insert(f.name.clone(), shown);
            }
            Kind::Str => {
                let text = match std::str::from_utf8(payload) {
                    Ok(t) => t.to_string(),
                    Err(e) => {
                        findings.push(
                            FindingCode::InvalidUtf8
                                .error(
                                    clause::APPENDIX_D,
                                    format!(
                                        "{fpath}: not UTF-8 (byte {} of the string); read with replacement characters",
                                        e.valid_up_to()
                                    ),
                                )
                                .with_evidence(span.clone()),
                        );
                        String::from_utf8_lossy(payload).into_owned()
                    }
                };
                key_bytes(out);
                put_varint(out, text.len() as u64);
                out.extend_from_slice(text.as_bytes());
                view.insert(f.name.clone(), Value::String(text));
            }
            Kind::Bytes => {
                key_bytes(out);
                put_varint(out, payload.len() as u64);
                out.extend_from_slice(payload);
                view.insert(f.name.clone(), Value::String(hex_view(payload)));
                if payload.len() > VIEW_BYTES {
                    view.insert(format!("{}_len", f.name), Value::from(payload.len()));
                }
            }
            Kind::Msg => {
                let Some(sub) = s.messages.get(&f.type_name) else {
                    continue;
                };
                let mut inner = Vec::with_capacity(payload.len());
                let mut sub_view = match view.remove(&f.name) {
                    Some(Value::Object(o)) => o,
                    _ => Map::new(),
                };
                let payload_base = base + (pos - payload.len());
                walk(
                    s,
                    sub,
                    payload,
                    payload_base,
                    &fpath,
                    &mut inner,
                    &mut sub_view,
                    findings,
                );
                key_bytes(out);
                put_varint(out, inner.len() as u64);
                out.extend_from_slice(&inner);
                view.insert(f.name.clone(), Value::Object(sub_view));
            }
        }
    }
    for f in m.fields.iter().filter(|f| f.required) {
        if !seen.contains(&f.number) {
            findings.push(
                FindingCode::MissingRequired
                    .error(
                        clause::APPENDIX_D,
                        format!(
                            "{}: required field {} = {} is absent",
                            join(path, &f.name),
                            f.name,
                            f.number
                        ),
                    )
                    .with_evidence(Evidence::Path(join(path, &f.name))),
            );
        }
    }
}

fn cut_off(here: &str, number: u32, start: usize, end: usize) -> Finding {
    FindingCode::Malformed
        .error(
            clause::APPENDIX_D,
            format!("{here}: the value of field {number} is cut off"),
        )
        .with_evidence(Evidence::Span { start, end })
}

/// The payload field each message type needs.
pub fn payload_field(t: MessageType) -> &'static str {
    match t {
        MessageType::DevLoginReq => "dev_login_req",
        MessageType::DevLoginResp => "dev_login_resp",
        MessageType::DevEventCmd => "dev_event_cmd",
        MessageType::DevServerCmd => "dev_server_cmd",
        MessageType::DevAppCmd => "dev_app_cmd",
        MessageType::DevIpCamCmd => "dev_ipcam_cmd",
        MessageType::Ping => "ping",
        MessageType::Pong => "pong",
        MessageType::TdMediaPackage => "td_media_package",
    }
}

const PAYLOADS: &[&str] = &[
    "dev_login_req",
    "dev_login_resp",
    "dev_event_cmd",
    "dev_server_cmd",
    "dev_app_cmd",
    "dev_ipcam_cmd",
    "ping",
    "pong",
    "td_media_package",
];

/// `message_type` and the payload agree; fields outside 附录D are noted.
fn check_payload(m: &HedgwMessage, view: &Map<String, Value>, findings: &mut Vec<Finding>) {
    let present: Vec<&str> = PAYLOADS
        .iter()
        .copied()
        .filter(|p| view.contains_key(*p))
        .collect();
    if !view.contains_key("message_type") {
        // Reported as a missing required field.
        return;
    }
    match MessageType::try_from(m.message_type) {
        Err(_) => {
            findings.push(
                    FindingCode::UnknownMessageType
                        .error(
                            clause::APPENDIX_D,
                            format!(
                                "message_type {} is not a value of HEDGWMessage.MessageType (1, 2, 4-10)",
                                m.message_type
                            ),
                        )
                        .with_evidence(Evidence::Path("message_type".into())),
                );
        }
        Ok(t) => {
            let want = payload_field(t);
            if !present.contains(&want) {
                findings.push(
                    FindingCode::PayloadMissing
                        .error(
                            clause::APPENDIX_D,
                            format!(
                                "message_type {} needs field {want}, which is absent",
                                t.as_str_name()
                            ),
                        )
                        .with_evidence(Evidence::Path(want.into())),
                );
            }
            for p in present.iter().filter(|p| **p != want) {
                findings.push(
                    FindingCode::UnexpectedPayload
                        .warning(
                            clause::APPENDIX_D,
                            format!("message_type {} also carries {p}", t.as_str_name()),
                        )
                        .with_evidence(Evidence::Path((*p).into())),
                );
            }
        }
    }
    for (payload, field, section) in [
        ("dev_login_resp", "service_days", "§5.2.1"),
        ("dev_server_cmd", "service_days", "§5.2.8"),
    ] {
        if view.get(payload).and_then(|p| p.get(field)).is_some() {
            findings.push(
                FindingCode::FieldNotInAppendix
                    .finding(
                        Severity::Info,
                        clause::APPENDIX_D,
                        format!(
                            "{payload}.{field} is defined by the table of {section} but not by 附录D; read as the table says"
                        ),
                    )
                    .with_evidence(Evidence::Path(format!("{payload}.{field}"))),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::hedgw::{Ping, TdMediaPackage};

    fn codes(d: &Decoded) -> Vec<&'static str> {
        d.findings.iter().map(|f| f.code).collect()
    }

    #[test]
    fn ping_round_trips_clean() {
        let m = HedgwMessage {
            message_type: MessageType::Ping as i32,
            ping: Some(Ping { id: 0 }),
            ..Default::default()
        };
        let b = encode(&m);
        // message_type = 8, ping { id = 0 }: 08 08 4a 02 08 00
        assert_eq!(b, [0x08, 0x08, 0x4a, 0x02, 0x08, 0x00]);
        let d = decode(&b);
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.message, m);
        assert_eq!(d.field("message_type").as_deref(), Some("PING"));
        assert_eq!(d.field("ping.id").as_deref(), Some("0"));
    }

    #[test]
    fn missing_required_is_a_finding_not_a_failure() {
        // PING with an empty Ping: Ping.id is required.
        let d = decode(&[0x08, 0x08, 0x4a, 0x00]);
        assert_eq!(codes(&d), ["hedgw.missing-required"]);
        assert_eq!(d.findings[0].path(), "ping.id");
        assert_eq!(d.message.ping, Some(Ping { id: 0 }));
        // No message_type at all.
        let d = decode(&[]);
        assert_eq!(codes(&d), ["hedgw.missing-required"]);
        assert_eq!(d.findings[0].path(), "message_type");
    }

    #[test]
    fn unknown_fields_are_reported_and_skipped() {
        // PING, ping{id=3}, then field 15 varint 1 and field 20 bytes "ab".
        let b = [
            0x08, 0x08, 0x4a, 0x02, 0x08, 0x03, 0x78, 0x01, 0xa2, 0x01, 0x02, b'a', b'b',
        ];
        let d = decode(&b);
        assert_eq!(codes(&d), ["hedgw.unknown-field", "hedgw.unknown-field"]);
        assert!(d.findings[0].message.contains("field number 15"));
        assert_eq!(
            d.findings[1].evidence,
            Some(Evidence::Span { start: 8, end: 13 })
        );
        assert_eq!(d.message.ping, Some(Ping { id: 3 }));
    }

    #[test]
    fn a_wrong_wire_type_is_reported_and_the_rest_still_read() {
        // message_type sent as a 32-bit fixed value, then a valid ping.
        let b = [0x0d, 8, 0, 0, 0, 0x4a, 0x02, 0x08, 0x05];
        let d = decode(&b);
        let c = codes(&d);
        assert!(c.contains(&"hedgw.wrong-wire-type"), "{c:?}");
        assert!(c.contains(&"hedgw.missing-required"), "{c:?}");
        let f = &d.findings[0];
        assert!(
            f.message.contains("message_type") && f.message.contains("varint"),
            "{}",
            f.message
        );
        assert_eq!(d.message.ping, Some(Ping { id: 5 }));
        // A string field sent as a varint inside a login request.
        let b = [0x08, 0x01, 0x12, 0x02, 0x08, 0x07];
        let d = decode(&b);
        assert!(codes(&d).contains(&"hedgw.wrong-wire-type"));
        assert!(d.findings[0].message.contains("dev_login_req.access_key"));
    }

    #[test]
    fn type_and_payload_must_agree() {
        let m = HedgwMessage {
            message_type: MessageType::Pong as i32,
            ping: Some(Ping { id: 0 }),
            ..Default::default()
        };
        let d = decode(&encode(&m));
        assert_eq!(
            codes(&d),
            ["hedgw.payload-missing", "hedgw.unexpected-payload"]
        );
        let m = HedgwMessage {
            message_type: 3,
            ..Default::default()
        };
        let d = decode(&encode(&m));
        assert_eq!(codes(&d), ["hedgw.unknown-message-type"]);
        assert_eq!(d.field("message_type").as_deref(), Some("3"));
    }

    #[test]
    fn bad_utf8_and_out_of_range_values_are_findings() {
        // DevIpCamCmd{type=2^32, src_device_id=ff fe}
        let inner = [0x08, 0x80, 0x80, 0x80, 0x80, 0x10, 0x12, 0x02, 0xff, 0xfe];
        let mut b = vec![0x08, 0x07, 0x42, inner.len() as u8];
        b.extend_from_slice(&inner);
        let d = decode(&b);
        assert_eq!(
            codes(&d),
            ["hedgw.value-out-of-range", "hedgw.invalid-utf8"]
        );
        let c = d.message.dev_ipcam_cmd.unwrap();
        assert_eq!(c.r#type, 0);
        assert_eq!(c.src_device_id, "\u{fffd}\u{fffd}");
    }

    #[test]
    fn truncated_input_keeps_what_was_read() {
        let m = HedgwMessage {
            message_type: MessageType::TdMediaPackage as i32,
            td_media_package: Some(TdMediaPackage {
                package_type: 2,
                sync: 1,
                data: vec![0; 100],
                data_size: 100,
                start_time: 40,
                seq_num: 1,
                ipcam_time: None,
                control_flag: None,
            }),
            ..Default::default()
        };
        let b = encode(&m);
        let d = decode(&b[..b.len() - 10]);
        assert!(codes(&d).contains(&"hedgw.malformed"));
        assert_eq!(d.message.message_type, MessageType::TdMediaPackage as i32);
        assert!(d.field("td_media_package").is_none());
    }

    #[test]
    fn fields_are_set_by_path() {
        let mut m = HedgwMessage::default();
        set_field(&mut m, "message_type", "DevAppCmd").unwrap();
        set_field(&mut m, "dev_app_cmd.type", "33").unwrap();
        set_field(&mut m, "dev_app_cmd.src_device_id", "app").unwrap();
        set_field(&mut m, "dev_app_cmd.msg", "{\"a\":1}").unwrap();
        set_field(&mut m, "dev_app_cmd.data", "0a0b").unwrap();
        let c = m.dev_app_cmd.as_ref().unwrap();
        assert_eq!(m.message_type, MessageType::DevAppCmd as i32);
        assert_eq!((c.r#type, c.src_device_id.as_str()), (33, "app"));
        assert_eq!(c.msg.as_deref(), Some("{\"a\":1}"));
        assert_eq!(c.data.as_deref(), Some(&[10u8, 11][..]));
        // Later values win; other fields stay.
        set_field(&mut m, "dev_app_cmd.type", "8").unwrap();
        assert_eq!(m.dev_app_cmd.as_ref().unwrap().r#type, 8);
        assert_eq!(m.dev_app_cmd.as_ref().unwrap().src_device_id, "app");
        assert!(set_field(&mut m, "dev_app_cmd.type", "x").is_err());
        assert!(set_field(&mut m, "dev_app_cmd.nope", "1").is_err());
        assert!(set_field(&mut m, "ping.id", "4294967296").is_err());
        assert!(check_path("td_media_package.data_len").is_ok());
        assert!(check_path("td_media_package.seq_num_len").is_err());
        assert!(check_path("nothing").is_err());
    }

    #[test]
    fn long_bytes_show_as_prefix_and_length() {
        let m = HedgwMessage {
            message_type: MessageType::TdMediaPackage as i32,
            td_media_package: Some(TdMediaPackage {
                package_type: 2,
                data: vec![0xab; 40],
                data_size: 40,
                ..Default::default()
            }),
            ..Default::default()
        };
        let d = decode(&encode(&m));
        assert!(d.findings.is_empty(), "{:?}", d.findings);
        assert_eq!(d.field("td_media_package.data_len").as_deref(), Some("40"));
        assert_eq!(d.field("td_media_package.data").unwrap().len(), 64);
    }
}
