//! ITU-T G.711 pulse code modulation: 16-bit linear samples to 8-bit A-law or µ-law
//! and back (spec 语音对讲: `m=audio PORT RTP/AVP 8`, `a=rtpmap:8 PCMA/8000`; RFC 3551
//! §4.5.14: PCMA is payload type 8, PCMU payload type 0, both 8000 Hz, one byte per
//! sample).
//!
//! The encoders follow the segment tables of G.711 §2 (A-law, Table 1a/1b: 13-bit
//! magnitude, 8 segments, even bits inverted) and §3 (µ-law, Table 2a/2b: 14-bit
//! magnitude biased by 33, 8 segments, all bits inverted). The input's low bits the
//! law does not use (3 for A-law, 2 for µ-law) are dropped by an arithmetic shift.

/// Which G.711 law.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// A-law (`PCMA`, payload type 8).
    ALaw,
    /// µ-law (`PCMU`, payload type 0).
    MuLaw,
}

/// RTP payload type of PCMU (RFC 3551 Table 4).
pub const PCMU_PAYLOAD_TYPE: u8 = 0;
/// RTP payload type of PCMA (RFC 3551 Table 4).
pub const PCMA_PAYLOAD_TYPE: u8 = 8;
/// Sampling rate and RTP clock of G.711.
pub const SAMPLE_RATE: u32 = 8000;

impl Law {
    /// The law an SDP encoding name (`PCMA`, `PCMU`, any case) names.
    pub fn from_encoding(name: &str) -> Option<Law> {
        if name.eq_ignore_ascii_case("PCMA") {
            Some(Law::ALaw)
        } else if name.eq_ignore_ascii_case("PCMU") {
            Some(Law::MuLaw)
        } else {
            None
        }
    }

    /// The law of a static payload type (8 or 0).
    pub fn from_payload_type(pt: u8) -> Option<Law> {
        match pt {
            PCMA_PAYLOAD_TYPE => Some(Law::ALaw),
            PCMU_PAYLOAD_TYPE => Some(Law::MuLaw),
            _ => None,
        }
    }

    /// The static payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::ALaw => PCMA_PAYLOAD_TYPE,
            Law::MuLaw => PCMU_PAYLOAD_TYPE,
        }
    }

    /// The SDP encoding name.
    pub fn encoding(self) -> &'static str {
        match self {
            Law::ALaw => "PCMA",
            Law::MuLaw => "PCMU",
        }
    }

    /// Encodes one sample.
    pub fn encode_sample(self, s: i16) -> u8 {
        match self {
            Law::ALaw => linear_to_alaw(s),
            Law::MuLaw => linear_to_ulaw(s),
        }
    }

    /// Decodes one code.
    pub fn decode_sample(self, c: u8) -> i16 {
        match self {
            Law::ALaw => alaw_to_linear(c),
            Law::MuLaw => ulaw_to_linear(c),
        }
    }

    /// Encodes samples, one byte each, appended to `out`.
    pub fn encode_into(self, samples: &[i16], out: &mut Vec<u8>) {
        out.extend(samples.iter().map(|&s| self.encode_sample(s)));
    }

    /// Encodes samples, one byte each.
    pub fn encode(self, samples: &[i16]) -> Vec<u8> {
        let mut out = Vec::with_capacity(samples.len());
        self.encode_into(samples, &mut out);
        out
    }
}

/// The segment of a magnitude: the first `ends[i]` it does not exceed (8: beyond).
fn segment(mag: i32, ends: &[i32; 8]) -> i32 {
    ends.iter().position(|&e| mag <= e).unwrap_or(8) as i32
}

/// A-law segment ends of the 13-bit magnitude (G.711 Table 1a).
const A_SEG_END: [i32; 8] = [0x1F, 0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF];
/// µ-law segment ends of the biased 14-bit magnitude (G.711 Table 2a).
const U_SEG_END: [i32; 8] = [0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF];
/// µ-law bias (33 in 14-bit units).
const U_BIAS: i32 = 0x21;
/// Largest 14-bit µ-law magnitude before the bias (8158 + 1).
const U_CLIP: i32 = 8159;

