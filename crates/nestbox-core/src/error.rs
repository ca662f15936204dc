use nestbox_types::TaskId;

/// Errors of the use-cases. Variants are conditions a caller can act on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No task with that id.
    #[error("task {0} not found")]
    TaskNotFound(TaskId),
    /// The upload exceeded the configured size limit; nothing was kept.
    #[error("sample is larger than the {max}-byte limit")]
    SampleTooLarge {
        /// The configured limit.
        max: u64,
    },
    /// The request asked for something invalid (message says what).
    #[error("{0}")]
    Invalid(String),
    /// The task is in a state that forbids the action (e.g. deleting a running task).
    #[error("task {id} is {status}")]
    WrongStatus {
        /// The task.
        id: TaskId,
        /// Its current status.
        status: nestbox_types::TaskStatus,
    },
    /// The task store failed.
    #[error("task store: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The blob store failed.
    #[error("blob store: {0}")]
    Blob(#[source] std::io::Error),
    /// Local I/O (temp files) failed.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Wraps a store implementation's error.
    pub fn store(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        Error::Store(Box::new(e))
    }
}

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
