//! A network namespace of its own for one gust process, so a test can
//! partition it from RabbitMQ or from PostgreSQL while the rest of the stack
//! keeps both.
//!
//! The namespace's only link is a veth pair to this host. The host end has
//! one address per [`Service`]; on each, the test process relays TCP to the
//! machine's own RabbitMQ or PostgreSQL ([`Namespace::relay`]), so neither
//! service's configuration changes and nothing outside the namespace is
//! affected by a partition. The namespace end has one source address per
//! service too (a route per host address picks it), so each service's
//! traffic can be dropped on its own, in both directions.
//!
//! [`Namespace::cut`] points the neighbour entries of one service's two
//! addresses (the host's, inside the namespace; the namespace's, on the host)
//! at a MAC address no interface has, so every frame between them, either
//! way, is dropped by the receiving end as not its own. That is a partition
//! as a pulled cable or a DROP firewall rule makes one: no RST, no ICMP, no
//! local error; connections in flight stall and retransmit, new ones time
//! out. (A blackhole route would not do: the kernel fails a local `connect`
//! through one at once, with EINVAL.) [`Namespace::heal`] deletes the
//! entries: ARP finds the real addresses again and the stalled
//! retransmissions get through.
//!
//! Invariants: everything created is named after the test process
//! (`gust-part-<pid>-<hex>`, links `gph-<hex>` and `gpn-<hex>`), in a
//! 10.213.X.0/24 no interface of the host uses yet; nothing else on the
//! machine is touched. Drop deletes the link and the namespace, also while a
//! failed test unwinds; what a killed test process left behind is deleted by
//! the next [`Namespace::create`]. Needs root and iproute2's `ip`.

use std::{net::Ipv4Addr, process::Command, time::Duration};

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// A service the namespace reaches through its own relay, and can be cut off from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// RabbitMQ.
    Broker,
    /// PostgreSQL.
    Database,
}

impl Service {
    /// Last octet of the host-side address that fronts the service.
    fn host_octet(self) -> u8 {
        match self {
            Service::Broker => 1,
            Service::Database => 2,
        }
    }

    /// Last octet of the namespace's address that talks to the service.
    fn inner_octet(self) -> u8 {
        self.host_octet() + 10
    }

    /// The port of a URL that names none.
    fn default_port(self) -> u16 {
        match self {
            Service::Broker => 5672,
            Service::Database => 5432,
        }
    }
}

/// A MAC address no interface has: a frame sent to it is dropped by the veth peer as not its own.
const NOWHERE: &str = "02:00:00:de:ad:00";

/// Prefix of every namespace this module creates.
const PREFIX: &str = "gust-part-";

/// A network namespace with a veth link to the host and relays to RabbitMQ and PostgreSQL.
pub struct Namespace {
    name: String,
    host_link: String,
    inner_link: String,
    subnet: u8,
    relays: CancellationToken,
}

impl Namespace {
    /// Creates the namespace and its link, with loopback up inside; fails the
    /// test, saying what is needed, when `ip` cannot.
    pub fn create() -> Namespace {
        sweep_left_behind();
        let id = uuid::Uuid::new_v4().simple().to_string();
        let hex = &id[..6];
        let namespace = Namespace {
            name: format!("{PREFIX}{}-{hex}", std::process::id()),
            host_link: format!("gph-{hex}"),
            inner_link: format!("gpn-{hex}"),
            subnet: free_subnet(u8::from_str_radix(&id[6..8], 16).expect("hex digits")),
            relays: CancellationToken::new(),
        };
        // From here on a failing step unwinds through Drop, which removes what was made.
        ip(&["netns", "add", &namespace.name]);
        ip(&[
            "link",
            "add",
            &namespace.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &namespace.inner_link,
            "netns",
            &namespace.name,
        ]);
        for service in [Service::Broker, Service::Database] {
            ip(&["addr", "add", &format!("{}/24", namespace.host_address(service)), "dev", &namespace.host_link]);
            namespace.ip_inside(&[
                "addr",
                "add",
                &format!("{}/24", namespace.inner_address(service)),
                "dev",
                &namespace.inner_link,
            ]);
        }
        ip(&["link", "set", &namespace.host_link, "up"]);
        namespace.ip_inside(&["link", "set", "lo", "up"]);
        namespace.ip_inside(&["link", "set", &namespace.inner_link, "up"]);
        for service in [Service::Broker, Service::Database] {
            namespace.ip_inside(&[
                "route",
                "replace",
                &format!("{}/32", namespace.host_address(service)),
                "dev",
                &namespace.inner_link,
                "src",
                &namespace.inner_address(service).to_string(),
            ]);
        }
        namespace
    }

