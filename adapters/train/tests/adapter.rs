//! Training and adapters on tiny fixture repositories.

use candle_core::Device;
use patois_adapter::{apply, drift, format, load_peft, CommitsSince, Provenance};
use patois_generate::{Generator, KvCache};
use patois_index::{Index, Quiet, UpdateOptions};
use patois_testkit::Fixture;
use patois_train::{train_builtin, train_lora, TrainOptions, TrainProgress};
use std::sync::atomic::{AtomicBool, Ordering};

fn repo() -> (Fixture, Index) {
    let fx = Fixture::git();
    for i in 0..8 {
        fx.write(
            &format!("src/m{i}.rs"),
            format!(
                "/// Adds {i}.\npub fn add_{i}(value: u32) -> u32 {{\n    value + {i}\n}}\n\n/// Doubles {i}.\npub fn double_{i}(value: u32) -> u32 {{\n    value * 2 + {i}\n}}\n"
            ),
        );
        fx.commit(&format!("Add m{i}"), "ann", 1_000 + i as i64);
    }
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet).unwrap();
    (fx, ix)
}

fn tiny() -> TrainOptions {
    TrainOptions {
        minutes: 10.0,
        steps: Some(60),
        seq_len: 48,
        vocab_size: 400,
        hidden_size: 64,
        layers: 2,
        lr: 5e-3,
        eval_windows: 8,
        ..Default::default()
    }
}

#[test]
fn training_lowers_held_out_loss_and_records_provenance() {
    let (fx, ix) = repo();
    let out = fx.root().join(".patois/model");
    let r =
        train_builtin(&ix, &out, &tiny(), &AtomicBool::new(false), &patois_train::Silent).unwrap();
    assert!(!r.interrupted);
    assert!(r.held_out_files >= 1 && r.train_files >= 1, "{r:?}");
    assert!(
        r.adapted_loss < r.base_loss * 0.85,
        "held-out loss {} -> {}",
        r.base_loss,
        r.adapted_loss
    );
    let p = Provenance::load(&out).unwrap();
    assert!(p.complete);
    assert_eq!(p.steps, 60);
    assert_eq!(p.commit, ix.manifest().head);
    assert!(
        p.data_files.keys().all(|f| !p.held_out_files.contains(f)),
        "held-out files are never trained on"
    );
    // The runtime loads what training wrote.
    let g = Generator::load(&out, &Device::Cpu).unwrap();
    assert_eq!(g.info.fim, patois_prompt::FimStyle::Qwen);
}

struct StopAfter<'a>(usize, &'a AtomicBool);
impl TrainProgress for StopAfter<'_> {
    fn step(&self, step: usize, _loss: f32, _tps: f64) {
        if step >= self.0 {
            self.1.store(true, Ordering::SeqCst);
        }
    }
}

#[test]
fn an_interrupted_run_checkpoints_and_the_next_run_resumes() {
    let (fx, ix) = repo();
    let out = fx.root().join(".patois/model");
    let stop = AtomicBool::new(false);
    let r = train_builtin(&ix, &out, &tiny(), &stop, &StopAfter(7, &stop)).unwrap();
    assert!(r.interrupted);
    assert_eq!(r.steps, 7);
    assert!(out.join("checkpoint/model.safetensors").exists());
    assert!(!Provenance::load(&out.join("checkpoint")).unwrap().complete);
    let r2 =
        train_builtin(&ix, &out, &tiny(), &AtomicBool::new(false), &patois_train::Silent).unwrap();
    assert_eq!((r2.resumed_from, r2.steps), (7, 60));
    assert!(!out.join("checkpoint").exists(), "a finished run removes its checkpoint");
}

