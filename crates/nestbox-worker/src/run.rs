use std::sync::Arc;
use std::time::Duration;

use nestbox_core::machinery::{DetonationJob, Machinery};
use nestbox_core::pipeline::{self, StaticSettings};
use nestbox_core::ports::LocalBlob;
use nestbox_core::{Core, keys};
use nestbox_types::report::Report;
use nestbox_types::{Category, Machine, Task, TaskStatus, Timestamp};
use serde::Serialize;
use tokio::sync::{Notify, watch};
use tracing::Instrument;

use crate::beats::Beats;

/// Settings of the worker pool.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Number of concurrent workers.
    pub workers: usize,
    /// Analysis timeout when the task says 0.
    pub default_timeout: Duration,
    /// Grace on top of the analysis timeout before an analysis is abandoned.
    pub critical_timeout: Duration,
    /// How often idle workers look at the queue without being woken.
    pub poll_interval: Duration,
    /// Machinery name reported as the guest `manager`.
    pub manager: String,
    /// Static stage settings (also carries the version string).
    pub static_settings: StaticSettings,
    /// Whether to render `reports/report.html`.
    pub html_report: bool,
    /// This worker node's name ('' on a single box); worker names are `<node>/worker<n>`,
    /// unique across the nodes sharing a store.
    pub node: String,
    /// How long a claimed task's lease lasts; it is renewed every third of that while the
    /// analysis runs. A task whose lease ran out is recovered by another worker.
    pub lease: Duration,
    /// Recovery reschedules (`true`) or fails interrupted tasks (`[analysis] reschedule`).
    pub reschedule: bool,
    /// How long a machine that failed stays out of rotation before it is tried again.
    pub machine_retry: Duration,
}

/// The running pool. Wake it with [`WorkerPool::notify`] when a task is queued.
pub struct WorkerPool {
    core: Core,
    settings: Arc<WorkerSettings>,
    wake: Arc<Notify>,
    machineries: Machineries,
}

/// The machineries a pool drives: a default one for every machine, plus ones that only
/// drive the machines tagged with their name (`emulator1..` carry the tag `emulator`).
#[derive(Clone, Default)]
struct Machineries {
    default: Option<Arc<dyn Machinery>>,
    tagged: Vec<Arc<dyn Machinery>>,
}

impl Machineries {
    /// The machinery that drives `machine`: the one its tags name, else the default.
    fn for_machine(&self, machine: &Machine) -> Option<&Arc<dyn Machinery>> {
        self.tagged
            .iter()
            .chain(self.default.iter())
            .find(|m| machine.spec.tags.iter().any(|t| t == m.name()))
            .or(self.default.as_ref())
    }
}

impl WorkerPool {
    /// A pool over the given use-cases.
    pub fn new(core: Core, settings: WorkerSettings) -> Self {
        WorkerPool {
            core,
            settings: Arc::new(settings),
            wake: Arc::new(Notify::new()),
            machineries: Machineries::default(),
        }
    }

    /// Detonates tasks with `machinery` after the static stage. Without one, an analysis is
    /// the static pipeline only.
    pub fn with_machinery(mut self, machinery: Arc<dyn Machinery>) -> Self {
        self.machineries.default = Some(machinery);
        self
    }

    /// Detonates with `machinery` on the machines tagged with its name only (the
    /// `emulator` slots next to the `ns` ones).
    pub fn with_tagged_machinery(mut self, machinery: Arc<dyn Machinery>) -> Self {
        self.machineries.tagged.push(machinery);
        self
    }

