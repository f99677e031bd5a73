//! The manual pages the Debian packages install (`packaging/man/markoff/` and
//! `packaging/man/markoff-central/`, one page per command and subcommand) are generated from the
//! two CLIs' own definitions; this test keeps the committed pages in step with them.
//! `MARKOFF_BLESS_MAN=1 cargo test -p markoff-tests --test man_page` writes them anew.

use std::collections::BTreeMap;
use std::path::Path;

use clap::CommandFactory;

/// Every page of `cmd` and its subcommands, by file name.
fn pages(cmd: clap::Command) -> BTreeMap<String, String> {
    let dir = tempfile::tempdir().expect("temporary directory");
    clap_mangen::generate_to(cmd, dir.path()).expect("render the manual pages");
    read_pages(dir.path())
}

fn read_pages(dir: &Path) -> BTreeMap<String, String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return BTreeMap::new();
    };
    entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "1"))
        .map(|p| {
            let name = p
                .file_name()
                .expect("a file name")
                .to_string_lossy()
                .into_owned();
            (name, std::fs::read_to_string(&p).expect("read a page"))
        })
        .collect()
}

fn check(package: &str, cmd: clap::Command, must_have: &[&str]) {
    let generated = pages(cmd);
    for name in must_have {
        assert!(
            generated.contains_key(*name),
            "no page {name}: {:?}",
            generated.keys()
        );
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../packaging/man")
        .join(package);
    if std::env::var_os("MARKOFF_BLESS_MAN").is_some() {
        for old in read_pages(&dir).keys() {
            std::fs::remove_file(dir.join(old)).expect("remove an old page");
        }
        for (name, text) in &generated {
            std::fs::write(dir.join(name), text).expect("write a page");
        }
    }
    let committed = read_pages(&dir);
    assert!(
        committed == generated,
        "packaging/man/{package}/ is out of date with the CLI (pages {:?} against {:?}): run \
         MARKOFF_BLESS_MAN=1 cargo test -p markoff-tests --test man_page",
        committed.keys(),
        generated.keys()
    );
}

#[test]
fn packaged_man_pages_match_the_cli() {
    check(
        "markoff",
        markoff::cli::Cli::command(),
        &[
            "markoff.1",
            "markoff-run.1",
            "markoff-validate.1",
            "markoff-modbus-read.1",
        ],
    );
    check(
        "markoff-central",
        markoff_cloud_sync::cli::Cli::command(),
        &[
            "markoff-central.1",
            "markoff-central-serve.1",
            "markoff-central-add-gateway.1",
        ],
    );
}
