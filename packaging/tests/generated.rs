//! The man pages and shell completions under `packaging/` and the CLI
//! reference `docs/cli.md` equal what the binaries' clap commands generate,
//! so a changed flag cannot ship with stale docs. After an intended change:
//! `NETPROBE_BLESS=1 cargo test -p netprobe-packaging`, then commit.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use netprobe_packaging::{cli_reference, generated_files};

/// Every binary that ships a man page and completions (one line each).
fn commands() -> Vec<clap::Command> {
    vec![netprobe_agent::cli::command(), netprobe_ingest::cli::command(), netprobe_replay::cli::command()]
}

fn check(path: &Path, generated: &[u8], bless: bool) {
    if bless {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(path, generated).expect("write generated file");
    }
    let on_disk = std::fs::read(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run NETPROBE_BLESS=1 cargo test -p netprobe-packaging)", path.display()));
    assert!(
        on_disk == generated,
        "{} is stale: run NETPROBE_BLESS=1 cargo test -p netprobe-packaging and commit the result",
        path.display()
    );
}

fn files_under(dir: &Path) -> BTreeSet<PathBuf> {
    let mut found = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.insert(path);
        }
    }
    found
}

#[test]
fn man_pages_completions_and_cli_reference_are_current() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("NETPROBE_BLESS").is_some();
    let mut expected = BTreeSet::new();
    for cmd in commands() {
        for (rel, contents) in generated_files(&cmd) {
            let path = root.join(rel);
            check(&path, &contents, bless);
            expected.insert(path);
        }
    }
    // No leftovers from a removed or renamed binary.
    let mut on_disk = files_under(&root.join("man"));
    on_disk.extend(files_under(&root.join("completions")));
    assert_eq!(on_disk, expected, "files under packaging/man and packaging/completions that nothing generates");
    check(&root.join("../docs/cli.md"), cli_reference(&commands()).as_bytes(), bless);
}

#[test]
fn man_page_documents_every_flag_of_the_agent() {
    // Independent oracle: the flags an operator types, spelled out here.
    let (_, man) = generated_files(&netprobe_agent::cli::command()).remove(0);
    let man = String::from_utf8(man).expect("utf-8");
    assert!(man.contains(".TH netprobe-agent 1"), "man section header: {man}");
    for flag in ["config", "health\\-check", "only", "help", "version"] {
        assert!(man.contains(&format!("\\-\\-{flag}")), "--{flag} missing from the man page:\n{man}");
    }
}
