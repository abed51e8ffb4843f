//! libvirt's logging (virlog.c) on top of `tracing`: a default priority, filters and
//! outputs, set from the config at start (`virDaemonSetupLogging`), changed by the admin
//! program at run time and re-read on SIGHUP.
//!
//! Categories: libvirt names a message's source like `rpc.netserver`; ours is the tracing
//! target with `::` turned into `.` (`rpc.server`, `virtnodedevd.admin`), so a filter
//! `1:rpc` or `1:virtnodedevd` selects what one would expect. As in libvirt, the first
//! filter whose match (`*MATCH*`, a glob) fits the category decides the minimum priority;
//! without one the default priority (`log_level`) does. An output then takes the message
//! if the message is at or above the output's own priority.
//!
//! Messages can carry text that clients chose (device names, URIs): every control
//! character is written escaped (`\n`, `\x1b`), never raw, so a client cannot forge log
//! lines or terminal sequences.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::RwLock;
use std::time::SystemTime;

use protocol::{ErrorCode, ErrorDomain, VirError};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use virconf::log::{
    check_log_level, parse_log_filters, parse_log_outputs, LogDestination, LogFilter, LogOutput,
    LogPriority,
};
use virconf::ConfError;

use crate::cli::DAEMON_NAME;

/// VIR_LOG_DEFAULT.
const DEFAULT_PRIORITY: LogPriority = LogPriority::Warning;
const JOURNALD_SOCKET: &str = "/run/systemd/journal/socket";
const SYSLOG_SOCKET: &str = "/dev/log";

/// How the daemon was started, which decides the default output (`virLogSetDefaultOutput`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StartMode {
    pub daemon: bool,
    pub privileged: bool,
    pub verbose: bool,
}

struct Sink {
    priority: LogPriority,
    destination: LogDestination,
    kind: SinkKind,
    /// libvirt starts every output with its version and the host name.
    announced: bool,
}

enum SinkKind {
    Stderr,
    File(File),
    Syslog(Option<UnixDatagram>, String),
    Journald(Option<UnixDatagram>),
}

struct State {
    default: LogPriority,
    filters: Vec<LogFilter>,
    sinks: Vec<Sink>,
    default_output: String,
    mode: StartMode,
}

static STATE: RwLock<Option<State>> = RwLock::new(None);
/// The lowest priority any message could be logged at; lets `enabled` answer with one
/// load for the (usual) debug messages that go nowhere.
static FLOOR: AtomicU8 = AtomicU8::new(DEFAULT_PRIORITY as u8);

fn read() -> std::sync::RwLockReadGuard<'static, Option<State>> {
    STATE.read().unwrap_or_else(|e| e.into_inner())
}

fn write() -> std::sync::RwLockWriteGuard<'static, Option<State>> {
    STATE.write().unwrap_or_else(|e| e.into_inner())
}

/// Installs the tracing layer with libvirt's defaults (stderr at warning) until
/// [`configure`] runs.
pub fn install() {
    use tracing_subscriber::layer::SubscriberExt;
    let _ =
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(LibvirtLayer));
    let mut st = write();
    if st.is_none() {
        *st = Some(State {
            default: DEFAULT_PRIORITY,
            filters: Vec::new(),
            sinks: vec![stderr_sink(DEFAULT_PRIORITY)],
            default_output: format!("{}:stderr", DEFAULT_PRIORITY as u8),
            mode: StartMode::default(),
        });
    }
    drop(st);
    update_floor();
}

fn stderr_sink(priority: LogPriority) -> Sink {
    Sink {
        priority,
        destination: LogDestination::Stderr,
        kind: SinkKind::Stderr,
        announced: false,
    }
}

