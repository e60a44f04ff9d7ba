//! `docs/schema/<probe_type>.schema.json` equal what the types generate.
//! `NETPROBE_BLESS=1 cargo test` rewrites them after an intended change.

use std::path::PathBuf;

use netprobe_wire::{schema::message_schema, ProbeType};

#[test]
fn schema_files_are_current() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/schema");
    let bless = std::env::var_os("NETPROBE_BLESS").is_some();
    if bless {
        std::fs::create_dir_all(&dir).expect("mkdir docs/schema");
    }
    for t in ProbeType::ALL {
        let path = dir.join(format!("{t}.schema.json"));
        let generated = serde_json::to_string_pretty(&message_schema(t)).expect("json") + "\n";
        if bless {
            std::fs::write(&path, &generated).expect("write schema");
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run NETPROBE_BLESS=1 cargo test -p netprobe-wire)", path.display()));
        assert!(
            on_disk == generated,
            "{} is stale: run NETPROBE_BLESS=1 cargo test -p netprobe-wire and commit the result",
            path.display()
        );
    }
}
