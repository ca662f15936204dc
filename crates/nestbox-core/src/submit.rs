//! Intake and task control: the use-cases every API dialect calls.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use nestbox_analyzers::{Digest, FileType, MultiHasher};
use nestbox_types::{
    Category, NewSample, NewTask, Sample, Task, TaskId, TaskQuery, TaskStatus, Timestamp,
};
use tokio::io::AsyncWriteExt;

use crate::ports::{BlobStore, TaskRepo};
use crate::{Error, Result, keys};

/// Limits on what clients may send.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest accepted sample, in bytes.
    pub max_upload: u64,
}

/// The use-cases, over the ports chosen by the composition root.
#[derive(Clone)]
pub struct Core {
    /// The task store.
    pub repo: Arc<dyn TaskRepo>,
    /// The blob store.
    pub blobs: Arc<dyn BlobStore>,
    /// Client limits.
    pub limits: Limits,
    /// Where uploads are staged while they stream in (same volume as the store, so the
    /// final move is a rename).
    pub tmp_dir: PathBuf,
    /// Where per-task target files are materialised (Cuckoo's `target` is a host path
    /// ending in the client's file name); `None` keeps only the name.
    pub targets_dir: Option<PathBuf>,
    /// Operational metrics (rendered by `GET /metrics`).
    pub metrics: Arc<crate::metrics::Metrics>,
}

/// An upload in progress: bytes go to a temp file and through every hash in one pass,
/// so a sample is never held whole in memory.
pub struct Upload {
    file: tokio::io::BufWriter<tokio::fs::File>,
    temp: tempfile::TempPath,
    hasher: MultiHasher,
    written: u64,
    max: u64,
}

impl Upload {
    /// Appends a chunk. Fails with [`Error::SampleTooLarge`] past the limit; the temp file
    /// is removed when the `Upload` is dropped.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        self.written += chunk.len() as u64;
        if self.written > self.max {
            return Err(Error::SampleTooLarge { max: self.max });
        }
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.written
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.written == 0
    }

    /// Finishes the upload: flushes and seals the digest. Typing waits for
    /// [`Core::store_sample`], which skips it for content the store already has.
    pub async fn finish(mut self) -> Result<StagedSample> {
        // No fsync: a sample is accepted once it is in the page cache and its row committed,
        // the same durability as the SQLite store (WAL, synchronous=NORMAL). A killed server
        // loses nothing; only a power cut could, and an fsync per upload costs more than the
        // rest of the request.
        self.file.flush().await?;
        drop(self.file);
        let digest = self.hasher.finish();
        Ok(StagedSample {
            temp: self.temp,
            digest,
        })
    }
}

/// A fully received and hashed sample, not yet in the store.
pub struct StagedSample {
    temp: tempfile::TempPath,
    /// Its hashes.
    pub digest: Digest,
}

impl StagedSample {
    /// Where the staged bytes are (valid until the sample is stored or dropped).
    pub fn path(&self) -> &Path {
        &self.temp
    }
}

/// The basename of a client-supplied file name, safe to use as a single path component.
///
/// Cuckoo keeps the basename with both `/` and `\` as separators; on top of that we refuse
/// names that would climb (`..`), control characters and over-long names.
pub fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base.chars().filter(|c| !c.is_control()).collect();
    let cleaned = cleaned.trim();
    if cleaned.is_empty() || cleaned == "." || cleaned == ".." {
        return "sample.bin".to_owned();
    }
    // Filesystems cap a component at 255 bytes; keep the extension, which packages key on.
    if cleaned.len() <= 200 {
        return cleaned.to_owned();
    }
    let (stem, ext) = match cleaned.rfind('.') {
        Some(i) if cleaned.len() - i <= 16 => (&cleaned[..i], &cleaned[i..]),
        _ => (cleaned, ""),
    };
    let mut cut = 200 - ext.len();
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

/// A name reduced to one conservative path component: the basename, with every character
/// outside `[A-Za-z0-9._-]` (and non-ASCII alphanumerics kept) replaced by `_`, at most 100
/// characters; `fallback` when nothing usable is left. For names of files nestbox writes
/// itself from hostile input (dropped files, the sample inside a sandbox), where
/// [`sanitize_filename`]'s faithfulness to the client's name is not wanted.
pub fn safe_component(name: &str, fallback: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(100)
        .collect();
    if clean.is_empty() || clean.chars().all(|c| c == '.') {
        fallback.to_owned()
    } else {
        clean
    }
}

