//! PostgreSQL servers of the test's own, on this machine:
//!
//! - [`PostgresReplicaPair`]: `initdb` a primary on a free port,
//!   `pg_basebackup -R` a replica from it on another, and make the
//!   replication synchronous (`synchronous_standby_names = '*'`), so a
//!   commit the primary acknowledged is on the replica too;
//! - [`PostgresTlsServer`]: one server that accepts TCP connections only
//!   over TLS, with a certificate of a [`TestCa`], and only from clients
//!   that present a certificate of that CA.
//!
//! The servers run as the `postgres` user from Debian's PostgreSQL
//! binaries, listen on 127.0.0.1 only and keep their sockets in their
//! temporary folder; the machine's own server is never touched. Dropping
//! one stops its servers and removes the folder, also when the test failed.

use std::{path::PathBuf, process::Output};

use tokio::process::Command;

use crate::test_ca::{Issued, TestCa};

/// A folder of servers made with the newest local PostgreSQL; dropping it stops them and removes it.
struct Servers {
    dir: PathBuf,
    bin: PathBuf,
}

impl Servers {
    async fn new() -> Servers {
        let id = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let dir = std::env::temp_dir().join(format!("gust-pg-{id}"));
        std::fs::create_dir_all(&dir).expect("creating the servers' folder");
        let servers = Servers { dir, bin: newest_postgres_bin() };
        checked(Command::new("chown").arg("postgres:postgres").arg(&servers.dir)).await;
        servers
    }

