//! Front-end device control command (`PTZCmd`), GB/T 28181 annex A.3
//! (控制定义: 指令格式, PTZ, FI, and the preset, cruise, scan and auxiliary
//! switch instructions): eight bytes written as 16 hex characters inside
//! `<PTZCmd>` of a DeviceControl.
//!
//! | byte | meaning |
//! |------|---------|
//! | 1 | `A5H` |
//! | 2 | high nibble version (0), low nibble check = (byte1 high + byte1 low + byte2 high) % 16 |
//! | 3 | address, low 8 bits |
//! | 4 | instruction code |
//! | 5 | data 1 (pan speed / focus speed / group / preset ...) |
//! | 6 | data 2 (tilt speed / iris speed / preset number ...) |
//! | 7 | high nibble data 3 (zoom speed, 12-bit value high bits), low nibble address high 4 bits |
//! | 8 | checksum = (byte1 + ... + byte7) % 256 |
//!
//! Build a command with the constructors ([`PtzCmd::motion`],
//! [`PtzCmd::zoom`], [`PtzCmd::preset`], ...), send [`PtzCmd::to_hex`];
//! read one with [`PtzCmd::from_hex`] (or [`PtzCmd::decode_lenient`] to
//! also get findings such as unused data bytes that are not zero).

use super::manscdp::{Erratum, Finding, FindingCode};
use serde::{Deserialize, Serialize};

/// First byte of every command.
pub const LEAD: u8 = 0xA5;
/// Version of GB/T 28181-2016 commands (版本信息为0H).
pub const VERSION: u8 = 0;

/// Why a `PTZCmd` cannot be decoded or encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PtzError {
    #[error("expected 16 hex characters, got {len}")]
    Length { len: usize },
    #[error("character {index} is not a hex digit")]
    NotHex { index: usize },
    #[error("first byte is {actual:02X}, expected A5")]
    BadLead { actual: u8 },
    #[error("byte 2 check nibble is {actual:X}, expected {expected:X}")]
    BadHeaderCheck { expected: u8, actual: u8 },
    #[error("checksum byte is {actual:02X}, expected {expected:02X}")]
    BadChecksum { expected: u8, actual: u8 },
    #[error("instruction {code:02X} sets two opposite bits")]
    ConflictingBits { code: u8 },
    #[error("{field} = {value} exceeds {max}")]
    OutOfRange {
        field: &'static str,
        value: u32,
        max: u32,
    },
}

/// Pan/tilt direction (PTZ bits 3..0: up, down, left, right).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    Stop,
    Up,
    Down,
    Left,
    Right,
    UpLeft,
    UpRight,
    DownLeft,
    DownRight,
}

impl Direction {
    /// All directions.
    pub const ALL: [Direction; 9] = [
        Direction::Stop,
        Direction::Up,
        Direction::Down,
        Direction::Left,
        Direction::Right,
        Direction::UpLeft,
        Direction::UpRight,
        Direction::DownLeft,
        Direction::DownRight,
    ];

    fn bits(self) -> u8 {
        match self {
            Direction::Stop => 0x00,
            Direction::Up => 0x08,
            Direction::Down => 0x04,
            Direction::Left => 0x02,
            Direction::Right => 0x01,
            Direction::UpLeft => 0x0A,
            Direction::UpRight => 0x09,
            Direction::DownLeft => 0x06,
            Direction::DownRight => 0x05,
        }
    }

    fn from_bits(b: u8) -> Option<Direction> {
        Direction::ALL.into_iter().find(|d| d.bits() == b & 0x0F)
    }

    /// True if the direction moves horizontally.
    pub fn pans(self) -> bool {
        self.bits() & 0x03 != 0
    }

    /// True if the direction moves vertically.
    pub fn tilts(self) -> bool {
        self.bits() & 0x0C != 0
    }
}

/// Zoom (PTZ bit 5 zoom out / 缩小, bit 4 zoom in / 放大).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Zoom {
    Stop,
    In,
    Out,
}

/// Iris (FI bit 3 close / 缩小, bit 2 open / 放大).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Iris {
    Stop,
    Open,
    Close,
}

/// Focus (FI bit 1 near / 近, bit 0 far / 远).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Focus {
    Stop,
    Near,
    Far,
}

/// A PTZ instruction (codes 00H-3FH). All-stop is `direction: Stop, zoom: Stop`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PtzMotion {
    pub direction: Direction,
    pub zoom: Zoom,
    /// Byte 5: 水平控制速度相对值.
    pub pan_speed: u8,
    /// Byte 6: 垂直控制速度相对值.
    pub tilt_speed: u8,
    /// Byte 7 high nibble: 变倍控制速度相对值, 0..=15.
    pub zoom_speed: u8,
}

