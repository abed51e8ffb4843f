//! A configuration file: `Conf::parse`, then `DaemonConfig::from_conf` (privileged and
//! not) and the checks the daemon runs on the result (socket modes, logging, UUID source).
#![no_main]

use libfuzzer_sys::fuzz_target;
use virconf::daemon::DaemonConfig;
use virconf::Conf;

fuzz_target!(|data: &[u8]| {
    let Ok(conf) = Conf::parse(data, "virtnodedevd.conf") else {
        return;
    };
    for privileged in [true, false] {
        if let Ok(cfg) = DaemonConfig::from_conf(&conf, privileged) {
            let _ = cfg.socket_modes();
            let _ = cfg.logging();
            let _ = cfg.host_uuid_source();
        }
    }
});
