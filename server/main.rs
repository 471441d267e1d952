//! The `allauth-server` command: `serve` (default) with optional overrides.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "allauth-server",
    version,
    about = "An authentication server speaking the django-allauth headless API v1"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// Manage users (list, show, create, set-password, deactivate, activate, delete).
    #[command(subcommand)]
    Users(allauth_server::admin::UsersCommand),
    /// End sessions.
    #[command(subcommand)]
    Sessions(allauth_server::admin::SessionsCommand),
    /// Inspect and retry the mail outbox.
    #[command(subcommand)]
    Outbox(allauth_server::admin::OutboxCommand),
    /// Import users from another system's database (django-allauth).
    #[command(subcommand)]
    Import(allauth_server::import::ImportCommand),
    /// Validate a configuration.
    #[command(subcommand)]
    Config(allauth_server::admin::ConfigCommand),
    /// List the operationIds of the API, one per line.
    Operations {
        /// Only those this build implements.
        #[arg(long, conflicts_with = "unbuilt")]
        implemented: bool,
        /// Only those not built yet.
        #[arg(long)]
        unbuilt: bool,
    },
}

#[derive(clap::Args, Debug, Default, Clone)]
struct ServeArgs {
    /// TOML configuration file (see allauth-server.example.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8000 (overrides [server] bind).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
    /// Database URL: sqlite://path or postgres://… (overrides [database] url).
    #[arg(long, value_name = "URL")]
    database_url: Option<String>,
}

/// Prints an admin command's output, or its error (with its causes, no
/// backtrace) for exit status 1. The process then ends normally, after the
/// runtime and the database pool shut down.
fn report(result: anyhow::Result<String>) -> ExitCode {
    match result {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(1)
        }
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
async fn termination() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// The configuration with the command line's overrides.
fn load(args: &ServeArgs) -> anyhow::Result<allauth_server::config::Config> {
    let mut config = allauth_server::config::Config::load(args.config.as_deref())?;
    if let Some(bind) = &args.bind {
        config.server.bind = bind.clone();
    }
    if let Some(url) = &args.database_url {
        config.database.url = url.clone();
    }
    Ok(config)
}

#[tokio::main]
async fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Operations {
            implemented,
            unbuilt,
        }) => {
            for op in allauth_api::OPERATIONS.iter() {
                let built = allauth_server::app::features::is_implemented(op.id);
                if (!implemented && !unbuilt) || (implemented && built) || (unbuilt && !built) {
                    println!("{}", op.operation_id);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        Some(Command::Config(allauth_server::admin::ConfigCommand::Check { file })) => {
            return Ok(report(allauth_server::admin::config_check(&file)));
        }
        Some(Command::Import(allauth_server::import::ImportCommand::Django(mut args))) => {
            // `--config`/`--database-url` before the command work too, as
            // for the admin commands.
            args.config = args.config.or(cli.serve.config);
            args.database_url = args.database_url.or(cli.serve.database_url);
            return Ok(report(allauth_server::import::django(args).await));
        }
        Some(Command::Users(command)) => {
            let config = load(&cli.serve)?;
            return Ok(report(allauth_server::admin::users(config, command).await));
        }
        Some(Command::Sessions(command)) => {
            let config = load(&cli.serve)?;
            return Ok(report(
                allauth_server::admin::sessions(config, command).await,
            ));
        }
        Some(Command::Outbox(command)) => {
            let config = load(&cli.serve)?;
            return Ok(report(allauth_server::admin::outbox(config, command).await));
        }
        None => cli.serve,
    };
    let config = load(&args)?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(config.server.log_level.clone())
            }),
        )
        .init();
    let grace = std::time::Duration::from_secs(config.server.shutdown_timeout);
    let server = allauth_server::start(config).await?;
    allauth_server::admin::keep_until_exit(&server.context().db);
    eprintln!("allauth-server listening on http://{}", server.local_addr());
    server
        .serve_until(termination(), grace)
        .await
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
