//! A component that cannot start says why and what to do.

use gust_shared::settings::Settings;
use gust_tests::isolated_settings;

/// A loopback port nothing listens on.
async fn closed_port() -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn unreachable_postgres_is_named_with_the_setting_to_fix() {
    let mut settings = Settings::default();
    settings.database.url = format!("postgres://postgres:secret@127.0.0.1:{}/gust", closed_port().await);
    let err = gust_scheduler::run(settings.clone(), std::future::pending()).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach PostgreSQL at postgres://postgres:***@127.0.0.1"), "{err}");
    assert!(err.contains("GUST__DATABASE__URL") && !err.contains("secret"), "{err}");
    let err = gust_worker::run(settings, std::future::pending()).await.unwrap_err().to_string();
    assert!(err.contains("cannot reach PostgreSQL"), "{err}");
}

#[tokio::test]
async fn unmigrated_database_says_how_to_migrate() {
    let settings = isolated_settings().await;
    gust_shared::db::drop_database(&settings.database.url).await.unwrap();
    gust_shared::db::ensure_database_exists(&settings.database.url).await.unwrap();
    let err = gust_scheduler::run(settings.clone(), std::future::pending()).await.unwrap_err().to_string();
    assert!(err.contains("gust-scheduler migrate"), "{err}");
    gust_shared::db::drop_database(&settings.database.url).await.unwrap();
}

#[tokio::test]
async fn unreachable_rabbitmq_is_named_with_the_setting_to_fix() {
    let mut settings = isolated_settings().await;
    settings.amqp.url = format!("amqp://guest:guest@127.0.0.1:{}/%2f", closed_port().await);
    let err = gust_worker::run(settings.clone(), std::future::pending()).await.unwrap_err().to_string();
    assert!(
        err.contains("cannot reach RabbitMQ at amqp://guest:***@127.0.0.1") && err.contains("GUST__AMQP__URL"),
        "{err}"
    );
    gust_shared::db::drop_database(&settings.database.url).await.unwrap();
}
