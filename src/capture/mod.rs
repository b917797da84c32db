//! Packet captures: writing the evidence pcap of a case (each message the
//! harness exchanged, wrapped in synthetic Ethernet/IP/UDP or TCP headers so
//! Wireshark and tshark decode it as SIP).

pub mod decode;
pub mod pcap;
pub mod read;
