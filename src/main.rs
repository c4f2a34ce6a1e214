//! The rgunicorn binary: loads settings, starts logging, runs the master; the only place that
//! turns an Error into a message and an exit code.
use rgunicorn::config::{self, Action, Environment};
use rgunicorn::{logging, master, Result};

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("Error: {error}");
            error.exit_code()
        }
    };
    std::process::exit(code);
}

fn run() -> Result<i32> {
    let argv: Vec<_> = std::env::args_os().collect();
    let env = Environment::from_process();
    let (settings, action) = config::load(argv.clone(), &env)?;
    match action {
        Action::CheckConfig => {
            println!("Configuration OK");
            Ok(0)
        }
        Action::PrintConfig => {
            print!("{}", settings.to_toml());
            Ok(0)
        }
        Action::Run => {
            logging::init(&settings)?;
            master::run(settings, argv, env)
        }
    }
}