    /// The command words that run a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name].map(String::from).to_vec()
    }

    /// Relays connections to `service`'s host-side address on to the server
    /// `url` names (for as long as the namespace lives), and returns `url`
    /// pointing at the relay instead, for a process inside the namespace.
    pub async fn relay(&self, service: Service, url: &str) -> String {
        let mut relayed = reqwest::Url::parse(url)
            .unwrap_or_else(|e| panic!("a partition relays one server; `{url}` is not a URL of one: {e}"));
        let host = relayed.host_str().unwrap_or_else(|| panic!("`{url}` names no host")).to_string();
        let upstream = (
            host.trim_start_matches('[').trim_end_matches(']').to_string(),
            relayed.port().unwrap_or(service.default_port()),
        );
        let address = self.host_address(service);
        let listener =
            TcpListener::bind((address, 0)).await.unwrap_or_else(|e| panic!("binding a relay on {address}: {e}"));
        let port = listener.local_addr().expect("a bound listener has an address").port();
        tokio::spawn(relay_connections(listener, upstream, self.relays.clone()));
        relayed.set_host(Some(&address.to_string())).expect("an IPv4 address is a valid host");
        relayed.set_port(Some(port)).expect("a URL with a host takes a port");
        relayed.to_string()
    }

    /// Partitions the namespace from `service`: from now on every frame
    /// between them is dropped silently, both ways.
    pub fn cut(&self, service: Service) {
        let (host, inner) = (self.host_address(service).to_string(), self.inner_address(service).to_string());
        self.ip_inside(&["neigh", "replace", &host, "lladdr", NOWHERE, "dev", &self.inner_link, "nud", "permanent"]);
        ip(&["neigh", "replace", &inner, "lladdr", NOWHERE, "dev", &self.host_link, "nud", "permanent"]);
    }

    /// Ends the partition from `service` that [`Self::cut`] made.
    pub fn heal(&self, service: Service) {
        let (host, inner) = (self.host_address(service).to_string(), self.inner_address(service).to_string());
        self.ip_inside(&["neigh", "del", &host, "dev", &self.inner_link]);
        ip(&["neigh", "del", &inner, "dev", &self.host_link]);
    }

    fn host_address(&self, service: Service) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, service.host_octet())
    }

    fn inner_address(&self, service: Service) -> Ipv4Addr {
        Ipv4Addr::new(10, 213, self.subnet, service.inner_octet())
    }

    fn ip_inside(&self, args: &[&str]) {
        let mut inside = vec!["-n", self.name.as_str()];
        inside.extend_from_slice(args);
        ip(&inside);
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        self.relays.cancel();
        remove(&self.name, &self.host_link);
    }
}

/// Runs `ip args`; fails the test with its output, and what it needs, when it fails.
fn ip(args: &[&str]) {
    let output = Command::new("ip").args(args).output().unwrap_or_else(|e| {
        panic!("running `ip {}` failed: {e}; partition tests need iproute2's `ip`", args.join(" "))
    });
    assert!(
        output.status.success(),
        "`ip {}` failed: {}; partition tests need root (network namespaces and links)",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// Deletes the host end of the veth link (and so the pair) and the namespace; reports what it could not.
fn remove(namespace: &str, host_link: &str) {
    let _ = Command::new("ip").args(["link", "del", host_link]).output();
    match Command::new("ip").args(["netns", "del", namespace]).output() {
        Ok(output) if output.status.success() => {}
        Ok(output) => {
            eprintln!("could not delete network namespace {namespace}: {}", String::from_utf8_lossy(&output.stderr))
        }
        Err(e) => eprintln!("could not delete network namespace {namespace}: {e}"),
    }
}

/// Deletes the namespaces (and their links) of test processes that are gone.
fn sweep_left_behind() {
    let Ok(output) = Command::new("ip").args(["netns", "list"]).output() else { return };
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        let Some(name) = line.split_whitespace().next() else { continue };
        let Some((pid, hex)) = name.strip_prefix(PREFIX).and_then(|rest| rest.split_once('-')) else { continue };
        let Ok(pid) = pid.parse::<u32>() else { continue };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            remove(name, &format!("gph-{hex}"));
        }
    }
}

/// The first X from `start` on (wrapping) such that no host address is in 10.213.X.0/24.
fn free_subnet(start: u8) -> u8 {
    let output = Command::new("ip").args(["-o", "-4", "addr", "show"]).output().expect("running `ip addr show`");
    let taken = String::from_utf8_lossy(&output.stdout).into_owned();
    (0..=u8::MAX)
        .map(|offset| start.wrapping_add(offset))
        .find(|x| !taken.contains(&format!(" 10.213.{x}.")))
        .expect("a free 10.213.X.0/24 for a partition namespace")
}

/// Accepts connections until `stop` and copies each, both ways, to and from a fresh connection to `upstream`.
async fn relay_connections(listener: TcpListener, upstream: (String, u16), stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let Ok((mut client, _)) = accepted else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let (upstream, stop) = (upstream.clone(), stop.clone());
        tokio::spawn(async move {
            let Ok(mut server) = TcpStream::connect((upstream.0.as_str(), upstream.1)).await else { return };
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
            }
        });
    }
}
