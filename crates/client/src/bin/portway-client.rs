//! `portway-client`: the headless, frpc-compatible client.

use std::path::PathBuf;

use anyhow::Context;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use portway_client::config::{LoadOptions, Loaded};
use portway_client::{cmdline, ClientConfig, SecretSource};

#[derive(Parser)]
#[command(
    name = "portway-client",
    version,
    disable_version_flag = true,
    about = "Portway client: exposes local services through a Portway server or frps",
    after_help = "Without a file: `portway-client tcp -s SERVER -t TOKEN -n NAME -l LOCAL_PORT -r REMOTE_PORT` (frpc's \
                  proxy subcommands tcp, udp, http, https, tcpmux, stcp, sudp, xtcp, and `stcp|sudp|xtcp visitor`; \
                  `portway-client tcp --help` lists their flags)."
)]
struct Cli {
    /// Print the version.
    #[arg(short = 'v', long = "version", short_alias = 'V', action = clap::ArgAction::Version)]
    version: Option<bool>,
    /// frpc's --config_dir: run one client for each file in this directory (and the directories under it).
    #[arg(long = "config_dir", alias = "config-dir", value_name = "DIR", conflicts_with = "config")]
    config_dir: Option<PathBuf>,
    /// frpc.toml to load.
    #[arg(short = 'c', long = "config", global = true, default_value = "frpc.toml")]
    config: PathBuf,
    /// frp's --strict-config: an unknown key is an error (true, the default) or a warning (false).
    #[arg(
        long = "strict-config",
        alias = "strict_config",
        global = true,
        default_value_t = true,
        action = clap::ArgAction::Set,
        num_args = 0..=1,
        default_missing_value = "true",
        value_name = "BOOL"
    )]
    strict_config: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Check the configuration file and exit.
    Verify,
    /// Print the configuration file (TOML, YAML, JSON or legacy INI) as current TOML on stdout.
    Convert,
    /// Fetch an access token with the configured OIDC credentials and show what it says (never the token).
    Token,
    /// Check the way to the server step by step (DNS, TCP connect, TLS certificate, token request, login) and say
    /// what to do about the first step that fails. Exits 1 when a step fails.
    Check,
    /// Show the proxies of the client running with this file (through its admin API, webServer.*).
    Status,
    /// Make the client running with this file apply it again: new proxies start, changed ones restart, the others
    /// keep their connections.
    Reload,
    /// Stop the client running with this file.
    Stop,
}

