//! Installing the daemon: `make install` and `uninstall`, the man page against `--help` and
//! the configuration keys, the Debian package installed into fresh Debian 12 and 13 roots
//! (file list, conffile, units enabled and verified by that root's systemd, the installed
//! daemon driven by that root's own virsh and virt-admin), and the RPM (file list, scripts,
//! an install into an empty root, taking over libvirt's daemon and giving it back).
//!
//! Both packages come from one `make deb rpm`, so the release binary is built once. The
//! Debian roots are made with mmdebstrap from Debian's registry the first time and kept as
//! tarballs in [`ROOT_CACHE`]; each test unpacks a fresh copy.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::{available, have, BIN};

/// Where the Debian roots are kept between runs (about 250 MB each).
const ROOT_CACHE: &str = "/var/cache/virtnodedevd-tests";

/// The files the packages install, directories left out; `{unitdir}` differs.
const INSTALLED: [&str; 7] = [
    "/etc/libvirt/virtnodedevd.conf",
    "{unitdir}/virtnodedevd-admin.socket",
    "{unitdir}/virtnodedevd-ro.socket",
    "{unitdir}/virtnodedevd.service",
    "{unitdir}/virtnodedevd.socket",
    "/usr/sbin/virtnodedevd",
    "/usr/share/man/man8/virtnodedevd.8",
];
const UNITS: [&str; 4] = [
    "virtnodedevd.service",
    "virtnodedevd.socket",
    "virtnodedevd-ro.socket",
    "virtnodedevd-admin.socket",
];

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// The cargo target directory this test was built in.
fn target_dir() -> PathBuf {
    Path::new(BIN)
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf()
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

/// Runs `cmd`, which must succeed; returns its standard output.
#[track_caller]
fn run(cmd: &mut Command) -> String {
    let o = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(o.status.success(), "{cmd:?} failed:\n{}", text(&o));
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn bash(script: &str, args: &[&Path]) -> Command {
    let mut c = Command::new("bash");
    c.arg("-ec").arg(script).arg("bash").args(args);
    c
}

fn tools(list: &[(&str, &str)]) -> bool {
    list.iter()
        .all(|(tool, package)| available(have(tool), package))
}

struct Packages {
    deb: PathBuf,
    changes: PathBuf,
    rpm: PathBuf,
}

/// `make deb rpm`, once per run, into the target directory.
fn packages() -> Option<&'static Packages> {
    static BUILT: OnceLock<Option<Packages>> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let needed = [
                ("dpkg-buildpackage", "dpkg-dev"),
                ("dh", "debhelper"),
                ("rpmbuild", "rpm"),
            ];
            if !tools(&needed) {
                return None;
            }
            let dir = target_dir().join("packaging-test");
            let _ = std::fs::remove_dir_all(&dir);
            run(Command::new("make")
                .arg("-C")
                .arg(workspace())
                .args(["deb", "rpm"])
                .arg(format!("PKGDIR={}", dir.display()))
                .env("CARGO_TARGET_DIR", target_dir()));
            let version = env!("CARGO_PKG_VERSION");
            let deb_arch = run(Command::new("dpkg").arg("--print-architecture"));
            let rpm_arch = run(Command::new("rpm").args(["--eval", "%{_arch}"]));
            let (deb_arch, rpm_arch) = (deb_arch.trim(), rpm_arch.trim());
            Some(Packages {
                deb: dir.join(format!("virtnodedevd_{version}_{deb_arch}.deb")),
                changes: dir.join(format!("stage/virtnodedevd_{version}_{deb_arch}.changes")),
                rpm: dir.join(format!("virtnodedevd-{version}-1.{rpm_arch}.rpm")),
            })
        })
        .as_ref()
}

fn expected_files(unitdir: &str) -> BTreeSet<String> {
    INSTALLED
        .iter()
        .map(|f| f.replace("{unitdir}", unitdir))
        .collect()
}

// ---------------------------------------------------------------- make install

