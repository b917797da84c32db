//! Semantic checks shared by the body types: mandatory elements and the
//! 20-digit device code (deviceIDType).

use super::finding::{Finding, FindingCode, CLAUSE_DEVICE_ID};

/// Checks a typed record against the rules of its clause.
pub trait Validate {
    /// Append findings for this record, whose element path is `path`.
    fn validate(&self, path: &str, out: &mut Vec<Finding>);
}

/// Report `name` missing under `path` unless `present`.
pub(crate) fn require(
    out: &mut Vec<Finding>,
    path: &str,
    name: &str,
    present: bool,
    clause: &'static str,
) {
    if !present {
        out.push(
            FindingCode::MissingField
                .at(
                    format!("{path}/{name}"),
                    format!("mandatory <{name}> is missing"),
                )
                .with_clause(clause),
        );
    }
}

/// True for a 20-digit decimal device/system code.
pub fn is_device_id(id: &str) -> bool {
    id.len() == 20 && id.bytes().all(|b| b.is_ascii_digit())
}

/// Type code (digits 11..=13) of a 20-digit code.
pub fn type_code(id: &str) -> Option<u16> {
    if !is_device_id(id) {
        return None;
    }
    id[10..13].parse().ok()
}

/// Report a code that is not 20 digits.
pub(crate) fn check_device_id(out: &mut Vec<Finding>, path: &str, id: &str) {
    if !is_device_id(id) {
        out.push(
            FindingCode::DeviceIdFormat
                .at(path, format!("{id:?} is not a 20-digit device code"))
                .with_clause(CLAUSE_DEVICE_ID),
        );
    }
}

/// Check an optional code if present.
pub(crate) fn check_opt_device_id(out: &mut Vec<Finding>, path: &str, id: &Option<String>) {
    if let Some(id) = id {
        check_device_id(out, path, id);
    }
}