fn main() -> anyhow::Result<()> {
    let matches = Cli::command().subcommands(cmdline::commands()).get_matches();
    if let Some((kind, sub)) = matches.subcommand() {
        if cmdline::PROXY_TYPES.contains(&kind) {
            let strict = matches.get_one::<bool>("strict_config").copied().unwrap_or(true);
            let loaded = cmdline::load(kind, sub, LoadOptions { strict }).map_err(cmdline::explain)?;
            return run(vec![(loaded, None)]);
        }
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    if let Some(dir) = &cli.config_dir {
        return run_dir(dir, LoadOptions { strict: cli.strict_config });
    }
    if let Some(Cmd::Convert) = cli.cmd {
        let file = cli.config.display().to_string();
        let text = std::fs::read_to_string(&cli.config).with_context(|| format!("cannot read config file {file}"))?;
        print!("{}", ClientConfig::convert(&text, &file)?);
        return Ok(());
    }
    let opts = portway_client::config::LoadOptions { strict: cli.strict_config };
    let loaded = ClientConfig::load_with(&cli.config, opts)?;
    if let Some(Cmd::Verify) = cli.cmd {
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        println!("frpc: the configuration file {} syntax is ok", cli.config.display());
        return Ok(());
    }
    if let Some(cmd @ (Cmd::Status | Cmd::Reload | Cmd::Stop)) = &cli.cmd {
        let file = cli.config.display().to_string();
        let rt = portway_proto::relay::runtime().context("cannot start the async runtime")?;
        let cfg = &loaded.config;
        use portway_client::admin::cli;
        let r = rt.block_on(async {
            match cmd {
                Cmd::Status => cli::status(cfg, &file).await.map(|t| print!("{t}")),
                Cmd::Reload => cli::reload(cfg, &file).await.map(|()| println!("reload success")),
                _ => cli::stop(cfg, &file).await.map(|()| println!("stop success")),
            }
        });
        if let Err(e) = r {
            println!("{e}");
            std::process::exit(1);
        }
        return Ok(());
    }
    if let Some(Cmd::Check) = cli.cmd {
        let rt = portway_proto::relay::runtime().context("cannot start the async runtime")?;
        let steps = rt.block_on(portway_client::diagnose::check(&loaded.config, &SecretSource::FromConfig));
        print!("{}", portway_client::diagnose::render(&steps));
        if steps.iter().any(|s| s.outcome == portway_client::diagnose::Outcome::Fail) {
            std::process::exit(1);
        }
        return Ok(());
    }
    if let Some(Cmd::Token) = cli.cmd {
        let cfg = loaded.config;
        anyhow::ensure!(
            cfg.auth.method == "oidc",
            "{}: auth.method is not \"oidc\"; nothing to fetch",
            cli.config.display()
        );
        let rt = portway_proto::relay::runtime().context("cannot start the async runtime")?;
        let secret = portway_client::Secret::new(cfg.auth.oidc.client_secret.clone());
        let info = rt.block_on(portway_client::oidc::test_sign_in(&cfg.auth.oidc, secret, cfg.resolver()))?;
        println!("issuer:    {}", info.issuer);
        println!("subject:   {}", info.subject);
        println!("client:    {}", info.client_id);
        println!("audience:  {}", info.audience.join(", "));
        println!("scope:     {}", info.scope);
        println!("algorithm: {}", info.algorithm);
        println!("expires:   in {} s (exp {})", info.expires_in, info.expires_at);
        return Ok(());
    }
    run(vec![(loaded, Some(cli.config))])
}

/// frpc's --config_dir: every file under `dir` is a client's configuration; one that does not load is reported
/// and the others run (frpc's rule).
fn run_dir(dir: &std::path::Path, opts: LoadOptions) -> anyhow::Result<()> {
    let mut files = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("cannot read --config_dir {}", d.display()))?;
        for e in entries {
            let path = e.with_context(|| format!("cannot read --config_dir {}", d.display()))?.path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    files.sort();
    let mut clients = Vec::new();
    for path in files {
        match ClientConfig::load_with(&path, opts) {
            Ok(loaded) => clients.push((loaded, Some(path))),
            Err(e) => eprintln!("error: {e}; this file's client does not run"),
        }
    }
    anyhow::ensure!(!clients.is_empty(), "--config_dir {}: no file in it loads; nothing to run", dir.display());
    run(clients)
}

/// Runs one client per configuration (its file, when it has one, is what the admin API reloads) until a signal
/// or until every client has stopped.
fn run(clients: Vec<(Loaded, Option<PathBuf>)>) -> anyhow::Result<()> {
    // One process, one log: the first configuration's `log.*` (the level, the console or a file).
    let log = clients.first().map(|(l, _)| l.config.log.clone()).unwrap_or_default();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{},tokio_yamux=warn", log.level)));
    portway_config::logfile::init(filter, &log.to, log.max_days, log.disable_print_color)?;
    let rt = portway_proto::relay::runtime().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let mut tasks = Vec::new();
        for (loaded, file) in clients {
            for w in &loaded.warnings {
                tracing::warn!("{w}");
            }
            match &file {
                Some(f) => tracing::info!(file = %f.display(), "frpc uses the configuration file"),
                None => tracing::info!("frpc uses the command-line flags for its configuration"),
            }
            let admin = &loaded.config.web_server;
            let admin_listener = if admin.port != 0 {
                let addr = format!("{}:{}", admin.addr, admin.port);
                Some(tokio::net::TcpListener::bind(&addr).await.with_context(|| {
                    format!("cannot listen on {addr} for the admin API (port taken? change webServer.port)")
                })?)
            } else {
                None
            };
            let (user, password) = (admin.user.clone(), admin.password.clone());
            let handle = std::sync::Arc::new(portway_client::start(loaded.config, SecretSource::FromConfig));
            let cancel = handle.cancel_token();
            if let (Some(l), Some(f)) = (admin_listener, &file) {
                let api = portway_client::admin::Admin::new(handle.clone(), f.clone(), &user, &password);
                tokio::spawn(portway_client::admin::serve(l, std::sync::Arc::new(api), cancel.clone()));
            }
            let stop = shutdown.clone();
            tokio::spawn(async move {
                stop.cancelled().await;
                cancel.cancel();
            });
            tasks.push(tokio::spawn(async move { handle.finished().await }));
        }
        #[cfg(unix)]
        tokio::spawn(log_stats_on_sigusr1());
        let stop = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            stop.cancel();
        });
        let mut first_error = None;
        for t in tasks {
            if let Err(e) = t.await.context("a client's task failed")?.map_err(anyhow::Error::from) {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    })
}

/// `kill -USR1 <pid>` logs the runtime's live tasks and the process's open file descriptors (read by the load
/// test to count leaks).
#[cfg(unix)]
async fn log_stats_on_sigusr1() {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return };
    while usr1.recv().await.is_some() {
        let runtime_tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let open_fds = tokio::task::spawn_blocking(|| std::fs::read_dir("/proc/self/fd").map(|d| d.count()).ok())
            .await
            .ok()
            .flatten();
        tracing::info!(runtime_tasks, open_fds = open_fds.unwrap_or(0), "stats");
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