/// `virDaemonSetupLogging`: level, filters and outputs from the config, then the
/// LIBVIRT_DEBUG / LIBVIRT_LOG_FILTERS / LIBVIRT_LOG_OUTPUTS environment, then `-v`, then
/// the default output when none is set. Nothing changes if any step fails.
pub fn configure(
    level: u32,
    filters: Option<&str>,
    outputs: Option<&str>,
    mode: StartMode,
) -> Result<(), ConfError> {
    let mut default = check_log_level(level)?.unwrap_or(DEFAULT_PRIORITY);
    let mut filters = parse_log_filters(filters.unwrap_or(""))?;
    let mut outputs = parse_log_outputs(outputs.unwrap_or(""))?;
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(v) = env("LIBVIRT_DEBUG") {
        default = match v.as_str() {
            "1" | "debug" => LogPriority::Debug,
            "2" | "info" => LogPriority::Info,
            "3" | "warning" => LogPriority::Warning,
            "4" | "error" => LogPriority::Error,
            _ => {
                return Err(ConfError::InvalidArg(format!(
                    "Failed to set logging priority, argument '{v}' is invalid"
                )))
            }
        };
    }
    // Our own test knob (a level name), weaker than libvirt's variable.
    if let (None, Some(v)) = (env("LIBVIRT_DEBUG"), env("VIRTNODEDEVD_LOG")) {
        default = match v.as_str() {
            "trace" | "debug" => LogPriority::Debug,
            "info" => LogPriority::Info,
            "warn" | "warning" => LogPriority::Warning,
            "error" => LogPriority::Error,
            _ => default,
        };
    }
    if let Some(v) = env("LIBVIRT_LOG_FILTERS") {
        filters = parse_log_filters(&v)?;
    }
    if let Some(v) = env("LIBVIRT_LOG_OUTPUTS") {
        outputs = parse_log_outputs(&v)?;
    }
    if mode.verbose && default > LogPriority::Info {
        default = LogPriority::Info;
    }
    let default_output = default_output(default, mode);
    if outputs.is_empty() {
        outputs = parse_log_outputs(&default_output)?;
    }
    let sinks = open_sinks(&outputs).map_err(|e| ConfError::InvalidArg(e.message))?;
    *write() = Some(State {
        default,
        filters,
        sinks,
        default_output,
        mode,
    });
    update_floor();
    Ok(())
}

/// `virLogSetDefaultOutput`: journald when it is there and we are a daemon or not on a
/// terminal; otherwise a file for a daemon, stderr in the foreground.
fn default_output(priority: LogPriority, mode: StartMode) -> String {
    let journald = nix::unistd::access(JOURNALD_SOCKET, nix::unistd::AccessFlags::W_OK).is_ok();
    let on_tty = nix::unistd::isatty(0).unwrap_or(false);
    let p = priority as u8;
    if (mode.daemon || !on_tty) && journald {
        // libvirt keeps journald from debug floods by default.
        return format!("{}:journald", p.max(LogPriority::Info as u8));
    }
    if mode.daemon {
        let path = if mode.privileged {
            PathBuf::from(format!("/var/log/libvirt/{DAEMON_NAME}.log"))
        } else {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache")
                })
                .join("libvirt");
            let _ = std::fs::create_dir_all(&cache);
            cache.join(format!("{DAEMON_NAME}.log"))
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        return format!("{p}:file:{}", path.display());
    }
    format!("{p}:stderr")
}

fn open_sinks(outputs: &[LogOutput]) -> Result<Vec<Sink>, VirError> {
    outputs
        .iter()
        .map(|o| {
            let kind = match &o.destination {
                LogDestination::Stderr => SinkKind::Stderr,
                LogDestination::File(path) => {
                    let f = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(path)
                        .map_err(|e| {
                            let text = e.to_string();
                            let text = match e.raw_os_error() {
                                Some(n) => text
                                    .strip_suffix(&format!(" (os error {n})"))
                                    .unwrap_or(&text)
                                    .to_owned(),
                                None => text,
                            };
                            VirError::new(
                                ErrorCode::SystemError,
                                ErrorDomain::None,
                                format!("failed to open {}: {text}", path.display()),
                            )
                        })?;
                    SinkKind::File(f)
                }
                LogDestination::Syslog(ident) => SinkKind::Syslog(
                    UnixDatagram::unbound()
                        .ok()
                        .filter(|s| s.connect(SYSLOG_SOCKET).is_ok()),
                    ident.clone(),
                ),
                LogDestination::Journald => SinkKind::Journald(UnixDatagram::unbound().ok()),
            };
            Ok(Sink {
                priority: o.priority,
                destination: o.destination.clone(),
                kind,
                announced: false,
            })
        })
        .collect()
}

