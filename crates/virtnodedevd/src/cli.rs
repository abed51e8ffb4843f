//! The command line of libvirt's modular daemons (remote_daemon.c), as the man page lists.

use std::path::PathBuf;

pub const DAEMON_NAME: &str = "virtnodedevd";

#[derive(Debug, Default, PartialEq)]
pub struct Options {
    pub daemon: bool,
    pub verbose: bool,
    pub config: Option<PathBuf>,
    pub pid_file: Option<PathBuf>,
    /// Seconds without clients before exiting; 0 = never.
    pub timeout: u32,
}

#[derive(Debug, PartialEq)]
pub enum Action {
    Run(Options),
    Help,
    Version,
}

/// Why the command line was refused; the message goes to stderr and we exit 1.
#[derive(Debug, PartialEq)]
pub struct UsageError {
    pub message: String,
    /// libvirt prints the usage text after getopt's complaint, but not after a bad value.
    pub show_usage: bool,
}

/// Parses arguments the way getopt_long does for `df:p:t:vVh` and the long options
/// `--daemon --config --pid-file --timeout --verbose --version --help`: bundled short
/// options (`-dv`), attached values (`-t5`, `--timeout=5`) and unambiguous long-option
/// prefixes (`--verb`). Written by hand because clap differs from getopt in exactly these
/// corners (prefixes, exit codes, message wording) that scripts starting libvirt rely on.
pub fn parse(argv0: &str, args: &[String]) -> Result<Action, UsageError> {
    const LONG: [(&str, char, bool); 7] = [
        ("verbose", 'v', false),
        ("daemon", 'd', false),
        ("config", 'f', true),
        ("timeout", 't', true),
        ("pid-file", 'p', true),
        ("version", 'V', false),
        ("help", 'h', false),
    ];
    let usage = |message: String| UsageError {
        message,
        show_usage: true,
    };
    let mut opts = Options::default();
    let mut positional = false;
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let mut pending: Vec<(char, Option<String>)> = Vec::new();
        if arg == "--" {
            positional = i < args.len();
            break;
        } else if let Some(long) = arg.strip_prefix("--") {
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (long, None),
            };
            let matches: Vec<_> = LONG
                .iter()
                .filter(|(l, _, _)| l.starts_with(name))
                .collect();
            let exact = LONG.iter().find(|(l, _, _)| *l == name);
            let (lname, c, takes) = match (exact, matches.as_slice()) {
                (Some(e), _) => *e,
                (None, [one]) => **one,
                (None, []) => {
                    return Err(usage(format!("{argv0}: unrecognized option '--{name}'")))
                }
                (None, _) => return Err(usage(format!("{argv0}: option '--{name}' is ambiguous"))),
            };
            let value = match (takes, value) {
                (true, Some(v)) => Some(v),
                (true, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => {
                        return Err(usage(format!(
                            "{argv0}: option '--{lname}' requires an argument"
                        )))
                    }
                },
                (false, Some(_)) => {
                    return Err(usage(format!(
                        "{argv0}: option '--{lname}' doesn't allow an argument"
                    )))
                }
                (false, None) => None,
            };
            pending.push((c, value));
        } else if let Some(shorts) = arg.strip_prefix('-').filter(|s| !s.is_empty()) {
            let chars: Vec<char> = shorts.chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                match c {
                    'd' | 'v' | 'V' | 'h' => pending.push((c, None)),
                    'f' | 'p' | 't' => {
                        let value = if j < chars.len() {
                            let v: String = chars[j..].iter().collect();
                            j = chars.len();
                            v
                        } else if let Some(v) = args.get(i) {
                            i += 1;
                            v.clone()
                        } else {
                            return Err(usage(format!(
                                "{argv0}: option requires an argument -- '{c}'"
                            )));
                        };
                        pending.push((c, Some(value)));
                    }
                    _ => return Err(usage(format!("{argv0}: invalid option -- '{c}'"))),
                }
            }
        } else {
            positional = true;
            continue;
        }
        for (c, value) in pending {
            match c {
                'd' => opts.daemon = true,
                'v' => opts.verbose = true,
                'f' => opts.config = value.map(PathBuf::from),
                'p' => opts.pid_file = value.map(PathBuf::from),
                't' => opts.timeout = parse_timeout(value.as_deref().unwrap_or(""))?,
                'V' => return Ok(Action::Version),
                'h' => return Ok(Action::Help),
                _ => unreachable!("option table"),
            }
        }
    }
    if positional {
        return Err(UsageError {
            message: format!("{argv0}: unexpected, non-option, command line arguments"),
            show_usage: false,
        });
    }
    Ok(Action::Run(opts))
}

