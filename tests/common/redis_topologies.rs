//! Real Redis deployments beyond one server, spawned per test on free
//! ports: a Sentinel (`redis-sentinel`) watching a master and replica, a
//! Redis Cluster made by `redis-cli --cluster create`, and TLS in front of
//! a plain redis-server by `stunnel4` with a CA made by `openssl` (Debian's
//! redis-server has no TLS of its own). scripts/test.sh installs them.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::redis_server::{RedisServer, TempDir, free_port};

/// A process killed on drop.
struct Process(Child);

impl Process {
    /// Writes `conf` to `file` and runs `program` on it, quietly.
    fn with_config(program: &str, file: &Path, conf: String) -> Self {
        std::fs::write(file, conf).expect("config file");
        let child = Command::new(program)
            .arg(file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{program} runs (scripts/test.sh installs it): {e}"));
        Self(child)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if ready() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("{what} was not ready within {timeout:?}");
}

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// One `redis-sentinel` watching a master under `master_name`, failing it
/// over half a second after it stops answering.
pub struct Sentinel {
    pub port: u16,
    pub password: Option<String>,
    _process: Process,
    _dir: TempDir,
}

impl Sentinel {
    /// `master_password` is the master's (and replica's) `requirepass`;
    /// `password` the sentinel's own.
    pub fn start(
        master_port: u16,
        master_name: &str,
        master_password: Option<&str>,
        password: Option<&str>,
    ) -> Self {
        let dir = TempDir::new("sentinel");
        let port = free_port();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\n\
             sentinel monitor {master_name} 127.0.0.1 {master_port} 1\n\
             sentinel down-after-milliseconds {master_name} 500\n\
             sentinel failover-timeout {master_name} 2000\n",
            dir.0.display()
        );
        if let Some(p) = master_password {
            conf.push_str(&format!("sentinel auth-pass {master_name} {p}\n"));
        }
        if let Some(p) = password {
            conf.push_str(&format!("requirepass {p}\n"));
        }
        let process = Process::with_config("redis-sentinel", &dir.file("sentinel.conf"), conf);
        let sentinel = Self {
            port,
            password: password.map(str::to_string),
            _process: process,
            _dir: dir,
        };
        wait_for("redis-sentinel", Duration::from_secs(10), || {
            sentinel.master_port(master_name) == Some(master_port)
        });
        sentinel
    }

    /// The master's port as this sentinel names it now.
    pub fn master_port(&self, master_name: &str) -> Option<u16> {
        let port = self.port.to_string();
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port]);
        if let Some(p) = &self.password {
            cmd.args(["--no-auth-warning", "-a", p]);
        }
        let out = cmd
            .args(["SENTINEL", "get-master-addr-by-name", master_name])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)?
            .trim()
            .parse()
            .ok()
    }
}

/// A master and its replica (fully synced before this returns).
pub fn master_and_replica(password: Option<&str>) -> (RedisServer, RedisServer) {
    let password = password.map(str::to_string);
    let master = RedisServer::start_on(free_port(), password.clone(), Vec::new());
    let replicaof = vec![
        "--replicaof".into(),
        "127.0.0.1".into(),
        master.port.to_string(),
    ];
    let replica = RedisServer::start_on(free_port(), password, replicaof);
    wait_for("the replica's sync", Duration::from_secs(10), || {
        replica
            .cli(&["INFO", "replication"])
            .contains("master_link_status:up")
    });
    (master, replica)
}

/// A port whose cluster bus port (+10000) is free too.
fn cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && std::net::TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A Redis Cluster of `n` primaries and no replicas, slots spread by
/// `redis-cli --cluster create`.
pub struct Cluster {
    pub nodes: Vec<RedisServer>,
}

