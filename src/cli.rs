//! The command line, shared by the cargo binary (main.rs) and the wheel's `main(argv)`
//! (wsgi/module.rs): loads the settings, answers --check-config and --print-config, starts logging
//! and runs the master, or hands `rgunicorn ctl ...` to `ctl`. The only place that turns an Error into a message and an exit code; never
//! forks or binds itself.
use std::ffi::OsString;
use std::path::PathBuf;

use crate::config::{self, Action, Environment, Settings};
use crate::wsgi::{self, ConfigReader};
use crate::{logging, master, Result};

/// How to start this program again with the same arguments (USR2): the cargo binary, or the
/// wheel's Python interpreter with the command line it was given (`sys.orig_argv`).
#[derive(Debug, Clone)]
pub struct Program {
    pub executable: PathBuf,
    /// The arguments after the executable's own name.
    pub args: Vec<OsString>,
}

/// Runs rgunicorn with `argv` (program name first); returns the process exit code.
pub fn run(argv: Vec<OsString>, program: Program) -> i32 {
    if argv.get(1).is_some_and(|word| word == "ctl") {
        return crate::ctl::main(&argv[2..]);
    }
    match try_run(argv, program) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Error: {error}");
            error.exit_code()
        }
    }
}

fn try_run(argv: Vec<OsString>, program: Program) -> Result<i32> {
    let env = Environment::from_process();
    let reader = ConfigReader::default();
    let (settings, action) = config::load_with(argv.clone(), &env, &reader)?;
    wsgi::hooks::commit(&settings.hooks);
    match action {
        Action::CheckConfig => {
            print_warnings(&reader);
            check_app(&settings)?;
            println!("Configuration OK");
            Ok(0)
        }
        Action::PrintConfig => {
            print_warnings(&reader);
            print!("{}", settings.to_toml());
            Ok(0)
        }
        Action::Run => {
            logging::init(&settings)?;
            for warning in reader
                .take_warnings()
                .into_iter()
                .chain(foreign_virtualenv(&settings))
            {
                tracing::warn!("{warning}");
            }
            master::run(settings, argv, env, program)
        }
    }
}

/// From the wheel, the server runs in the interpreter that started it: another virtualenv
/// (`--virtualenv`, VIRTUAL_ENV) cannot be used.
fn foreign_virtualenv(settings: &Settings) -> Option<String> {
    let (prefix, venv) = (wsgi::host_prefix()?, settings.virtualenv.as_ref()?);
    let same = |a: &std::path::Path, b: &std::path::Path| match (a.canonicalize(), b.canonicalize())
    {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    (!same(prefix, venv)).then(|| {
        format!(
            "virtualenv {} is ignored: this rgunicorn runs in the Python of {}",
            venv.display(),
            prefix.display()
        )
    })
}

fn print_warnings(reader: &ConfigReader) {
    for warning in reader.take_warnings() {
        eprintln!("Warning: {warning}");
    }
}

/// gunicorn's --check-config imports the app too: here, in this process, which then exits.
fn check_app(settings: &Settings) -> Result<()> {
    crate::worker::start_python(settings)?;
    wsgi::App::load(&settings.wsgi_app).map(drop)
}
