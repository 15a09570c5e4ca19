//! The safe DPDK layer: a thin wrapper over `dpdk-sys` that owns the EAL, mempools,
//! ports, queues and mbufs. Every `unsafe` block in the dataplane lives here.

pub mod burst;
pub mod eal;
pub mod error;
pub mod lcore;
pub mod mbuf;
pub mod mempool;
pub mod port;
pub mod ring;
pub mod scratch;

pub use burst::{MbufArray, RxQueue, TxQueue, BURST};
pub use eal::Eal;
pub use error::DpdkError;
pub use mbuf::Mbuf;
pub use mempool::Mempool;
pub use port::{LinkStatus, Port, PortSpec};