/// Linear 16-bit to A-law: sign (1 = positive), 3-bit segment, 4-bit step, then the
/// even bits inverted (XOR 0x55).
pub fn linear_to_alaw(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 3;
    let mask = if v >= 0 {
        0xD5
    } else {
        v = -v - 1;
        0x55
    };
    let seg = segment(v, &A_SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    let step = if seg < 2 { v >> 1 } else { v >> seg } & 0x0F;
    ((seg << 4) | step) as u8 ^ mask
}

/// A-law to linear 16-bit: the middle of the decision interval (G.711 Table 1b).
pub fn alaw_to_linear(code: u8) -> i16 {
    let a = i32::from(code ^ 0x55);
    let step = (a & 0x0F) << 4;
    let seg = (a & 0x70) >> 4;
    let mag = match seg {
        0 => step + 8,
        1 => step + 0x108,
        _ => (step + 0x108) << (seg - 1),
    };
    (if a & 0x80 != 0 { mag } else { -mag }) as i16
}

/// Linear 16-bit to µ-law: sign (1 = positive before inversion), 3-bit segment, 4-bit
/// step of the biased magnitude, all bits inverted.
pub fn linear_to_ulaw(sample: i16) -> u8 {
    let mut v = i32::from(sample) >> 2;
    let mask = if v < 0 {
        v = -v;
        0x7F
    } else {
        0xFF
    };
    let v = v.min(U_CLIP) + U_BIAS;
    let seg = segment(v, &U_SEG_END);
    if seg >= 8 {
        return 0x7F ^ mask;
    }
    (((seg << 4) | ((v >> (seg + 1)) & 0x0F)) as u8) ^ mask
}

/// µ-law to linear 16-bit (G.711 Table 2b, in 16-bit units: bias 132).
pub fn ulaw_to_linear(code: u8) -> i16 {
    let u = i32::from(!code);
    let t = (((u & 0x0F) << 3) + 0x84) << ((u & 0x70) >> 4);
    (if u & 0x80 != 0 { 0x84 - t } else { t - 0x84 }) as i16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_full_scale_and_minus_one() {
        // A-law: 0 is the positive code of the first step, 0xD5 once the even bits
        // are inverted; -1 its negative twin 0x55; full scale 0xAA / 0x2A.
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
        // µ-law: 0 is all ones; full scale 0x80 / 0x00.
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
    }

    #[test]
    fn decoder_reference_values() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0x00), -32124);
    }

    /// G.711 Table 5 / Table 6: the digital milliwatt, a 1 kHz sine at 0 dBm0 sampled
    /// at 22.5°, 67.5°, ... of its period, as A-law and µ-law bytes.
    #[test]
    #[allow(clippy::approx_constant)] // 3.14 dB, not π
    fn digital_milliwatt_sequences() {
        let phases = [202.5f64, 247.5, 292.5, 337.5, 22.5, 67.5, 112.5, 157.5];
        // 0 dBm0 lies 3.14 dB (A-law) / 3.17 dB (µ-law) below full scale.
        let wave = |db: f64| -> Vec<i16> {
            let amp = 32768.0 * 10f64.powf(-db / 20.0);
            phases
                .iter()
                .map(|p| (amp * p.to_radians().sin()).round() as i16)
                .collect()
        };
        assert_eq!(
            Law::ALaw.encode(&wave(3.14)),
            [0x34, 0x21, 0x21, 0x34, 0xB4, 0xA1, 0xA1, 0xB4]
        );
        assert_eq!(
            Law::MuLaw.encode(&wave(3.17)),
            [0x1E, 0x0B, 0x0B, 0x1E, 0x9E, 0x8B, 0x8B, 0x9E]
        );
    }

    #[test]
    fn every_code_survives_decode_and_encode() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
            // µ-law has two zeros; "negative zero" 0x7F decodes to 0, encoded 0xFF.
            let want = if c == 0x7F { 0xFF } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), want, "µ-law {c:#04x}");
        }
    }

    #[test]
    fn encoding_is_monotonic_in_the_decoded_value() {
        for law in [Law::ALaw, Law::MuLaw] {
            let mut last = i16::MIN;
            for s in (i16::MIN..=i16::MAX).step_by(7) {
                let d = law.decode_sample(law.encode_sample(s));
                assert!(d >= last, "{law:?} {s}: {d} < {last}");
                // The decoded value is within one quantisation step of the input.
                assert!(
                    (i32::from(d) - i32::from(s)).abs() <= 1024,
                    "{law:?} {s} -> {d}"
                );
                last = d;
            }
        }
    }

    #[test]
    fn names_and_payload_types() {
        assert_eq!(Law::from_encoding("pcma"), Some(Law::ALaw));
        assert_eq!(Law::from_encoding("PCMU"), Some(Law::MuLaw));
        assert_eq!(Law::from_encoding("PS"), None);
        assert_eq!(Law::from_payload_type(8), Some(Law::ALaw));
        assert_eq!(Law::from_payload_type(0), Some(Law::MuLaw));
        assert_eq!(Law::ALaw.payload_type(), 8);
        assert_eq!(Law::MuLaw.encoding(), "PCMU");
    }
}
