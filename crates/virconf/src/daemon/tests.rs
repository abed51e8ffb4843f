use super::*;

const NAME: &str = "/tmp/x.conf";

fn load(text: &str) -> Result<DaemonConfig, ConfError> {
    DaemonConfig::load_str(text, NAME, true)
}

fn err(text: &str) -> String {
    load(text).unwrap_err().to_string()
}

#[test]
fn privileged_defaults_use_polkit_and_open_rw_socket() {
    let d = DaemonConfig::defaults(true);
    assert_eq!(d.auth_unix_rw, Auth::Polkit);
    assert_eq!(d.auth_unix_ro, Auth::Polkit);
    assert_eq!(d.unix_sock_rw_perms, "0777");
    assert_eq!(d.unix_sock_ro_perms, "0777");
    assert_eq!(d.unix_sock_admin_perms, "0700");
    assert_eq!(
        (
            d.min_workers,
            d.max_workers,
            d.prio_workers,
            d.max_client_requests
        ),
        (5, 20, 5, 5)
    );
    assert_eq!(
        (d.max_clients, d.max_queued_clients, d.max_anonymous_clients),
        (5000, 1000, 20)
    );
    assert_eq!(
        (
            d.admin_min_workers,
            d.admin_max_workers,
            d.admin_max_clients,
            d.admin_max_queued_clients,
            d.admin_max_client_requests
        ),
        (5, 20, 5000, 20, 5)
    );
    assert_eq!((d.keepalive_interval, d.keepalive_count), (5, 5));
    assert_eq!(
        (d.admin_keepalive_interval, d.admin_keepalive_count),
        (5, 5)
    );
    assert_eq!((d.audit_level, d.audit_logging, d.log_level), (1, false, 0));
    assert_eq!(d.ovs_timeout, 5);
    assert_eq!(d.unix_sock_dir, None);
    assert_eq!(d.access_drivers, None);
}

#[test]
fn unprivileged_defaults_use_no_auth_and_private_rw_socket() {
    let d = DaemonConfig::defaults(false);
    assert_eq!(d.auth_unix_rw, Auth::None);
    assert_eq!(d.auth_unix_ro, Auth::None);
    assert_eq!(d.unix_sock_rw_perms, "0700");
}

#[test]
fn shipped_conf_parses_to_the_defaults() {
    for privileged in [true, false] {
        let d =
            DaemonConfig::load_str(crate::SHIPPED_CONF, "virtnodedevd.conf", privileged).unwrap();
        assert_eq!(d, DaemonConfig::defaults(privileged));
    }
}

