//! Outages of the services themselves: the machine's RabbitMQ and PostgreSQL
//! restart mid-run, a three-node RabbitMQ cluster loses a node, a PostgreSQL
//! primary fails over to its replica, a worker is partitioned from one
//! service. These tests stop real services and start nodes of their own, so
//! scripts/test runs this binary on its own, one test at a time.
//!
//! Every test here lives in `mod outage` (scripts/test skips `outage::` when
//! it runs without nextest).

mod outage {
    mod partitions;
    mod postgres_failover;
    mod rabbitmq_cluster;
    mod restarts;
}