    /// `initdb` of server `name` (trust authentication), with `settings` as its postgresql.auto.conf.
    async fn initdb(&self, name: &str, settings: &str) {
        let data = self.data_dir(name);
        checked(self.as_postgres("initdb").args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"]).arg(&data)).await;
        let common = format!(
            "listen_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\nfsync = off\n",
            self.dir.display()
        );
        std::fs::write(data.join("postgresql.auto.conf"), format!("{common}{settings}"))
            .expect("writing a server's settings");
    }

    async fn start_server(&self, name: &str, port: u16) {
        let output = self
            .as_postgres("pg_ctl")
            .args(["start", "-w", "-t", "60", "-D"])
            .arg(self.data_dir(name))
            .arg("-l")
            .arg(self.dir.join(format!("{name}.log")))
            .arg("-o")
            .arg(format!("-p {port}"))
            .output()
            .await
            .expect("running pg_ctl");
        let log = std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default();
        assert!(output.status.success(), "the {name} server did not start on port {port}:\n{log}");
    }

    /// Runs `sql` over the server's Unix socket and returns what psql printed (unaligned, tuples only).
    async fn psql(&self, port: u16, sql: &str) -> String {
        let output = checked(
            self.as_postgres("psql")
                .arg("-h")
                .arg(&self.dir)
                .args(["-U", "postgres", "-d", "postgres", "-Atq", "-v", "ON_ERROR_STOP=1", "-p"])
                .arg(port.to_string())
                .args(["-c", sql]),
        )
        .await;
        String::from_utf8_lossy(&output.stdout).to_string()
    }

    fn data_dir(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// PostgreSQL's program `program` as the `postgres` user (initdb and the server refuse root).
    fn as_postgres(&self, program: &str) -> Command {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(self.bin.join(program)).current_dir(&self.dir);
        command.kill_on_drop(true);
        command
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else { return };
        for data in entries.flatten().filter(|entry| entry.path().join("PG_VERSION").exists()) {
            let _ = std::process::Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"))
                .args(["stop", "-m", "immediate", "-D"])
                .arg(data.path())
                .output();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary and its synchronous streaming replica.
pub struct PostgresReplicaPair {
    servers: Servers,
    /// Port of the server that starts as the primary.
    pub primary_port: u16,
    /// Port of the server that starts as the replica.
    pub replica_port: u16,
}

impl PostgresReplicaPair {
    /// Creates and starts both servers and waits until the replica streams synchronously.
    pub async fn start() -> PostgresReplicaPair {
        let servers = Servers::new().await;
        let primary_port = free_port(&[]);
        let replica_port = free_port(&[primary_port]);
        servers.initdb("primary", "").await;
        servers.start_server("primary", primary_port).await;
        checked(
            servers
                .as_postgres("pg_basebackup")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-X", "stream", "-R", "-p"])
                .arg(primary_port.to_string())
                .arg("-D")
                .arg(servers.data_dir("replica")),
        )
        .await;
        servers.start_server("replica", replica_port).await;
        servers.psql(primary_port, "ALTER SYSTEM SET synchronous_standby_names = '*'").await;
        servers.psql(primary_port, "SELECT pg_reload_conf()").await;
        let deadline = crate::Deadline::new("the replica to stream synchronously from the primary");
        while servers.psql(primary_port, "SELECT sync_state FROM pg_stat_replication").await.trim() != "sync" {
            deadline.check();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        PostgresReplicaPair { servers, primary_port, replica_port }
    }

    /// A multi-host URL naming both servers, primary first, that connects to whichever is writable.
    pub fn server_url(&self) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{},127.0.0.1:{}/gust?target_session_attrs=read-write",
            self.primary_port, self.replica_port
        )
    }

    /// Stops the primary the way a crash would (`pg_ctl stop -m immediate`: no shutdown checkpoint).
    pub async fn crash_primary(&self) {
        let data = self.servers.data_dir("primary");
        checked(self.servers.as_postgres("pg_ctl").args(["stop", "-m", "immediate", "-D"]).arg(data)).await;
    }

    /// Promotes the replica to a writable primary and waits until it is one.
    pub async fn promote_replica(&self) {
        let data = self.servers.data_dir("replica");
        checked(self.servers.as_postgres("pg_ctl").args(["promote", "-w", "-D"]).arg(data)).await;
    }

    /// Runs `sql` on the server at `port` and returns what psql printed (unaligned, tuples only).
    pub async fn psql(&self, port: u16, sql: &str) -> String {
        self.servers.psql(port, sql).await
    }
}

/// A server that takes TCP connections only over TLS and only with a client certificate of its CA.
pub struct PostgresTlsServer {
    servers: Servers,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl PostgresTlsServer {
    /// Starts it with a server certificate from `ca` for `localhost` and `127.0.0.1`.
    pub async fn start(ca: &TestCa) -> PostgresTlsServer {
        let servers = Servers::new().await;
        let port = free_port(&[]);
        let server = ca.hand_to(&ca.server("postgres", &["localhost", "127.0.0.1"]), &servers.dir, "postgres");
        let trusted = servers.dir.join("ca.pem");
        std::fs::copy(ca.ca_file(), &trusted).expect("copying the CA certificate");
        let settings = format!(
            "ssl = on\nssl_cert_file = '{}'\nssl_key_file = '{}'\nssl_ca_file = '{}'\n",
            server.cert.display(),
            server.key.display(),
            trusted.display()
        );
        servers.initdb("tls", &settings).await;
        // Only the Unix socket (for psql) without TLS; TCP needs TLS and a client certificate of the CA.
        let hba = "local all all trust\nhostssl all all 127.0.0.1/32 trust clientcert=verify-full\n";
        std::fs::write(servers.data_dir("tls").join("pg_hba.conf"), hba).expect("writing pg_hba.conf");
        servers.start_server("tls", port).await;
        PostgresTlsServer { servers, port }
    }

    /// A URL for user `postgres` with `sslmode=verify-full`, trusting `ca_file` and presenting `client`.
    pub fn server_url(&self, host: &str, ca_file: &std::path::Path, client: &Issued) -> String {
        format!(
            "postgres://postgres@{host}:{}/gust?sslmode=verify-full&sslrootcert={}&sslcert={}&sslkey={}",
            self.port,
            ca_file.display(),
            client.cert.display(),
            client.key.display()
        )
    }

    /// Runs `sql` over the Unix socket and returns what psql printed.
    pub async fn psql(&self, sql: &str) -> String {
        self.servers.psql(self.port, sql).await
    }
}

/// The `bin` folder of the newest PostgreSQL under /usr/lib/postgresql (Debian's layout).
fn newest_postgres_bin() -> PathBuf {
    let versions =
        std::fs::read_dir("/usr/lib/postgresql").expect("PostgreSQL's server binaries in /usr/lib/postgresql");
    let newest = versions
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max()
        .expect("a PostgreSQL version folder in /usr/lib/postgresql");
    PathBuf::from(format!("/usr/lib/postgresql/{newest}/bin"))
}

/// A loopback port nothing listens on, other than `taken`.
fn free_port(taken: &[u16]) -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("binding a loopback port")
            .port();
        if !taken.contains(&port) {
            return port;
        }
    }
}

async fn checked(command: &mut Command) -> Output {
    let output = command.output().await.expect("running a PostgreSQL program");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}