    /// The handle API layers use to wake idle workers after queueing a task.
    pub fn notify(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Runs the workers until `shutdown` turns true. A worker finishes its current task
    /// before it stops.
    pub async fn run(self, shutdown: watch::Receiver<bool>) {
        let mut handles = Vec::new();
        // Tasks queued by other processes (API nodes) wake this pool's idle workers.
        let relay = tokio::spawn(relay_wakeups(self.core.clone(), self.wake.clone()));
        let names: Vec<String> = (1..=self.settings.workers.max(1))
            .map(|n| match self.settings.node.as_str() {
                "" => format!("worker{n}"),
                node => format!("{node}/worker{n}"),
            })
            .collect();
        // Heartbeats go on until the last analysis finished, not only until shutdown.
        let beats = Beats::new(&self.settings.node, &names);
        let (stop_beats, beats_stopped) = watch::channel(false);
        let beating = tokio::spawn(beats.clone().run(
            self.core.clone(),
            crate::beats::interval(self.settings.lease),
            beats_stopped,
        ));
        for name in names {
            let w = Worker {
                name,
                core: self.core.clone(),
                settings: self.settings.clone(),
                wake: self.wake.clone(),
                machineries: self.machineries.clone(),
                beats: beats.clone(),
            };
            handles.push(tokio::spawn(w.run(shutdown.clone())));
        }
        for h in handles {
            if let Err(e) = h.await {
                tracing::error!(error = %e, "worker ended abnormally");
            }
        }
        relay.abort();
        let _ = stop_beats.send(true);
        let _ = beating.await;
        beats.forget(&self.core).await;
    }
}

/// Keeps relaying the store's "task queued" notifications to `wake`, reconnecting after
/// errors; returns when the store has no notifications.
async fn relay_wakeups(core: Core, wake: Arc<Notify>) {
    loop {
        match core.repo.relay_wakeups(wake.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(error = %e, "listening for queued tasks failed; retrying");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

struct Worker {
    name: String,
    core: Core,
    settings: Arc<WorkerSettings>,
    wake: Arc<Notify>,
    machineries: Machineries,
    beats: Beats,
}

impl Worker {
    async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::debug!(worker = %self.name, "worker started");
        let mut errors = 0u32;
        while !*shutdown.borrow() {
            self.core.metrics.heartbeat(&self.name);
            match self.core.repo.claim(&self.name, self.lease_end()).await {
                Ok(Some((task, machine))) => {
                    errors = 0;
                    self.analyse(task, machine).await;
                    // Another task may be waiting: look again at once, and pass the wake-up on.
                    continue;
                }
                Ok(None) => match self.core.repo.claim_processing(&self.name).await {
                    Ok(Some(task)) => {
                        self.reprocess(task).await;
                        continue;
                    }
                    Ok(None) => {
                        let recovered = self
                            .core
                            .recover_expired(
                                &self.name,
                                self.settings.lease,
                                self.settings.reschedule,
                            )
                            .await;
                        match recovered {
                            Ok(ids) if !ids.is_empty() => {
                                tracing::warn!(worker = %self.name, count = ids.len(), "recovered tasks whose worker stopped renewing its lease");
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "recovering expired leases failed")
                            }
                        }
                        match self.retry_broken_machines().await {
                            Ok(names) if !names.is_empty() => {
                                tracing::info!(machines = ?names, "machines back in rotation after their retry time");
                                continue;
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "retrying broken machines failed")
                            }
                        }
                        if let Err(e) = self.fail_unserviceable().await {
                            tracing::warn!(error = %e, "checking unserviceable tasks failed");
                        }
                    }
                    Err(e) => {
                        errors += 1;
                        tracing::error!(worker = %self.name, error = %e, "claiming processing failed");
                    }
                },
                Err(e) => {
                    errors += 1;
                    tracing::error!(worker = %self.name, error = %e, "claiming a task failed");
                }
            }
            // Back off on repeated store errors; otherwise sleep until woken or polled.
            let wait = self.settings.poll_interval * 2u32.pow(errors.min(5));
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::debug!(worker = %self.name, "worker stopped");
    }

    /// When the lease of a task claimed now ends.
    fn lease_end(&self) -> Timestamp {
        let now = Timestamp::now();
        Timestamp(
            now.0
                .saturating_add(nestbox_core::micros(self.settings.lease)),
        )
    }

    /// Puts machines back whose time out of rotation is over.
    async fn retry_broken_machines(&self) -> nestbox_core::Result<Vec<String>> {
        let now = Timestamp::now();
        let before = Timestamp(
            now.0
                .saturating_sub(nestbox_core::micros(self.settings.machine_retry)),
        );
        self.core.repo.retry_broken_machines(before, now).await
    }

    /// CAPE marks tasks that no machine can ever serve as `failed_analysis` instead of
    /// leaving them pending forever.
    async fn fail_unserviceable(&self) -> nestbox_core::Result<()> {
        for id in self.core.repo.unserviceable_tasks().await? {
            let repo = &self.core.repo;
            if repo
                .transition(id, &[TaskStatus::Pending], TaskStatus::FailedAnalysis)
                .await?
            {
                repo.add_error(
                    id,
                    "No machine matches the task's machine, platform and tags",
                )
                .await?;
                tracing::warn!(task_id = id.0, "no machine can serve the task");
            }
        }
        Ok(())
    }

    async fn analyse(&self, task: Task, machine: Machine) {
        // Every event of the analysis, in this task and the ones it awaits, carries the
        // task id (`instrument`, not `enter`: an entered guard held across an await
        // leaks the span into whatever else runs on the thread).
        let span = tracing::info_span!(
            "analysis",
            task_id = task.id.0,
            worker = %self.name,
            machine = %machine.spec.name
        );
        self.analyse_in_span(task, machine).instrument(span).await;
    }

    async fn analyse_in_span(&self, task: Task, machine: Machine) {
        let id = task.id;
        let metrics = &self.core.metrics;
        metrics.worker_busy.set([&self.name], 1.0);
        self.beats.busy(&self.name, Some(id));
        let started = std::time::Instant::now();
        tracing::info!(category = %task.spec.category, "analysis started");
        let heartbeat = tokio::spawn(heartbeat(
            self.core.clone(),
            id,
            self.name.clone(),
            self.settings.lease,
        ));
        let mut released = false;
        let outcome = self.analyse_locked(&task, &machine, &mut released).await;
        heartbeat.abort();
        if !released && let Err(e) = self.core.repo.unlock_machine(machine.id).await {
            tracing::error!(error = %e, "unlocking the machine failed");
        }
        let status = match outcome {
            Ok(status) => {
                tracing::info!(%status, "analysis finished");
                status
            }
            Err(e) => {
                tracing::error!(error = %e, "analysis failed");
                let repo = &self.core.repo;
                let _ = repo.add_error(id, &e.to_string()).await;
                let _ = repo
                    .transition(id, &[TaskStatus::Running], TaskStatus::FailedAnalysis)
                    .await;
                TaskStatus::FailedAnalysis
            }
        };
        metrics.task.observe([status.as_str()], started.elapsed());
        metrics.worker_busy.set([&self.name], 0.0);
        self.beats.busy(&self.name, None);
        metrics.heartbeat(&self.name);
    }

    /// The report's skeleton, with the archive a demuxed member came from
    /// (`info.parent_sample`).
    async fn skeleton(&self, task: &Task) -> nestbox_types::report::Report {
        let mut report = pipeline::skeleton(task, &self.settings.static_settings.version);
        if let Some(id) = task.spec.parent_sample_id {
            match self.core.repo.sample(id).await {
                Ok(Some(parent)) => {
                    report.info.parent_sample = pipeline::sample_record(&parent);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "the parent sample could not be read"),
            }
        }
        report
    }

    /// Processing and reporting again for a task put back to `completed` (Cuckoo's
    /// rereport). The static stage is the processing of the sample, so it runs again;
    /// the timings of the original run are kept from the task row.
    async fn reprocess(&self, task: Task) {
        let span = tracing::info_span!("reprocessing", task_id = task.id.0, worker = %self.name);
        self.reprocess_in_span(task).instrument(span).await;
    }

    async fn reprocess_in_span(&self, task: Task) {
        let id = task.id;
        tracing::info!("reprocessing");
        let mut report = self.skeleton(&task).await;
        let sample = self.fetch_sample(&task).await;
        match self.static_stage(&task, report.clone(), sample).await {
            Ok(r) => report = r,
            Err(msg) => record(&mut report, self.core.repo.as_ref(), id, &msg).await,
        }
        report.info.ended = task.completed_on.map(|t| t.epoch_f64());
        if let (Some(s), Some(c)) = (task.started_on, task.completed_on) {
            report.info.duration = c.secs() - s.secs();
        }
        if let Some(g) = &task.guest {
            let machine = serde_json::json!({
                "name": g.name, "label": g.label, "manager": g.manager, "status": g.status,
                "started_on": g.started_on.epoch_f64(),
                "shutdown_on": g.shutdown_on.map(|t| t.epoch_f64()),
            });
            if let serde_json::Value::Object(m) = machine {
                report.info.machine = m;
            }
        }
        if let Err(e) = self.finish(&task, report, TaskStatus::Completed).await {
            tracing::error!(error = %e, "reprocessing failed");
            let repo = &self.core.repo;
            let _ = repo.add_error(id, &e.to_string()).await;
            let _ = repo
                .transition(id, &[TaskStatus::Completed], TaskStatus::FailedProcessing)
                .await;
        }
    }

    /// Runs the analysis on the locked `machine`; sets `released` once it has unlocked
    /// the machine itself (as soon as the detonation is over).
    async fn analyse_locked(
        &self,
        task: &Task,
        machine: &Machine,
        released: &mut bool,
    ) -> nestbox_core::Result<TaskStatus> {
        let repo = &self.core.repo;
        let id = task.id;
        let machinery = self.machineries.for_machine(machine).cloned();
        let manager = machinery
            .as_ref()
            .map_or(self.settings.manager.as_str(), |m| m.name());
        let guest = repo.start_guest(id, machine, manager).await?;
        let task_json = serde_json::to_vec_pretty(task).unwrap_or_default();
        self.core
            .blobs
            .put(&keys::analysis_file(id, "task.json"), task_json)
            .await?;

        let timeout = if task.spec.timeout > 0 {
            Duration::from_secs(task.spec.timeout.unsigned_abs())
        } else {
            self.settings.default_timeout
        };
        let deadline = timeout + self.settings.critical_timeout;
        let mut report = self.skeleton(task).await;
        report.info.timeout = i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX);
        let started = Timestamp::now();

        let stage_started = std::time::Instant::now();
        // One local copy of the sample for both stages (from S3 that is one download).
        let sample = tokio::time::timeout(deadline, self.fetch_sample(task))
            .await
            .unwrap_or_else(|_| {
                Some(Err(format!(
                    "Fetching the sample hit the critical timeout ({}s)",
                    deadline.as_secs()
                )))
            });
        let static_outcome = tokio::time::timeout(
            deadline,
            self.static_stage(task, report.clone(), sample.clone()),
        )
        .await;
        self.core
            .metrics
            .stage
            .observe(["static"], stage_started.elapsed());
        match static_outcome {
            Ok(Ok(r)) => report = r,
            Ok(Err(msg)) => record(&mut report, repo.as_ref(), id, &msg).await,
            Err(_) => {
                let msg = format!(
                    "The analysis hit the critical timeout ({}s)",
                    deadline.as_secs()
                );
                record(&mut report, repo.as_ref(), id, &msg).await;
            }
        }

        let mut machine_fault = None;
        // A sample that could not be fetched is already an error of the static stage;
        // there is nothing to detonate then.
        if let Some(machinery) = &machinery
            && detonates(task.spec.category)
            && !matches!(sample, Some(Err(_)))
        {
            let stage_started = std::time::Instant::now();
            let local = sample.as_ref().and_then(|s| s.as_ref().ok());
            machine_fault = self
                .detonation_stage(
                    machinery.as_ref(),
                    task,
                    machine,
                    local.map(Arc::as_ref),
                    (timeout, deadline),
                    &mut report,
                )
                .await;
            self.core
                .metrics
                .stage
                .observe(["detonation"], stage_started.elapsed());
        }

        drop(sample);
        let ended = Timestamp::now();
        if let Some(fault) = machine_fault {
            // The machine itself failed: out of rotation (locked by no task) until its
            // retry time, so the next task goes to a machine that works.
            repo.set_guest_status(guest, "failed").await?;
            let msg = format!(
                "Machine {} failed and is out of rotation for {} s: {fault}",
                machine.spec.name,
                self.settings.machine_retry.as_secs()
            );
            tracing::warn!(machine = %machine.spec.name, "{msg}");
            record(&mut report, repo.as_ref(), id, &msg).await;
            match repo.set_machine_broken(machine.id, ended).await {
                Ok(()) => *released = true,
                Err(e) => tracing::error!(error = %e, "marking the machine broken failed"),
            }
        } else {
            repo.set_guest_status(guest, "stopped").await?;
            // The machine is free once the detonation is over: unlock it now, so the slot
            // can start its next task while this one is scored and its reports are written.
            match repo.unlock_machine(machine.id).await {
                Ok(()) => {
                    *released = true;
                    self.wake.notify_one();
                }
                Err(e) => tracing::error!(error = %e, "unlocking the machine failed"),
            }
        }

        // Processing: machine block, timings, score.
        report.info.started = Some(started.epoch_f64());
        report.info.ended = Some(ended.epoch_f64());
        report.info.duration = ended.secs() - started.secs();
        report.info.machine = machine_block(machine, manager, started, ended);
        self.finish(task, report, TaskStatus::Running).await
    }

    /// Scores and writes the reports, then moves the task to `completed` and `reported`.
    ///
    /// The report is written *before* the status says `completed`, because clients such as
    /// sandboxapi treat `completed` as "report available" and fetch it at once.
    async fn finish(
        &self,
        task: &Task,
        mut report: Report,
        from: TaskStatus,
    ) -> nestbox_core::Result<TaskStatus> {
        let repo = &self.core.repo;
        let id = task.id;
        pipeline::score(&mut report);
        let stage_started = std::time::Instant::now();
        let written = self.write_reports(task, &report).await;
        self.core
            .metrics
            .stage
            .observe(["reporting"], stage_started.elapsed());
        if from != TaskStatus::Completed {
            repo.transition(id, &[from], TaskStatus::Completed).await?;
        }
        if let Err(e) = written {
            repo.add_error(id, &format!("Writing the report failed: {e}"))
                .await?;
            repo.transition(id, &[TaskStatus::Completed], TaskStatus::FailedReporting)
                .await?;
            return Ok(TaskStatus::FailedReporting);
        }
        repo.transition(id, &[TaskStatus::Completed], TaskStatus::Reported)
            .await?;
        Ok(TaskStatus::Reported)
    }

    /// Runs the sample on the machinery and merges what it saw into the report; artifacts
    /// are stored in the task's analysis folder (Cuckoo layout). A failing machinery is an
    /// error entry, not a lost analysis: the static report is still written. Returns the
    /// machine's fault when the machinery says the machine itself failed.
    async fn detonation_stage(
        &self,
        machinery: &dyn Machinery,
        task: &Task,
        machine: &Machine,
        sample: Option<&LocalBlob>,
        (timeout, deadline): (Duration, Duration),
        report: &mut Report,
    ) -> Option<String> {
        let repo = self.core.repo.as_ref();
        let id = task.id;
        let workdir = match tempfile_dir(&self.core.tmp_dir, id) {
            Ok(d) => d,
            Err(e) => {
                record(
                    report,
                    repo,
                    id,
                    &format!("Cannot create the detonation workdir: {e}"),
                )
                .await;
                return None;
            }
        };
        let file_name = file_name_of(task);
        let job = DetonationJob {
            task,
            machine,
            sample: sample.map(|l| l.path.as_path()),
            file_name: &file_name,
            workdir: workdir.path(),
            timeout,
        };
        let det = match tokio::time::timeout(deadline, machinery.detonate(job)).await {
            Ok(Ok(d)) => d,
            Ok(Err(e)) => {
                record(report, repo, id, &format!("Detonation failed: {e}")).await;
                return None;
            }
            Err(_) => {
                let msg = format!(
                    "The detonation hit the critical timeout ({}s)",
                    deadline.as_secs()
                );
                record(report, repo, id, &msg).await;
                return None;
            }
        };
        let fault = det.machine_fault.clone();
        for e in &det.errors {
            record(report, repo, id, e).await;
        }
        report.debug.log.extend(det.log);
        report.behavior = det.behavior;
        report.signatures.extend(det.signatures);
        report.network = det.network;
        report.procmemory.extend(det.procmemory);
        let blobs = &self.core.blobs;
        if let Some(pcap) = &det.pcap
            && let Err(e) = blobs
                .put_file(&keys::analysis_file(id, "dump.pcap"), pcap)
                .await
        {
            record(report, repo, id, &format!("Storing the pcap failed: {e}")).await;
        }
        for (n, shot) in det.screenshots.iter().enumerate() {
            let ext = shot.extension().and_then(|e| e.to_str()).unwrap_or("png");
            let rel = format!("shots/{:04}.{ext}", n + 1);
            match blobs.put_file(&keys::analysis_file(id, &rel), shot).await {
                Ok(()) => report.screenshots.push(nestbox_types::report::Screenshot {
                    path: rel,
                    ocr: String::new(),
                }),
                Err(e) => {
                    record(
                        report,
                        repo,
                        id,
                        &format!("Storing a screenshot failed: {e}"),
                    )
                    .await
                }
            }
        }
        let dropped = self.scan_dropped(det.dropped, report).await;
        for dropped in dropped {
            let mut info = dropped.info;
            let rel = format!(
                "files/{}_{}",
                &info.sha256.get(..16).unwrap_or("0"),
                nestbox_core::safe_component(&info.name, "file")
            );
            match blobs
                .put_file(&keys::analysis_file(id, &rel), &dropped.local)
                .await
            {
                Ok(()) => {
                    info.path = rel;
                    report.dropped.push(info);
                }
                Err(e) => {
                    record(
                        report,
                        repo,
                        id,
                        &format!("Storing a dropped file failed: {e}"),
                    )
                    .await
                }
            }
        }
        fault
    }

    /// YARA over the dropped files (on a blocking thread), as Cuckoo/CAPE do with the
    /// same rules as the sample; matches go to each `dropped[].yara`.
    async fn scan_dropped(
        &self,
        mut dropped: Vec<nestbox_core::machinery::DroppedFile>,
        report: &mut Report,
    ) -> Vec<nestbox_core::machinery::DroppedFile> {
        if dropped.is_empty() || self.settings.static_settings.rules.is_none() {
            return dropped;
        }
        let settings = self.settings.static_settings.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            let mut errors = Vec::new();
            for d in &mut dropped {
                pipeline::scan_dropped(&mut d.info, &d.local, &settings, &mut errors);
            }
            (dropped, errors)
        })
        .await;
        match scanned {
            Ok((dropped, errors)) => {
                report.debug.errors.extend(errors);
                dropped
            }
            Err(e) => {
                report
                    .debug
                    .errors
                    .push(format!("Scanning the dropped files crashed: {e}"));
                Vec::new()
            }
        }
    }

    /// The sample as a local file, for the static stage and the detonation alike: `None`
    /// when the task has no sample (URLs), else the file or why it cannot be had. From a
    /// local store that is the store's own file; from S3 a temp copy, downloaded once per
    /// analysis and deleted when the last holder drops it.
    async fn fetch_sample(&self, task: &Task) -> Fetched {
        if !task.spec.category.has_sample() {
            return None;
        }
        let sample = task.sample.as_ref()?;
        let started = std::time::Instant::now();
        let local = match self.core.blobs.local(&keys::sample(&sample.sha256)).await {
            Ok(Some(local)) => local,
            Ok(None) => return Some(Err("The sample is missing from the store".to_owned())),
            Err(e) => {
                return Some(Err(format!(
                    "The sample could not be read from the store: {e}"
                )));
            }
        };
        if local.guard.is_some() {
            // A download (S3): worth seeing in the log, with its size and time.
            tracing::info!(
                bytes = sample.file_size,
                ms = started.elapsed().as_millis() as u64,
                "sample fetched"
            );
        }
        Some(Ok(Arc::new(local)))
    }

    /// Runs static triage on a blocking thread. A panic in an analyzer is caught here and
    /// becomes an error entry; it never takes the worker down.
    async fn static_stage(
        &self,
        task: &Task,
        mut report: Report,
        fetched: Fetched,
    ) -> Result<Report, String> {
        if !task.spec.category.has_sample() {
            return Ok(report);
        }
        let (Some(sample), Some(local)) = (task.sample.clone(), fetched) else {
            report
                .debug
                .errors
                .push("The task has no sample".to_owned());
            return Ok(report);
        };
        let local = local?;
        let name = file_name_of(task);
        let settings = self.settings.static_settings.clone();
        let category = task.spec.category;
        let member = task.spec.options.get("filename").map(str::to_owned);
        let handle = tokio::task::spawn_blocking(move || {
            let timings = match member.filter(|_| category == Category::Archive) {
                // One member of an archive (tasks/create/submit): the member is the target.
                Some(member) => {
                    nestbox_core::archive_member::triage_member(
                        &mut report,
                        &local.path,
                        &name,
                        &member,
                        Some(&sample.sha256),
                        &settings,
                    );
                    pipeline::Timings::new()
                }
                None => {
                    let timings = pipeline::triage_file(
                        &mut report,
                        &local.path,
                        &name,
                        Some(&sample.sha256),
                        &settings,
                    );
                    if category == Category::Archive {
                        report.target.category = "archive".to_owned();
                    }
                    timings
                }
            };
            drop(local);
            (report, timings)
        });
        let (report, timings) = handle
            .await
            .map_err(|e| format!("Static analysis crashed: {e}"))?;
        for (analyzer, took) in timings {
            self.core.metrics.analyzer.observe([analyzer], took);
        }
        Ok(report)
    }

    async fn write_reports(&self, task: &Task, report: &Report) -> nestbox_core::Result<()> {
        let blobs = &self.core.blobs;
        blobs
            .put(&keys::report_json(task.id), render_report_json(report))
            .await?;
        // The task list's figures and search terms (the web UI never opens a report to
        // list tasks).
        self.core
            .repo
            .index_report(task.id, &nestbox_core::report_index::index_of(report))
            .await?;
        if self.settings.html_report {
            match html::render(report) {
                Ok(page) => {
                    blobs
                        .put(&keys::report_html(task.id), page.into_bytes())
                        .await?
                }
                Err(e) => tracing::error!(error = %e, "rendering the HTML report failed"),
            }
        }
        Ok(())
    }
}