fn update_floor() {
    let st = read();
    let Some(st) = st.as_ref() else { return };
    let source = st
        .filters
        .iter()
        .map(|f| f.priority)
        .chain(std::iter::once(st.default))
        .min()
        .unwrap_or(DEFAULT_PRIORITY);
    let sink = st
        .sinks
        .iter()
        .map(|s| s.priority)
        .min()
        .unwrap_or(LogPriority::Error);
    FLOOR.store(source.max(sink) as u8, Ordering::Relaxed);
}

fn parse_err(e: ConfError) -> VirError {
    match e {
        ConfError::InvalidArg(d) => VirError::new(ErrorCode::InvalidArg, ErrorDomain::None, d),
        other => VirError::new(ErrorCode::InternalError, ErrorDomain::None, other.message()),
    }
}

/// `virLogGetOutputs` and the count, for admin CONNECT_GET_LOGGING_OUTPUTS.
pub fn outputs() -> (String, u32) {
    let st = read();
    let Some(st) = st.as_ref() else {
        return (String::new(), 0);
    };
    let text = st
        .sinks
        .iter()
        .map(|s| {
            let p = s.priority as u8;
            match &s.destination {
                LogDestination::Stderr => format!("{p}:stderr"),
                LogDestination::Journald => format!("{p}:journald"),
                LogDestination::Syslog(i) => format!("{p}:syslog:{i}"),
                LogDestination::File(f) => format!("{p}:file:{}", f.display()),
            }
        })
        .collect::<Vec<_>>()
        .join(" ");
    (text, st.sinks.len() as u32)
}

/// `virLogGetFilters` and the count: `None` without filters; each match is shown as
/// stored, `*MATCH*`, with a trailing space.
pub fn filters() -> (Option<String>, u32) {
    let st = read();
    let Some(st) = st.as_ref() else {
        return (None, 0);
    };
    if st.filters.is_empty() {
        return (None, 0);
    }
    let mut s = String::new();
    for f in &st.filters {
        let _ = write!(s, "{}:*{}* ", f.priority as u8, f.pattern);
    }
    (Some(s), st.filters.len() as u32)
}

/// `virLogSetOutputs`: `None` or empty restores the default output.
pub fn set_outputs(src: Option<&str>) -> Result<(), VirError> {
    let default = read()
        .as_ref()
        .map(|s| s.default_output.clone())
        .unwrap_or_default();
    let src = src.filter(|s| !s.is_empty()).unwrap_or(&default);
    let outputs = parse_log_outputs(src).map_err(parse_err)?;
    let sinks = open_sinks(&outputs)?;
    if let Some(st) = write().as_mut() {
        st.sinks = sinks;
    }
    update_floor();
    Ok(())
}

/// `virLogSetFilters`: `None` clears them.
pub fn set_filters(src: Option<&str>) -> Result<(), VirError> {
    let filters = parse_log_filters(src.unwrap_or("")).map_err(parse_err)?;
    if let Some(st) = write().as_mut() {
        st.filters = filters;
    }
    update_floor();
    Ok(())
}

/// The start mode last configured (for a reload on SIGHUP).
pub fn mode() -> StartMode {
    read().as_ref().map(|s| s.mode).unwrap_or_default()
}

fn priority_of(level: &Level) -> LogPriority {
    match *level {
        Level::ERROR => LogPriority::Error,
        Level::WARN => LogPriority::Warning,
        Level::INFO => LogPriority::Info,
        _ => LogPriority::Debug,
    }
}

/// `g_pattern_match_simple`: `*` any run, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn category(target: &str) -> String {
    target.replace("::", ".")
}

/// Appends `s` with every control character escaped.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

struct Fields(String);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            escape_into(&mut self.0, value);
        } else {
            self.sep();
            let _ = write!(self.0, "{}=", field.name());
            escape_into(&mut self.0, value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            escape_into(&mut self.0, &text);
        } else {
            self.sep();
            let _ = write!(self.0, "{}=", field.name());
            escape_into(&mut self.0, &text);
        }
    }
}

impl Fields {
    fn sep(&mut self) {
        if !self.0.is_empty() {
            self.0.push(' ');
        }
    }
}

/// `virTimeStringNowRaw`: `2024-01-02 03:04:05.678+0000` (UTC).
fn timestamp() -> String {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:03}+0000",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        now.subsec_millis()
    )
}

fn level_name(p: LogPriority) -> &'static str {
    match p {
        LogPriority::Debug => "debug",
        LogPriority::Info => "info",
        LogPriority::Warning => "warning",
        LogPriority::Error => "error",
    }
}

