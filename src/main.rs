//! `camcert`: parse flags, resolve a plan, run it, map the outcome to an
//! exit code (0 every mandatory case passed, 1 a case failed or the run was
//! interrupted, 2 the run could not be carried out; 130 / 143 when a second
//! SIGINT / SIGTERM ends the process at once, see `app::watch_signals`).

use std::process::ExitCode;

use clap::Parser;

use camcert::cli::{Cli, Command};

/// mimalloc rather than the C library's allocator: the load generator and
/// the reference platform allocate and free small objects at a high rate,
/// and with tens of thousands of registrations held, glibc's allocator
/// spent a growing share of the time walking its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // No transparent huge pages: the allocator asks for them, and the
    // kernel then zeroes 2 MiB at the first touch of each, for memory a
    // fleet touches a few hundred bytes at a time; that showed as a third
    // of a registration storm's CPU in some runs, and inflated RSS.
    #[cfg(target_os = "linux")]
    // SAFETY: prctl with PR_SET_THP_DISABLE takes plain integers.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("Error: cannot start the runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let code = rt.block_on(async {
        match cli.command {
            Command::Run(a) => camcert::app::run(a).await,
            Command::List { paths } => camcert::app::list(&paths),
            Command::Serve(a) => camcert::app::serve(a).await,
            Command::Load(camcert::cli::LoadCommand::Gb28181(a)) => camcert::app::load(a).await,
            Command::Load(camcert::cli::LoadCommand::Hemu(a)) => camcert::app::load_hemu(a).await,
            Command::Load(camcert::cli::LoadCommand::Platform(a)) => {
                camcert::app::load_platform(a).await
            }
            Command::Schema { catalog } => camcert::app::schema(catalog),
            Command::Report(r) => camcert::app::report(r),
            Command::Decode(a) => camcert::app::decode(a),
            Command::Lint(a) => camcert::app::lint(a),
            Command::Replay(a) => camcert::app::replay(a),
        }
    });
    match code {
        Ok(c) => ExitCode::from(c as u8),
        Err(e) => {
            eprintln!("Error: {e:#}");
            ExitCode::from(2)
        }
    }
}
