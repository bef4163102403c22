//! Generations that outlive their request. While a person types, every key supersedes
//! the pending request, and on an ordinary CPU a line takes longer to write than the gap
//! between two keys: a generation stopped at every key never finishes. So a foreground
//! generation runs on while the document still reads as its prefix, characters that agree
//! with what it has written so far, and its suffix (until its deadline at the latest), and
//! the newest request waits for it and shows the rest of its line. Anything else the user
//! types stops it at the model's next check.

use crate::{lock, Engine};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// One running generation of a document.
pub(crate) struct Job {
    prefix: String,
    suffix: String,
    /// What the model has written so far (the decode loop keeps it up to date).
    pub(crate) written: Arc<Mutex<String>>,
    /// The document's request-or-edit number, which changes whenever it may have changed.
    version: Arc<AtomicU64>,
    /// The number last checked, and whether the job was still wanted then.
    checked: Mutex<(u64, bool)>,
    done: Mutex<bool>,
    finished: Condvar,
}

/// How often a request waiting for a job looks whether it became stale itself.
const WAIT_STEP: Duration = Duration::from_millis(5);

/// Whether a document reading `prefix` + typed + `suffix` can still use a generation made
/// at `prefix`|`suffix` that has written `written`: the typed characters stay on the line
/// and agree with what was written (as far as either goes).
pub(crate) fn still_useful(text: &str, prefix: &str, suffix: &str, written: &str) -> bool {
    let Some(typed) = text.strip_prefix(prefix).and_then(|rest| rest.strip_suffix(suffix)) else {
        return false;
    };
    !typed.contains('\n') && (written.starts_with(typed) || typed.starts_with(written))
}

impl Job {
    pub(crate) fn new(prefix: &str, suffix: &str, version: Arc<AtomicU64>) -> Arc<Job> {
        let now = version.load(Ordering::SeqCst);
        Arc::new(Job {
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
            written: Arc::new(Mutex::new(String::new())),
            version,
            checked: Mutex::new((now, true)),
            done: Mutex::new(false),
            finished: Condvar::new(),
        })
    }

    fn finish(&self) {
        *lock(&self.done) = true;
        self.finished.notify_all();
    }
}

impl Engine {
    /// Registers `job` as the running generation of `path`.
    pub(crate) fn start_job(&self, path: &str, job: &Arc<Job>) {
        lock(&self.jobs).insert(path.to_string(), job.clone());
    }

    /// The job of `path` is over: requests waiting for it go on.
    pub(crate) fn end_job(&self, path: &str, job: &Arc<Job>) {
        let mut jobs = lock(&self.jobs);
        if jobs.get(path).is_some_and(|j| Arc::ptr_eq(j, job)) {
            jobs.remove(path);
        }
        drop(jobs);
        job.finish();
    }

    /// Whether the document `path` can still use `job`. This is the model's cancellation
    /// check, asked between the operations of every batch: the document is compared only
    /// after a request or an edit of it, otherwise the last answer holds.
    pub(crate) fn job_wanted(&self, path: &str, job: &Job) -> bool {
        let version = job.version.load(Ordering::SeqCst);
        let mut checked = lock(&job.checked);
        if checked.0 != version {
            let text = lock(&self.docs).get(path).map(|d| d.text.clone());
            let written = lock(&job.written).clone();
            // A document the editor does not hold (closed) keeps its job to its deadline.
            let useful = text.is_none_or(|t| still_useful(&t, &job.prefix, &job.suffix, &written));
            *checked = (version, useful);
        }
        checked.1
    }

    /// Waits for the running generation of `path` when this request (`prefix`|`suffix`)
    /// can use it; false when there is none to wait for. Stops waiting when `stale` says so.
    pub(crate) fn wait_for_job(
        &self,
        path: &str,
        prefix: &str,
        suffix: &str,
        stale: &dyn Fn() -> bool,
    ) -> bool {
        let Some(job) = lock(&self.jobs).get(path).cloned() else { return false };
        let text = format!("{prefix}{suffix}");
        if !still_useful(&text, &job.prefix, &job.suffix, &lock(&job.written)) {
            return false;
        }
        let mut done = lock(&job.done);
        while !*done && !stale() {
            done = job
                .finished
                .wait_timeout(done, WAIT_STEP)
                .map_or_else(|p| p.into_inner().0, |r| r.0);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::still_useful;

    #[test]
    fn a_generation_is_useful_while_the_typing_agrees_with_it() {
        let (p, s) = ("let x = ", "\n}");
        assert!(still_useful("let x = \n}", p, s, ""), "nothing typed yet");
        assert!(still_useful("let x = st\n}", p, s, "store.get()"), "typed its beginning");
        assert!(still_useful("let x = sto\n}", p, s, "st"), "typed ahead of the model");
        assert!(!still_useful("let x = sx\n}", p, s, "store"), "typed something else");
        assert!(!still_useful("let x = s\n\n}", p, s, ""), "a new line");
        assert!(!still_useful("let y = \n}", p, s, ""), "an edit before the cursor");
        assert!(!still_useful("let x = s\n}\n", p, s, "s"), "the text after changed");
    }
}
