//! `portway-server`: the headless, frps-compatible server.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use portway_server::cmdline::ServerFlags;
use portway_server::config::{LoadOptions, Loaded};
use portway_server::{Server, ServerConfig};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
#[command(
    name = "portway-server",
    version,
    disable_version_flag = true,
    about = "Portway server: accepts frp clients (frpc or portway-client) and opens their public ports",
    after_long_help = CONFIG_HELP
)]
struct Cli {
    /// The configuration file (frps.toml when neither it nor a flag below is given). With a file, the flags below
    /// are ignored, as frps ignores them.
    #[arg(short = 'c', long = "config", global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the version.
    #[arg(short = 'v', long = "version", short_alias = 'V', action = clap::ArgAction::Version)]
    version: Option<bool>,
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
    #[command(flatten)]
    flags: ServerFlags,
}

/// The configuration keys, shown by `--help` (the man page, portway-server(1), says the same at more length).
const CONFIG_HELP: &str = "\
Configuration (frps.toml, frps.yaml, frps.json or legacy frps.ini, with frp's keys; unknown keys are errors unless
--strict-config=false; `convert` prints any of them as TOML):
  bindAddr, bindPort                  where clients connect (default 0.0.0.0, 7000)
  proxyBindAddr                       address public proxy ports listen on (default: bindAddr)
  auth.method                         \"token\" (default) or \"oidc\"; an empty auth.token lets anyone in
  auth.token                          shared secret (also keys the control-channel cipher)
  auth.additionalScopes               [\"HeartBeats\", \"NewWorkConns\"]: authenticate those too
  auth.oidc.issuer                    required with oidc; must equal the tokens' iss byte for byte
  auth.oidc.audience                  when set, tokens' aud must contain it
  auth.oidc.skipExpiryCheck           default false
  auth.oidc.skipIssuerCheck           default false
  allowPorts                          e.g. [{ start = 20000, end = 20099 }, { single = 3001 }]; empty = all ports
  maxPortsPerClient                   public ports one client may hold (0 = no limit)
  userConnTimeout                     seconds to wait for a work connection (default 10)
  udpPacketSize                       largest UDP datagram relayed (default 1500, max 7500)
  transport.tcpMux                    yamux multiplexing, must match the clients (default true)
  transport.tcpMuxKeepaliveInterval   seconds (default 30)
  transport.heartbeatTimeout          seconds, without tcpMux (default 90)
  transport.maxPoolCount              work connections a client may pre-open (default 5)
  transport.tls.force                 refuse clients without TLS (default false)
  transport.tls.certFile, keyFile     server certificate (default: self-signed, made at start)
  transport.tls.trustedCaFile         require client certificates from this CA
  quicBindPort                        UDP port on bindAddr for QUIC clients (0 = off, default); kcpBindPort is refused
  transport.quic.keepalivePeriod      seconds (default 10); also maxIdleTimeout (30), maxIncomingStreams (100000)
  log.level                           trace, debug, info (default), warn, error; logs go to stderr
  webServer.port                      dashboard API (frps's /api/..., plus /api/portway/...); 0 = off (default)
  webServer.addr                      default 127.0.0.1; any other address requires webServer.password
  webServer.user, webServer.password  HTTP Basic auth for everything but /healthz
  webServer.tls.certFile, keyFile     serve the API over HTTPS
  enablePrometheus                    /metrics on the webServer (frp_server_* families, process_*)
Portway extensions, under [portway]:
  portway.tokenLeeway                 clock skew tolerated on exp/nbf, seconds (default 30)
  portway.maxLoginFailures            failed logins per address per minute before refusing it (default 10, 0 = off)
  portway.closeExpiredSessions        close sessions whose OIDC token expired (default false)
  [[portway.clients]]                 subject or clientID, allowPorts, allowProxyNames: per-client policy
  [portway.defaultClient]             allowPorts, allowProxyNames: the rule for every other client

Without -c, frps's flags (above) are the configuration: `portway-server -p 7000 -t secret --dashboard_port 7500`.
Packaged install: /etc/portway/frps.toml, systemd unit portway-server.service. See portway-server(1).";

#[derive(Subcommand)]
enum Cmd {
    /// Check the configuration file (or the flags, when they are given without -c) and exit.
    Verify,
    /// Print the configuration file (TOML, YAML, JSON or legacy INI) as current TOML on stdout.
    Convert,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Cmd::Convert) = cli.cmd {
        let path = cli.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_FILE));
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read config file {file}"))?;
        print!("{}", ServerConfig::convert(&text, &file)?);
        return Ok(());
    }
    let opts = LoadOptions { strict: cli.strict_config };
    let (loaded, source, ignored_flags) = load(&cli, opts)?;
    if let Some(Cmd::Verify) = cli.cmd {
        for w in &loaded.warnings {
            eprintln!("warning: {w}");
        }
        if ignored_flags {
            eprintln!("warning: configuration flags are ignored when -c gives a file (as frps does)");
        }
        match &source {
            Some(file) => println!("frps: the configuration file {} syntax is ok", file.display()),
            None => println!("frps: the command-line flags are ok"),
        }
        return Ok(());
    }
    init_logging(&loaded.config.log)?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    match &source {
        Some(file) => tracing::info!(file = %file.display(), "frps uses the configuration file"),
        None => tracing::info!("frps uses the command-line flags for its configuration"),
    }
    if source.is_none() && loaded.config.web_server.port != 0 && cli.flags.dashboard_pwd.is_none() {
        tracing::warn!(
            "the dashboard's password is frps's flag default \"admin\" (user \"admin\"): give --dashboard_pwd"
        );
    }
    if ignored_flags {
        tracing::warn!("configuration flags are ignored when -c gives a file (as frps does): put them in the file");
    }
    let rt = portway_proto::relay::runtime().context("cannot start the async runtime")?;
    rt.block_on(async move {
        let server = Server::new(loaded.config)?;
        let listener = server.bind().await?;
        if let Some(web) = server.bind_web().await? {
            server.serve_web(web)?;
        }
        #[cfg(unix)]
        tokio::spawn(log_stats_on_sigusr1(server.stats()));
        let shutdown = CancellationToken::new();
        let s2 = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            s2.cancel();
        });
        // On a worker, not on this thread: the accept loop then wakes no second thread per connection (the
        // worker that polled the listener's readiness accepts and runs the connection's task itself).
        tokio::spawn(server.run(listener, shutdown)).await.context("the server's task failed")?;
        anyhow::Ok(())
    })
}