#[test]
fn shipped_conf_mentions_every_read_key_in_libvirt_order() {
    let keys: Vec<&str> = crate::SHIPPED_CONF
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| k))
        .filter(|k| k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        .collect();
    for k in READ_KEYS {
        assert!(keys.contains(k), "{k} missing from the shipped conf");
    }
    for k in IGNORED_IP_KEYS {
        assert!(!keys.contains(k), "{k} is not for virtnodedevd");
    }
    // Uncommenting each line with its shown value gives the defaults too.
    let uncommented: String = crate::SHIPPED_CONF
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter(|l| {
            l.split_once(" = ")
                .is_some_and(|(k, _)| keys.contains(&k) && !k.starts_with("host_uuid"))
        })
        .filter(|l| {
            !["unix_sock_group", "access_drivers", "sasl_allowed", "log_"]
                .iter()
                .any(|p| l.starts_with(p))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let d = DaemonConfig::load_str(&uncommented, "u", true).unwrap();
    let mut want = DaemonConfig::defaults(true);
    want.unix_sock_dir = Some("/run/libvirt".into());
    assert_eq!(d, want);
}

#[test]
fn file_values_override_defaults() {
    let d = load(concat!(
        "unix_sock_group = \"libvirt\"\n",
        "unix_sock_dir = '/tmp/s'\n",
        "auth_unix_ro = \"none\"\n",
        "access_drivers = [ \"polkit\" ]\n",
        "max_workers = 3\nmin_workers = 9\n",
        "keepalive_interval = -1\n",
        "audit_logging = 1\n",
        "log_filters = \"1:node_device\"\n",
        "host_uuid_source = \"machine-id\"\n",
    ))
    .unwrap();
    assert_eq!(d.unix_sock_group.as_deref(), Some("libvirt"));
    assert_eq!(d.unix_sock_dir.as_deref(), Some("/tmp/s"));
    assert_eq!(d.auth_unix_ro, Auth::None);
    assert_eq!(d.access_drivers, Some(vec!["polkit".to_string()]));
    // min > max is accepted; the thread pool clamps it later.
    assert_eq!((d.min_workers, d.max_workers), (9, 3));
    assert_eq!(d.keepalive_interval, -1);
    assert!(d.audit_logging);
    assert_eq!(d.log_filters.as_deref(), Some("1:node_device"));
    assert_eq!(d.host_uuid_source().unwrap(), HostUuidSource::MachineId);
}

#[test]
fn polkit_rw_auth_opens_rw_socket_unless_perms_are_set() {
    let d = DaemonConfig::load_str("auth_unix_rw = \"polkit\"", NAME, false).unwrap();
    assert_eq!(d.unix_sock_rw_perms, "0777");
    let d = DaemonConfig::load_str(
        "unix_sock_rw_perms = \"0770\"\nauth_unix_rw = \"polkit\"",
        NAME,
        false,
    )
    .unwrap();
    assert_eq!(d.unix_sock_rw_perms, "0770");
    // Turning polkit off as root does not narrow the default back.
    let d = load("auth_unix_rw = \"none\"").unwrap();
    assert_eq!(
        (d.auth_unix_rw, d.unix_sock_rw_perms.as_str()),
        (Auth::None, "0777")
    );
}

#[test]
fn unknown_and_ip_only_keys_are_ignored_whatever_their_type() {
    let d = load("bogus = [ 1 ]\nlisten_tcp = \"yes\"\ntcp_min_ssf = -1\nkeepalive_required = 1")
        .unwrap();
    assert_eq!(d, DaemonConfig::defaults(true));
}

#[test]
fn unknown_auth_is_unsupported_configuration() {
    let e = load("auth_unix_rw = \"bogus\"").unwrap_err();
    assert_eq!(
        e.to_string(),
        "unsupported configuration: /tmp/x.conf: auth_unix_rw: unsupported auth bogus"
    );
    assert_eq!((e.code(), e.domain()), (67, 9));
    assert_eq!(
        err("auth_unix_ro = 1"),
        "internal error: /tmp/x.conf: expected a string for 'auth_unix_ro' parameter"
    );
    assert_eq!(
        load("auth_unix_rw = \"sasl\"").unwrap().auth_unix_rw,
        Auth::Sasl
    );
}

#[test]
fn wrong_types_report_libvirt_messages() {
    let e = load("unix_sock_group = 5\n").unwrap_err();
    assert_eq!(
        e.to_string(),
        "internal error: /tmp/x.conf: expected a string for 'unix_sock_group' parameter"
    );
    assert_eq!((e.code(), e.domain()), (1, 9));
    assert_eq!(
        err("max_workers = -1"),
        "internal error: /tmp/x.conf: expected an unsigned integer for 'max_workers' parameter"
    );
    assert_eq!(
        err("max_workers = 4294967296"),
        "internal error: /tmp/x.conf: value for 'max_workers' parameter must be in range 0:4294967295"
    );
    assert_eq!(
        err("keepalive_interval = 2147483648"),
        "internal error: /tmp/x.conf: value for 'keepalive_interval' parameter must be in range -2147483648:2147483647"
    );
    assert_eq!(
        err("audit_logging = 2"),
        "internal error: /tmp/x.conf: value for 'audit_logging' parameter must be 0 or 1"
    );
    assert_eq!(
        err("access_drivers = [ 1 ]"),
        "configuration file syntax error: /tmp/x.conf: expected a string list for 'access_drivers' parameter"
    );
    assert_eq!(
        err("access_drivers = \"x\""),
        "internal error: /tmp/x.conf: expected a string list for 'access_drivers' parameter"
    );
}

#[test]
fn zero_max_workers_is_rejected_after_reading_it() {
    let e = load("max_workers = 0").unwrap_err();
    assert_eq!(
        e.to_string(),
        "internal error: 'max_workers' must be greater than 0"
    );
    // The first of duplicate keys wins.
    assert!(load("max_workers = 0\nmax_workers = 3").is_err());
    assert!(load("max_workers = 3\nmax_workers = 0").is_ok());
    // Read order decides which error shows: auth comes first.
    assert!(err("max_workers = 0\nauth_unix_rw = 'x'").contains("unsupported auth x"));
}

#[test]
fn syntax_error_names_the_file_and_line() {
    assert_eq!(
        err("unix_sock_dir = \"/tmp/s\"\nfoo bar\n"),
        "configuration file syntax error: /tmp/x.conf:2: expecting an assignment"
    );
}

#[test]
fn load_file_uses_the_path_in_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("virtnodedevd.conf");
    std::fs::write(&path, "unix_sock_group = 5\n").unwrap();
    let e = DaemonConfig::load_file(&path, true).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "internal error: {}: expected a string for 'unix_sock_group' parameter",
            path.display()
        )
    );
    let e = DaemonConfig::load(Some(&dir.path().join("missing.conf")), true).unwrap_err();
    assert!(e
        .to_string()
        .ends_with("missing.conf': No such file or directory"));
}

