//! Training the house adapter while the editor is idle (`train_when_idle`, opt-in).
//!
//! A `patois train --idle` child process runs at the lowest priority on one thread. The
//! next keystroke or request stops it at once (SIGSTOP, before the request is handled);
//! after `idle_seconds` without either it continues (SIGCONT). The child checkpoints every
//! 30 s, and when its run ends it replaces the adapter only if its held-out loss beats the
//! adapter in place; the server then reloads the model with it. One run per HEAD: a new
//! one starts when the repository moved on. Unix only (it pauses the child with signals).

use crate::ext::{TrainingReport, TrainingState};
use crate::handlers::status::send_status;
use crate::lock;
use patois_engine::Engine;
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc::UnboundedSender;

/// What the async side shows as `$/progress`.
pub(crate) enum ProgressEvent {
    Begin(String),
    Report(String),
    End(String),
}

/// A training child and the thread reading its progress lines.
struct Run {
    child: Child,
    reader: std::thread::JoinHandle<()>,
    /// What the child wrote to stderr, once it ends.
    errors: std::thread::JoinHandle<String>,
}

pub(crate) struct IdleTrainer {
    last_activity: Mutex<Instant>,
    /// The running child's pid (0: none), for stopping it from any thread at once.
    running_pid: AtomicU32,
    report: Arc<Mutex<Option<TrainingReport>>>,
}

impl IdleTrainer {
    pub(crate) fn new() -> IdleTrainer {
        IdleTrainer {
            last_activity: Mutex::new(Instant::now()),
            running_pid: AtomicU32::new(0),
            report: Arc::new(Mutex::new(None)),
        }
    }

    /// A keystroke or request: the training child (if running) stops now.
    pub(crate) fn touch(&self) {
        *lock(&self.last_activity) = Instant::now();
        self.pause_running();
    }

    fn pause_running(&self) {
        let pid = self.running_pid.swap(0, Ordering::SeqCst);
        if pid != 0 {
            pause(pid);
            if let Some(r) =
                lock(&self.report).as_mut().filter(|r| r.state == TrainingState::Running)
            {
                r.state = TrainingState::Paused;
            }
        }
    }

    /// Marks `pid` running; a keystroke that came in meanwhile stops it again.
    fn mark_running(&self, pid: u32, idle_seconds: u64) {
        self.running_pid.store(pid, Ordering::SeqCst);
        if self.idle_for() < Duration::from_secs(idle_seconds) {
            self.pause_running();
        }
    }

    pub(crate) fn report(&self) -> Option<TrainingReport> {
        lock(&self.report).clone()
    }

    fn idle_for(&self) -> Duration {
        lock(&self.last_activity).elapsed()
    }

    /// Runs the trainer's loop on its own thread for the life of the server.
    pub(crate) fn start(
        self: &Arc<Self>,
        engine: Arc<Engine>,
        events: UnboundedSender<ProgressEvent>,
    ) {
        let me = self.clone();
        let _ = std::thread::Builder::new()
            .name("patois-idle-training".into())
            .spawn(move || me.run(&engine, &events));
    }

    fn run(&self, engine: &Engine, events: &UnboundedSender<ProgressEvent>) {
        let mut child: Option<Run> = None;
        let mut trained_at: Option<Option<String>> = None;
        let mut reported = Instant::now();
        let mut shown_running = false;
        loop {
            std::thread::sleep(Duration::from_millis(200));
            let running = self.running_pid.load(Ordering::SeqCst) != 0;
            if shown_running && !running && child.is_some() {
                let _ = events.send(ProgressEvent::End(self.message()));
            }
            shown_running = running;
            let settings = engine.settings();
            let idle = self.idle_for() >= Duration::from_secs(settings.idle_seconds);
            if let Some(run) = child.as_mut() {
                let c = &mut run.child;
                if !settings.train_when_idle {
                    self.end(c, events, "idle training turned off");
                    child = None;
                    *lock(&self.report) = None;
                    continue;
                }
                match c.try_wait() {
                    Ok(Some(_)) => {
                        self.running_pid.store(0, Ordering::SeqCst);
                        let run = child.take().expect("a child is running");
                        let done = self.finished(run, engine);
                        let _ = events.send(ProgressEvent::End(done));
                    }
                    Ok(None) if idle && self.running_pid.load(Ordering::SeqCst) == 0 => {
                        resume(c.id());
                        self.set_state(TrainingState::Running);
                        self.mark_running(c.id(), settings.idle_seconds);
                        let _ = events.send(ProgressEvent::Begin(self.message()));
                    }
                    Ok(None) if reported.elapsed() >= Duration::from_secs(5) => {
                        if self.running_pid.load(Ordering::SeqCst) != 0 {
                            let _ = events.send(ProgressEvent::Report(self.message()));
                        }
                        reported = Instant::now();
                    }
                    _ => {}
                }
                continue;
            }
            let head = engine.index().with_manifest(|m| m.head.clone());
            if !settings.train_when_idle || !idle || trained_at.as_ref() == Some(&head) {
                continue;
            }
            trained_at = Some(head);
            match self.spawn(engine, settings.idle_training_minutes) {
                Ok(run) => {
                    self.mark_running(run.child.id(), settings.idle_seconds);
                    let _ = events.send(ProgressEvent::Begin(self.message()));
                    child = Some(run);
                }
                Err(why) => {
                    *lock(&self.report) = Some(TrainingReport::failed(why));
                }
            }
        }
    }

    fn set_state(&self, state: TrainingState) {
        if let Some(r) = lock(&self.report).as_mut() {
            r.state = state;
        }
    }