/// The tracing layer that applies libvirt's filters and writes to libvirt's outputs.
pub struct LibvirtLayer;

impl<S: Subscriber> Layer<S> for LibvirtLayer {
    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Settings change at run time, so every event asks `enabled`.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        priority_of(meta.level()) as u8 >= FLOOR.load(Ordering::Relaxed)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let priority = priority_of(meta.level());
        let cat = category(meta.target());
        {
            let st = read();
            let Some(st) = st.as_ref() else { return };
            let min = st
                .filters
                .iter()
                .find(|f| glob(format!("*{}*", f.pattern).as_bytes(), cat.as_bytes()))
                .map_or(st.default, |f| f.priority);
            if priority < min || !st.sinks.iter().any(|s| priority >= s.priority) {
                return;
            }
        }
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        let tid = nix::unistd::gettid().as_raw();
        let line = format!(
            "{tid}: {} : {cat}:{} : {}\n",
            level_name(priority),
            meta.line().unwrap_or(0),
            fields.0
        );
        emit(priority, &cat, &fields.0, &line);
    }
}

fn emit(priority: LogPriority, cat: &str, raw: &str, line: &str) {
    let mut st = write();
    let Some(st) = st.as_mut() else { return };
    let ts = timestamp();
    for sink in st.sinks.iter_mut().filter(|s| priority >= s.priority) {
        if !sink.announced {
            sink.announced = true;
            let tid = nix::unistd::gettid().as_raw();
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_owned())
                .unwrap_or_default();
            let version = format!("libvirt version: {}", protocol::LIB_VERSION_STRING);
            let host = format!("hostname: {host}");
            for msg in [version, host] {
                let l = format!("{tid}: info : {msg}\n");
                write_sink(sink, LogPriority::Info, &ts, "", &msg, &l);
            }
        }
        write_sink(sink, priority, &ts, cat, raw, line);
    }
}

fn write_sink(sink: &mut Sink, priority: LogPriority, ts: &str, cat: &str, raw: &str, line: &str) {
    match &mut sink.kind {
        SinkKind::Stderr => {
            let _ = std::io::stderr().write_all(format!("{ts}: {line}").as_bytes());
        }
        SinkKind::File(f) => {
            let _ = f.write_all(format!("{ts}: {line}").as_bytes());
        }
        SinkKind::Syslog(sock, ident) => {
            if let Some(sock) = sock {
                let sev = match priority {
                    LogPriority::Debug => 7,
                    LogPriority::Info => 6,
                    LogPriority::Warning => 4,
                    LogPriority::Error => 3,
                };
                // LOG_DAEMON
                let msg = format!(
                    "<{}>{ident}[{}]: {}",
                    3 * 8 + sev,
                    std::process::id(),
                    line.trim_end()
                );
                let _ = sock.send(msg.as_bytes());
            }
        }
        SinkKind::Journald(sock) => {
            if let Some(sock) = sock {
                let prio = match priority {
                    LogPriority::Debug => 7,
                    LogPriority::Info => 6,
                    LogPriority::Warning => 4,
                    LogPriority::Error => 3,
                };
                // The native protocol; values never hold a newline (they are escaped).
                let msg = format!(
                    "MESSAGE={raw}\nPRIORITY={prio}\nSYSLOG_IDENTIFIER={DAEMON_NAME}\nLIBVIRT_SOURCE={cat}\n"
                );
                let _ = sock.send_to(msg.as_bytes(), JOURNALD_SOCKET);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_matches_like_g_pattern_match_simple() {
        assert!(glob(b"*rpc*", b"rpc.server"));
        assert!(glob(b"*server*", b"rpc.server"));
        assert!(!glob(b"*admin*", b"rpc.server"));
        assert!(glob(b"*r?c*", b"rpc"));
        assert!(glob(b"**", b""));
    }

    #[test]
    fn control_characters_are_escaped() {
        let mut s = String::new();
        escape_into(&mut s, "a\nb\x1b[31mc\u{7f}");
        assert_eq!(s, "a\\nb\\x1b[31mc\\x7f");
    }

    #[test]
    fn timestamps_look_like_libvirts() {
        let t = timestamp();
        assert_eq!(t.len(), "2024-01-02 03:04:05.678+0000".len(), "{t}");
        assert!(t.ends_with("+0000"));
    }
}
