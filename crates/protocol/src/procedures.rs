//! Every procedure of the remote program (libvirt 11.3's 453),
//! with the connection it is dispatched on and the public API it calls — the name that
//! unsupported-API errors show.

use std::sync::OnceLock;

use rpc::ErrorDomain;

/// Which of the daemon's connections a procedure needs; decides the "not open" text and
/// the error domain of NO_SUPPORT answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Open, close and authentication: no connection needed.
    Connection,
    /// The primary (hypervisor) connection.
    Hypervisor,
    NodeDevice,
    Storage,
    Network,
    Interface,
    NwFilter,
    Secret,
    /// Server-to-client event messages; not callable.
    Event,
}

/// What the public API a procedure calls does on a read-only connection. libvirt's daemon
/// calls the public API on a connection it opened read-only for a read-only client, so
/// the API's own check decides, before the driver is asked, whether or not the driver
/// implements the call: a refused API answers OPERATION_DENIED, never NO_SUPPORT.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOnly {
    /// Allowed: the API has no read-only check.
    Allowed,
    /// Always refused: "read only access prevents virXxx".
    Denied,
    /// Refused as `Denied` when the call asks for one of these bits: its flags
    /// (virDomainGetVcpusFlags with VIR_DOMAIN_VCPU_GUEST), or, for
    /// virDomainInterfaceAddresses, `1 << source` (the guest agent as source).
    DeniedWithFlags(u32),
    /// Refused with "virXxx with secure flag" when the call's flags have one of these
    /// bits (the XML dumps with VIR_DOMAIN_XML_SECURE and kin).
    SecureFlags(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    pub number: i32,
    pub name: &'static str,
    pub family: Family,
    /// `@priority: high` in the protocol definition.
    pub high_priority: bool,
    /// The public API called, e.g. `virConnectNumOfDomains`.
    pub api: Option<&'static str>,
    /// The public API's read-only check, from libvirt's `src/libvirt-*.c`.
    pub read_only: ReadOnly,
}

impl ProcInfo {
    /// The error domain libvirt reports NO_SUPPORT in for this procedure's API; its
    /// read-only refusal comes from the same source file, so in the same domain.
    pub fn no_support_domain(&self) -> ErrorDomain {
        let api = self.api.unwrap_or("");
        match self.family {
            Family::Storage => ErrorDomain::Storage,
            Family::Network => ErrorDomain::Network,
            Family::Interface => ErrorDomain::Interface,
            Family::NwFilter => ErrorDomain::NwFilter,
            Family::Secret => ErrorDomain::Secret,
            Family::NodeDevice => ErrorDomain::NodeDev,
            // Every API of libvirt-domain-snapshot.c (virDomainRevertToSnapshot, ...) and
            // of libvirt-domain-checkpoint.c has the word in its name, and no other has.
            _ if api.contains("Snapshot") => ErrorDomain::DomainSnapshot,
            _ if api.contains("Checkpoint") => ErrorDomain::DomainCheckpoint,
            _ if api.starts_with("virNodeDevice") => ErrorDomain::NodeDev,
            _ if api.starts_with("virStream") => ErrorDomain::Streams,
            // libvirt-domain.c and libvirt-host.c both report as VIR_FROM_DOMAIN.
            _ => ErrorDomain::Domain,
        }
    }
}

/// One line per procedure: `number NAME class[*] [api [ro]]`, from libvirt 11.3 (1-443
/// generated from 9.0, whose public APIs 11.3 keeps but for virNodeDeviceGetAutostart,
/// which no longer refuses read-only connections; 444-453 from 11.3's sources).
/// `ro` is the public API's read-only check: `ro` (always refused), `ro-flags=MASK` or
/// `ro-secure=MASK` (see [`ReadOnly`]); absent when the API allows read-only connections.
const TABLE: &str = include_str!("remote_procedures.txt");

