//! Nothing the harness creates may outlive it. Every child process,
//! database and broker object is registered here while it exists, so that
//! an interrupted run (ctrl-c, SIGTERM) can still kill the children and drop
//! what they used; `gust-bench cleanup` removes what a SIGKILLed run left.

use std::sync::Mutex;

use gust_shared::{amqp, db};
use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};
use nix::{
    sys::signal::{kill, killpg, Signal},
    unistd::Pid,
};

use crate::{procs, stack::pg_connect};

/// Prefix of every database the harness creates.
pub const DATABASE_PREFIX: &str = "gust_bench_";
/// Prefix of every queue and exchange the harness creates.
pub const BROKER_PREFIX: &str = "bench-";

#[derive(Default)]
struct Registry {
    pids: Vec<(i32, bool)>,
    databases: Vec<String>,
    queues: Vec<String>,
    exchanges: Vec<String>,
}

static REGISTRY: Mutex<Registry> =
    Mutex::new(Registry { pids: Vec::new(), databases: Vec::new(), queues: Vec::new(), exchanges: Vec::new() });

fn with<T>(f: impl FnOnce(&mut Registry) -> T) -> T {
    f(&mut REGISTRY.lock().unwrap_or_else(|poisoned| poisoned.into_inner()))
}

/// Records a running child (`group`: it leads its own process group).
pub fn track_pid(pid: i32, group: bool) {
    with(|r| r.pids.push((pid, group)));
}

/// Forgets a child that has been stopped.
pub fn untrack_pid(pid: i32) {
    with(|r| r.pids.retain(|(p, _)| *p != pid));
}

/// Records a database (by URL) the harness created.
pub fn track_database(url: &str) {
    with(|r| r.databases.push(url.to_string()));
}

/// Forgets a dropped database.
pub fn untrack_database(url: &str) {
    with(|r| r.databases.retain(|d| d != url));
}

/// Records broker queues and exchanges the harness (or its children) declared.
pub fn track_broker(queues: &[String], exchanges: &[String]) {
    with(|r| {
        r.queues.extend_from_slice(queues);
        r.exchanges.extend_from_slice(exchanges);
    });
}

/// Forgets deleted broker objects.
pub fn untrack_broker(queues: &[String], exchanges: &[String]) {
    with(|r| {
        r.queues.retain(|q| !queues.contains(q));
        r.exchanges.retain(|e| !exchanges.contains(e));
    });
}

/// Kills every registered child and deletes every registered database,
/// queue and exchange (for an interrupted run).
pub async fn everything(amqp_url: &str) {
    let (pids, databases, queues, exchanges) = with(|r| {
        (
            std::mem::take(&mut r.pids),
            std::mem::take(&mut r.databases),
            std::mem::take(&mut r.queues),
            std::mem::take(&mut r.exchanges),
        )
    });
    for (pid, group) in pids {
        let _ =
            if group { killpg(Pid::from_raw(pid), Signal::SIGKILL) } else { kill(Pid::from_raw(pid), Signal::SIGKILL) };
    }
    delete_broker_objects(amqp_url, &queues, &exchanges).await;
    for url in databases {
        let _ = db::drop_database(&url).await;
    }
}

/// Deletes queues and exchanges by name, ignoring those already gone.
pub async fn delete_broker_objects(amqp_url: &str, queues: &[String], exchanges: &[String]) {
    if queues.is_empty() && exchanges.is_empty() {
        return;
    }
    let Ok(connection) = amqp::connect(amqp_url, "gust-bench-cleanup").await else { return };
    // A failed delete closes the channel, so each gets a fresh one.
    for queue in queues {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel.queue_delete(queue.as_str().into(), QueueDeleteOptions::default()).await;
            let _ = channel.close(200, "done".into()).await;
        }
    }
    for exchange in exchanges {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel.exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default()).await;
            let _ = channel.close(200, "done".into()).await;
        }
    }
    let _ = connection.close(200, "done".into()).await;
}

/// Drops leftover `gust_bench_*` databases and, when `rabbitmqctl` can list
/// them, `bench-*` queues and exchanges. Do not run it while a benchmark runs.
pub async fn leftovers(db_base: &str, amqp_url: &str) -> anyhow::Result<()> {
    let client = pg_connect(db_base).await?;
    let pattern = format!("{}%", DATABASE_PREFIX.replace('_', "\\_"));
    for row in client.query("SELECT datname FROM pg_database WHERE datname LIKE $1", &[&pattern]).await? {
        let name: String = row.get(0);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", name.replace('"', "\"\"")))
            .await?;
        println!("dropped database {name}");
    }
    let list = |what: &'static str| async move {
        procs::output_of("rabbitmqctl", &["-q", what, "name"]).await.map(|out| {
            out.lines().map(str::trim).filter(|n| n.starts_with(BROKER_PREFIX)).map(str::to_string).collect::<Vec<_>>()
        })
    };
    match (list("list_queues").await, list("list_exchanges").await) {
        (Some(queues), Some(exchanges)) => {
            delete_broker_objects(amqp_url, &queues, &exchanges).await;
            for name in queues.iter().chain(&exchanges) {
                println!("deleted {name}");
            }
        }
        _ => println!("rabbitmqctl could not list queues; delete leftover {BROKER_PREFIX}* queues and exchanges in the management UI"),
    }
    Ok(())
}
