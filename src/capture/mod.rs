//! Packet captures: writing the evidence pcap of a case (each message the
//! harness exchanged, wrapped in synthetic Ethernet/IP/UDP or TCP headers so
//! Wireshark and tshark decode it as SIP), and reading captures back
//! (`read`: pcap and pcapng files; `decode`: frames to SIP messages and
//! flows, for `camcert decode`; `lint`: a recorded session judged against
//! the suites' requirement IDs, for `camcert lint`).

pub mod decode;
pub mod filter;
pub mod golden;
pub mod lint;
pub mod pcap;
pub mod read;
pub mod replay;