/// libvirt accepts 0 ..= INT_MAX/1000 so the value can be turned into milliseconds.
fn parse_timeout(s: &str) -> Result<u32, UsageError> {
    match s.trim_start().parse::<i64>() {
        Ok(v) if (0..=i64::from(i32::MAX / 1000)).contains(&v) => Ok(v as u32),
        _ => Err(UsageError {
            message: "Invalid value for timeout".to_owned(),
            show_usage: false,
        }),
    }
}

/// The help text, laid out as libvirt's daemonUsage() prints it.
pub fn usage(argv0: &str, privileged: bool) -> String {
    let opts = [
        ("-h | --help", "Display program help"),
        ("-v | --verbose", "Verbose messages"),
        ("-d | --daemon", "Run as a daemon & write PID file"),
        ("-t | --timeout <secs>", "Exit after timeout period"),
        ("-f | --config <file>", "Configuration file"),
        ("-V | --version", "Display version information"),
        ("-p | --pid-file <file>", "Change name of PID file"),
    ];
    let mut s = format!("\nUsage:\n  {argv0} [options]\n\nOptions:\n");
    for (o, h) in opts {
        s += &format!("  {o:<22} {h}\n");
    }
    s += "\nlibvirt management daemon:\n\n  Default paths:\n\n";
    s += "    Configuration file (unless overridden by -f):\n";
    s += &format!(
        "      {}/libvirt/{DAEMON_NAME}.conf\n\n",
        if privileged {
            "/etc"
        } else {
            "$XDG_CONFIG_HOME"
        }
    );
    s += "    Sockets:\n";
    if privileged {
        s += &format!("      /run/libvirt/{DAEMON_NAME}-sock\n");
        s += &format!("      /run/libvirt/{DAEMON_NAME}-sock-ro\n\n");
    } else {
        s += &format!("      $XDG_RUNTIME_DIR/libvirt/{DAEMON_NAME}-sock\n\n");
    }
    s += "    PID file (unless overridden by -p):\n";
    s += &format!(
        "      {}/{DAEMON_NAME}.pid\n\n",
        if privileged {
            "/run"
        } else {
            "$XDG_RUNTIME_DIR/libvirt"
        }
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Action, UsageError> {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse("virtnodedevd", &args)
    }

    #[test]
    fn options_parse_like_getopt_long() {
        let Action::Run(o) = p(&["-dv", "-t5", "--config=/x.conf", "--pid", "/p"]).unwrap() else {
            panic!()
        };
        assert!(o.daemon && o.verbose);
        assert_eq!(o.timeout, 5);
        assert_eq!(o.config, Some(PathBuf::from("/x.conf")));
        assert_eq!(o.pid_file, Some(PathBuf::from("/p")));
        assert_eq!(p(&["--version"]).unwrap(), Action::Version);
        assert_eq!(p(&["-h"]).unwrap(), Action::Help);
    }

    #[test]
    fn bad_command_lines_are_refused() {
        assert_eq!(
            p(&["--bogus"]).unwrap_err().message,
            "virtnodedevd: unrecognized option '--bogus'"
        );
        assert_eq!(
            p(&["-x"]).unwrap_err().message,
            "virtnodedevd: invalid option -- 'x'"
        );
        assert_eq!(
            p(&["-t", "abc"]).unwrap_err().message,
            "Invalid value for timeout"
        );
        assert_eq!(
            p(&["-t", "-1"]).unwrap_err().message,
            "Invalid value for timeout"
        );
        assert!(p(&["-t"]).is_err());
        assert!(!p(&["extra"]).unwrap_err().show_usage);
    }
}
