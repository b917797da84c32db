//! camcert: conformance test harness and traffic simulator for
//! video-surveillance camera protocols.
//!
//! Three rings. [`proto`] is pure protocol code — codecs and state machines
//! that take the time as an argument and return what to send; it never
//! touches a socket or a clock. [`transport`] is the only I/O: UDP/TCP
//! endpoints, the clock, and a driver loop that runs a state machine on a
//! socket. The drivers — [`suite::runner`], the built-in [`peers`], and
//! `camcert serve` — all reuse the same state machines, so the reference
//! camera that answers a suite is the same `Device` a test wires to a
//! `Platform` in virtual time.
//!
//! [`media`] is the I/O side of RTP/PS media: a paced sender and a validating
//! receiver over UDP and both TCP modes, built on the sans-IO `proto::ps`,
//! `proto::rtp` and `proto::sdp`.
//!
//! [`report`] turns one result schema into terminal, JSON, JUnit and HTML
//! output, and compares two runs;
//! [`capture`] writes the evidence pcaps.

pub mod app;
pub mod capture;
pub mod cli;
pub mod finding;
pub mod lab;
pub mod load;
pub mod media;
pub mod peers;
pub mod proto;
pub mod report;
pub mod suite;
pub mod transport;

pub use finding::{Evidence, Finding, Severity};
