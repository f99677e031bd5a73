//! The shell completion scripts the Debian package installs (`packaging/completions/`: bash,
//! zsh, fish) are generated from the CLI's own definition (`markoff completions SHELL`); this test
//! keeps the committed scripts in step with it, and checks that the bash one completes.
//! `MARKOFF_BLESS_COMPLETIONS=1 cargo test -p markoff --test completions` writes them anew.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap_complete::Shell;

/// The packaged file of each shell, as the package installs it.
const SCRIPTS: [(Shell, &str); 3] = [
    (Shell::Bash, "markoff.bash"),
    (Shell::Zsh, "_markoff"),
    (Shell::Fish, "markoff.fish"),
];

fn packaged(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/completions")
        .join(name)
}

fn generated(shell: Shell) -> String {
    let mut out = Vec::new();
    markoff::cli::completions(shell, &mut out);
    String::from_utf8(out).expect("completion scripts are UTF-8")
}

#[test]
fn packaged_completions_match_the_cli() {
    let bless = std::env::var_os("MARKOFF_BLESS_COMPLETIONS").is_some();
    for (shell, name) in SCRIPTS {
        let script = generated(shell);
        assert!(
            script.contains("import") && script.contains("completions"),
            "{shell}: the script does not know the subcommands"
        );
        if bless {
            std::fs::write(packaged(name), &script).expect("write a completion script");
        }
        let committed = std::fs::read_to_string(packaged(name)).unwrap_or_default();
        assert!(
            committed == script,
            "packaging/completions/{name} is out of date with the CLI: run \
             MARKOFF_BLESS_COMPLETIONS=1 cargo test -p markoff --test completions"
        );
    }
}

/// Asks the bash script what it completes after `words` (the last one being typed).
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = packaged("markoff.bash");
    let line = words.join(" ");
    let program = format!(
        "source {}; COMP_WORDS=({line}); COMP_CWORD={}; COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}}; \
         _markoff markoff '{}' '{}'; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&program)
        .output()
        .expect("bash runs");
    assert!(
        out.status.success(),
        "bash failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_arguments() {
    assert_eq!(bash_complete(&["markoff", "imp"]), ["import"]);
    assert_eq!(
        bash_complete(&["markoff", "import", "th"]),
        ["thingsboard"],
        "the importer's formats"
    );
    let shells = bash_complete(&["markoff", "completions", "f"]);
    assert_eq!(shells, ["fish"]);
}
