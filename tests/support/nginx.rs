//! A real nginx (Debian's) on 127.0.0.1, started per test: in front of the server forwarding WebSocket upgrades, or
//! serving files as a service behind a tunnel. It runs as one process (`master_process off`), so killing it on drop
//! leaves no worker behind.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

pub struct Nginx {
    pub port: u16,
    dir: PathBuf,
    child: Child,
}

/// nginx's binary, if installed (scripts/test.sh installs nginx-light).
pub fn binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| "nginx".into())
}

impl Nginx {
    /// Proxies `/~!frp` on a new port to `upstream_port`; with `tls`, terminates TLS with the given cert/key first.
    pub async fn start(upstream_port: u16, tls: Option<(&std::path::Path, &std::path::Path)>) -> Nginx {
        let port = super::free_port();
        let listen = match tls {
            Some((cert, key)) => format!(
                "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};",
                cert.display(),
                key.display()
            ),
            None => format!("listen 127.0.0.1:{port};"),
        };
        let server = format!(
            "    {listen}\n    location /~!frp {{\n      proxy_pass http://127.0.0.1:{upstream_port};\n      proxy_http_version 1.1;\n\
      proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection \"upgrade\";\n      proxy_set_header Host $host;\n\
      proxy_read_timeout 3600s;\n      proxy_buffering off;\n    }}\n"
        );
        Self::run(port, &server).await
    }

    /// Serves the files under `root` (and echoes the Host it was asked for in `X-Seen-Host`) on a new port.
    pub async fn file_server(root: &std::path::Path) -> Nginx {
        let port = super::free_port();
        let server = format!(
            "    listen 127.0.0.1:{port};\n    root {};\n    add_header X-Seen-Host $http_host always;\n",
            root.display()
        );
        Self::run(port, &server).await
    }

    async fn run(port: u16, server: &str) -> Nginx {
        let dir = std::env::temp_dir().join(format!("portway-nginx-{}-{}", std::process::id(), rand::random::<u32>()));
        std::fs::create_dir_all(dir.join("tmp")).expect("nginx dir");
        let d = dir.display();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
events {{ worker_connections 1024; }}\n\
http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp; fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
  server {{\n{server}  }}\n}}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).expect("write nginx.conf");
        let child = Command::new(binary())
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-p")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start nginx (apt-get install nginx-light)");
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return Nginx { port, dir, child };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
        panic!("nginx did not start listening on {port}: {log}");
    }

    /// nginx's access log (proof that traffic went through it).
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