    fn message(&self) -> String {
        lock(&self.report).as_ref().map_or_else(String::new, TrainingReport::message)
    }

    fn spawn(&self, engine: &Engine, minutes: f64) -> Result<Run, String> {
        let model = engine.model_path();
        let builtin = patois_engine::builtin_model_dir(engine.index().dir());
        if model == builtin || engine.settings().backend == patois_engine::BackendKind::Openai {
            return Err(
                "idle training needs a local pretrained model (patois model install)".into()
            );
        }
        if cfg!(not(unix)) {
            return Err("idle training needs Unix: it pauses the trainer with signals".into());
        }
        let exe = std::env::current_exe().map_err(|e| format!("finding patois: {e}"))?;
        let mut cmd = Command::new(exe);
        cmd.arg("train")
            .arg(engine.root())
            .arg("--idle")
            .arg("--minutes")
            .arg(minutes.to_string())
            .arg("--base")
            .arg(&model)
            .arg("--index-dir")
            .arg(engine.index().dir())
            .env("RAYON_NUM_THREADS", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        lowest_priority(&mut cmd);
        let mut child = cmd.spawn().map_err(|e| format!("starting patois train: {e}"))?;
        let report = self.report.clone();
        *lock(&report) = Some(TrainingReport::started(child.id()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut stderr = child.stderr.take().expect("stderr is piped");
        // Read while it runs: a full pipe would stop the child.
        let errors = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = stderr.read_to_string(&mut text);
            text
        });
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let (Some(event), Some(r)) =
                    (patois_adapter::IdleEvent::parse(&line), lock(&report).as_mut())
                {
                    r.update(event);
                }
            }
        });
        Ok(Run { child, reader, errors })
    }

    /// After the child exited: the final state, and the model reloaded when the adapter
    /// was replaced. Returns the message for the progress's end.
    fn finished(&self, mut run: Run, engine: &Engine) -> String {
        let ok = run.child.wait().is_ok_and(|s| s.success());
        let err = run.errors.join().unwrap_or_default();
        let _ = run.reader.join(); // it has read the last line
        let mut guard = lock(&self.report);
        let r = guard.get_or_insert_with(|| TrainingReport::started(run.child.id()));
        r.pid = None;
        if !ok || r.replaced.is_none() {
            r.state = TrainingState::Failed;
            let tail: Vec<&str> = err.lines().rev().take(3).collect();
            r.message = Some(tail.into_iter().rev().collect::<Vec<_>>().join(" | "));
        } else if r.replaced == Some(true) {
            engine.reload_model();
        }
        r.message()
    }

    fn end(&self, c: &mut Child, events: &UnboundedSender<ProgressEvent>, why: &str) {
        self.running_pid.store(0, Ordering::SeqCst);
        resume(c.id());
        let _ = c.kill();
        let _ = c.wait();
        let _ = events.send(ProgressEvent::End(why.into()));
    }

    /// Ends a run in progress (the server is shutting down); its checkpoint stays.
    pub(crate) fn shutdown(&self) {
        // The report holds the child's pid while it exists, running or paused.
        self.running_pid.store(0, Ordering::SeqCst);
        if let Some(pid) = lock(&self.report).as_ref().and_then(|r| r.pid) {
            kill(pid);
        }
    }
}

#[cfg(unix)]
fn signal(pid: u32, sig: libc::c_int) {
    // SAFETY: kill(2) with a pid this server started; a pid that exited gets ESRCH.
    unsafe {
        libc::kill(pid as libc::pid_t, sig);
    }
}

#[cfg(unix)]
fn pause(pid: u32) {
    signal(pid, libc::SIGSTOP);
}
#[cfg(unix)]
fn resume(pid: u32) {
    signal(pid, libc::SIGCONT);
}
#[cfg(unix)]
fn kill(pid: u32) {
    signal(pid, libc::SIGCONT);
    signal(pid, libc::SIGKILL);
}

#[cfg(not(unix))]
fn pause(_: u32) {}
#[cfg(not(unix))]
fn resume(_: u32) {}
#[cfg(not(unix))]
fn kill(_: u32) {}

/// The child runs at the lowest priority and dies with the server (Linux).
#[cfg(unix)]
fn lowest_priority(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
            #[cfg(target_os = "linux")]
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}
#[cfg(not(unix))]
fn lowest_priority(_: &mut Command) {}

/// Shows the trainer's events as `$/progress` (when the client accepts it) and sends
/// `patois/status` when a run begins, pauses or ends.
pub(crate) async fn show_progress(
    s: Arc<crate::session::Session>,
    mut events: tokio::sync::mpsc::UnboundedReceiver<ProgressEvent>,
) {
    use tower_lsp_server::ls_types::ProgressToken;
    let mut shown = None;
    let mut n = 0;
    while let Some(e) = events.recv().await {
        match e {
            ProgressEvent::Begin(msg) => {
                n += 1;
                let token =
                    ProgressToken::String(format!("patois/train/{}/{n}", std::process::id()));
                if s.client.create_work_done_progress(token.clone()).await.is_ok() {
                    let p = s.client.progress(token, "patois: training while idle");
                    shown = Some(p.with_message(msg).begin().await);
                }
                send_status(&s).await;
            }
            ProgressEvent::Report(msg) => {
                if let Some(p) = &shown {
                    p.report(msg).await;
                }
            }
            ProgressEvent::End(msg) => {
                if let Some(p) = shown.take() {
                    p.finish_with_message(msg).await;
                }
                send_status(&s).await;
            }
        }
    }
}
