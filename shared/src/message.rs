//! The task message: everything a worker needs to run one try, with a schema
//! version so old and new workers can tell what they can run.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::dag::{AssetRef, OperatorSpec, RetryPolicy};

/// The schema version this build writes. Version 2 added custom operators
/// (`"operator": "custom"`) and the run's `params` and `conf`; version 3 added
/// sensors and `first_poke_at`.
pub const SCHEMA_VERSION: u32 = 3;

/// The oldest schema version this build still reads (a rolling upgrade's messages in flight).
pub const OLDEST_READABLE_VERSION: u32 = 2;

/// One try of one task instance, as published to RabbitMQ.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskMessage {
    /// Schema version of this message.
    pub version: u32,
    /// Primary key of the task instance row.
    pub ti_id: Uuid,
    /// The DAG.
    pub dag_id: String,
    /// The DAG run's `run_id`.
    pub run_id: String,
    /// The task.
    pub task_id: String,
    /// Index of a mapped task, -1 when not mapped.
    pub map_index: i32,
    /// The element a mapped task instance runs for (`$GUST_MAP_ITEM`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map_item: Option<serde_json::Value>,
    /// The try this message runs (1 for the first).
    pub try_number: i32,
    /// Logical date of the run, if it has one.
    pub logical_date: Option<DateTime<Utc>>,
    /// Queue the message was routed to.
    pub queue: String,
    /// What to run.
    #[serde(flatten)]
    pub operator: OperatorSpec,
    /// Kill the task after this many milliseconds.
    pub execution_timeout_ms: Option<u64>,
    /// How a failed try is retried (the database decides whether tries are left).
    pub retry: RetryPolicy,
    /// Environment handed to the task (run context first, then the task's own). Sent as
    /// `context_env`: a flattened `bash` operator has its own `env` field.
    #[serde(rename = "context_env")]
    pub env: BTreeMap<String, String>,
    /// The run's params resolved against its conf; sent for custom operators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<serde_json::Map<String, serde_json::Value>>,
    /// The run's `conf` as triggered; sent for custom operators only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conf: Option<serde_json::Map<String, serde_json::Value>>,
    /// A rescheduled sensor's first poke of this try, from which its `timeout` counts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_poke_at: Option<DateTime<Utc>>,
    /// When the scheduler published this try (`scheduled → queued`), for the
    /// worker's `gust_task_queued_duration_seconds`; unset on retries and
    /// sensors' next pokes, which wait in a delay queue on purpose. Optional:
    /// older schedulers do not send it, and older workers ignore it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_at: Option<DateTime<Utc>>,
    /// The assets a successful try records an event for (the worker resolves
    /// them to ids in SQL). Optional and omitted when empty: the messages of
    /// tasks without outlets are unchanged, so no schema version bump; an older
    /// worker ignores the field (and records no events).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outlets: Vec<AssetRef>,
}

/// Why a delivery could not be turned into a [`TaskMessage`].
#[derive(Debug, thiserror::Error)]
pub enum MessageError {
    /// Not JSON, or JSON of the wrong shape.
    #[error("malformed task message: {0}")]
    Malformed(#[from] serde_json::Error),
    /// Written by a newer or older gust this worker cannot read.
    #[error("task message has schema version {found}, this gust reads versions {OLDEST_READABLE_VERSION} to {SCHEMA_VERSION}: run workers of the same gust version as the scheduler (upgrade the worker when the message is newer)")]
    UnknownVersion {
        /// The version found in the message.
        found: u64,
    },
}

impl TaskMessage {
    /// The JSON body to publish.
    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a task message always serialises")
    }

    /// Parses a delivery body, checking the schema version first.
    pub fn from_bytes(body: &[u8]) -> Result<Self, MessageError> {
        #[derive(Deserialize)]
        struct Versioned {
            version: u64,
        }
        let Versioned { version } = serde_json::from_slice(body)?;
        if !(u64::from(OLDEST_READABLE_VERSION)..=u64::from(SCHEMA_VERSION)).contains(&version) {
            return Err(MessageError::UnknownVersion { found: version });
        }
        Ok(serde_json::from_slice(body)?)
    }

