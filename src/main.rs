//! The cargo binary: hands its command line to `cli::run`, which embeds CPython only where it must
//! (workers, the zygote, a master that reads a Python config or preloads the app).
use rgunicorn::cli::{self, Program};

fn main() {
    let argv: Vec<_> = std::env::args_os().collect();
    let executable = std::env::current_exe().unwrap_or_else(|_| argv[0].clone().into());
    let program = Program {
        executable,
        args: argv.iter().skip(1).cloned().collect(),
    };
    std::process::exit(cli::run(argv, program));
}
