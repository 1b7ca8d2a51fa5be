//! `synqlite-server`: command line entry point. Subcommands:
//! - `migrate new <name> [--dir schema]`: create `<dir>/<unix-ts>_<name>.sql`;
//! - `migrate check [--dir schema]`: check names, order and idempotence of `<dir>/*.sql`.
//!
//! Exit status: 0 on success, 1 when `check` finds problems or an operation fails, 2 for
//! usage errors.

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use synqlite_server::migrate;

#[derive(Parser)]
#[command(
    name = "synqlite-server",
    version,
    about = "synqlite's server and schema tooling"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Ordered schema migrations (`<unix-ts>_<name>.sql` files).
    Migrate {
        #[command(subcommand)]
        action: Migrate,
    },
}

#[derive(Subcommand)]
enum Migrate {
    /// Create `<dir>/<unix-ts>_<name>.sql`, ordered after every existing migration.
    New {
        /// What the migration does, in lowercase snake case (e.g. add_playlists).
        name: String,
        /// Folder of migration files.
        #[arg(long, default_value = "schema")]
        dir: PathBuf,
    },
    /// Check names, order and idempotence of every `.sql` file in `<dir>` (each runs twice, in
    /// order, on an in-memory database).
    Check {
        /// Folder of migration files.
        #[arg(long, default_value = "schema")]
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Migrate { action } => match run_migrate(action) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

fn run_migrate(action: Migrate) -> Result<ExitCode, migrate::MigrateError> {
    match action {
        Migrate::New { name, dir } => {
            let path = migrate::new_migration(&dir, &name, migrate::unix_now())?;
            println!("created {}", path.display());
            Ok(ExitCode::SUCCESS)
        }
        Migrate::Check { dir } => {
            let report = migrate::check_dir(&dir)?;
            if report.problems.is_empty() {
                println!(
                    "ok: {} migration(s) in {} are well named, ordered and idempotent",
                    report.files,
                    dir.display()
                );
                return Ok(ExitCode::SUCCESS);
            }
            for p in &report.problems {
                eprintln!("{}: {}", dir.join(&p.file).display(), p.message);
            }
            eprintln!(
                "{} problem(s) in {} file(s) of {}",
                report.problems.len(),
                report.files,
                dir.display()
            );
            Ok(ExitCode::FAILURE)
        }
    }
}