    /// Environment variables describing the run, as tasks see them.
    pub fn context_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([
            ("GUST_DAG_ID".to_string(), self.dag_id.clone()),
            ("GUST_RUN_ID".to_string(), self.run_id.clone()),
            ("GUST_TASK_ID".to_string(), self.task_id.clone()),
            ("GUST_TRY_NUMBER".to_string(), self.try_number.to_string()),
            ("GUST_MAP_INDEX".to_string(), self.map_index.to_string()),
            ("GUST_TI_ID".to_string(), self.ti_id.to_string()),
        ]);
        if let Some(item) = &self.map_item {
            let text = item.as_str().map_or_else(|| item.to_string(), str::to_string);
            env.insert("GUST_MAP_ITEM".into(), text);
        }
        if let Some(date) = self.logical_date {
            env.insert("GUST_LOGICAL_DATE".into(), date.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            env.insert("GUST_DS".into(), date.format("%Y-%m-%d").to_string());
        }
        env
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message() -> TaskMessage {
        TaskMessage {
            version: SCHEMA_VERSION,
            ti_id: Uuid::nil(),
            dag_id: "d".into(),
            run_id: "manual__x".into(),
            task_id: "t".into(),
            map_index: -1,
            map_item: None,
            try_number: 1,
            logical_date: None,
            queue: "default".into(),
            operator: OperatorSpec::Bash {
                command: "true".into(),
                env: BTreeMap::new(),
                cwd: None,
                do_xcom_push: false,
            },
            execution_timeout_ms: Some(1000),
            retry: RetryPolicy { delay_ms: 1000, exponential: false, max_delay_ms: None },
            env: BTreeMap::new(),
            params: None,
            conf: None,
            first_poke_at: None,
            queued_at: None,
            outlets: Vec::new(),
        }
    }

    #[test]
    fn a_message_round_trips_through_json() {
        let m = message();
        assert_eq!(TaskMessage::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn outlets_travel_only_when_the_task_has_some() {
        let mut m = message();
        let json: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert!(json.get("outlets").is_none(), "{json}");
        m.outlets = vec![crate::dag::AssetRef {
            uri: "s3://b/orders".into(),
            name: "orders".into(),
            group: "asset".into(),
            extra: Default::default(),
        }];
        assert_eq!(TaskMessage::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn a_bash_task_with_its_own_env_round_trips_beside_the_run_context_env() {
        let mut m = message();
        m.operator = OperatorSpec::Bash {
            command: "echo $REGION".into(),
            env: BTreeMap::from([("REGION".to_string(), "eu".to_string())]),
            cwd: None,
            do_xcom_push: false,
        };
        m.env = m.context_env();
        assert_eq!(TaskMessage::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn an_unknown_schema_version_is_its_own_error() {
        let mut json: serde_json::Value = serde_json::from_slice(&message().to_bytes()).unwrap();
        json["version"] = 99.into();
        let err = TaskMessage::from_bytes(json.to_string().as_bytes()).unwrap_err();
        assert!(matches!(err, MessageError::UnknownVersion { found: 99 }), "{err}");
    }

    #[test]
    fn a_version_1_message_is_refused_with_advice_to_run_matching_workers() {
        let mut json: serde_json::Value = serde_json::from_slice(&message().to_bytes()).unwrap();
        json["version"] = 1.into();
        let err = TaskMessage::from_bytes(json.to_string().as_bytes()).unwrap_err();
        assert!(err.to_string().contains("upgrade the worker"), "{err}");
    }

    #[test]
    fn a_custom_operator_message_carries_its_name_args_params_and_conf() {
        let mut m = message();
        m.operator = OperatorSpec::Custom {
            name: "wordcount".into(),
            args: serde_json::json!({"path": "/x"}).as_object().unwrap().clone(),
        };
        m.params = Some(serde_json::json!({"n": 1}).as_object().unwrap().clone());
        m.conf = Some(serde_json::Map::new());
        let json: serde_json::Value = serde_json::from_slice(&m.to_bytes()).unwrap();
        assert_eq!((json["operator"].as_str(), json["name"].as_str()), (Some("custom"), Some("wordcount")));
        assert_eq!(TaskMessage::from_bytes(&m.to_bytes()).unwrap(), m);
    }

    #[test]
    fn a_version_2_message_of_a_rolling_upgrade_is_still_read() {
        let mut json: serde_json::Value = serde_json::from_slice(&message().to_bytes()).unwrap();
        json["version"] = 2.into();
        let read = TaskMessage::from_bytes(json.to_string().as_bytes()).unwrap();
        assert_eq!((read.version, read.first_poke_at), (2, None));
    }

    #[test]
    fn garbage_is_malformed() {
        assert!(matches!(TaskMessage::from_bytes(b"\x00garbage"), Err(MessageError::Malformed(_))));
        assert!(matches!(TaskMessage::from_bytes(br#"{"version":2}"#), Err(MessageError::Malformed(_))));
    }

    #[test]
    fn a_deeply_nested_message_is_malformed_not_a_stack_overflow() {
        let deep = format!(r#"{{"version": 3, "map_item": {}1{}}}"#, "[".repeat(100_000), "]".repeat(100_000));
        let err = TaskMessage::from_bytes(deep.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("recursion limit exceeded"), "{err}");
    }

    mod properties {
        //! Property tests of the task-message decoder ([`TaskMessage::from_bytes`])
        //! on untrusted bytes (anything that reaches a worker's queue): arbitrary
        //! bytes, valid messages with one JSON field replaced by any value,
        //! byte-level mutations of valid messages, and the seed corpus
        //! `tests/corpus/message/`. proptest on stable rather than cargo-fuzz,
        //! which needs nightly (see `crate::test_corpus`). The properties: the
        //! decoder never panics; a refusal says what is wrong; what it accepts
        //! encodes and decodes to itself.

        use proptest::{prelude::*, sample::select, test_runner::Config};
        use serde_json::{json, Value};

        use super::*;
        use crate::test_corpus::{self, mutate, mutation};

        fn judge(body: &[u8]) -> Result<(), TestCaseError> {
            match TaskMessage::from_bytes(body) {
                Err(error) => {
                    prop_assert!(!error.to_string().trim().is_empty(), "an error without text: {:?}", error);
                }
                Ok(message) => {
                    let again = TaskMessage::from_bytes(&message.to_bytes()).ok();
                    prop_assert_eq!(again, Some(message), "what was accepted does not round-trip");
                }
            }
            Ok(())
        }

        /// Valid messages of every kind the corpus holds, and the unit tests' one.
        fn valid() -> Vec<Vec<u8>> {
            test_corpus::files("message")
                .into_iter()
                .filter(|file| file.must_pass())
                .map(|file| file.bytes)
                .chain([message().to_bytes()])
                .collect()
        }

        fn json_value() -> impl Strategy<Value = Value> {
            let leaf = prop_oneof![
                Just(Value::Null),
                any::<bool>().prop_map(Value::from),
                any::<i64>().prop_map(Value::from),
                any::<u64>().prop_map(Value::from),
                any::<f64>().prop_map(|f| json!(f)),
                ".{0,12}".prop_map(Value::from),
                select(
                    &[
                        "bash",
                        "custom",
                        "http_sensor",
                        "noop",
                        "00000000-0000-0000-0000-000000000000",
                        "2026-01-01T00:00:00Z"
                    ][..]
                )
                .prop_map(Value::from),
            ];
            leaf.prop_recursive(3, 12, 4, |inner| {
                prop_oneof![
                    prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                    prop::collection::btree_map(".{0,6}", inner, 0..3)
                        .prop_map(|m| Value::Object(m.into_iter().collect())),
                ]
            })
        }

        proptest! {
            #![proptest_config(Config::with_cases(100_000))]

            #[test]
            fn any_bytes_are_decoded_or_refused_with_a_reason(body in prop::collection::vec(any::<u8>(), 0..256)) {
                judge(&body)?;
            }

            #[test]
            fn a_valid_message_with_one_field_replaced_is_decoded_or_refused_with_a_reason(
                body in select(valid()),
                field in any::<prop::sample::Index>(),
                value in json_value(),
            ) {
                let mut json: Value = serde_json::from_slice(&body).expect("the valid corpus is JSON");
                let object = json.as_object_mut().expect("a message is a JSON object");
                let key = object.keys().nth(field.index(object.len())).cloned().expect("a message has fields");
                object.insert(key, value);
                judge(json.to_string().as_bytes())?;
            }

            #[test]
            fn a_mutated_valid_message_is_decoded_or_refused_with_a_reason(
                body in select(valid()),
                mutations in prop::collection::vec(mutation(), 1..4),
            ) {
                judge(&mutate(&body, &mutations))?;
            }
        }

        #[test]
        fn the_message_corpus_is_decoded_or_refused_as_its_names_say() {
            for file in test_corpus::files("message") {
                let outcome = TaskMessage::from_bytes(&file.bytes);
                match (file.must_pass(), outcome) {
                    (true, Err(error)) => panic!("{} is refused: {error}", file.name),
                    (true, Ok(message)) => {
                        assert_eq!(TaskMessage::from_bytes(&message.to_bytes()).unwrap(), message, "{}", file.name)
                    }
                    (false, Ok(message)) => panic!("{} is accepted: {message:?}", file.name),
                    (false, Err(error)) => assert!(!error.to_string().is_empty(), "{}", file.name),
                }
            }
        }
    }
}
