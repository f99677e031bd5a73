//! Unix accounts for tests that call the gateway as different people: a group and members made
//! with `groupadd`/`useradd` under unique names, removed when dropped, and the `markoff` CLI run
//! as one of them through `setpriv`.
//!
//! Making accounts needs root. Under `CI=true` (where the tests run as root) a test that needs
//! them fails loudly when not root; on a developer machine a loud warning is printed and the
//! caller returns early.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::binary::markoff_bin;

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Whether this process is root. See the module docs for what happens when not.
///
/// # Panics
/// Under `CI=true`, when not root.
pub fn require_root(what: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    assert!(
        !in_ci(),
        "{what} needs root (test accounts are made with useradd); CI runs the tests as root"
    );
    eprintln!("\n*** SKIPPED: {what} needs root (test accounts are made with useradd) ***\n");
    false
}

fn run(cmd: &str, args: &[&str]) {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd}: {e}"));
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One test account.
#[derive(Clone, Debug)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// Uid.
    pub uid: u32,
    /// Primary gid.
    pub gid: u32,
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id")
        .args([flag, name])
        .output()
        .unwrap_or_else(|e| panic!("cannot run id: {e}"));
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|e| panic!("id {flag} {name}: {e}"))
}

impl Account {
    fn lookup(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            uid: id_of(name, "-u"),
            gid: id_of(name, "-g"),
        }
    }

    /// An existing account (e.g. `nobody`).
    pub fn existing(name: &str) -> Self {
        Self::lookup(name)
    }

    /// Runs `markoff <args>` as this account (with its groups), waiting for it to end.
    pub fn markoff(&self, args: &[&str]) -> Output {
        let bin = reachable_bin();
        Command::new("setpriv")
            .arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--init-groups")
            .arg("--")
            .arg(&bin)
            .args(args)
            .env_remove("MARKOFF_CONFIG")
            .env_remove("MARKOFF_API")
            .env_remove("MARKOFF_SOCKET")
            .env_remove("MARKOFF_TOKEN_FILE")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {} through setpriv: {e}", bin.display()))
    }
}

/// The markoff binary at a path every account may execute (a copy when a directory on the way
/// is closed to others).
fn reachable_bin() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = markoff_bin();
    let open = bin.ancestors().skip(1).all(|dir| {
        dir.as_os_str().is_empty()
            || std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o001 != 0)
    });
    if open {
        return bin;
    }
    let copy = std::env::temp_dir().join(format!("markoff-accounts-{}", std::process::id()));
    if !copy.exists() {
        std::fs::copy(&bin, &copy).expect("copy the markoff binary where others may run it");
        std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755))
            .expect("make the copy executable");
    }
    copy
}

/// A group and its member accounts, removed on drop.
#[derive(Debug)]
pub struct TestGroup {
    /// The group's name.
    pub group: String,
    /// Its gid.
    pub gid: u32,
    made: Vec<String>,
}

impl TestGroup {
    /// A new group with a unique name starting with `prefix` (a few letters).
    pub fn create(prefix: &str) -> Self {
        let suffix: u32 = rand_suffix();
        let group = format!("{prefix}{suffix:06x}");
        run("groupadd", &[&group]);
        let out = Command::new("getent")
            .args(["group", &group])
            .output()
            .expect("getent group");
        let gid = String::from_utf8_lossy(&out.stdout)
            .split(':')
            .nth(2)
            .and_then(|g| g.trim().parse().ok())
            .expect("the new group's gid");
        Self {
            group,
            gid,
            made: Vec::new(),
        }
    }

    /// A new account `<group>-<role>`, a member of the group when `member`.
    pub fn account(&mut self, role: &str, member: bool) -> Account {
        let name = format!("{}{role}", self.group);
        let mut args = vec!["--no-create-home", "--shell", "/usr/sbin/nologin", "-N"];
        if member {
            args.extend(["-G", self.group.as_str()]);
        }
        args.push(&name);
        run("useradd", &args);
        self.made.push(name.clone());
        Account::lookup(&name)
    }

    /// A directory only this group (and root) may enter, set-group-id so that files made in it
    /// (the API socket) belong to the group: what the packaged unit makes of /run/markoff.
    pub fn private_dir(&self, dir: &Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(dir).expect("make the socket directory");
        nix::unistd::chown(dir, None, Some(nix::unistd::Gid::from_raw(self.gid)))
            .expect("give the socket directory to the group");
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2750))
            .expect("set the socket directory's mode");
    }
}

fn rand_suffix() -> u32 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id().rotate_left(12)) & 0x00ff_ffff
}

impl Drop for TestGroup {
    fn drop(&mut self) {
        for name in &self.made {
            let _gone = Command::new("userdel").arg(name).output();
        }
        let _gone = Command::new("groupdel").arg(&self.group).output();
    }
}