/// An FI instruction (codes 40H-4FH).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FiMotion {
    pub iris: Iris,
    pub focus: Focus,
    /// Byte 5: 聚焦速度.
    pub focus_speed: u8,
    /// Byte 6: 光圈速度.
    pub iris_speed: u8,
}

/// Preset operation (81H set, 82H call, 83H delete).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PresetOp {
    Set,
    Call,
    Delete,
}

/// Cruise (巡航) instructions, codes 84H-88H. Stop a cruise with a PTZ stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CruiseCmd {
    /// 84H: add preset `preset` to cruise route `group`.
    AddPoint { group: u8, preset: u8 },
    /// 85H: remove a preset from the route; preset 0 deletes the whole route.
    DeletePoint { group: u8, preset: u8 },
    /// 86H: cruise speed, 12 bits.
    SetSpeed { group: u8, speed: u16 },
    /// 87H: dwell time at each point, seconds, 12 bits.
    SetDwell { group: u8, seconds: u16 },
    /// 88H: start cruising route `group`.
    Start { group: u8 },
}

/// Auto-scan (扫描) instructions, codes 89H-8AH.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScanCmd {
    /// 89H, byte 6 = 00H.
    Start { group: u8 },
    /// 89H, byte 6 = 01H: set the left boundary.
    SetLeft { group: u8 },
    /// 89H, byte 6 = 02H: set the right boundary.
    SetRight { group: u8 },
    /// 8AH: scan speed, 12 bits.
    SetSpeed { group: u8, speed: u16 },
}

/// Byte 4 and its data bytes, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Instruction {
    Ptz(PtzMotion),
    Fi(FiMotion),
    /// Byte 5 = 00H, byte 6 = preset number (01H-FFH).
    Preset {
        op: PresetOp,
        index: u8,
    },
    Cruise(CruiseCmd),
    Scan(ScanCmd),
    /// 8CH switch on / 8DH switch off; byte 5 = switch number.
    Aux {
        on: bool,
        number: u8,
    },
    /// A code outside the defined set, kept raw (`data3` is 0..=15).
    Other {
        code: u8,
        data1: u8,
        data2: u8,
        data3: u8,
    },
}

/// One front-end control command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PtzCmd {
    /// Byte 2 high nibble; 0 for this standard.
    pub version: u8,
    /// 12-bit address (byte 3 low bits, byte 7 low nibble high bits). The
    /// samples use 1; the DeviceID, not this field, selects the target.
    pub address: u16,
    pub instruction: Instruction,
}

/// Address used by the constructors, as in the spec's samples (`A50F01...`).
pub const DEFAULT_ADDRESS: u16 = 1;

impl PtzCmd {
    /// A command with version 0 and the default address.
    pub fn new(instruction: Instruction) -> Self {
        PtzCmd {
            version: VERSION,
            address: DEFAULT_ADDRESS,
            instruction,
        }
    }

    /// Stop all motion (`A50F0100000000B5`).
    pub fn stop() -> Self {
        Self::new(Instruction::Ptz(PtzMotion {
            direction: Direction::Stop,
            zoom: Zoom::Stop,
            pan_speed: 0,
            tilt_speed: 0,
            zoom_speed: 0,
        }))
    }

    /// Pan/tilt in `direction` at `speed`, set only on the axes that move
    /// (as in the samples: up = `A50F010800FA00B7`).
    pub fn motion(direction: Direction, speed: u8) -> Self {
        Self::new(Instruction::Ptz(PtzMotion {
            direction,
            zoom: Zoom::Stop,
            pan_speed: if direction.pans() { speed } else { 0 },
            tilt_speed: if direction.tilts() { speed } else { 0 },
            zoom_speed: 0,
        }))
    }

    /// Zoom at `speed` (0..=15; larger values are rejected by [`PtzCmd::to_bytes`]).
    pub fn zoom(zoom: Zoom, speed: u8) -> Self {
        Self::new(Instruction::Ptz(PtzMotion {
            direction: Direction::Stop,
            zoom,
            pan_speed: 0,
            tilt_speed: 0,
            zoom_speed: if zoom == Zoom::Stop { 0 } else { speed },
        }))
    }