impl Cluster {
    pub fn start(n: usize) -> Self {
        let nodes: Vec<RedisServer> = (0..n)
            .map(|_| {
                let args = [
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes-{port}.conf",
                ];
                let args = args.into_iter().map(String::from).collect();
                RedisServer::start_on(cluster_port(), None, args)
            })
            .collect();
        let addrs: Vec<String> = nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .expect("redis-cli --cluster create runs");
        assert!(
            out.status.success(),
            "cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        wait_for("the cluster", Duration::from_secs(20), || {
            nodes.iter().all(|s| {
                let info = s.cli(&["CLUSTER", "INFO"]);
                info.contains("cluster_state:ok")
                    && info.contains(&format!("cluster_known_nodes:{n}"))
            })
        });
        Self { nodes }
    }

    /// `host:port` of every node, as `redis.cluster_nodes` takes them.
    pub fn addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect()
    }

    /// Keys on every node matching `pattern`.
    pub fn keys(&self, pattern: &str) -> Vec<String> {
        self.nodes
            .iter()
            .flat_map(|s| {
                s.cli(&["--scan", "--pattern", pattern])
                    .lines()
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .filter(|k| !k.is_empty())
            .collect()
    }
}

/// Certificates made by `openssl`: a CA, a server certificate for
/// 127.0.0.1 and a client certificate, all signed by the CA.
pub struct Pki {
    pub dir: TempDir,
}

impl Pki {
    pub fn new() -> Self {
        let dir = TempDir::new("pki");
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir.0)
                .output()
                .expect("openssl runs (scripts/test.sh installs it)");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        run(&[
            &["req", "-x509"][..],
            &ec,
            &[
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=ollama-guard test CA",
            ],
        ]
        .concat());
        std::fs::write(
            dir.file("server.ext"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\n",
        )
        .expect("ext");
        std::fs::write(dir.file("client.ext"), "extendedKeyUsage=clientAuth\n").expect("ext");
        for (name, cn) in [("server", "127.0.0.1"), ("client", "ollama-guard")] {
            let subj = format!("/CN={cn}");
            let (key, csr, pem, ext) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
                format!("{name}.ext"),
            );
            run(&[
                &["req"][..],
                &ec,
                &["-keyout", &key, "-out", &csr, "-subj", &subj],
            ]
            .concat());
            run(&[
                "x509",
                "-req",
                "-in",
                &csr,
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-out",
                &pem,
                "-days",
                "2",
                "-extfile",
                &ext,
            ]);
        }
        Self { dir }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.file(name).display().to_string()
    }
}

impl Default for Pki {
    fn default() -> Self {
        Self::new()
    }
}

/// TLS on `port` in front of a plain server on `backend`, by stunnel4,
/// asking for a client certificate signed by the same CA.
pub struct TlsFront {
    pub port: u16,
    _process: Process,
}

impl TlsFront {
    pub fn start(pki: &Pki, backend: u16) -> Self {
        let port = free_port();
        let conf = format!(
            "foreground = yes\npid =\noutput = {log}\n\n[redis]\naccept = 127.0.0.1:{port}\n\
             connect = 127.0.0.1:{backend}\ncert = {cert}\nkey = {key}\nCAfile = {ca}\n\
             requireCert = yes\nverifyChain = yes\n",
            log = pki.path(&format!("stunnel-{port}.log")),
            cert = pki.path("server.pem"),
            key = pki.path("server.key"),
            ca = pki.path("ca.pem"),
        );
        let file = pki.dir.file(&format!("stunnel-{port}.conf"));
        let front = Self {
            port,
            _process: Process::with_config(stunnel(), &file, conf),
        };
        wait_for("stunnel4", Duration::from_secs(10), || accepts(port));
        front
    }
}

fn stunnel() -> &'static str {
    if Path::new("/usr/bin/stunnel4").exists() {
        "stunnel4"
    } else {
        "stunnel"
    }
}

/// Clients sending chats to proxies until stopped, counting what failed
/// (any answer but 200, or no answer). Prompts repeat every 40, so verdicts
/// are both read and written.
pub struct Load {
    sent: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `workers` clients, taking `urls` in turn.
    pub fn start(urls: &[&str], workers: usize) -> Self {
        let (sent, failed, stop) = (Arc::default(), Arc::default(), Arc::default());
        let client = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let tasks = (0..workers)
            .map(|w| {
                let url = format!("{}/api/chat", urls[w % urls.len()]);
                let (client, sent, failed, stop): (_, Arc<AtomicUsize>, Arc<AtomicUsize>, Arc<AtomicBool>) =
                    (client.clone(), Arc::clone(&sent), Arc::clone(&failed), Arc::clone(&stop));
                tokio::spawn(async move {
                    let mut i = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let text = format!("load {w} {}", i % 40);
                        let body = serde_json::json!({"model": "m", "stream": false, "messages": [{"role": "user", "content": text}]});
                        let ok = client.post(&url).json(&body).send().await.is_ok_and(|r| r.status() == 200);
                        sent.fetch_add(1, Ordering::Relaxed);
                        if !ok {
                            failed.fetch_add(1, Ordering::Relaxed);
                        }
                        i += 1;
                    }
                })
            })
            .collect();
        Self {
            sent,
            failed,
            stop,
            tasks,
        }
    }

    /// Stops the clients; (requests sent, failed).
    pub async fn finish(self) -> (usize, usize) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load client");
        }
        (
            self.sent.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }
}