#[test]
fn lora_round_trip_peft_names_and_merged_equals_unmerged() {
    let (fx, ix) = repo();
    let base = fx.root().join(".patois/model");
    train_builtin(
        &ix,
        &base,
        &TrainOptions { steps: Some(5), ..tiny() },
        &AtomicBool::new(false),
        &patois_train::Silent,
    )
    .unwrap();
    let ad = fx.root().join(".patois/adapters/house");
    let opts = TrainOptions { steps: Some(40), lr: 1e-2, ..tiny() };
    let r =
        train_lora(&ix, &base, &ad, &opts, &AtomicBool::new(false), &patois_train::Silent).unwrap();
    assert!(r.adapted_loss < r.base_loss, "{} -> {}", r.base_loss, r.adapted_loss);
    // At the half strength it records for serving: still below the base, and not the same.
    let serving = r.serving_loss.unwrap();
    assert!(serving < r.base_loss && (serving - r.adapted_loss).abs() > 1e-4, "{r:?}");
    assert_eq!(patois_adapter::Provenance::load(&ad).unwrap().strength, Some(0.5));
    let (cfg, loras) = load_peft(&ad, &Device::Cpu).unwrap();
    assert_eq!((cfg.peft_type.as_str(), cfg.r, cfg.lora_alpha), ("LORA", 8, 16.0));
    let keys: Vec<String> =
        candle_core::safetensors::load(ad.join("adapter_model.safetensors"), &Device::Cpu)
            .unwrap()
            .into_keys()
            .collect();
    assert!(
        keys.contains(
            &"base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight".to_string()
        ),
        "{keys:?}"
    );
    assert!(
        keys.contains(&"base_model.model.model.layers.1.mlp.down_proj.lora_B.weight".to_string())
    );
    assert_eq!(loras.len(), 2 * 7);
    assert_eq!(
        format::peft_key("model.layers.0.mlp.up_proj", 'A'),
        "base_model.model.model.layers.0.mlp.up_proj.lora_A.weight"
    );

    let ids: Vec<u32> = (5..30).collect();
    let logits = |merge: bool| -> Vec<f32> {
        let mut g = Generator::load(&base, &Device::Cpu).unwrap();
        apply(&mut g.model, &ad, 1.0, merge).unwrap();
        g.model
            .forward_all(&ids, &mut KvCache::default())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap()
    };
    let (m, u) = (logits(true), logits(false));
    let plain: Vec<f32> = Generator::load(&base, &Device::Cpu)
        .unwrap()
        .model
        .forward_all(&ids, &mut KvCache::default())
        .unwrap()
        .flatten_all()
        .unwrap()
        .to_vec1()
        .unwrap();
    let diff =
        |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
    assert!(diff(&m, &u) < 1e-4, "merged vs unmerged {}", diff(&m, &u));
    assert!(diff(&m, &plain) > 1e-3, "the adapter changes the model");
}

#[test]
fn drift_counts_new_commits_and_changed_training_files() {
    let (fx, ix) = repo();
    let out = fx.root().join(".patois/model");
    train_builtin(
        &ix,
        &out,
        &TrainOptions { steps: Some(2), ..tiny() },
        &AtomicBool::new(false),
        &patois_train::Silent,
    )
    .unwrap();
    let p = Provenance::load(&out).unwrap();
    let d0 = drift(&ix, &p).unwrap();
    assert_eq!(
        (d0.commits_since, d0.changed_files.len(), d0.retrain_advised),
        (CommitsSince::Count(0), 0, false)
    );
    let trained: Vec<String> = p.data_files.keys().cloned().collect();
    for f in trained.iter().take(3) {
        fx.write(f, "pub fn replaced() {}\n");
    }
    fx.commit("Rewrite three files", "bob", 5_000);
    fx.write("src/new.rs", "pub fn extra() {}\n");
    fx.commit("Add new", "bob", 6_000);
    ix.update(&UpdateOptions { threads: 1, ..Default::default() }, &Quiet).unwrap();
    let d = drift(&ix, &p).unwrap();
    assert_eq!(d.commits_since, CommitsSince::Count(2));
    assert_eq!(d.changed_files.len(), 3);
    assert!((d.changed_share - 3.0 / trained.len() as f64).abs() < 1e-9);
    assert!(d.retrain_advised, "{}", d.advice);
}

#[test]
fn dependency_sources_come_from_the_local_registry_for_locked_packages() {
    let fx = Fixture::plain();
    let home = tempfile::tempdir().unwrap();
    let crate_src = home.path().join("registry/src/index.example/tinydep-1.2.3/src");
    std::fs::create_dir_all(&crate_src).unwrap();
    std::fs::write(crate_src.join("lib.rs"), "pub fn from_dependency() {}\n").unwrap();
    let other = home.path().join("registry/src/index.example/unlocked-0.1.0/src");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("lib.rs"), "pub fn not_locked() {}\n").unwrap();
    fx.write("Cargo.lock", "version = 4\n\n[[package]]\nname = \"tinydep\"\nversion = \"1.2.3\"\n\n[[package]]\nname = \"missing\"\nversion = \"9.9.9\"\n");
    let texts =
        patois_train::data::dependency_texts(fx.root(), &home.path().join("registry/src"), 1 << 20);
    assert_eq!(texts, ["// Path: tinydep/src/lib.rs\npub fn from_dependency() {}\n"]);
}

#[test]
fn a_repository_without_source_files_is_a_typed_no_data_error() {
    let fx = Fixture::git();
    fx.write("README.md", "words only\n");
    fx.commit("Docs", "ann", 1_000);
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    ix.update(&UpdateOptions::default(), &Quiet).unwrap();
    let out = fx.root().join(".patois/model");
    let err = train_builtin(&ix, &out, &tiny(), &AtomicBool::new(false), &patois_train::Silent)
        .unwrap_err();
    assert!(matches!(err, patois_train::Error::NoData), "{err:?}");
}