use crate::html;

/// A task's sample as a local file (see [`Worker::fetch_sample`]).
type Fetched = Option<Result<Arc<LocalBlob>, String>>;

/// Categories that are run, not only read.
/// Renews the lease of a running task every third of the lease until aborted. A renewal
/// that finds the lease gone (another worker took the task over) is logged; the analysis
/// then finds its task no longer `running` when it finishes.
async fn heartbeat(core: Core, id: nestbox_types::TaskId, worker: String, lease: Duration) {
    let every = (lease / 3).max(Duration::from_millis(100));
    loop {
        tokio::time::sleep(every).await;
        let now = Timestamp::now();
        let until = Timestamp(now.0.saturating_add(nestbox_core::micros(lease)));
        match core.repo.renew_lease(id, &worker, until).await {
            Ok(true) => {}
            Ok(false) => {
                tracing::warn!(task_id = id.0, "the task's lease was lost");
                return;
            }
            Err(e) => tracing::warn!(task_id = id.0, error = %e, "renewing the lease failed"),
        }
    }
}

fn detonates(category: Category) -> bool {
    matches!(category, Category::File | Category::Url | Category::Archive)
}

/// A private scratch directory for one detonation, removed when dropped.
fn tempfile_dir(
    tmp: &std::path::Path,
    id: nestbox_types::TaskId,
) -> std::io::Result<tempfile::TempDir> {
    std::fs::create_dir_all(tmp)?;
    tempfile::Builder::new()
        .prefix(&format!("task{id}-"))
        .tempdir_in(tmp)
}