impl Core {
    /// Starts receiving a sample.
    pub async fn begin_upload(&self) -> Result<Upload> {
        tokio::fs::create_dir_all(&self.tmp_dir).await?;
        let dir = self.tmp_dir.clone();
        let temp = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new().prefix("upload-").tempfile_in(dir)
        })
        .await
        .map_err(|e| Error::Invalid(format!("temp file: {e}")))??;
        let (file, temp) = temp.into_parts();
        Ok(Upload {
            file: tokio::io::BufWriter::with_capacity(256 * 1024, tokio::fs::File::from_std(file)),
            temp,
            hasher: MultiHasher::new(),
            written: 0,
            max: self.limits.max_upload,
        })
    }

    /// Moves a staged sample into the store and records it. The blob is written before the
    /// row, so a sample row never points at missing content. Content the store already
    /// has is not typed or written again: the existing row is returned (samples are
    /// immutable, identified by SHA-256).
    pub async fn store_sample(&self, staged: StagedSample) -> Result<Sample> {
        let d = &staged.digest;
        let key = keys::sample(&d.sha256);
        if let Some(existing) = self.repo.sample_by_hash(&d.sha256).await?
            && self.blobs.exists(&key).await?
        {
            return Ok(existing);
        }
        // libmagic needs the file, not a buffer, to say what `file` says about ELF/PE details.
        let path = staged.path().to_path_buf();
        let file_type: FileType =
            tokio::task::spawn_blocking(move || nestbox_analyzers::file_type_path(&path))
                .await
                .map_err(|e| Error::Invalid(format!("file typing failed: {e}")))?;
        let new = NewSample {
            file_size: i64::try_from(d.size).unwrap_or(i64::MAX),
            file_type: file_type.description,
            mime: file_type.mime,
            md5: d.md5.clone(),
            crc32: d.crc32.clone(),
            sha1: d.sha1.clone(),
            sha256: d.sha256.clone(),
            sha512: d.sha512.clone(),
            ssdeep: Some(d.ssdeep.clone()),
            tlsh: d.tlsh.clone(),
        };
        self.blobs.put_file(&key, staged.path()).await?;
        self.repo.add_sample(&new).await
    }

    /// The host path a file task's `target` names: a fresh directory holding the sample
    /// under the client's (sanitised) file name, hard-linked to the stored content.
    pub async fn materialize_target(&self, sample: &Sample, filename: &str) -> Result<String> {
        let name = sanitize_filename(filename);
        let Some(dir) = &self.targets_dir else {
            return Ok(name);
        };
        let Some(local) = self.blobs.local(&keys::sample(&sample.sha256)).await? else {
            return Ok(name);
        };
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || -> std::io::Result<String> {
            std::fs::create_dir_all(&dir)?;
            let tmp = tempfile::Builder::new()
                .prefix("tmp")
                .tempdir_in(&dir)?
                .keep();
            let dest = tmp.join(&name);
            if std::fs::hard_link(&local.path, &dest).is_err() {
                std::fs::copy(&local.path, &dest)?;
            }
            Ok(dest.to_string_lossy().into_owned())
        })
        .await
        .map_err(|e| Error::Invalid(format!("target: {e}")))?
        .map_err(Error::Io)
    }

    /// Creates a pending task.
    pub async fn create_task(&self, task: &NewTask) -> Result<TaskId> {
        let id = self.repo.add_task(task).await?;
        tracing::info!(task_id = id.0, category = %task.category, target = %task.target, "task added");
        Ok(id)
    }

    /// A task, or [`Error::TaskNotFound`].
    pub async fn task(&self, id: TaskId) -> Result<Task> {
        self.repo.task(id).await?.ok_or(Error::TaskNotFound(id))
    }

    /// Lists tasks.
    pub async fn list_tasks(&self, query: &TaskQuery) -> Result<Vec<Task>> {
        self.repo.list_tasks(query).await
    }

    /// Deletes a task and its analysis folder. Running tasks are refused (Cuckoo). The
    /// sample and its content stay: other tasks may share them.
    pub async fn delete_task(&self, id: TaskId) -> Result<()> {
        let task = self.task(id).await?;
        if task.status == TaskStatus::Running {
            return Err(Error::WrongStatus {
                id,
                status: task.status,
            });
        }
        self.repo.delete_task(id).await?;
        self.blobs.delete_prefix(&keys::analysis(id)).await?;
        tracing::info!(task_id = id.0, "task deleted");
        Ok(())
    }

    /// Cuckoo's reschedule: marks a file/url task `recovered` and queues a copy (with
    /// `priority` when given and non-zero). Other categories → [`Error::Invalid`].
    pub async fn reschedule(&self, id: TaskId, priority: Option<i64>) -> Result<TaskId> {
        let task = self.task(id).await?;
        if !matches!(task.spec.category, Category::File | Category::Url) {
            return Err(Error::Invalid(format!(
                "cannot reschedule a task of category {}",
                task.spec.category
            )));
        }
        let mut copy = task.spec.clone();
        copy.clock = Some(task.clock);
        copy.submit_id = None;
        if let Some(p) = priority.filter(|p| *p != 0) {
            copy.priority = p;
        }
        self.repo
            .transition(id, &TaskStatus::ALL, TaskStatus::Recovered)
            .await?;
        let new_id = self.repo.add_task(&copy).await?;
        tracing::info!(task_id = id.0, new_task_id = new_id.0, "task rescheduled");
        Ok(new_id)
    }

    /// Cuckoo's reboot: a new file task on the same target with package `reboot`, the
    /// child of the rebooted task (Cuckoo keeps the id in `custom`; `parent_id` too).
    pub async fn reboot(&self, id: TaskId) -> Result<TaskId> {
        let task = self.task(id).await?;
        let mut t = NewTask::new(Category::File, task.spec.target.clone());
        t.package = "reboot".to_owned();
        t.custom = id.0.to_string();
        t.parent_id = Some(id);
        t.sample_id = task.spec.sample_id;
        self.repo.add_task(&t).await
    }

    /// Cuckoo's rereport: `reported` → `completed`, so reporting runs again.
    pub async fn rereport(&self, id: TaskId) -> Result<bool> {
        self.task(id).await?;
        let changed = self
            .repo
            .transition(id, &[TaskStatus::Reported], TaskStatus::Completed)
            .await?;
        Ok(changed)
    }

    /// Start-up recovery of tasks a crash left `running` (Cuckoo semantics): with
    /// `reschedule` they become `recovered` and a copy is queued; otherwise
    /// `failed_analysis`. Returns the ids handled. Only for a store no other node works
    /// on: with several nodes, [`Core::recover_expired`] is the recovery.
    pub async fn recover_running(&self, reschedule: bool) -> Result<Vec<TaskId>> {
        let ids = self.repo.running_tasks().await?;
        for &id in &ids {
            let note = "The analysis was interrupted (server stopped while it ran)";
            self.recover(id, reschedule, note).await?;
        }
        Ok(ids)
    }

    /// Recovery of the tasks whose worker stopped renewing its lease (it died, or lost
    /// the database for longer than a lease): the store hands each expired task to
    /// exactly one caller ([`TaskRepo::take_expired`], here with a fresh lease of
    /// `lease` for `worker`), which recovers it as [`Core::recover_running`] does.
    /// Returns the ids handled.
    ///
    /// [`TaskRepo::take_expired`]: crate::ports::TaskRepo::take_expired
    pub async fn recover_expired(
        &self,
        worker: &str,
        lease: std::time::Duration,
        reschedule: bool,
    ) -> Result<Vec<TaskId>> {
        let now = Timestamp::now();
        let until = Timestamp(now.0.saturating_add(micros(lease)));
        let ids = self.repo.take_expired(worker, now, until).await?;
        for &id in &ids {
            let note = "The analysis was interrupted (its worker stopped renewing the lease)";
            self.recover(id, reschedule, note).await?;
        }
        Ok(ids)
    }

    /// Recovers one interrupted `running` task: an error note, then `recovered` plus a
    /// queued copy (file/url tasks with `reschedule`) or `failed_analysis`. Both moves are
    /// compare-and-set from `running`, so a task that finished after all is left alone.
    async fn recover(&self, id: TaskId, reschedule: bool, note: &str) -> Result<()> {
        self.repo.add_error(id, note).await?;
        let task = self.task(id).await?;
        let can = matches!(task.spec.category, Category::File | Category::Url);
        if reschedule && can {
            if self
                .repo
                .transition(id, &[TaskStatus::Running], TaskStatus::Recovered)
                .await?
            {
                let mut copy = task.spec.clone();
                copy.clock = Some(task.clock);
                copy.submit_id = None;
                let new_id = self.repo.add_task(&copy).await?;
                tracing::warn!(
                    task_id = id.0,
                    new_task_id = new_id.0,
                    "recovered running task"
                );
            }
        } else if self
            .repo
            .transition(id, &[TaskStatus::Running], TaskStatus::FailedAnalysis)
            .await?
        {
            tracing::warn!(task_id = id.0, "running task marked failed_analysis");
        }
        Ok(())
    }

    /// The epoch-seconds timestamp helper used by views.
    pub fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A duration in whole microseconds (the store's time unit), saturating.
pub fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::sanitize_filename;

    #[test]
    fn safe_components() {
        use super::safe_component;
        assert_eq!(safe_component("../../a b$.sh", "x"), "a_b_.sh");
        assert_eq!(safe_component("..", "x"), "x");
        assert_eq!(safe_component("C:\\dir\\évil.exe", "x"), "évil.exe");
        assert_eq!(safe_component(&"a".repeat(300), "x").len(), 100);
    }

    #[test]
    fn filenames_keep_only_a_safe_basename() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("/tmp/x/foobar.txt"), "foobar.txt");
        assert_eq!(sanitize_filename("C:\\Users\\a\\evil.exe"), "evil.exe");
        assert_eq!(sanitize_filename(".."), "sample.bin");
        assert_eq!(sanitize_filename("a/.."), "sample.bin");
        assert_eq!(sanitize_filename(""), "sample.bin");
        assert_eq!(sanitize_filename("a\0b\nc.txt"), "abc.txt");
        assert_eq!(sanitize_filename("\u{202e}.jpg"), "\u{202e}.jpg");
        let long = format!("{}.docm", "é".repeat(300));
        let s = sanitize_filename(&long);
        assert!(s.len() <= 200 && s.ends_with(".docm"), "{s}");
    }
}
