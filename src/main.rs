//! The `hookgate` binary: parse the command line, load settings, start telemetry,
//! run the subcommand, and turn the result into an exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use hookgate::config::Settings;
use hookgate::secret::{TokenDigest, encode_hex, generate_admin_token};
use hookgate::store::Store;
use uuid::Uuid;

/// jemalloc instead of the C library's allocator: a cache of 100 000 triggers takes
/// about a third of the memory (glibc keeps per-thread arenas it rarely returns), and
/// the request path's small allocations are cheaper. See README "Performance".
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// Reverse-proxy authentication gateway for inbound webhooks.
#[derive(Parser)]
#[command(version, about, long_about = None)]
struct Cli {
    /// Configuration file [default: $HOOKGATE_CONFIG, else config/hookgate.toml].
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply pending migrations (unless --no-migrate), then serve both ports until
    /// SIGTERM or SIGINT; SIGHUP reloads TLS certificates.
    Serve {
        /// Do not apply migrations; serve only if the schema is already current.
        #[arg(long)]
        no_migrate: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Mint a new admin token: prints the token once on stderr, and on stdout the
    /// [[admin.tokens]] entry (its SHA-256 digest only) to append to the configuration.
    AdminToken {
        /// The actor name recorded in audit events.
        #[arg(long, default_value = "operator")]
        name: String,
        /// The actor id recorded in audit events [default: a new UUID].
        #[arg(long)]
        actor_id: Option<Uuid>,
    },
    /// Validate the configuration, report every problem at once, exit 0 when valid.
    CheckConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::AdminToken { name, actor_id } = &cli.command {
        print_admin_token(name, actor_id.unwrap_or_else(Uuid::new_v4));
        return ExitCode::SUCCESS;
    }

    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(settings) => settings,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        println!("configuration is valid");
        return ExitCode::SUCCESS;
    }

    hookgate::telemetry::init(&settings.log);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cannot start the runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("hookgate: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { no_migrate } => {
            let options = hookgate::StartOptions {
                migrate: !no_migrate,
            };
            let gateway = hookgate::start(settings, options).await?;
            hookgate::shutdown::terminate_signal().await?;
            gateway.shutdown().await;
            Ok(())
        }
        Command::Migrate => {
            Store::connect(&settings.database)?.migrate().await?;
            println!("migrations are current");
            Ok(())
        }
        Command::AdminToken { .. } | Command::CheckConfig => Ok(()),
    }
}

fn print_admin_token(name: &str, actor_id: Uuid) {
    let token = generate_admin_token();
    let digest = TokenDigest::of(token.expose().as_bytes());
    // The token goes to stderr, the entry to stdout: `hookgate admin-token >> file`
    // appends the entry and never writes the secret into the configuration.
    eprintln!("Admin token (shown once; send it as `Authorization: Bearer <token>`):");
    eprintln!("{}", token.expose());
    println!("[[admin.tokens]]");
    println!("name = {name:?}");
    println!("actor_id = \"{actor_id}\"");
    println!("token_sha256 = \"{}\"", encode_hex(digest.as_bytes()));
}
