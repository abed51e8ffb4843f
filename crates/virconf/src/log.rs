//! The values of `log_level`, `log_filters` and `log_outputs`, checked as
//! libvirt 9.0's virlog.c checks them when the daemon sets up logging
//! (`virDaemonSetupLogging()`, right after the config is loaded).
//!
//! A failure there is printed by `virDispatchError()` as
//! `libvirt:  error : invalid argument: <detail>` and the daemon exits 1.

use std::path::{Component, Path, PathBuf};

use crate::error::ConfError;

/// A log priority (`virLogPriority`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogPriority {
    /// 1
    Debug = 1,
    /// 2
    Info = 2,
    /// 3
    Warning = 3,
    /// 4
    Error = 4,
}

impl LogPriority {
    fn from_u32(n: u32) -> Option<LogPriority> {
        match n {
            1 => Some(LogPriority::Debug),
            2 => Some(LogPriority::Info),
            3 => Some(LogPriority::Warning),
            4 => Some(LogPriority::Error),
            _ => None,
        }
    }
}

/// `level:match`: messages whose category contains the glob `pattern`
/// are logged from `priority` up. The first matching filter decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFilter {
    /// Minimum priority.
    pub priority: LogPriority,
    /// Glob matched as a substring of the category (a leading `+` is dropped).
    pub pattern: String,
}

/// Where an output sends messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LogDestination {
    /// `stderr`
    Stderr,
    /// `syslog:IDENT`
    Syslog(String),
    /// `file:PATH`, made absolute like `g_canonicalize_filename()`.
    File(PathBuf),
    /// `journald`
    Journald,
}

/// `level:destination[:data]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogOutput {
    /// Minimum priority.
    pub priority: LogPriority,
    /// Destination.
    pub destination: LogDestination,
}

/// `virLogSetDefaultPriority()` on a `log_level`: 0 means unset.
pub fn check_log_level(level: u32) -> Result<Option<LogPriority>, ConfError> {
    if level == 0 {
        return Ok(None);
    }
    LogPriority::from_u32(level).map(Some).ok_or_else(|| {
        ConfError::InvalidArg(format!(
            "Failed to set logging priority, argument '{level}' is invalid"
        ))
    })
}

/// `virLogParseFilters()`: space-separated filters.
pub fn parse_log_filters(src: &str) -> Result<Vec<LogFilter>, ConfError> {
    src.split(' ')
        .filter(|s| !s.is_empty())
        .map(parse_filter)
        .collect()
}

fn parse_filter(src: &str) -> Result<LogFilter, ConfError> {
    let tokens: Vec<&str> = src.split(':').collect();
    if tokens.len() < 2 {
        return Err(ConfError::InvalidArg(format!(
            "Malformed format for filter '{src}'"
        )));
    }
    let priority = parse_priority(tokens[0]).ok_or_else(|| {
        ConfError::InvalidArg(format!(
            "Invalid priority '{}' for filter '{src}'",
            tokens[0]
        ))
    })?;
    // A leading '+' once asked for stack traces; libvirt now drops it.
    let pattern = tokens[1].strip_prefix('+').unwrap_or(tokens[1]);
    if pattern.is_empty() {
        return Err(ConfError::InvalidArg(format!(
            "Invalid match string '{}'",
            tokens[1]
        )));
    }
    Ok(LogFilter {
        priority,
        pattern: pattern.to_string(),
    })
}

/// `virLogParseOutputs()`: space-separated outputs. A repeated
/// destination (same kind and same ident or path) keeps only its last
/// occurrence, in that occurrence's place.
pub fn parse_log_outputs(src: &str) -> Result<Vec<LogOutput>, ConfError> {
    let all = src
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(parse_output)
        .collect::<Result<Vec<_>, _>>()?;
    // Kept from the end with a set, so that a 4 MiB list (an admin call can send one) stays
    // linear: the last occurrence of each destination, in input order.
    let mut seen = std::collections::HashSet::new();
    let mut kept: Vec<LogOutput> = all
        .into_iter()
        .rev()
        .filter(|o| seen.insert(o.destination.clone()))
        .collect();
    kept.reverse();
    Ok(kept)
}

fn parse_output(src: &str) -> Result<LogOutput, ConfError> {
    let tokens: Vec<&str> = src.split(':').collect();
    if tokens.len() < 2 {
        return Err(ConfError::InvalidArg(format!(
            "Malformed format for log output '{src}'"
        )));
    }
    let priority = parse_priority(tokens[0]).ok_or_else(|| {
        ConfError::InvalidArg(format!(
            "Invalid log priority '{}' for log output '{src}'",
            tokens[0]
        ))
    })?;
    let wanted = match tokens[1] {
        "stderr" | "journald" => 2,
        "syslog" | "file" => 3,
        other => {
            return Err(ConfError::InvalidArg(format!(
                "Invalid log destination '{other}' for log output '{src}'"
            )))
        }
    };
    if tokens.len() != wanted {
        return Err(ConfError::InvalidArg(format!(
            "Log output '{src}' does not meet the format requirements for destination type '{}'",
            tokens[1]
        )));
    }
    let destination = match tokens[1] {
        "stderr" => LogDestination::Stderr,
        "journald" => LogDestination::Journald,
        "syslog" => LogDestination::Syslog(tokens[2].to_string()),
        _ => LogDestination::File(canonicalize(Path::new(tokens[2]))),
    };
    Ok(LogOutput {
        priority,
        destination,
    })
}

