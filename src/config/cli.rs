//! The command-line parser, shared by argv and RGUNICORN_CMD_ARGS: gunicorn's flags on top of
//! `Partial`, plus the CLI-only -c, --check-config, --print-config and -v. Parses only: never
//! reads files or the environment itself.
use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use super::partial::Partial;
use crate::{Error, Result};

/// One parsed command line (argv or the words of RGUNICORN_CMD_ARGS).
#[derive(Debug, clap::Parser)]
#[command(
    name = "rgunicorn",
    version = concat!("(version ", env!("CARGO_PKG_VERSION"), ")"),
    about = "A pre-fork HTTP/1.1 server for Python WSGI applications (gunicorn-compatible)."
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Partial,
    /// Config file: PATH.toml (TOML), PATH (Python, as gunicorn.conf.py) or python:MODULE
    /// [default: ./gunicorn.conf.py if it exists]; settings on the command line override it.
    #[arg(short, long, value_name = "CONFIG")]
    pub config: Option<PathBuf>,
    /// Check the configuration and exit.
    #[arg(long)]
    pub check_config: bool,
    /// Print the final configuration as TOML and exit.
    #[arg(long)]
    pub print_config: bool,
    /// gunicorn flags of settings rgunicorn lacks, as (setting, value): hidden from --help, and
    /// judged like the same names in a config file (an error or a warning).
    #[arg(skip)]
    pub gunicorn_flags: Vec<(&'static str, Option<String>)>,
}

/// Parses a command line whose first word is the program name.
///
/// `--help` and `--version` print and exit the process right here, through clap, exactly as
/// gunicorn does; no caller has anything left to do in those cases.
pub fn parse<I, T>(args: I) -> Result<Cli>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    // gunicorn spells the version flag -v; clap's own is -V, so replace it.
    let command = Cli::command().disable_version_flag(true).arg(
        Arg::new("version")
            .short('v')
            .long("version")
            .action(ArgAction::Version)
            .help("Print the version and exit"),
    );
    let command = super::gunicorn::FLAGS
        .iter()
        .fold(command, |command, flag| command.arg(gunicorn_flag(flag)));
    let matches = command.try_get_matches_from(args).map_err(usage)?;
    let mut cli = Cli::from_arg_matches(&matches).map_err(usage)?;
    for &(name, _, takes_value) in super::gunicorn::FLAGS {
        match takes_value {
            true => {
                let values = matches.get_many::<String>(name).into_iter().flatten();
                cli.gunicorn_flags
                    .extend(values.map(|v| (name, Some(v.clone()))));
            }
            false if matches.get_flag(name) => cli.gunicorn_flags.push((name, None)),
            false => {}
        }
    }
    Ok(cli)
}

/// One of gunicorn's flags that rgunicorn only recognises: `--worker-tmp-dir /dev/shm` in a
/// Dockerfile must not stop the server.
fn gunicorn_flag(&(name, flags, takes_value): &(&'static str, &[&'static str], bool)) -> Arg {
    let mut arg = Arg::new(name).hide(true);
    for flag in flags {
        arg = match flag.strip_prefix("--") {
            Some(long) if arg.get_long().is_none() => arg.long(long),
            Some(long) => arg.alias(long),
            None => arg.short(flag.chars().nth(1).expect("-X")),
        };
    }
    match takes_value {
        true => arg.action(ArgAction::Append).value_name("VALUE"),
        false => arg.action(ArgAction::SetTrue),
    }
}

/// Parses RGUNICORN_CMD_ARGS or GUNICORN_CMD_ARGS (`name`): shell words, no program name.
pub fn parse_env_args(name: &str, value: &str) -> Result<Cli> {
    let words = shlex::split(value)
        .ok_or_else(|| Error::Usage(format!("{name}: unbalanced quotes in {value:?}")))?;
    parse(std::iter::once("rgunicorn".to_owned()).chain(words))
}

fn usage(err: clap::Error) -> Error {
    use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
    match err.kind() {
        DisplayHelp | DisplayVersion => err.exit(),
        _ => Error::Usage(err.render().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Result<Cli> {
        parse(std::iter::once("rgunicorn").chain(args.iter().copied()))
    }

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn gunicorn_flags_fill_the_partial() {
        let c = cli(&[
            "app:application",
            "-b",
            "0.0.0.0:80",
            "--bind",
            "unix:/s",
            "-w",
            "3",
            "-k",
            "gthread",
            "-t",
            "0",
            "--keep-alive",
            "5",
            "--preload",
            "-e",
            "A=1",
            "--env",
            "B=2",
            "--log-file",
            "/tmp/e",
            "-n",
            "web",
            "--limit-request-field_size",
            "9",
            "--forwarded-allow-ips",
            "10.0.0.1,10.0.0.2",
            "--pythonpath",
            "a,b",
            "--reuse-port",
        ])
        .unwrap();
        let s = &c.settings;
        assert_eq!(s.wsgi_app.as_deref(), Some("app:application"));
        assert_eq!(s.bind.as_ref().unwrap(), &["0.0.0.0:80", "unix:/s"]);
        assert_eq!(
            (s.workers, s.timeout, s.keepalive),
            (Some(3), Some(0.0), Some(5.0))
        );
        assert_eq!(s.worker_class.as_deref(), Some("gthread"));
        assert_eq!((s.preload_app, s.reuse_port), (Some(true), Some(true)));
        assert_eq!(s.raw_env.as_ref().unwrap(), &["A=1", "B=2"]);
        assert_eq!(s.errorlog.as_deref(), Some("/tmp/e"));
        assert_eq!(s.proc_name.as_deref(), Some("web"));
        assert_eq!(s.limit_request_field_size, Some(9));
        assert_eq!(
            s.forwarded_allow_ips.as_ref().unwrap(),
            &["10.0.0.1", "10.0.0.2"]
        );
        assert_eq!(s.pythonpath.as_ref().unwrap(), &["a", "b"]);
    }

    #[test]
    fn absent_flags_stay_unset() {
        let c = cli(&["-c", "/etc/r.toml", "--check-config"]).unwrap();
        assert_eq!(c.settings, Partial::default());
        assert_eq!(c.config, Some(PathBuf::from("/etc/r.toml")));
        assert!(c.check_config && !c.print_config);
    }

    #[test]
    fn dashed_field_size_alias_and_preload_false() {
        let c = cli(&["--limit-request-field-size", "7", "--preload=false"]).unwrap();
        assert_eq!(c.settings.limit_request_field_size, Some(7));
        assert_eq!(c.settings.preload_app, Some(false));
    }

    #[test]
    fn parse_errors_are_usage_errors() {
        for args in [&["--workers", "four"][..], &["--no-such-flag"], &["a", "b"]] {
            assert!(matches!(cli(args), Err(Error::Usage(_))), "{args:?}");
        }
    }

    #[test]
    fn env_args_are_shell_split() {
        let words = r#"--name 'my web' -e "GREETING=hello world" -w 2"#;
        let c = parse_env_args("RGUNICORN_CMD_ARGS", words).unwrap();
        assert_eq!(c.settings.proc_name.as_deref(), Some("my web"));
        assert_eq!(c.settings.raw_env.unwrap(), ["GREETING=hello world"]);
        assert_eq!(c.settings.workers, Some(2));
        assert!(matches!(
            parse_env_args("GUNICORN_CMD_ARGS", "--name 'open"),
            Err(Error::Usage(_))
        ));
    }
}
