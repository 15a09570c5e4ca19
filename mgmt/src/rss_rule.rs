//! Which rule gives a flow its worker when several workers share the ports:
//! RSS, when every port polled by several workers spreads packets by the
//! redirection table Weir programmed (PCI devices that take Weir's key), else a
//! hash of Weir's own, with packets handed over from the worker that receives
//! them. The choice is kept apart from the device calls so that each of its
//! branches is tested without a NIC.

use dataplane::dpdk::port::RssTable;

/// What one port said about steering by RSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRss {
    /// Polled by fewer than two workers: its queue decides nothing.
    OneQueue,
    /// The device hashes with Weir's key and took this redirection table.
    Table(RssTable),
    /// The device does not hash with Weir's key, or took no table.
    NotOn,
    /// The port cannot steer by RSS, for this reason.
    Cannot(String),
}

/// The rule flows are owned by: RSS with this table, by the ports it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ByRss {
    pub table: RssTable,
    /// A bit per port index whose packets arrive where RSS puts them.
    pub ports: u64,
}

/// Why a port polled by `port_workers` of `workers` workers cannot steer by RSS
/// (`None`: it can, if its device takes the table). Only a PCI device spreads
/// by a table Weir programs; virtual devices (af_packet, af_xdp, tap) spread
/// packets their own way.
pub fn cannot(pci: bool, driver: &str, port_workers: usize, workers: usize) -> Option<String> {
    if !pci {
        Some(format!("{driver} spreads packets its own way"))
    } else if port_workers != workers {
        Some(format!("{port_workers} of {workers} workers poll it"))
    } else {
        None
    }
}

/// The rule, from what each port (by name, in port-index order) said:
/// `Ok(Some)` to own flows by RSS, `Ok(None)` when no port has several workers
/// (nothing to steer), `Err((port, why))` for Weir's own hash. Stops at the
/// first port that rules RSS out.
pub fn choose(
    ports: impl IntoIterator<Item = (String, PortRss)>,
) -> Result<Option<ByRss>, (String, String)> {
    let mut found: Option<ByRss> = None;
    for (i, (name, said)) in ports.into_iter().enumerate() {
        let table = match said {
            PortRss::OneQueue => continue,
            PortRss::Table(t) => t,
            PortRss::NotOn => return Err((name, "RSS with Weir's key and table is not on".into())),
            PortRss::Cannot(why) => return Err((name, why)),
        };
        if i >= 64 {
            // The workers keep the steered ports as bits of one word.
            return Err((name, "ports past the 64th are not steered".into()));
        }
        match &mut found {
            Some(by) if by.table != table => {
                return Err((
                    name,
                    "its redirection table differs from another port's".into(),
                ))
            }
            Some(by) => by.ports |= 1 << i,
            None => {
                found = Some(ByRss {
                    table,
                    ports: 1 << i,
                })
            }
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(queues: u16) -> RssTable {
        RssTable {
            key: [0x6d; 40],
            reta: (0..128).map(|i| i % queues).collect(),
        }
    }

    fn named(said: Vec<PortRss>) -> Vec<(String, PortRss)> {
        said.into_iter()
            .enumerate()
            .map(|(i, s)| (format!("p{i}"), s))
            .collect()
    }

    #[test]
    fn ports_with_the_same_table_are_steered_and_single_queue_ones_skipped() {
        let said = named(vec![
            PortRss::Table(table(2)),
            PortRss::OneQueue,
            PortRss::Table(table(2)),
        ]);
        let by = choose(said).unwrap().unwrap();
        assert_eq!(by.table, table(2));
        assert_eq!(by.ports, 0b101);
    }

    #[test]
    fn no_port_with_several_workers_needs_no_rule() {
        assert_eq!(
            choose(named(vec![PortRss::OneQueue, PortRss::OneQueue])),
            Ok(None)
        );
    }

    #[test]
    fn any_port_that_cannot_steer_names_itself_and_why() {
        let cases = [
            (
                vec![PortRss::Table(table(2)), PortRss::Table(table(4))],
                ("p1", "its redirection table differs from another port's"),
            ),
            (
                vec![PortRss::OneQueue, PortRss::NotOn, PortRss::Table(table(2))],
                ("p1", "RSS with Weir's key and table is not on"),
            ),
            (
                vec![
                    PortRss::Cannot("net_af_packet spreads packets its own way".into()),
                    PortRss::Table(table(2)),
                ],
                ("p0", "net_af_packet spreads packets its own way"),
            ),
        ];
        for (said, (port, why)) in cases {
            assert_eq!(choose(named(said)), Err((port.into(), why.into())));
        }
    }

    #[test]
    fn a_port_past_the_64th_rules_rss_out() {
        let mut said: Vec<PortRss> = (0..64).map(|_| PortRss::OneQueue).collect();
        said[3] = PortRss::Table(table(2));
        assert_eq!(choose(named(said.clone())).unwrap().unwrap().ports, 1 << 3);
        said.push(PortRss::Table(table(2)));
        let (port, why) = choose(named(said)).unwrap_err();
        assert_eq!(port, "p64");
        assert!(why.contains("64th"), "{why}");
    }

    #[test]
    fn only_a_pci_device_polled_by_every_worker_can_steer() {
        assert_eq!(cannot(true, "net_ice", 4, 4), None);
        assert_eq!(
            cannot(true, "net_ice", 2, 4).as_deref(),
            Some("2 of 4 workers poll it")
        );
        assert_eq!(
            cannot(false, "net_af_packet", 2, 2).as_deref(),
            Some("net_af_packet spreads packets its own way")
        );
    }
}