#[test]
fn modes_parse_like_strtol_base_8() {
    assert_eq!(parse_mode("0777").unwrap(), 0o777);
    assert_eq!(parse_mode("700").unwrap(), 0o700);
    assert_eq!(parse_mode(" +0770").unwrap(), 0o770);
    assert_eq!(parse_mode("-1").unwrap(), -1);
    assert_eq!(parse_mode("17777777777").unwrap(), i32::MAX);
    for bad in [
        "08",
        "",
        " ",
        "0777 ",
        "0x1ff",
        "rw",
        "-",
        "20000000000",
        "77777777777777777777777",
    ] {
        assert_eq!(
            parse_mode(bad).unwrap_err().to_string(),
            format!("Failed to parse mode '{bad}'"),
            "input {bad:?}"
        );
    }
    let e = parse_mode("08").unwrap_err();
    assert_eq!((e.code(), e.domain()), (0, 0));
}

#[test]
fn socket_modes_check_ro_then_admin_then_rw() {
    let d = load("unix_sock_rw_perms = \"9\"\nunix_sock_admin_perms = \"8\"").unwrap();
    assert_eq!(
        d.socket_modes().unwrap_err().to_string(),
        "Failed to parse mode '8'"
    );
    let m = DaemonConfig::defaults(false).socket_modes().unwrap();
    assert_eq!(
        m,
        SocketModes {
            ro: 0o777,
            admin: 0o700,
            rw: 0o700
        }
    );
}

#[test]
fn unknown_host_uuid_source_is_reported_as_libvirt_logs_it() {
    let d = load("host_uuid_source = \"dmi\"").unwrap();
    assert_eq!(
        d.host_uuid_source().unwrap_err().to_string(),
        "invalid UUID source: dmi"
    );
    assert_eq!(
        DaemonConfig::defaults(true).host_uuid_source().unwrap(),
        HostUuidSource::Smbios
    );
}

#[test]
fn host_uuid_is_parsed_and_checked_like_vir_uuid_parse() {
    let want = [
        0x4b, 0x20, 0xd0, 0x80, 0x1b, 0x54, 0x40, 0x48, 0x85, 0xb3, 0xa6, 0xa6, 0x2d, 0x16, 0x5c,
        0x01,
    ];
    for ok in [
        "4b20d080-1b54-4048-85b3-a6a62d165c01",
        "4B20D0801B54404885B3A6A62D165C01",
        " \t4b20d080 1b54-4048-85b3-a6a62d165c01\n",
        "4b-20-d0-80-1b54404885b3a6a62d165c01",
        "--4b20d0801b54404885b3a6a62d165c01",
    ] {
        assert_eq!(parse_uuid(ok), Some(want), "{ok:?}");
    }
    for bad in [
        "not-a-uuid",
        "",
        "4b20d080-1b54-4048-85b3-a6a62d165c0",
        "4b20d080-1b54-4048-85b3-a6a62d165c011",
        "4b20d080-1b54-4048-85b3-a6a62d165c01x",
        "4-b20d080-1b54-4048-85b3-a6a62d165c01",
        "\x0b4b20d080-1b54-4048-85b3-a6a62d165c01",
        "00000000-0000-0000-0000-000000000000",
        "ffffffff-ffff-ffff-ffff-ffffffffffff",
    ] {
        assert_eq!(parse_uuid(bad), None, "{bad:?}");
    }
}