    /// Iris at `speed` (byte 6).
    pub fn iris(iris: Iris, speed: u8) -> Self {
        Self::new(Instruction::Fi(FiMotion {
            iris,
            focus: Focus::Stop,
            focus_speed: 0,
            iris_speed: if iris == Iris::Stop { 0 } else { speed },
        }))
    }

    /// Focus at `speed` (byte 5).
    pub fn focus(focus: Focus, speed: u8) -> Self {
        Self::new(Instruction::Fi(FiMotion {
            iris: Iris::Stop,
            focus,
            focus_speed: if focus == Focus::Stop { 0 } else { speed },
            iris_speed: 0,
        }))
    }

    /// Set, call or delete preset `index`.
    pub fn preset(op: PresetOp, index: u8) -> Self {
        Self::new(Instruction::Preset { op, index })
    }

    /// Instruction code and data bytes 5, 6 and the data-3 nibble.
    fn parts(&self) -> Result<(u8, u8, u8, u8), PtzError> {
        let twelve = |field: &'static str, v: u16| {
            if v > 0xFFF {
                Err(PtzError::OutOfRange {
                    field,
                    value: v.into(),
                    max: 0xFFF,
                })
            } else {
                Ok(((v & 0xFF) as u8, (v >> 8) as u8))
            }
        };
        Ok(match self.instruction {
            Instruction::Ptz(m) => {
                if m.zoom_speed > 0x0F {
                    return Err(PtzError::OutOfRange {
                        field: "zoom_speed",
                        value: m.zoom_speed.into(),
                        max: 15,
                    });
                }
                let zoom = match m.zoom {
                    Zoom::Stop => 0,
                    Zoom::In => 0x10,
                    Zoom::Out => 0x20,
                };
                (
                    zoom | m.direction.bits(),
                    m.pan_speed,
                    m.tilt_speed,
                    m.zoom_speed,
                )
            }
            Instruction::Fi(f) => {
                let iris = match f.iris {
                    Iris::Stop => 0,
                    Iris::Open => 0x04,
                    Iris::Close => 0x08,
                };
                let focus = match f.focus {
                    Focus::Stop => 0,
                    Focus::Near => 0x02,
                    Focus::Far => 0x01,
                };
                (0x40 | iris | focus, f.focus_speed, f.iris_speed, 0)
            }
            Instruction::Preset { op, index } => {
                let code = match op {
                    PresetOp::Set => 0x81,
                    PresetOp::Call => 0x82,
                    PresetOp::Delete => 0x83,
                };
                (code, 0, index, 0)
            }
            Instruction::Cruise(c) => match c {
                CruiseCmd::AddPoint { group, preset } => (0x84, group, preset, 0),
                CruiseCmd::DeletePoint { group, preset } => (0x85, group, preset, 0),
                CruiseCmd::SetSpeed { group, speed } => {
                    let (lo, hi) = twelve("speed", speed)?;
                    (0x86, group, lo, hi)
                }
                CruiseCmd::SetDwell { group, seconds } => {
                    let (lo, hi) = twelve("seconds", seconds)?;
                    (0x87, group, lo, hi)
                }
                CruiseCmd::Start { group } => (0x88, group, 0, 0),
            },
            Instruction::Scan(s) => match s {
                ScanCmd::Start { group } => (0x89, group, 0, 0),
                ScanCmd::SetLeft { group } => (0x89, group, 1, 0),
                ScanCmd::SetRight { group } => (0x89, group, 2, 0),
                ScanCmd::SetSpeed { group, speed } => {
                    let (lo, hi) = twelve("speed", speed)?;
                    (0x8A, group, lo, hi)
                }
            },
            Instruction::Aux { on, number } => (if on { 0x8C } else { 0x8D }, number, 0, 0),
            Instruction::Other {
                code,
                data1,
                data2,
                data3,
            } => {
                if data3 > 0x0F {
                    return Err(PtzError::OutOfRange {
                        field: "data3",
                        value: data3.into(),
                        max: 15,
                    });
                }
                (code, data1, data2, data3)
            }
        })
    }

    /// The eight bytes.
    pub fn to_bytes(&self) -> Result<[u8; 8], PtzError> {
        if self.version > 0x0F {
            return Err(PtzError::OutOfRange {
                field: "version",
                value: self.version.into(),
                max: 15,
            });
        }
        if self.address > 0xFFF {
            return Err(PtzError::OutOfRange {
                field: "address",
                value: self.address.into(),
                max: 0xFFF,
            });
        }
        let (code, d1, d2, d3) = self.parts()?;
        let mut b = [
            LEAD,
            (self.version << 4) | header_check(self.version),
            (self.address & 0xFF) as u8,
            code,
            d1,
            d2,
            (d3 << 4) | (self.address >> 8) as u8,
            0,
        ];
        b[7] = checksum(&b[..7]);
        Ok(b)
    }

    /// 16 upper-case hex characters, as sent in `<PTZCmd>`.
    pub fn to_hex(&self) -> Result<String, PtzError> {
        Ok(self
            .to_bytes()?
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect())
    }

    /// Decode 16 hex characters (either case, surrounding whitespace ignored).
    pub fn from_hex(s: &str) -> Result<PtzCmd, PtzError> {
        Self::decode_lenient(s).map(|(c, _)| c)
    }

    /// Decode the eight bytes.
    pub fn from_bytes(b: &[u8; 8]) -> Result<PtzCmd, PtzError> {
        Self::decode_bytes(b, &mut Vec::new())
    }

    /// Decode, also returning findings for tolerated deviations (lower-case
    /// hex, version not 0, unused data not zero, preset 0, unknown code).
    /// Finding paths are empty; the caller knows where the command was.
    pub fn decode_lenient(s: &str) -> Result<(PtzCmd, Vec<Finding>), PtzError> {
        let s = s.trim();
        if s.len() != 16 {
            return Err(PtzError::Length {
                len: s.chars().count(),
            });
        }
        let mut bytes = [0u8; 8];
        let raw = s.as_bytes();
        for (i, out) in bytes.iter_mut().enumerate() {
            let hi = hex_val(raw[2 * i]).ok_or(PtzError::NotHex { index: 2 * i })?;
            let lo = hex_val(raw[2 * i + 1]).ok_or(PtzError::NotHex { index: 2 * i + 1 })?;
            *out = (hi << 4) | lo;
        }
        let mut findings = Vec::new();
        if s.bytes().any(|b| b.is_ascii_lowercase()) {
            findings.push(FindingCode::PtzHexCase.at("", format!("{s:?} uses lower-case hex")));
        }
        let cmd = Self::decode_bytes(&bytes, &mut findings)?;
        Ok((cmd, findings))
    }

    fn decode_bytes(b: &[u8; 8], findings: &mut Vec<Finding>) -> Result<PtzCmd, PtzError> {
        if b[0] != LEAD {
            return Err(PtzError::BadLead { actual: b[0] });
        }
        let version = b[1] >> 4;
        let expected_check = header_check(version);
        if b[1] & 0x0F != expected_check {
            return Err(PtzError::BadHeaderCheck {
                expected: expected_check,
                actual: b[1] & 0x0F,
            });
        }
        let expected_sum = checksum(&b[..7]);
        if b[7] != expected_sum {
            return Err(PtzError::BadChecksum {
                expected: expected_sum,
                actual: b[7],
            });
        }
        if version != VERSION {
            findings.push(
                FindingCode::PtzVersion.at("", format!("version nibble {version:X}, expected 0")),
            );
        }
        let address = u16::from(b[2]) | (u16::from(b[6] & 0x0F) << 8);
        let (code, d1, d2, d3) = (b[3], b[4], b[5], b[6] >> 4);
        let mut unused = |what: &str, v: u8| {
            if v != 0 {
                findings.push(FindingCode::PtzUnusedData.at(
                    "",
                    format!("{what} = {v:02X} is not used by instruction {code:02X}; ignored"),
                ));
            }
        };
        let instruction = match code {
            0x00..=0x3F => {
                if code & 0x30 == 0x30 || code & 0x0C == 0x0C || code & 0x03 == 0x03 {
                    return Err(PtzError::ConflictingBits { code });
                }
                let zoom = match code & 0x30 {
                    0x10 => Zoom::In,
                    0x20 => Zoom::Out,
                    _ => Zoom::Stop,
                };
                let direction =
                    Direction::from_bits(code).ok_or(PtzError::ConflictingBits { code })?;
                Instruction::Ptz(PtzMotion {
                    direction,
                    zoom,
                    pan_speed: d1,
                    tilt_speed: d2,
                    zoom_speed: d3,
                })
            }
            0x40..=0x4F => {
                if code & 0x0C == 0x0C || code & 0x03 == 0x03 {
                    return Err(PtzError::ConflictingBits { code });
                }
                unused("data 3", d3);
                Instruction::Fi(FiMotion {
                    iris: match code & 0x0C {
                        0x04 => Iris::Open,
                        0x08 => Iris::Close,
                        _ => Iris::Stop,
                    },
                    focus: match code & 0x03 {
                        0x02 => Focus::Near,
                        0x01 => Focus::Far,
                        _ => Focus::Stop,
                    },
                    focus_speed: d1,
                    iris_speed: d2,
                })
            }
            0x81..=0x83 => {
                unused("byte 5", d1);
                unused("data 3", d3);
                let op = match code {
                    0x81 => PresetOp::Set,
                    0x82 => PresetOp::Call,
                    _ => PresetOp::Delete,
                };
                if d2 == 0 {
                    findings.push(
                        FindingCode::PtzPresetZero.at("", "preset number 0; the range is 01H-FFH"),
                    );
                }
                Instruction::Preset { op, index: d2 }
            }
            0x84 | 0x85 => {
                unused("data 3", d3);
                if code == 0x84 {
                    Instruction::Cruise(CruiseCmd::AddPoint {
                        group: d1,
                        preset: d2,
                    })
                } else {
                    Instruction::Cruise(CruiseCmd::DeletePoint {
                        group: d1,
                        preset: d2,
                    })
                }
            }
            0x86 | 0x87 => {
                let v = u16::from(d2) | (u16::from(d3) << 8);
                if code == 0x86 {
                    Instruction::Cruise(CruiseCmd::SetSpeed {
                        group: d1,
                        speed: v,
                    })
                } else {
                    Instruction::Cruise(CruiseCmd::SetDwell {
                        group: d1,
                        seconds: v,
                    })
                }
            }
            0x88 => {
                unused("byte 6", d2);
                unused("data 3", d3);
                Instruction::Cruise(CruiseCmd::Start { group: d1 })
            }
            0x89 if d2 <= 2 => {
                unused("data 3", d3);
                Instruction::Scan(match d2 {
                    0 => ScanCmd::Start { group: d1 },
                    1 => ScanCmd::SetLeft { group: d1 },
                    _ => ScanCmd::SetRight { group: d1 },
                })
            }
            0x8A => Instruction::Scan(ScanCmd::SetSpeed {
                group: d1,
                speed: u16::from(d2) | (u16::from(d3) << 8),
            }),
            0x8C | 0x8D => {
                unused("byte 6", d2);
                unused("data 3", d3);
                Instruction::Aux {
                    on: code == 0x8C,
                    number: d1,
                }
            }
            _ => {
                findings.push(FindingCode::PtzUnknownInstruction.at("",
                    format!("instruction {code:02X} (data {d1:02X} {d2:02X} {d3:X}) is not defined; kept raw"),
                ));
                Instruction::Other {
                    code,
                    data1: d1,
                    data2: d2,
                    data3: d3,
                }
            }
        };
        Ok(PtzCmd {
            version,
            address,
            instruction,
        })
    }
}

