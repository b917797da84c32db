//! GB/T 28181 20-digit codes (附录 D 统一编码规则): 8 digits of
//! administrative area (center code), 2 of industry, 3 of type, 1 of
//! network identity, 6 of serial number. The 10-digit SIP domain is the
//! first 10 digits of the SIP server's ID (spec §设备配置: "SIP服务域：SIP服务器ID的前10位").

/// A checked 20-digit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GbId<'a> {
    pub raw: &'a str,
}

impl<'a> GbId<'a> {
    pub fn parse(s: &'a str) -> Result<GbId<'a>, String> {
        if s.len() != 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{s:?} is not a 20-digit GB/T 28181 code"));
        }
        Ok(GbId { raw: s })
    }
    pub fn center(&self) -> &'a str {
        &self.raw[..8]
    }
    pub fn industry(&self) -> &'a str {
        &self.raw[8..10]
    }
    pub fn type_code(&self) -> u16 {
        self.raw[10..13].parse().unwrap_or(0)
    }
    pub fn network(&self) -> u8 {
        self.raw.as_bytes()[13] - b'0'
    }
    /// The 10-digit SIP domain this code belongs to.
    pub fn domain(&self) -> &'a str {
        &self.raw[..10]
    }
    /// Type codes 111–199 are front-end devices and peripherals, 200–299
    /// platform-side equipment (200 = central signalling control server).
    pub fn is_device(&self) -> bool {
        (111..=199).contains(&self.type_code())
    }
    pub fn is_platform(&self) -> bool {
        (200..=299).contains(&self.type_code())
    }
    pub fn type_name(&self) -> &'static str {
        match self.type_code() {
            111 => "DVR",
            112 => "video server",
            113 => "encoder",
            114 => "decoder",
            118 => "NVR",
            131 => "camera",
            132 => "network camera (IPC)",
            134 => "alarm input",
            135 => "alarm output",
            200 => "central signalling control server",
            215 => "business group",
            216 => "virtual organisation",
            c if (111..=199).contains(&c) => "front-end device",
            c if (200..=299).contains(&c) => "platform equipment",
            _ => "unassigned type",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn splits_codes() {
        let id = GbId::parse("34020000001320000001").unwrap();
        assert_eq!(id.center(), "34020000");
        assert_eq!(id.industry(), "00");
        assert_eq!(id.type_code(), 132);
        assert_eq!(id.network(), 0);
        assert_eq!(id.domain(), "3402000000");
        assert!(id.is_device());
        let p = GbId::parse("34020000002000000001").unwrap();
        assert!(p.is_platform());
        assert!(GbId::parse("3402000000132000000").is_err());
        assert!(GbId::parse("3402000000132000000x").is_err());
    }
}
