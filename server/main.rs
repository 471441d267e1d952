//! The `allauth-server` command: `serve` (default) with optional overrides.

use std::path::PathBuf;

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
            return Ok(());
        }
        None => cli.serve,
    };
    let mut config = allauth_server::config::Config::load(args.config.as_deref())?;
    if let Some(bind) = args.bind {
        config.server.bind = bind;
    }
    if let Some(url) = args.database_url {
        config.database.url = url;
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new(config.server.log_level.clone())
            }),
        )
        .init();
    let server = allauth_server::start(config).await?;
    eprintln!("allauth-server listening on http://{}", server.local_addr());
    server.wait().await.map_err(anyhow::Error::msg)
}