/// The file used when neither -c nor a configuration flag is given (and it exists).
const DEFAULT_FILE: &str = "frps.toml";

/// frps's rule: a file given with -c is the configuration and the flags are ignored; without one, the flags are.
/// Portway also reads ./frps.toml when no flag is given and the file exists.
/// Returns the configuration, the file it came from (None: the flags) and whether flags were ignored.
fn load(cli: &Cli, opts: LoadOptions) -> anyhow::Result<(Loaded, Option<PathBuf>, bool)> {
    let file = match &cli.config {
        Some(path) => Some(path.clone()),
        None if !cli.flags.any() && std::path::Path::new(DEFAULT_FILE).exists() => Some(PathBuf::from(DEFAULT_FILE)),
        None => None,
    };
    match file {
        Some(path) => Ok((ServerConfig::load_with(&path, opts)?, Some(path), cli.flags.any())),
        None => {
            let loaded = cli.flags.load(opts).map_err(portway_server::cmdline::explain)?;
            Ok((loaded, None, false))
        }
    }
}

/// `log.*`: the level (`RUST_LOG` wins), the console or a file (`log.to`, rotated daily, `log.maxDays` kept).
fn init_logging(log: &portway_server::config::LogConfig) -> anyhow::Result<()> {
    let level = &log.level;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(format!("{level},tokio_yamux=warn")));
    portway_config::logfile::init(filter, &log.to, log.max_days, log.disable_print_color)?;
    Ok(())
}

/// `kill -USR1 <pid>` logs what the server holds: clients, proxies, connections being served, the runtime's
/// live tasks and the process's open file descriptors (the load test reads this line to count leaks).
#[cfg(unix)]
async fn log_stats_on_sigusr1(stats: portway_server::service::StatsHandle) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut usr1) = signal(SignalKind::user_defined1()) else { return };
    while usr1.recv().await.is_some() {
        let s = stats.get().await;
        let runtime_tasks = tokio::runtime::Handle::current().metrics().num_alive_tasks();
        let open_fds = tokio::task::spawn_blocking(|| std::fs::read_dir("/proc/self/fd").map(|d| d.count()).ok())
            .await
            .ok()
            .flatten();
        tracing::info!(
            clients = s.clients,
            proxies = s.proxies,
            connections = s.tasks,
            runtime_tasks,
            open_fds = open_fds.unwrap_or(0),
            "stats"
        );
    }
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
