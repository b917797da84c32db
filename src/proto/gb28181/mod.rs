//! GB/T 28181 (spec `gb28181-features.txt`): codes, registration messages,
//! and the device and platform state machines.

pub mod device;
pub mod id;
pub mod manscdp;
pub mod message;
pub mod platform;
pub mod ptz;
pub mod register;
pub mod robust;
pub mod session;

#[cfg(test)]
mod quirks_tests;
#[cfg(test)]
mod virtual_time;
