//! `portway-server`: the headless, frps-compatible server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portway_server::{Server, ServerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "portway-server",
    version,
    about = "Portway server: accepts frp clients (frpc or portway-client) and opens their public ports"
)]
struct Cli {
    /// frps.toml to load.
    #[arg(short = 'c', long = "config", global = true, default_value = "frps.toml")]
    config: PathBuf,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check the configuration file and exit.
    Verify,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let loaded = ServerConfig::load(&cli.config)?;
    if let Some(Cmd::Verify) = cli.cmd {
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        println!("frps: the configuration file {} syntax is ok", cli.config.display());
        return Ok(());
    }
    init_logging(&loaded.config.log.level);
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let rt = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let server = Server::new(loaded.config)?;
        let listener = server.bind().await?;
        let shutdown = CancellationToken::new();
        let s2 = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            s2.cancel();
        });
        server.run(listener, shutdown).await;
        anyhow::Ok(())
    })
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},tokio_yamux=warn")));
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).init();
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
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
