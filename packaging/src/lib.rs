//! Files generated from the binaries' clap commands and shipped in the
//! Debian packages: a man page (clap_mangen), bash/zsh/fish completions
//! (clap_complete) per binary, and the CLI reference page of the docs.
//!
//! `tests/generated.rs` keeps the committed copies under `packaging/`
//! and `docs/cli.md` equal to what the commands generate
//! (`NETPROBE_BLESS=1 cargo test -p netprobe-packaging` rewrites them).
#![deny(missing_docs)]

use std::path::PathBuf;

use clap_complete::Shell;

/// The files generated for `cmd`, as (path relative to `packaging/`,
/// contents): `man/NAME.1`, `completions/NAME.bash`, `completions/_NAME`
/// (zsh) and `completions/NAME.fish`. NAME is the command's name
/// (the binary's, e.g. `netprobe-agent`).
pub fn generated_files(cmd: &clap::Command) -> Vec<(PathBuf, Vec<u8>)> {
    let name = cmd.get_name().to_owned();
    let mut files = Vec::new();
    let mut man = Vec::new();
    clap_mangen::Man::new(cmd.clone()).render(&mut man).expect("rendering to a Vec cannot fail");
    files.push((PathBuf::from(format!("man/{name}.1")), man));
    for (shell, file) in
        [(Shell::Bash, format!("{name}.bash")), (Shell::Zsh, format!("_{name}")), (Shell::Fish, format!("{name}.fish"))]
    {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut cmd.clone(), &name, &mut out);
        files.push((PathBuf::from(format!("completions/{file}")), out));
    }
    files
}

/// The CLI reference page (Markdown): for each command its long `--help`
/// text, in the order given, with a pointer to the man page.
pub fn cli_reference(cmds: &[clap::Command]) -> String {
    let mut page = String::from(
        "# CLI reference\n\n\
         Generated from each binary's command line (`packaging/tests/generated.rs`;\n\
         `NETPROBE_BLESS=1 cargo test -p netprobe-packaging` rewrites it). The same\n\
         text is in the man pages the packages install (`man netprobe-agent`), and\n\
         the packages install bash, zsh and fish completions.\n",
    );
    for cmd in cmds {
        let mut cmd = cmd.clone();
        let name = cmd.get_name().to_owned();
        let help = cmd.render_long_help().to_string();
        page.push_str(&format!("\n## {name}\n\n```text\n{}\n```\n", help.trim_end()));
    }
    page
}