#[test]
fn make_install_and_uninstall_keep_a_changed_config() {
    let dest = tempfile::tempdir().unwrap();
    let make = |target: &str, prefix: &str| {
        run(Command::new("make")
            .arg("-C")
            .arg(workspace())
            .arg(target)
            .arg(format!("DESTDIR={}", dest.path().display()))
            .arg(format!("PREFIX={prefix}"))
            .arg(format!("BIN={BIN}")))
    };
    make("install", "/usr/local");
    let mut want = expected_files("/usr/local/lib/systemd/system");
    want.remove("/usr/sbin/virtnodedevd");
    want.remove("/usr/share/man/man8/virtnodedevd.8");
    want.extend([
        "/usr/local/sbin/virtnodedevd".to_string(),
        "/usr/local/share/man/man8/virtnodedevd.8".to_string(),
        "/usr/local/share/doc/virtnodedevd/README.md".to_string(),
    ]);
    assert_eq!(files_under(dest.path()), want);
    let service = std::fs::read_to_string(
        dest.path()
            .join("usr/local/lib/systemd/system/virtnodedevd.service"),
    )
    .unwrap();
    assert!(
        service.contains("ExecStart=/usr/local/sbin/virtnodedevd $VIRTNODEDEVD_ARGS\n"),
        "{service}"
    );

    // An administrator's change survives a second install and the uninstall.
    let conf = dest.path().join("etc/libvirt/virtnodedevd.conf");
    let changed = std::fs::read_to_string(&conf).unwrap() + "log_level = 2\n";
    std::fs::write(&conf, &changed).unwrap();
    make("install", "/usr/local");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), changed);
    assert!(conf.with_extension("conf.dist").exists());
    make("uninstall", "/usr/local");
    assert_eq!(
        files_under(dest.path()),
        BTreeSet::from(["/etc/libvirt/virtnodedevd.conf".to_string()])
    );
    std::fs::remove_file(&conf).unwrap();
    make("install", "/usr/local");
    make("uninstall", "/usr/local");
    assert_eq!(files_under(dest.path()), BTreeSet::new());
}

/// Every file (not directory) under `root`, as an absolute path inside it.
fn files_under(root: &Path) -> BTreeSet<String> {
    let out = run(Command::new("find").arg(root).args(["-not", "-type", "d"]));
    out.lines()
        .map(|l| l.strip_prefix(root.to_str().unwrap()).unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------- man page

/// The options `--help` lists, as ("-x", "--long", takes a value).
fn help_options() -> Vec<(String, String, bool)> {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stderr);
    let options: Vec<_> = help
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            let short = w.next()?.to_string();
            if !short.starts_with('-') || w.next() != Some("|") {
                return None;
            }
            let long = w.next()?.to_string();
            let takes = w.next().is_some_and(|v| v.starts_with('<'));
            Some((short, long, takes))
        })
        .collect();
    assert!(options.len() >= 7, "{help}");
    options
}

/// The default paths `--help` prints (those of a daemon run as root, when the test is).
fn help_paths() -> Vec<String> {
    let o = Command::new(BIN).arg("--help").output().unwrap();
    let help = String::from_utf8_lossy(&o.stderr);
    let paths: Vec<String> = help
        .lines()
        .map(str::trim)
        // The paths stand alone on their lines; the usage line names the program too.
        .filter(|l| l.starts_with('/') && !l.contains(' '))
        .map(String::from)
        .collect();
    assert!(paths.len() >= 3, "{help}");
    paths
}

#[test]
fn man_page_lists_the_options_of_help_and_every_config_key() {
    let page = std::fs::read_to_string(workspace().join("man/virtnodedevd.8")).unwrap();
    let section = |name: &str| -> String {
        let start = page.find(&format!("\n.SH {name}\n")).unwrap();
        let rest = &page[start + 1..];
        let end = rest[4..].find("\n.SH ").map_or(rest.len(), |e| e + 4);
        rest[..end].to_string()
    };
    let options = section("OPTIONS");
    let documented: Vec<&str> = options
        .lines()
        .filter(|l| l.starts_with(".BR \\-"))
        .collect();
    let help = help_options();
    for (short, long, takes) in &help {
        let roff = |o: &str| o.replace('-', "\\-");
        let mut line = format!(".BR {} \", \" {}", roff(short), roff(long));
        if *takes {
            line += " \" \\fI";
        }
        assert!(
            documented.iter().any(|d| d.starts_with(&line)),
            "man page OPTIONS lacks {short}, {long} (as `{line}`)"
        );
    }
    assert_eq!(documented.len(), help.len(), "{documented:#?}");

    let config = section("CONFIGURATION");
    for key in virconf::daemon::READ_KEYS {
        assert!(config.contains(&key.replace('-', "\\-")), "{key}");
    }
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        page.contains(&format!("\"virtnodedevd {version}\"")),
        "the .TH line names another version than {version}"
    );
    let files = section("FILES");
    let mut paths: Vec<String> = [
        "/etc/libvirt/virtnodedevd.conf",
        "/run/libvirt/virtnodedevd-sock",
        "/run/libvirt/virtnodedevd-sock-ro",
        "/run/libvirt/virtnodedevd-admin-sock",
        "/run/virtnodedevd.pid",
    ]
    .map(String::from)
    .to_vec();
    if nix::unistd::geteuid().is_root() {
        paths.extend(help_paths());
    }
    for path in paths {
        assert!(
            files.contains(&format!(".I {}\n", path.replace('-', "\\-"))),
            "{path}"
        );
    }
}

