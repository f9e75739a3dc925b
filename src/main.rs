use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    limit_malloc_arenas();
    private_files();
    let cli = mailbeacon::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("MAILBEACON_LOG")
                .unwrap_or_else(|_| "mailbeacon=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(mailbeacon::cli::run(cli)) {
        Ok(code) => code,
        // The reader of our output has gone (`mailbeacon stats | head`): what it wanted, it has.
        Err(e) if closed_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn closed_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// glibc gives each thread that contends for the allocator an arena of its own (up to 8 per core)
/// and keeps their freed memory: under load that was 10-15 MB of the server's peak for no speed
/// (`MALLOC_ARENA_MAX=2 bench/run --webhook`: peak 60 MB against 70-75 MB, the same req/s). Two
/// arenas, unless the environment says otherwise.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: called before any other thread exists; mallopt only sets an allocator parameter.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}

/// Files mailbeacon creates (the database with its signing keys, webhook secrets and personal
/// data, its WAL, the journal, exports) are readable by their owner only: 0600, directories 0700.
fn private_files() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}
