//! What the unit tests share: an index of a few files.

use patois_index::{Index, Quiet, UpdateOptions};
use patois_testkit::Fixture;

/// An index of `files` (path, text) in a new folder, which lives as long as the fixture.
pub(crate) fn index(files: &[(&str, &str)]) -> (Fixture, Index) {
    let fx = Fixture::plain();
    for (p, t) in files {
        fx.write(p, t);
    }
    let ix = Index::open(fx.root(), &fx.root().join(".patois")).unwrap();
    ix.update(&UpdateOptions::default(), &Quiet).unwrap();
    (fx, ix)
}