#[test]
fn man_page_renders_without_warnings() {
    if !tools(&[("man", "man-db"), ("groff", "groff-base")]) {
        return;
    }
    let page = workspace().join("man/virtnodedevd.8");
    let o = Command::new("man")
        .args(["--warnings", "-l"])
        .arg(&page)
        .env("MANWIDTH", "80")
        .env("LC_ALL", "C.UTF-8")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success() && err.is_empty(), "man -l: {err}");
    let shown = String::from_utf8_lossy(&o.stdout);
    assert!(shown.contains("virtnodedevd - libvirt host device management daemon"));
    assert!(shown.contains("-t, --timeout SECONDS"), "{shown}");
}

// ---------------------------------------------------------------- Debian

/// Makes `$1` (a tarball) once: a Debian `$SUITE` root with systemd (for its
/// `systemd-analyze`), procps, libvirt's clients and `$EXTRA`, from the Debian mirror this
/// machine's apt uses. Tests running at once wait on the lock.
const MAKE_ROOT: &str = r#"
mkdir -p "$(dirname "$1")"
exec 9>"$1.lock"
flock 9
[ -e "$1" ] && exit 0
mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
[ -n "$mirror" ] || mirror=$(awk '/^deb / && $0 !~ /security/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
[ -n "$mirror" ] || { echo "no Debian mirror in this machine's apt sources" >&2; exit 1; }
rm -f "$1.tmp"
mmdebstrap --variant=apt -q --format=tar \
    --include="systemd,init-system-helpers,procps,libvirt-clients,$EXTRA" "$SUITE" "$1.tmp" \
    "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $SUITE main"
mv "$1.tmp" "$1"
"#;

/// Runs `$2` in root `$1` in private mount and pid namespaces: the host's /sys and /dev,
/// its udev database, a /proc of its own and an empty /run, so that the root's daemon
/// and clients meet at the default socket paths and the daemon dies with the script.
const IN_ROOT: &str = r#"
r=$1
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount -t tmpfs tmpfs "$r/run"
if [ -d /run/udev ]; then mkdir -p "$r/run/udev"; mount --bind /run/udev "$r/run/udev"; fi
exec chroot "$r" /bin/sh -ec "$2"
"#;

/// A fresh Debian `suite` root with `extra` installed (libvirt's node-device driver: our
/// package installs beside it).
fn debian_root(suite: &str, extra: &str) -> Option<tempfile::TempDir> {
    let needed = [
        ("mmdebstrap", "mmdebstrap"),
        ("unshare", "util-linux"),
        ("flock", "util-linux"),
    ];
    if !tools(&needed) {
        return None;
    }
    // The number changes with what MAKE_ROOT or `extra` put in, so stale roots are not used.
    let tarball = Path::new(ROOT_CACHE).join(format!("{suite}-1.tar"));
    run(bash(MAKE_ROOT, &[&tarball])
        .env("SUITE", suite)
        .env("EXTRA", extra));
    let root = tempfile::Builder::new()
        .prefix("virtnodedevd-root-")
        .tempdir_in("/var/tmp")
        .unwrap();
    run(Command::new("tar")
        .arg("-xf")
        .arg(&tarball)
        .arg("-C")
        .arg(root.path()));
    Some(root)
}

fn in_root_output(root: &Path, script: &str) -> Output {
    Command::new("unshare")
        .args(["-m", "-p", "-f", "--propagation", "private"])
        .args(["bash", "-ec", IN_ROOT, "bash"])
        .arg(root)
        .arg(script)
        .output()
        .unwrap()
}

#[track_caller]
fn in_root(root: &Path, script: &str) -> String {
    let o = in_root_output(root, script);
    assert!(
        o.status.success(),
        "in {}: {script}:\n{}",
        root.display(),
        text(&o)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Installs the .deb into a fresh root of `suite` and checks it there, ending with the
/// installed daemon answering that root's virsh (release `virsh_version`).
fn deb_in_debian(suite: &str, extra: &str, virsh_version: &str) {
    let Some(p) = packages() else { return };
    let Some(root) = debian_root(suite, extra) else {
        return;
    };
    let r = root.path();
    std::fs::copy(&p.deb, r.join("tmp/virtnodedevd.deb")).unwrap();
    in_root(r, "dpkg -i /tmp/virtnodedevd.deb");

    let listed = in_root(
        r,
        "dpkg -L virtnodedevd | while read -r f; do [ -d \"$f\" ] || echo \"$f\"; done",
    );
    let mut want = expected_files("/lib/systemd/system");
    want.remove("/usr/share/man/man8/virtnodedevd.8");
    want.extend(
        [
            "/usr/share/man/man8/virtnodedevd.8.gz",
            "/usr/share/doc/virtnodedevd/README.md.gz",
            "/usr/share/doc/virtnodedevd/changelog.gz",
            "/usr/share/doc/virtnodedevd/copyright",
        ]
        .map(String::from),
    );
    assert_eq!(
        listed.lines().map(String::from).collect::<BTreeSet<_>>(),
        want
    );
    let conffiles = in_root(r, "dpkg-query -W -f='${Conffiles}' virtnodedevd");
    assert!(
        conffiles.contains("/etc/libvirt/virtnodedevd.conf "),
        "{conffiles}"
    );
    check_units(r);
    check_conffile_survives_reinstall_and_upgrade(r);
    check_installed_daemon(r, virsh_version);
    check_remove_and_purge(r);
}

/// Enabled by the package's scripts (deb-systemd-helper), and accepted by the root's own
/// systemd.
fn check_units(r: &Path) {
    let enabled = in_root(r, &format!("systemctl is-enabled {}", UNITS.join(" ")));
    assert_eq!(enabled, "enabled\n".repeat(UNITS.len()), "{enabled}");
    for link in [
        "multi-user.target.wants/virtnodedevd.service",
        "sockets.target.wants/virtnodedevd.socket",
        "sockets.target.wants/virtnodedevd-ro.socket",
        "sockets.target.wants/virtnodedevd-admin.socket",
    ] {
        let path = r.join("etc/systemd/system").join(link);
        assert!(path.is_symlink(), "{link} missing");
    }
    let paths: Vec<String> = UNITS
        .iter()
        .map(|u| format!("/lib/systemd/system/{u}"))
        .collect();
    let o = in_root_output(
        r,
        &format!("systemd-analyze verify --man=no {}", paths.join(" ")),
    );
    let out = text(&o);
    assert!(o.status.success(), "systemd-analyze verify: {out}");
    assert!(!out.contains("virtnodedevd"), "warnings: {out}");
}

/// A changed /etc/libvirt/virtnodedevd.conf is kept, silently, when the package is
/// installed again and when it is upgraded (to a copy of itself with a higher version);
/// a unit the administrator disabled stays disabled across the upgrade.
fn check_conffile_survives_reinstall_and_upgrade(r: &Path) {
    let conf = r.join("etc/libvirt/virtnodedevd.conf");
    let changed = std::fs::read_to_string(&conf).unwrap() + "log_level = 3\n";
    std::fs::write(&conf, &changed).unwrap();
    in_root(r, "dpkg -i /tmp/virtnodedevd.deb");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), changed);

    in_root(
        r,
        "systemctl disable virtnodedevd-ro.socket
         dpkg-deb -R /tmp/virtnodedevd.deb /tmp/upgrade
         sed -i 's/^Version: .*/&+upgrade1/' /tmp/upgrade/DEBIAN/control
         dpkg-deb -b /tmp/upgrade /tmp/virtnodedevd-upgrade.deb >/dev/null
         dpkg -i /tmp/virtnodedevd-upgrade.deb",
    );
    let version = in_root(r, "dpkg-query -W -f='${Version}' virtnodedevd");
    assert!(version.ends_with("+upgrade1"), "{version}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), changed);
    let left = in_root(r, "ls /etc/libvirt");
    assert!(!left.contains(".dpkg-"), "{left}");
    let o = in_root_output(r, &format!("systemctl is-enabled {}", UNITS.join(" ")));
    let states = String::from_utf8_lossy(&o.stdout);
    assert_eq!(states, "enabled\nenabled\ndisabled\nenabled\n");
    in_root(r, "systemctl enable virtnodedevd-ro.socket");
}

/// The installed daemon, started as an administrator would (`-d`, default config and
/// paths), answers the root's virsh and virt-admin on the default sockets.
fn check_installed_daemon(r: &Path, virsh_version: &str) {
    let out = in_root(
        r,
        "/usr/sbin/virtnodedevd -d
         stat -c '%a %n' /run/libvirt/virtnodedevd-sock /run/libvirt/virtnodedevd-sock-ro \
             /run/libvirt/virtnodedevd-admin-sock
         echo ==
         virsh --version
         echo ==
         virsh -c nodedev:///system nodedev-list
         echo ==
         virsh -r -c nodedev:///system nodedev-dumpxml computer
         echo ==
         virt-admin -c virtnodedevd:///system version
         kill \"$(cat /run/virtnodedevd.pid)\"",
    );
    let parts: Vec<&str> = out.split("==\n").collect();
    assert_eq!(parts.len(), 5, "{out}");
    assert_eq!(
        parts[0],
        "777 /run/libvirt/virtnodedevd-sock\n777 /run/libvirt/virtnodedevd-sock-ro\n\
         700 /run/libvirt/virtnodedevd-admin-sock\n"
    );
    assert_eq!(parts[1].trim(), virsh_version);
    assert!(parts[2].lines().any(|l| l == "computer"), "{out}");
    assert!(parts[3].contains("<name>computer</name>"), "{out}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        parts[4].contains(&format!("Running against daemon: {version}")),
        "{out}"
    );
}

/// Removing keeps the conffile (as Debian's packages do); purging removes it and the
/// units' links.
fn check_remove_and_purge(r: &Path) {
    in_root(r, "dpkg -r virtnodedevd");
    assert!(r.join("etc/libvirt/virtnodedevd.conf").exists());
    assert!(!r.join("usr/sbin/virtnodedevd").exists());
    in_root(r, "dpkg -P virtnodedevd");
    let left = in_root(
        r,
        "find /etc /usr /lib/systemd -name 'virtnodedevd*' 2>/dev/null || true",
    );
    assert_eq!(left, "", "left after purge");
}

/// Debian 13's virt-admin is in libvirt-daemon-common.
const DEBIAN_13_EXTRA: &str = "libvirt-daemon-driver-nodedev,libvirt-daemon-common";

#[test]
fn deb_installs_into_debian_12() {
    deb_in_debian("bookworm", "libvirt-daemon", "9.0.0");
}

#[test]
fn deb_installs_into_debian_13() {
    deb_in_debian("trixie", DEBIAN_13_EXTRA, "11.3.0");
}

#[test]
fn deb_passes_lintian() {
    let Some(p) = packages() else { return };
    if !tools(&[("lintian", "lintian")]) {
        return;
    }
    let o = Command::new("lintian")
        .args(["--fail-on", "error", "--no-tag-display-limit"])
        .arg(&p.changes)
        .output()
        .unwrap();
    let out = text(&o);
    assert!(o.status.success(), "lintian: {out}");
    assert!(!out.lines().any(|l| l.starts_with("E: ")), "{out}");
}

// ---------------------------------------------------------------- RPM

/// Regular files of an RPM, without the build-id links and the license (whose directory
/// depends on the build host's rpm).
fn rpm_files(query: &mut Command) -> BTreeSet<String> {
    run(query.args(["--qf", "[%{FILEMODES:perms} %{FILENAMES}\\n]"]))
        .lines()
        .filter_map(|l| l.strip_prefix("-")?.split_once(' ').map(|(_, f)| f))
        .filter(|f| !f.starts_with("/usr/share/licenses/"))
        .map(String::from)
        .collect()
}

#[test]
fn rpm_file_list_scripts_and_install_into_an_empty_root() {
    let Some(p) = packages() else { return };
    let mut want = expected_files("/usr/lib/systemd/system");
    want.insert("/usr/share/doc/virtnodedevd/README.md".into());
    let listed = rpm_files(Command::new("rpm").arg("-qp").arg(&p.rpm));
    let man = "/usr/share/man/man8/virtnodedevd.8";
    // Fedora's rpmbuild compresses man pages, Debian's does not.
    let listed: BTreeSet<String> = listed
        .into_iter()
        .map(|f| f.strip_suffix(".gz").unwrap_or(&f).to_string())
        .collect();
    assert_eq!(listed, want);
    let l = run(Command::new("rpm").arg("-qlp").arg(&p.rpm));
    assert!(l.lines().any(|f| f.starts_with(man)), "{l}");
    let flags = run(Command::new("rpm")
        .arg("-qp")
        .args(["--qf", "[%{FILEFLAGS:fflags} %{FILENAMES}\\n]"])
        .arg(&p.rpm));
    assert!(
        flags.contains("cn /etc/libvirt/virtnodedevd.conf\n"),
        "the config is not %config(noreplace): {flags}"
    );

    let scripts = run(Command::new("rpm").arg("-qp").arg("--scripts").arg(&p.rpm));
    for needle in [
        "preinstall scriptlet",
        "posttrans scriptlet",
        "preuninstall scriptlet",
        "systemctl --no-reload preset $unit",
        "systemctl try-restart virtnodedevd.service",
        "rpm -q --quiet libvirt-daemon-driver-nodedev",
        "disable --now virtnodedevd.service virtnodedevd.socket virtnodedevd-ro.socket virtnodedevd-admin.socket",
    ] {
        assert!(scripts.contains(needle), "{needle}: {scripts}");
    }
    for tag in ["PREIN", "POSTTRANS", "PREUN", "POSTUN"] {
        let body = run(Command::new("rpm")
            .arg("-qp")
            .args(["--qf", &format!("%{{{tag}}}")])
            .arg(&p.rpm));
        run(Command::new("sh").args(["-n", "-c", &body]));
    }

    // An empty root has no shell to run the scriptlets with.
    let root = tempfile::tempdir().unwrap();
    let rpm = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--root").arg(root.path()).args(args);
        c
    };
    run(rpm(&["-i", "--nodeps", "--noscripts"]).arg(&p.rpm));
    let installed = rpm_files(&mut rpm(&["-q", "virtnodedevd"]));
    let installed: BTreeSet<String> = installed
        .into_iter()
        .map(|f| f.strip_suffix(".gz").unwrap_or(&f).to_string())
        .collect();
    assert_eq!(installed, want);
    for f in &want {
        let on_disk = root.path().join(&f[1..]);
        let on_disk = if on_disk.exists() {
            on_disk
        } else {
            on_disk.with_extension("8.gz")
        };
        assert!(on_disk.is_file(), "{f} not installed");
    }
    run(&mut rpm(&["-V", "--nodeps", "virtnodedevd"]));
}

/// A stand-in for Fedora's libvirt-daemon-driver-nodedev with the files ours takes over.
const STAND_IN_SPEC: &str = r##"
Name: libvirt-daemon-driver-nodedev
Version: 11.3.0
Release: 0
Summary: Stand-in for libvirt's node device driver package
License: LGPL-2.1-or-later
%global debug_package %{nil}
%description
Stand-in.
%install
mkdir -p %{buildroot}/usr/sbin %{buildroot}/usr/lib/systemd/system %{buildroot}/etc/libvirt
printf '#!/bin/sh\necho libvirt\n' >%{buildroot}/usr/sbin/virtnodedevd
chmod 0755 %{buildroot}/usr/sbin/virtnodedevd
for u in virtnodedevd.service virtnodedevd.socket virtnodedevd-ro.socket virtnodedevd-admin.socket; do
    echo "# libvirt's $u" >%{buildroot}/usr/lib/systemd/system/$u
done
echo '# libvirt' >%{buildroot}/etc/libvirt/virtnodedevd.conf
%files
/usr/sbin/virtnodedevd
/usr/lib/systemd/system/virtnodedevd*
%config(noreplace) /etc/libvirt/virtnodedevd.conf
"##;

/// The replacement and restore commands the spec file documents, with `rpm --reinstall`
/// standing in for `dnf reinstall`.
#[test]
fn rpm_replaces_libvirts_daemon_and_gives_it_back() {
    let Some(p) = packages() else { return };
    let work = tempfile::tempdir().unwrap();
    let spec = work.path().join("stand-in.spec");
    std::fs::write(&spec, STAND_IN_SPEC).unwrap();
    run(Command::new("rpmbuild")
        .args(["-bb", "--quiet"])
        .arg("--define")
        .arg(format!(
            "_topdir {}",
            work.path().join("rpmbuild").display()
        ))
        .arg(&spec));
    let arch = run(Command::new("rpm").args(["--eval", "%{_arch}"]));
    let stand_in = work.path().join(format!(
        "rpmbuild/RPMS/{0}/libvirt-daemon-driver-nodedev-11.3.0-0.{0}.rpm",
        arch.trim()
    ));
    let root = work.path().join("root");
    // The changes run without scripts (the root has no shell) and dependencies.
    let rpm = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--root").arg(&root).args(args);
        if matches!(args[0], "-i" | "-U" | "-e") {
            c.args(["--nodeps", "--noscripts"]);
        }
        c
    };
    let daemon = root.join("usr/sbin/virtnodedevd");
    run(rpm(&["-i"]).arg(&stand_in));
    let conf = root.join("etc/libvirt/virtnodedevd.conf");
    let changed = "# libvirt\nlog_level = 1\n";
    std::fs::write(&conf, changed).unwrap();
    let o = rpm(&["-U"]).arg(&p.rpm).output().unwrap();
    assert!(
        !o.status.success(),
        "installed over libvirt's files without --replacefiles"
    );
    assert!(
        text(&o).contains("conflicts with file from package libvirt-daemon-driver-nodedev"),
        "{}",
        text(&o)
    );
    run(rpm(&["-U", "--replacefiles"]).arg(&p.rpm));
    assert!(std::fs::read(&daemon).unwrap().starts_with(b"\x7fELF"));
    let unit = std::fs::read_to_string(root.join("usr/lib/systemd/system/virtnodedevd.service"));
    assert!(unit.unwrap().contains("ExecStart=/usr/sbin/virtnodedevd"));
    // The administrator's config stays; ours is put beside it.
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), changed);
    assert!(conf.with_extension("conf.rpmnew").exists());
    // libvirt's package stays installed: the packages requiring it are left alone.
    run(&mut rpm(&["-q", "libvirt-daemon-driver-nodedev"]));

    run(&mut rpm(&["-e", "virtnodedevd"]));
    run(rpm(&["-i", "--reinstall"]).arg(&stand_in));
    assert_eq!(
        std::fs::read_to_string(&daemon).unwrap(),
        "#!/bin/sh\necho libvirt\n"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), changed);
}