async fn record(
    report: &mut Report,
    repo: &dyn nestbox_core::ports::TaskRepo,
    id: nestbox_types::TaskId,
    msg: &str,
) {
    tracing::warn!(task_id = id.0, "{msg}");
    report.debug.errors.push(msg.to_owned());
    if let Err(e) = repo.add_error(id, msg).await {
        tracing::error!(error = %e, "recording a task error failed");
    }
}

/// The name a file task's target had on the client (the last path component).
fn file_name_of(task: &Task) -> String {
    task.spec
        .target
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("sample")
        .to_owned()
}

fn machine_block(
    m: &Machine,
    manager: &str,
    started: Timestamp,
    ended: Timestamp,
) -> serde_json::Map<String, serde_json::Value> {
    let v = serde_json::json!({
        "name": m.spec.name,
        "label": m.spec.label,
        "manager": manager,
        "status": "stopped",
        "started_on": started.epoch_f64(),
        "shutdown_on": ended.epoch_f64(),
    });
    match v {
        serde_json::Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// `report.json` bytes as Cuckoo's jsondump writes them: indent 4.
pub fn render_report_json(report: &Report) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 * 1024);
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if let Err(e) = report.serialize(&mut ser) {
        tracing::error!(error = %e, "serialising the report failed");
    }
    out
}