fn table() -> &'static [Option<ProcInfo>] {
    static PROCS: OnceLock<Vec<Option<ProcInfo>>> = OnceLock::new();
    PROCS.get_or_init(|| {
        let mut v = Vec::new();
        for line in TABLE.lines() {
            let mut it = line.split_whitespace();
            let (Some(num), Some(name), Some(class)) = (it.next(), it.next(), it.next()) else {
                continue;
            };
            let number: i32 = num.parse().expect("procedure table: number");
            let family = match class.trim_end_matches('*') {
                "-" => Family::Connection,
                "H" => Family::Hypervisor,
                "D" => Family::NodeDevice,
                "S" => Family::Storage,
                "N" => Family::Network,
                "I" => Family::Interface,
                "F" => Family::NwFilter,
                "C" => Family::Secret,
                "E" => Family::Event,
                other => panic!("procedure table: class {other}"),
            };
            let idx = number as usize;
            if v.len() <= idx {
                v.resize(idx + 1, None);
            }
            let api = it.next();
            let read_only = it.next().map_or(ReadOnly::Allowed, parse_read_only);
            v[idx] = Some(ProcInfo {
                number,
                name,
                family,
                high_priority: class.ends_with('*'),
                api,
                read_only,
            });
        }
        v
    })
}

fn parse_read_only(token: &str) -> ReadOnly {
    let mask = |hex: &str| {
        u32::from_str_radix(hex.trim_start_matches("0x"), 16).expect("procedure table: ro mask")
    };
    match token.split_once('=') {
        None if token == "ro" => ReadOnly::Denied,
        Some(("ro-flags", m)) => ReadOnly::DeniedWithFlags(mask(m)),
        Some(("ro-secure", m)) => ReadOnly::SecureFlags(mask(m)),
        _ => panic!("procedure table: read-only check {token}"),
    }
}

/// The procedure with this number, if libvirt 11.3 defines one.
pub fn procedure(number: i32) -> Option<&'static ProcInfo> {
    usize::try_from(number)
        .ok()
        .and_then(|n| table().get(n))
        .and_then(Option::as_ref)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_covers_every_procedure_of_11_3() {
        for n in 1..=453 {
            assert!(procedure(n).is_some(), "procedure {n} missing");
        }
        assert!(procedure(0).is_none());
        assert!(procedure(454).is_none());
        let u = procedure(447).unwrap();
        assert_eq!(u.name, "NODE_DEVICE_UPDATE");
        assert_eq!(u.family, Family::NodeDevice);
        assert_eq!(u.api, Some("virNodeDeviceUpdate"));
        assert!(u.high_priority);
        assert_eq!(procedure(445).unwrap().family, Family::Network);
        assert_eq!(procedure(453).unwrap().family, Family::Event);
        assert!(procedure(-1).is_none());
    }

    #[test]
    fn read_only_checks_follow_the_public_apis() {
        let denied = (1..=453)
            .filter_map(procedure)
            .filter(|p| p.read_only == ReadOnly::Denied)
            .count();
        // 201 public APIs of libvirt 11.3 refuse read-only connections: 9.0's 197 less
        // virNodeDeviceGetAutostart, and virNetworkSetMetadata, virNodeDeviceUpdate,
        // virDomainGraphicsReload, virDomainSetAutostartOnce, virDomainSetThrottleGroup.
        assert_eq!(denied, 201);
        assert_eq!(procedure(433).unwrap().read_only, ReadOnly::Allowed);
        assert_eq!(procedure(10).unwrap().read_only, ReadOnly::Denied);
        assert_eq!(procedure(51).unwrap().read_only, ReadOnly::Allowed);
        assert_eq!(procedure(14).unwrap().read_only, ReadOnly::SecureFlags(0x9));
        assert_eq!(
            procedure(200).unwrap().read_only,
            ReadOnly::DeniedWithFlags(0x8)
        );
        for p in (1..=453).filter_map(procedure) {
            if p.read_only != ReadOnly::Allowed {
                assert!(p.api.is_some(), "{} has a check but no API", p.name);
                assert_ne!(p.family, Family::Event);
            }
        }
    }

    #[test]
    fn num_of_domains_is_a_hypervisor_call_in_the_domain_family() {
        let p = procedure(51).unwrap();
        assert_eq!(p.name, "CONNECT_NUM_OF_DOMAINS");
        assert_eq!(p.api, Some("virConnectNumOfDomains"));
        assert_eq!(p.no_support_domain(), ErrorDomain::Domain);
        assert_eq!(procedure(376).unwrap().family, Family::Event);
        assert_eq!(
            procedure(118).unwrap().no_support_domain(),
            ErrorDomain::NodeDev
        );
        // virDomainRevertToSnapshot lives in libvirt-domain-snapshot.c.
        assert_eq!(
            procedure(192).unwrap().no_support_domain(),
            ErrorDomain::DomainSnapshot
        );
        assert_eq!(
            procedure(413).unwrap().no_support_domain(),
            ErrorDomain::DomainCheckpoint
        );
    }
}
