//! What the qemu crate's tests share.

use nestbox_types::{Category, NewTask, Task, TaskId, TaskStatus, Timestamp};

/// A running file task `id` for `target`, clocked at `now`.
pub fn running_task(id: i64, target: &str, now: Timestamp) -> Task {
    Task {
        id: TaskId(id),
        spec: NewTask::new(Category::File, target.to_owned()),
        clock: now,
        added_on: now,
        started_on: Some(now),
        completed_on: None,
        status: TaskStatus::Running,
        processing: None,
        sample: None,
        guest: None,
        errors: Vec::new(),
    }
}