/// The scriptlets, run for real in a Debian 13 root (a shell and systemctl, no systemd
/// running): installing applies the presets to the new units (Debian's enable them),
/// erasing disables them.
#[test]
fn rpm_scripts_enable_and_disable_the_units() {
    let Some(p) = packages() else { return };
    let Some(root) = debian_root("trixie", DEBIAN_13_EXTRA) else {
        return;
    };
    let r = root.path();
    let wants = |unit: &str| {
        let target = if unit.ends_with(".service") {
            "multi-user.target.wants"
        } else {
            "sockets.target.wants"
        };
        r.join("etc/systemd/system").join(target).join(unit)
    };
    let rpm = |args: &[&str]| {
        let mut c = Command::new("rpm");
        c.arg("--root").arg(r).arg("--nodeps").args(args);
        c
    };
    run(rpm(&["-i"]).arg(&p.rpm));
    for unit in UNITS {
        assert!(wants(unit).is_symlink(), "{unit} not enabled");
    }
    assert!(!r.join("var/lib/rpm-state/virtnodedevd").exists());
    run(&mut rpm(&["-e", "virtnodedevd"]));
    for unit in UNITS {
        assert!(!wants(unit).is_symlink(), "{unit} still enabled");
    }
    assert!(!r.join("usr/sbin/virtnodedevd").exists());
}