/// `virStrToLong_uip(.., 10, ..)` and the 1..=4 check: optional leading
/// whitespace and `+`, no `-`, digits to the end.
fn parse_priority(s: &str) -> Option<LogPriority> {
    let t = s.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let t = t.strip_prefix('+').unwrap_or(t);
    if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<u32>().ok().and_then(LogPriority::from_u32)
}

/// Lexical `g_canonicalize_filename(path, NULL)`: relative to the current
/// directory, `.` and `..` resolved without touching the filesystem.
fn canonicalize(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().unwrap_or_default().join(path)
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_outputs_keep_the_last_of_each_in_linear_time() {
        let many = "1:stderr 2:file:/x ".repeat(200_000) + "3:stderr";
        let kept = parse_log_outputs(&many).unwrap();
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[0].destination, LogDestination::File("/x".into()));
        assert_eq!(kept[1].destination, LogDestination::Stderr);
        assert_eq!(kept[1].priority as u32, 3);
    }

    fn filter_err(s: &str) -> String {
        parse_log_filters(s).unwrap_err().to_string()
    }

    fn output_err(s: &str) -> String {
        parse_log_outputs(s).unwrap_err().to_string()
    }

    #[test]
    fn filters_parse_in_order_and_drop_a_leading_plus() {
        let f = parse_log_filters("  1:node_device 4:+util.udev ").unwrap();
        assert_eq!(
            f,
            vec![
                LogFilter {
                    priority: LogPriority::Debug,
                    pattern: "node_device".into()
                },
                LogFilter {
                    priority: LogPriority::Error,
                    pattern: "util.udev".into()
                },
            ]
        );
        assert!(parse_log_filters("").unwrap().is_empty());
    }

    #[test]
    fn bad_filters_give_libvirt_messages() {
        assert_eq!(
            filter_err("1"),
            "invalid argument: Malformed format for filter '1'"
        );
        assert_eq!(
            filter_err("x:util"),
            "invalid argument: Invalid priority 'x' for filter 'x:util'"
        );
        assert_eq!(
            filter_err("5:util"),
            "invalid argument: Invalid priority '5' for filter '5:util'"
        );
        assert_eq!(
            filter_err("-1:util"),
            "invalid argument: Invalid priority '-1' for filter '-1:util'"
        );
        assert_eq!(
            filter_err("1:+"),
            "invalid argument: Invalid match string '+'"
        );
        let e = parse_log_filters("1:").unwrap_err();
        assert_eq!((e.code(), e.domain()), (8, 0));
    }

    #[test]
    fn outputs_parse_and_keep_the_last_duplicate() {
        let o =
            parse_log_outputs("3:syslog:virtnodedevd 1:stderr 2:file:/var/log/../x.log 4:stderr")
                .unwrap();
        assert_eq!(
            o,
            vec![
                LogOutput {
                    priority: LogPriority::Warning,
                    destination: LogDestination::Syslog("virtnodedevd".into())
                },
                LogOutput {
                    priority: LogPriority::Info,
                    destination: LogDestination::File("/var/x.log".into())
                },
                LogOutput {
                    priority: LogPriority::Error,
                    destination: LogDestination::Stderr
                },
            ]
        );
        assert_eq!(
            parse_log_outputs("1:journald").unwrap()[0].destination,
            LogDestination::Journald
        );
    }

    #[test]
    fn bad_outputs_give_libvirt_messages() {
        assert_eq!(
            output_err("9:stderr"),
            "invalid argument: Invalid log priority '9' for log output '9:stderr'"
        );
        assert_eq!(
            output_err("1:stderr:x"),
            "invalid argument: Log output '1:stderr:x' does not meet the format requirements for destination type 'stderr'"
        );
        assert_eq!(
            output_err("1:file:/a:b"),
            "invalid argument: Log output '1:file:/a:b' does not meet the format requirements for destination type 'file'"
        );
        assert_eq!(
            output_err("1:foo"),
            "invalid argument: Invalid log destination 'foo' for log output '1:foo'"
        );
        assert_eq!(
            output_err("stderr"),
            "invalid argument: Malformed format for log output 'stderr'"
        );
    }

    #[test]
    fn log_level_zero_is_unset_and_five_is_invalid() {
        assert_eq!(check_log_level(0).unwrap(), None);
        assert_eq!(check_log_level(3).unwrap(), Some(LogPriority::Warning));
        assert_eq!(
            check_log_level(5).unwrap_err().to_string(),
            "invalid argument: Failed to set logging priority, argument '5' is invalid"
        );
    }
}