#[test]
fn host_uuid_setup_reports_libvirts_messages() {
    let dir = tempfile::tempdir().unwrap();
    let mid = dir.path().join("machine-id");
    let e = |text: &str| {
        load(text)
            .unwrap()
            .setup_host_uuid(&mid)
            .unwrap_err()
            .to_string()
    };
    assert_eq!(
        e("host_uuid = \"not-a-uuid\""),
        "invalid host UUID: not-a-uuid"
    );
    assert_eq!(
        e("host_uuid_source = \"bogus\""),
        "invalid UUID source: bogus"
    );
    assert_eq!(
        e("host_uuid_source = \"machine-id\""),
        format!("Can't read {}", mid.display())
    );
    std::fs::write(&mid, "0123456789abcdef0123456789abcdef\n").unwrap();
    let u = load("host_uuid_source = \"machine-id\"")
        .unwrap()
        .setup_host_uuid(&mid)
        .unwrap()
        .unwrap();
    assert_eq!(u[0..2], [0x01, 0x23]);
    // host_uuid wins, even over a bad source.
    assert!(load(
        "host_uuid = \"4b20d080-1b54-4048-85b3-a6a62d165c01\"\nhost_uuid_source = \"bogus\""
    )
    .unwrap()
    .setup_host_uuid(&mid)
    .unwrap()
    .is_some());
    std::fs::write(&mid, "0000000000000000000000000000000000000000").unwrap();
    assert_eq!(
        e("host_uuid_source = \"machine-id\""),
        "invalid host UUID: 000000000000000000000000000000000000"
    );
    assert_eq!(
        DaemonConfig::defaults(true).setup_host_uuid(&mid).unwrap(),
        None
    );
}

#[test]
fn unknown_access_driver_is_refused() {
    assert_eq!(
        DaemonConfig::defaults(true).access_manager().unwrap(),
        [AccessDriver::None]
    );
    assert_eq!(
        load("access_drivers = []")
            .unwrap()
            .access_manager()
            .unwrap(),
        [AccessDriver::None]
    );
    assert_eq!(
        load("access_drivers = [ \"polkit\", \"none\" ]")
            .unwrap()
            .access_manager()
            .unwrap(),
        [AccessDriver::Polkit, AccessDriver::None]
    );
    let e = load("access_drivers = [ \"polkit\", \"nop\" ]")
        .unwrap()
        .access_manager()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "internal error: Cannot find security driver 'nop'"
    );
}

#[test]
fn logging_settings_are_checked_level_first() {
    let d = load("log_level = 5\nlog_outputs = \"9:stderr\"").unwrap();
    assert_eq!(
        d.logging().unwrap_err().to_string(),
        "invalid argument: Failed to set logging priority, argument '5' is invalid"
    );
    let d = load("log_filters = \"1:node_device\"\nlog_outputs = \"1:stderr\"").unwrap();
    let l = d.logging().unwrap();
    assert_eq!((l.level, l.filters.len(), l.outputs.len()), (None, 1, 1));
    assert!(DaemonConfig::defaults(true)
        .logging()
        .unwrap()
        .outputs
        .is_empty());
}

#[test]
fn default_path_is_etc_for_root() {
    assert_eq!(
        DaemonConfig::default_path(true),
        PathBuf::from("/etc/libvirt/virtnodedevd.conf")
    );
    assert!(DaemonConfig::default_path(false).ends_with("libvirt/virtnodedevd.conf"));
}

#[test]
fn pci_keys_are_read_and_checked() {
    let d = DaemonConfig::load_str(
        "pci_protect = [ \"root\", \"0000:03:00.0\" ]\npci_allow = [ \"0000:00:1f.6\" ]\npci_persist = 1\n",
        "t",
        true,
    )
    .unwrap();
    assert_eq!(d.pci_protect, ["root", "0000:03:00.0"]);
    assert_eq!(d.pci_allow, ["0000:00:1f.6"]);
    assert!(d.pci_persist);
    assert!(DaemonConfig::load_str("pci_protect = []\n", "t", true)
        .unwrap()
        .pci_protect
        .is_empty());
    for (text, want) in [
        (
            "pci_protect = [ \"rootfs\" ]\n",
            "pci_protect: 'rootfs' is neither one of root, mounts, default-route, console nor a PCI address like 0000:03:00.0",
        ),
        (
            "pci_allow = [ \"0000:3:00.0\" ]\n",
            "pci_allow: '0000:3:00.0' is not a PCI address like 0000:03:00.0",
        ),
    ] {
        let e = DaemonConfig::load_str(text, "t", true).unwrap_err();
        assert!(e.to_string().contains(want), "{e}");
    }
}
