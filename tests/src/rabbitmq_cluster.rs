//! A RabbitMQ cluster of the test's own: N nodes on this machine (distinct
//! node names, ports and data directories under a temporary folder, one
//! Erlang cookie), joined with `rabbitmqctl join_cluster`.
//!
//! The nodes run as the `rabbitmq` user from Debian's package, listen on
//! 127.0.0.1 only, enable no plugins, and share the machine's epmd; the
//! machine's own broker (node `rabbit@localhost`, port 5672) is never touched.
//! Dropping the cluster stops every node and removes its folder, also when the
//! test failed. Booting a node takes about 15 s here, so a three-node cluster
//! costs most of a minute: only the outage tests use it. [`RabbitCluster::start_tls`]
//! boots one node that speaks only `amqps://`, for the TLS tests.

use std::{path::PathBuf, process::Output};

use tokio::process::Command;

use crate::test_ca::TestCa;

const RABBITMQ_BIN: &str = "/usr/lib/rabbitmq/bin";

/// A running cluster; node `i` listens for AMQP on [`RabbitCluster::port`]`(i)`.
pub struct RabbitCluster {
    dir: PathBuf,
    names: Vec<String>,
    ports: Vec<u16>,
    tls: bool,
}

impl RabbitCluster {
    /// Boots `nodes` nodes and joins every one to the first; fails the test, with the
    /// nodes' log, if a node does not start or join.
    pub async fn start(nodes: usize) -> RabbitCluster {
        Self::start_with(nodes, None).await
    }

    /// One node that speaks only AMQP over TLS (`amqps://`), with a server
    /// certificate for `localhost` from `ca`; it asks clients for a certificate
    /// of `ca` but lets them connect without one.
    pub async fn start_tls(ca: &TestCa) -> RabbitCluster {
        Self::start_with(1, Some(ca)).await
    }

    async fn start_with(nodes: usize, ca: Option<&TestCa>) -> RabbitCluster {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = std::env::temp_dir().join(format!("gust-rabbit-{id}"));
        std::fs::create_dir_all(dir.join("home")).expect("creating the cluster's folder");
        // Every node and every rabbitmqctl call reads the cookie from $HOME; it must be private to its owner.
        std::fs::write(dir.join("home/.erlang.cookie"), format!("GUSTTESTCOOKIE{id}")).expect("writing the cookie");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("writing the plugin list");
        let base = free_port_block(nodes);
        let names: Vec<String> = (0..nodes).map(|i| format!("gust-{id}-{i}@localhost")).collect();
        let ports: Vec<u16> = (0..nodes).map(|i| base + i as u16).collect();
        let tls_options = ca.map(|ca| {
            let issued = ca.server("rabbitmq", &["localhost", "127.0.0.1"]);
            std::fs::copy(ca.ca_file(), dir.join("ca.pem")).expect("copying the CA certificate");
            std::fs::copy(&issued.cert, dir.join("node.pem")).expect("copying the node's certificate");
            std::fs::copy(&issued.key, dir.join("node.key")).expect("copying the node's key");
            format!(
                "listeners.tcp = none\nssl_options.cacertfile = {d}/ca.pem\nssl_options.certfile = {d}/node.pem\n\
                 ssl_options.keyfile = {d}/node.key\nssl_options.verify = verify_peer\nssl_options.fail_if_no_peer_cert = false\n",
                d = dir.display()
            )
        });
        for (name, port) in names.iter().zip(&ports) {
            let node_dir = dir.join(name);
            std::fs::create_dir_all(&node_dir).expect("creating a node's folder");
            let config = match &tls_options {
                Some(options) => format!("{options}listeners.ssl.default = 127.0.0.1:{port}\n"),
                None => format!("listeners.tcp.default = 127.0.0.1:{port}\n"),
            };
            std::fs::write(node_dir.join("rabbitmq.conf"), config).expect("writing a node's config");
        }
        run_checked("chown", &["-R", "rabbitmq:rabbitmq", &dir.to_string_lossy()]).await;
        run_checked("chmod", &["400", &dir.join("home/.erlang.cookie").to_string_lossy()]).await;
        let cluster = RabbitCluster { dir, names, ports, tls: ca.is_some() };
        for i in 0..nodes {
            cluster.boot(i).await;
        }
        for i in 1..nodes {
            cluster.ctl(i, &["stop_app"]).await;
            cluster.ctl(i, &["reset"]).await;
            cluster.ctl(i, &["join_cluster", &cluster.names[0]]).await;
            cluster.ctl(i, &["start_app"]).await;
            cluster.ctl(i, &["await_startup"]).await;
        }
        cluster
    }

