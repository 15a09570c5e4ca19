//! `reload` against a file on disk: a good change is applied as one new
//! snapshot and described; a bad file, or one that changes what needs a
//! restart, is refused and the running configuration stays.

use super::reload;
use crate::manager::{Manager, Who};
use crate::manager_tests::{manager, EXAMPLE};
use crate::scratch_dir::ScratchDir;

const OPERATOR: Who = Who {
    uid: 0,
    pid: 1,
    via: "admin",
};

/// A manager of the example whose configuration file is `weir.toml` in a
/// directory of the test's own.
struct Setup {
    m: Manager,
    dir: ScratchDir,
}

impl Setup {
    fn new(what: &str) -> Setup {
        let dir = ScratchDir::new(&format!("reload-{what}"));
        let (mut m, _rx) = manager(EXAMPLE);
        m.cfg_path = dir.join("weir.toml");
        m.publish();
        Setup { m, dir }
    }

    fn reload_with(&mut self, src: &str) -> Result<String, String> {
        std::fs::write(self.dir.join("weir.toml"), src).unwrap();
        reload(&mut self.m, &OPERATOR)
    }

    fn weight(&self, key: &str) -> u32 {
        self.m.backends[self.m.backend_id(key).unwrap() as usize].weight
    }
}

#[test]
fn a_good_file_is_applied_as_one_snapshot_and_described() {
    let mut s = Setup::new("good");
    let generation = s.m.snapshot.load().generation;
    let src = EXAMPLE.replacen(
        "address = \"198.18.0.11\"\nweight = 1",
        "address = \"198.18.0.11\"\nweight = 5",
        1,
    );
    let said = s.reload_with(&src).unwrap();
    assert_eq!(
        said,
        "reloaded: services [web web6 web-dr dns] backends [web/b1=5 web/b2=1 \
         web/b3=1 web6/b1=1 web6/b2=1 web6/b3=1 dns/b1=1 dns/b2=1 dns/b3=1]"
    );
    assert_eq!(s.weight("web/b1"), 5);
    let snap = s.m.snapshot.load();
    assert_eq!(snap.generation, generation + 1);
    let web = snap.services.iter().find(|v| v.name == "web").unwrap();
    assert_eq!(web.weights, [5, 1, 1]);
    // A backend taken out is no longer described.
    let src = src.replacen(
        "[[pool.backend]]\nname = \"b3\"\naddress = \"198.18.0.13\"\nweight = 1\n",
        "",
        1,
    );
    let said = s.reload_with(&src).unwrap();
    assert!(said.contains("web/b1=5 web/b2=1 web6/b1=1"), "{said}");
}

#[test]
fn a_file_that_fails_validation_changes_nothing() {
    let mut s = Setup::new("bad");
    let generation = s.m.snapshot.load().generation;
    let src = EXAMPLE
        .replacen(
            "address = \"198.18.0.11\"\nweight = 1",
            "address = \"198.18.0.11\"\nweight = 5",
            1,
        )
        .replacen("address = \"198.18.0.12\"", "address = \"10.9.9.9\"", 1);
    let e = s.reload_with(&src).unwrap_err();
    assert!(e.starts_with("reload refused: "), "{e}");
    assert!(e.contains("pool[0].backend[1]"), "names the field: {e}");
    assert_eq!(s.weight("web/b1"), 1);
    assert_eq!(s.m.snapshot.load().generation, generation);
    // No file at all: refused as well.
    std::fs::remove_file(s.dir.join("weir.toml")).unwrap();
    assert!(reload(&mut s.m, &OPERATOR).is_err());
}

#[test]
fn what_only_a_restart_can_change_is_named_and_refused() {
    let mut s = Setup::new("restart");
    let generation = s.m.snapshot.load().generation;
    let cases = [
        ("memory_mb = 256", "memory_mb = 512", "eal"),
        ("mtu = 1500", "mtu = 1400", "port"),
        ("capacity = 65536", "capacity = 4096", "conn_table.capacity"),
        (
            "metrics = \"127.0.0.1:9100\"",
            "metrics = \"127.0.0.1:9101\"",
            "admin",
        ),
    ];
    for (from, to, what) in cases {
        // With a change a reload may make, which must not be taken either.
        let src = EXAMPLE.replacen(from, to, 1).replacen(
            "address = \"198.18.0.11\"\nweight = 1",
            "address = \"198.18.0.11\"\nweight = 5",
            1,
        );
        let e = s.reload_with(&src).unwrap_err();
        assert_eq!(
            e,
            format!(
                "reload refused: changing {what} needs a restart; the running configuration stays"
            )
        );
    }
    let all = cases
        .iter()
        .fold(EXAMPLE.to_string(), |src, (from, to, _)| {
            src.replacen(from, to, 1)
        });
    let e = s.reload_with(&all).unwrap_err();
    assert!(
        e.contains("changing eal, port, conn_table.capacity, admin needs"),
        "{e}"
    );
    assert_eq!(s.weight("web/b1"), 1);
    assert_eq!(s.m.snapshot.load().generation, generation);
}
