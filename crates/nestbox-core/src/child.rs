//! Child tasks: a file an analysis produced, submitted as a task of its own.
//!
//! CAPE's report pages offer "resubmit" on every dropped file and payload; the new task
//! records the analysis it came from (`tasks.parent_id`, the report's `info.parent_id`),
//! so the parent's report lists its children and each child links back.

use nestbox_types::{Category, NewTask, Task, TaskId};

use crate::{Core, Error, Result};

impl Core {
    /// Submits the artifact at blob `key` (inside `parent`'s analysis folder) as a new file
    /// task, the child of `parent`: the bytes are stored as a sample (hashed on the way, as
    /// an upload), and the task keeps the parent's options, priority, timeout, route and
    /// owner. The package is chosen afresh: the parent's was for the parent's file.
    pub async fn submit_child_file(
        &self,
        parent: &Task,
        key: &str,
        filename: &str,
    ) -> Result<TaskId> {
        let mut reader = self
            .blobs
            .open(key)
            .await?
            .ok_or_else(|| Error::Invalid(format!("artifact {key} is not in the store")))?;
        let mut upload = self.begin_upload().await?;
        while let Some(chunk) =
            std::future::poll_fn(|cx| reader.stream.as_mut().poll_next(cx)).await
        {
            upload.write(&chunk?).await?;
        }
        let sample = self.store_sample(upload.finish().await?).await?;
        let mut t = NewTask::new(Category::File, String::new());
        // The name comes from the guest: hostile input.
        let name = crate::safe_component(filename, "dropped.bin");
        t.target = self.materialize_target(&sample, &name).await?;
        t.sample_id = Some(sample.id);
        t.parent_id = Some(parent.id);
        t.options = parent.spec.options.clone();
        // The parent's archive member name means nothing for the child.
        t.options.0.remove("filename");
        t.priority = parent.spec.priority;
        t.timeout = parent.spec.timeout;
        t.route = parent.spec.route.clone();
        t.owner = parent.spec.owner.clone();
        t.platform = parent.spec.platform.clone();
        t.tags = parent.spec.tags.clone();
        let id = self.repo.add_task(&t).await?;
        tracing::info!(task_id = id.0, parent_id = parent.id.0, sha256 = %sample.sha256, "child task added");
        Ok(id)
    }
}
