//! The ports a bench runs on: one `net_ring` looped onto itself, or an af_packet
//! port on each end of a veth pair.

use dataplane::dpdk::{Mempool, Port, PortSpec, RxQueue, TxQueue};

/// The EAL's `--vdev` devices: one `net_ring`, or an af_packet port on each end
/// of the veth pair `veth`.
pub fn vdevs(veth: Option<(&str, &str)>) -> Vec<String> {
    match veth {
        None => vec!["net_ring0".into()],
        Some((a, b)) => vec![
            format!("net_af_packet0,iface={a},qpairs=1"),
            format!("net_af_packet1,iface={b},qpairs=1"),
        ],
    }
}

/// Opens and starts the ports; returns them (to keep them open), the source's
/// RX and TX queues, and the loop under test's.
pub fn wire(veth: bool, pool: &Mempool) -> (Vec<Port>, RxQueue, TxQueue, (RxQueue, TxQueue)) {
    let spec = |queues| PortSpec {
        promiscuous: veth,
        ..PortSpec::queues(queues, 4096)
    };
    if veth {
        // What the loop under test sends on one end comes in at the source's on
        // the other, and the other way round: the kernel's veth carries them.
        let mut under = Port::open("net_af_packet0", "under test").expect("net_af_packet0");
        let mut source = Port::open("net_af_packet1", "source").expect("net_af_packet1");
        under.start(&spec(1), pool).expect("start");
        source.start(&spec(1), pool).expect("start");
        let fwd = queues(&mut under, 0, 0);
        let (src_rx, src_tx) = queues(&mut source, 0, 0);
        return (vec![under, source], src_rx, src_tx, fwd);
    }
    let mut port = Port::open("net_ring0", "loop").expect("net_ring0");
    port.start(&spec(2), pool).expect("start");
    // net_ring's queue i receives what queue i transmits: queue 0 carries the
    // source's packets to the loop under test, queue 1 carries them back.
    let fwd = queues(&mut port, 0, 1);
    let (src_rx, src_tx) = queues(&mut port, 1, 0);
    (vec![port], src_rx, src_tx, fwd)
}

/// RX queue `rx` and TX queue `tx` of a started port.
pub fn queues(port: &mut Port, rx: u16, tx: u16) -> (RxQueue, TxQueue) {
    (
        port.take_rx_queue(rx).expect("rx queue"),
        port.take_tx_queue(tx).expect("tx queue"),
    )
}