/// Byte 2 check nibble: (A + 5 + version) % 16.
fn header_check(version: u8) -> u8 {
    ((LEAD >> 4) + (LEAD & 0x0F) + version) % 16
}

/// Byte 8: sum of bytes 1..=7 modulo 256.
pub fn checksum(first7: &[u8]) -> u8 {
    first7.iter().fold(0u8, |acc, b| acc.wrapping_add(*b))
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Mistakes and ambiguities in the PTZ parts of the source document.
pub const ERRATA: &[Erratum] = &[
    Erratum {
        id: "ptz-left-sample",
        clause: "控制格式: A50F010400FA00B3\t左",
        problem: "The 左 (left) sample repeats the 下 (down) command: code 04H is tilt-down with the speed in byte 6. Its checksum is right for its bytes.",
        decision: "Codes follow the bit table (bit 1 = left, pan speed in byte 5): left is A50F0102FA0000B1; the sample decodes as Down.",
    },
    Erratum {
        id: "ptz-focus-labels",
        clause: "控制格式: A50F0141FA0000F0\t镜头聚焦 / A50F0142FA0000F1\t镜头放焦",
        problem: "The labels 聚焦/放焦 do not say near or far.",
        decision: "FI bit table: bit 1 = 聚焦近 (near), bit 0 = 聚焦远 (far); so 41H is Far and 42H is Near.",
    },
    Erratum {
        id: "ptz-iris-labels",
        clause: "控制格式: A50F014400FA00F3\t光圈放大 / A50F014800FA00F7\t光圈缩小",
        problem: "None for the codes; 放大/缩小 are read as open/close.",
        decision: "Bit 2 (44H) = Iris::Open, bit 3 (48H) = Iris::Close; iris speed in byte 6.",
    },
    Erratum {
        id: "ptz-byte2",
        clause: "指令格式 (image only in the document)",
        problem: "The document shows the format as an image; byte 2 and byte 7 rules come from GB/T 28181 A.3.1.",
        decision: "Byte 2 = version<<4 | (A+5+version)%16 (0FH for version 0); a wrong check nibble is an error, a non-zero version a manscdp.ptz-version finding. Byte 7 low nibble = address high bits.",
    },
    Erratum {
        id: "ptz-sample-sn",
        clause: "控制格式 sample code: \"<SN>130</SN>\\n\"",
        problem: "The sample builder hard-codes SN 130 for every command, which defeats SN matching.",
        decision: "Callers choose the SN; nothing here fixes it.",
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The table under 控制格式, verbatim, with the reading this module gives each line.
    const SPEC_TABLE: &[(&str, &str)] = &[
        ("A50F010800FA00B7", "上"),
        ("A50F010400FA00B3", "下"),
        ("A50F010400FA00B3", "左"),
        ("A50F0101FA0000B0", "右"),
        ("A50F010AFAFA00B3", "左上"),
        ("A50F0106FAFA00AF", "左下"),
        ("A50F0109FAFA00B2", "右上"),
        ("A50F0105FAFA00AE", "右下"),
        ("A50F0100000000B5", "停止"),
        ("A50F01100000A065", "镜头放大"),
        ("A50F01200000A075", "镜头缩小"),
        ("A50F014400FA00F3", "光圈放大"),
        ("A50F014800FA00F7", "光圈缩小"),
        ("A50F0141FA0000F0", "镜头聚焦"),
        ("A50F0142FA0000F1", "镜头放焦"),
    ];

    fn expected(label: &str) -> PtzCmd {
        match label {
            "上" => PtzCmd::motion(Direction::Up, 0xFA),
            // Erratum ptz-left-sample: the sample's bytes are the down command.
            "下" | "左" => PtzCmd::motion(Direction::Down, 0xFA),
            "右" => PtzCmd::motion(Direction::Right, 0xFA),
            "左上" => PtzCmd::motion(Direction::UpLeft, 0xFA),
            "左下" => PtzCmd::motion(Direction::DownLeft, 0xFA),
            "右上" => PtzCmd::motion(Direction::UpRight, 0xFA),
            "右下" => PtzCmd::motion(Direction::DownRight, 0xFA),
            "停止" => PtzCmd::stop(),
            "镜头放大" => PtzCmd::zoom(Zoom::In, 0xA),
            "镜头缩小" => PtzCmd::zoom(Zoom::Out, 0xA),
            "光圈放大" => PtzCmd::iris(Iris::Open, 0xFA),
            "光圈缩小" => PtzCmd::iris(Iris::Close, 0xFA),
            // Erratum ptz-focus-labels.
            "镜头聚焦" => PtzCmd::focus(Focus::Far, 0xFA),
            "镜头放焦" => PtzCmd::focus(Focus::Near, 0xFA),
            other => panic!("no expectation for {other}"),
        }
    }

    #[test]
    fn spec_table_checksums_are_all_correct() {
        for (hex, label) in SPEC_TABLE {
            let (cmd, findings) =
                PtzCmd::decode_lenient(hex).unwrap_or_else(|e| panic!("{label} {hex}: {e}"));
            assert!(findings.is_empty(), "{label}: {findings:?}");
            assert_eq!(cmd, expected(label), "{label} {hex}");
            assert_eq!(&cmd.to_hex().unwrap(), hex, "{label} re-encodes");
        }
    }

    #[test]
    fn spec_left_sample_is_really_down() {
        let left = PtzCmd::from_hex("A50F010400FA00B3").unwrap();
        assert_eq!(left, PtzCmd::motion(Direction::Down, 0xFA));
        assert_eq!(
            PtzCmd::motion(Direction::Left, 0xFA).to_hex().unwrap(),
            "A50F0102FA0000B1"
        );
        assert!(ERRATA.iter().any(|e| e.id == "ptz-left-sample"));
    }

    #[test]
    fn byte_literals() {
        assert_eq!(
            PtzCmd::stop().to_bytes().unwrap(),
            [0xA5, 0x0F, 0x01, 0x00, 0x00, 0x00, 0x00, 0xB5]
        );
        assert_eq!(
            PtzCmd::preset(PresetOp::Set, 1).to_hex().unwrap(),
            "A50F018100010037"
        );
        assert_eq!(
            PtzCmd::preset(PresetOp::Call, 1).to_hex().unwrap(),
            "A50F018200010038"
        );
        assert_eq!(
            PtzCmd::preset(PresetOp::Delete, 1).to_hex().unwrap(),
            "A50F018300010039"
        );
        let speed = PtzCmd::new(Instruction::Cruise(CruiseCmd::SetSpeed {
            group: 2,
            speed: 0x123,
        }));
        assert_eq!(speed.to_bytes().unwrap()[4..7], [0x02, 0x23, 0x10]);
        let addr = PtzCmd {
            address: 0xABC,
            ..PtzCmd::stop()
        };
        let b = addr.to_bytes().unwrap();
        assert_eq!((b[2], b[6]), (0xBC, 0x0A));
        assert_eq!(PtzCmd::from_bytes(&b).unwrap(), addr);
    }

    #[test]
    fn errors_carry_expected_and_actual() {
        assert_eq!(
            PtzCmd::from_hex("A50F010800FA00B8"),
            Err(PtzError::BadChecksum {
                expected: 0xB7,
                actual: 0xB8
            })
        );
        assert_eq!(
            PtzCmd::from_hex("A40F010800FA00B6"),
            Err(PtzError::BadLead { actual: 0xA4 })
        );
        assert_eq!(
            PtzCmd::from_hex("A500010800FA00A8"),
            Err(PtzError::BadHeaderCheck {
                expected: 0xF,
                actual: 0
            })
        );
        assert_eq!(PtzCmd::from_hex("A50F"), Err(PtzError::Length { len: 4 }));
        assert_eq!(
            PtzCmd::from_hex("A50F01080GFA00B7"),
            Err(PtzError::NotHex { index: 9 })
        );
        assert_eq!(
            PtzCmd::from_hex("前门摄像机前门摄像"),
            Err(PtzError::Length { len: 9 })
        );
        assert_eq!(
            PtzCmd::from_hex("A50F010C00FA00BB"),
            Err(PtzError::ConflictingBits { code: 0x0C })
        );
        assert_eq!(
            PtzCmd::from_hex("A50F014300FA00F2"),
            Err(PtzError::ConflictingBits { code: 0x43 })
        );
        assert!(matches!(
            PtzCmd::zoom(Zoom::In, 16).to_hex(),
            Err(PtzError::OutOfRange {
                field: "zoom_speed",
                ..
            })
        ));
    }

    #[test]
    fn lenient_findings() {
        let (c, f) = PtzCmd::decode_lenient(" a50f010800fa00b7 ").unwrap();
        assert_eq!(c, PtzCmd::motion(Direction::Up, 0xFA));
        assert_eq!(f[0].code, FindingCode::PtzHexCase);
        // Preset with a non-zero byte 5 and preset 0.
        let mut b = PtzCmd::preset(PresetOp::Call, 0).to_bytes().unwrap();
        b[4] = 7;
        b[7] = checksum(&b[..7]);
        let hex: String = b.iter().map(|x| format!("{x:02X}")).collect();
        let (_, f) = PtzCmd::decode_lenient(&hex).unwrap();
        let codes: Vec<_> = f.iter().map(|f| f.code).collect();
        assert_eq!(
            codes,
            vec![FindingCode::PtzUnusedData, FindingCode::PtzPresetZero]
        );
        let (c, f) = PtzCmd::decode_lenient("A50F019912340094").unwrap();
        assert!(matches!(
            c.instruction,
            Instruction::Other { code: 0x99, .. }
        ));
        assert_eq!(f[0].code, FindingCode::PtzUnknownInstruction);
        let v1 = PtzCmd {
            version: 1,
            ..PtzCmd::stop()
        };
        let (c, f) = PtzCmd::decode_lenient(&v1.to_hex().unwrap()).unwrap();
        assert_eq!(c, v1);
        assert_eq!(f[0].code, FindingCode::PtzVersion);
    }

    fn instruction() -> impl Strategy<Value = Instruction> {
        let direction = proptest::sample::select(Direction::ALL.to_vec());
        let zoom = prop_oneof![Just(Zoom::Stop), Just(Zoom::In), Just(Zoom::Out)];
        let iris = prop_oneof![Just(Iris::Stop), Just(Iris::Open), Just(Iris::Close)];
        let focus = prop_oneof![Just(Focus::Stop), Just(Focus::Near), Just(Focus::Far)];
        let op = prop_oneof![
            Just(PresetOp::Set),
            Just(PresetOp::Call),
            Just(PresetOp::Delete)
        ];
        prop_oneof![
            (direction, zoom, any::<u8>(), any::<u8>(), 0u8..16).prop_map(
                |(direction, zoom, p, t, z)| {
                    Instruction::Ptz(PtzMotion {
                        direction,
                        zoom,
                        pan_speed: p,
                        tilt_speed: t,
                        zoom_speed: z,
                    })
                }
            ),
            (iris, focus, any::<u8>(), any::<u8>()).prop_map(|(iris, focus, f, i)| {
                Instruction::Fi(FiMotion {
                    iris,
                    focus,
                    focus_speed: f,
                    iris_speed: i,
                })
            }),
            (op, 1u8..=255).prop_map(|(op, index)| Instruction::Preset { op, index }),
            (any::<u8>(), any::<u8>()).prop_map(|(group, preset)| Instruction::Cruise(
                CruiseCmd::AddPoint { group, preset }
            )),
            (any::<u8>(), any::<u8>()).prop_map(|(group, preset)| Instruction::Cruise(
                CruiseCmd::DeletePoint { group, preset }
            )),
            (any::<u8>(), 0u16..=0xFFF).prop_map(|(group, speed)| Instruction::Cruise(
                CruiseCmd::SetSpeed { group, speed }
            )),
            (any::<u8>(), 0u16..=0xFFF).prop_map(|(group, seconds)| Instruction::Cruise(
                CruiseCmd::SetDwell { group, seconds }
            )),
            any::<u8>().prop_map(|group| Instruction::Cruise(CruiseCmd::Start { group })),
            any::<u8>().prop_map(|group| Instruction::Scan(ScanCmd::Start { group })),
            any::<u8>().prop_map(|group| Instruction::Scan(ScanCmd::SetLeft { group })),
            any::<u8>().prop_map(|group| Instruction::Scan(ScanCmd::SetRight { group })),
            (any::<u8>(), 0u16..=0xFFF)
                .prop_map(|(group, speed)| Instruction::Scan(ScanCmd::SetSpeed { group, speed })),
            (any::<bool>(), any::<u8>()).prop_map(|(on, number)| Instruction::Aux { on, number }),
            (
                prop_oneof![0x50u8..=0x80, Just(0x8B), 0x8Eu8..=0xFF],
                any::<u8>(),
                any::<u8>(),
                0u8..16
            )
                .prop_map(|(code, data1, data2, data3)| Instruction::Other {
                    code,
                    data1,
                    data2,
                    data3
                }),
        ]
    }

    fn command() -> impl Strategy<Value = PtzCmd> {
        (0u8..16, 0u16..=0xFFF, instruction()).prop_map(|(version, address, instruction)| PtzCmd {
            version,
            address,
            instruction,
        })
    }

    proptest! {
        #[test]
        fn round_trip(cmd in command()) {
            let hex = cmd.to_hex().unwrap();
            prop_assert_eq!(hex.len(), 16);
            prop_assert_eq!(PtzCmd::from_hex(&hex).unwrap(), cmd);
            prop_assert_eq!(PtzCmd::from_hex(&hex.to_lowercase()).unwrap(), cmd);
            prop_assert_eq!(PtzCmd::from_bytes(&cmd.to_bytes().unwrap()).unwrap(), cmd);
        }

        #[test]
        fn corrupted_checksum_is_rejected(cmd in command(), delta in 1u8..=255) {
            let mut b = cmd.to_bytes().unwrap();
            let good = b[7];
            b[7] = good.wrapping_add(delta);
            prop_assert_eq!(
                PtzCmd::from_bytes(&b),
                Err(PtzError::BadChecksum { expected: good, actual: good.wrapping_add(delta) })
            );
        }

        #[test]
        fn corrupted_data_byte_is_rejected(cmd in command(), idx in 2usize..7, delta in 1u8..=255) {
            let mut b = cmd.to_bytes().unwrap();
            b[idx] = b[idx].wrapping_add(delta);
            let is_checksum_error = matches!(PtzCmd::from_bytes(&b), Err(PtzError::BadChecksum { .. }));
            prop_assert!(is_checksum_error);
        }

        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,40}") {
            let _ = PtzCmd::decode_lenient(&s);
        }

        #[test]
        fn arbitrary_bytes_never_panic(b in any::<[u8; 8]>()) {
            if let Ok(cmd) = PtzCmd::from_bytes(&b) {
                // Whatever decodes re-encodes to a valid command.
                let again = cmd.to_bytes().unwrap();
                prop_assert!(PtzCmd::from_bytes(&again).is_ok());
            }
        }
    }
}