    /// The AMQP port of node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.ports[i]
    }

    /// The Erlang node name of node `i` (as `rabbitmqctl` and queue leaders name it).
    pub fn node_name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// The comma-separated URL list of every node, in order, for `GUST__AMQP__URL`.
    pub fn urls(&self) -> String {
        let url = |port: &u16| match self.tls {
            true => format!("amqps://guest:guest@localhost:{port}/%2f"),
            false => format!("amqp://guest:guest@127.0.0.1:{port}/%2f"),
        };
        self.ports.iter().map(url).collect::<Vec<_>>().join(",")
    }

    /// Stops node `i`'s RabbitMQ application (its connections close, its queue replicas go down).
    pub async fn stop_node(&self, i: usize) {
        self.ctl(i, &["stop_app"]).await;
    }

    /// Starts node `i` again and waits until it has rejoined the cluster.
    pub async fn start_node(&self, i: usize) {
        self.ctl(i, &["start_app"]).await;
        self.ctl(i, &["await_startup"]).await;
    }

    /// The node that leads quorum queue `queue`, asked of node `via`.
    pub async fn leader_of(&self, via: usize, queue: &str) -> Option<String> {
        let output = self.ctl(via, &["list_queues", "--quiet", "--no-table-headers", "name", "leader"]).await;
        String::from_utf8_lossy(&output.stdout).lines().find_map(|line| {
            let mut fields = line.split_whitespace();
            (fields.next() == Some(queue)).then(|| fields.next().unwrap_or_default().to_string())
        })
    }

    /// The members (nodes holding a replica) of quorum queue `queue`, asked of node `via`.
    pub async fn members_of(&self, via: usize, queue: &str) -> Vec<String> {
        let output = self.ctl(via, &["list_queues", "--quiet", "--no-table-headers", "name", "members"]).await;
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        text.lines()
            .find_map(|line| line.strip_prefix(queue).map(str::trim))
            .map(|members| {
                members
                    .trim_matches(['[', ']'])
                    .split(',')
                    .map(|m| m.trim().trim_matches(['\'', '"']).to_string())
                    .filter(|m| !m.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The names of the client connections node `i` holds.
    pub async fn connections_on(&self, i: usize) -> Vec<String> {
        let output = self.ctl(i, &["list_connections", "--quiet", "--no-table-headers", "client_properties"]).await;
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| {
                let at = line.find("connection_name")?;
                line[at..].split('"').nth(2).map(str::to_string)
            })
            .collect()
    }

    async fn boot(&self, i: usize) {
        let name = &self.names[i];
        let node_dir = self.dir.join(name);
        let port = self.ports[i].to_string();
        let dist_port = (u32::from(self.ports[i]) + 10_000).to_string();
        let status = self
            .as_rabbitmq(&format!("{RABBITMQ_BIN}/rabbitmq-server"))
            .arg("-detached")
            .env("RABBITMQ_NODENAME", name)
            .env("RABBITMQ_NODE_PORT", &port)
            .env("RABBITMQ_DIST_PORT", &dist_port)
            .env("RABBITMQ_MNESIA_BASE", node_dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", node_dir.join("log"))
            .env("RABBITMQ_PID_FILE", node_dir.join("pid"))
            .env("RABBITMQ_CONFIG_FILE", node_dir.join("rabbitmq.conf"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", self.dir.join("enabled_plugins"))
            .status()
            .await
            .expect("running rabbitmq-server (is RabbitMQ installed?)");
        assert!(status.success(), "rabbitmq-server -detached for {name} failed: {status}");
        // `-detached` returns before the node registers with epmd; until then await_startup fails at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
        while !self.ctl_raw(i, &["await_startup", "--timeout", "90"]).await.status.success() {
            assert!(std::time::Instant::now() < deadline, "node {name} did not start:\n{}", self.node_log(i));
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
    }

    /// Node `i`'s log, for failure messages.
    pub fn node_log(&self, i: usize) -> String {
        let log = self.dir.join(&self.names[i]).join("log").join(format!("{}.log", self.names[i]));
        std::fs::read_to_string(&log).unwrap_or_else(|e| format!("(no log at {}: {e})", log.display()))
    }

    async fn ctl(&self, i: usize, args: &[&str]) -> Output {
        let output = self.ctl_raw(i, args).await;
        assert!(
            output.status.success(),
            "rabbitmqctl -n {} {} failed: {}{}",
            self.names[i],
            args.join(" "),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    async fn ctl_raw(&self, i: usize, args: &[&str]) -> Output {
        self.as_rabbitmq(&format!("{RABBITMQ_BIN}/rabbitmqctl"))
            .arg("-n")
            .arg(&self.names[i])
            .args(args)
            .output()
            .await
            .expect("running rabbitmqctl")
    }

    /// `program` as the `rabbitmq` user, with the cluster's cookie.
    fn as_rabbitmq(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command.args(["-u", "rabbitmq", "--", "env"]).arg(format!("HOME={}", self.dir.join("home").display()));
        command.arg(program).current_dir(&self.dir).kill_on_drop(true);
        command
    }
}

impl Drop for RabbitCluster {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = std::process::Command::new("runuser")
                .args(["-u", "rabbitmq", "--", "env"])
                .arg(format!("HOME={}", self.dir.join("home").display()))
                .arg(format!("{RABBITMQ_BIN}/rabbitmqctl"))
                .args(["-n", name, "stop"])
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The first of `count` consecutive loopback ports that nothing listens on
/// (nor on the distribution ports 10,000 above them).
fn free_port_block(count: usize) -> u16 {
    let free = |port: u16| std::net::TcpListener::bind(("127.0.0.1", port)).is_ok();
    let seed = u16::from_str_radix(&uuid::Uuid::new_v4().simple().to_string()[..3], 16).unwrap_or(0) % 2000;
    (0..2000u16)
        .map(|offset| 30_000 + (seed + offset * 7) % 20_000)
        .find(|&base| (0..count as u16).all(|i| free(base + i) && free(base + i + 10_000)))
        .expect("a free block of loopback ports")
}

async fn run_checked(program: &str, args: &[&str]) {
    let status = Command::new(program).args(args).status().await.unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(status.success(), "{program} {} failed: {status}", args.join(" "));
}
