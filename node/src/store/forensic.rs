//! What a forensic examiner who holds the passphrase can read from a home's raw files.
//!
//! This is the oracle of the "deleted means unrecoverable" tests, kept in the library so the
//! end-to-end tests through the real binary can use it too. It does not go through sled: it reads
//! every file under the home byte by byte and tries to open a stored value at every offset, for
//! every padded size, with the storage key the passphrase unlocks, then opens what it finds with
//! every data key the data-key file still holds. Old versions of values that sled left in its
//! log are found this way as well as live ones. The posts among them (kept as their envelopes)
//! are then opened with every epoch key the secrets file holds, as an examiner would.

use std::fs;
use std::path::{Path, PathBuf};

use super::datakeys::DataKeys;
use super::home::Layout;
use super::keyfile::{KeyFile, Unlocked};
use super::sealing::{
    self, padded_sizes, padded_sizes_expiring, Layers, Stored, EXPIRING_OVERHEAD, EXPIRING_VERSION,
    NONCE_LEN, OVERHEAD, VALUE_VERSION,
};
use super::StoreError;
use super::Tree;

/// Everything recovered from a home.
#[derive(Debug, Default)]
pub struct Findings {
    /// Every file under the home, with its raw bytes.
    pub files: Vec<(PathBuf, Vec<u8>)>,
    /// Every value that opened, live or an old copy: `(tree, value)`.
    pub values: Vec<(String, Vec<u8>)>,
    /// Every entry key (an op, delivery or alert id) that opened, under the storage key or
    /// under a data key the data-key file still holds: `(tree, key)`.
    pub keys: Vec<(String, Vec<u8>)>,
    /// Values found whose data key no longer exists.
    pub sealed_without_key: usize,
    /// Posts' envelopes found among the values that an epoch key of the secrets file opened
    /// (their plaintexts are among `values`, tree `alerts (envelope opened)`).
    pub envelopes_opened: usize,
    /// Data keys the data-key file (`store.dkeys`) still holds. Keys of any other file that
    /// opens as a data-key file are tried too.
    pub data_keys: usize,
}

impl Findings {
    /// Whether `needle` occurs in any raw file, any recovered value or any recovered entry key.
    pub fn contains(&self, needle: &[u8]) -> bool {
        let hit = |hay: &[u8]| !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle);
        self.files.iter().any(|(_, bytes)| hit(bytes))
            || self.values.iter().any(|(_, v)| hit(v))
            || self.keys.iter().any(|(_, k)| hit(k))
    }
}

/// Reads every file under `home` and opens everything `passphrase` can open.
///
/// # Errors
///
/// I/O errors, and [`StoreError::WrongPassphrase`] (a duress passphrase is refused too,
/// without erasing anything).
pub fn recover(home: &Path, passphrase: &[u8]) -> Result<Findings, StoreError> {
    let layout = Layout::new(home);
    let key_file = KeyFile::parse(&layout.read_key_file()?, home)?;
    let Unlocked::Storage { key, .. } = key_file.unlock(passphrase)? else {
        return Err(StoreError::WrongPassphrase);
    };
    let data_keys = match layout.read_data_keys_file() {
        Ok(bytes) => DataKeys::open(&bytes, key.data_file_key())?,
        Err(_) => DataKeys::default(),
    };
    let mut findings = Findings {
        data_keys: data_keys.len(),
        ..Findings::default()
    };
    collect_files(home, &mut findings.files)?;
    // Any file that opens as a data-key file (an old one a crash left, under whatever name)
    // gives its keys too.
    let mut data_keys = vec![data_keys];
    for (_, bytes) in &findings.files {
        if let Ok(found) = DataKeys::open(bytes, key.data_file_key()) {
            data_keys.push(found);
        }
    }
    let files = std::mem::take(&mut findings.files);
    for (_, bytes) in &files {
        let sizes = padded_sizes(bytes.len());
        let expiring_sizes = padded_sizes_expiring(bytes.len());
        for offset in 0..bytes.len() {
            if bytes[offset] == EXPIRING_VERSION {
                recover_one_layer(
                    &key,
                    &data_keys,
                    &bytes[offset..],
                    &expiring_sizes,
                    &mut findings,
                );
                continue;
            }
            if bytes[offset] != VALUE_VERSION {
                continue;
            }
            for size in &sizes {
                let Some(candidate) = bytes.get(offset..offset + OVERHEAD + size) else {
                    break;
                };
                let Some(opened) = key.open_any(candidate) else {
                    continue;
                };
                if !opened.key.is_empty() {
                    findings
                        .keys
                        .push((opened.tree.clone(), opened.key.clone()));
                }
                match Stored::parse(&opened.payload) {
                    Some(Stored::Plain(value)) => {
                        findings.values.push((opened.tree.clone(), value.to_vec()));
                    }
                    Some(Stored::Expiring {
                        sealed,
                        bucket,
                        layers,
                    }) => {
                        let mut found = false;
                        // Every remaining data key, not only the bucket's own: nothing the
                        // passphrase unlocks is left untried.
                        for (_, data_key) in data_keys.iter().flat_map(DataKeys::iter) {
                            if let Some((entry_key, value)) = sealing::open_expiring(
                                data_key,
                                &opened.tree,
                                bucket,
                                sealed.clone(),
                                layers,
                            ) {
                                findings.keys.push((opened.tree.clone(), entry_key));
                                findings.values.push((opened.tree.clone(), value.to_vec()));
                                found = true;
                            }
                        }
                        if !found {
                            findings.sealed_without_key += 1;
                        }
                    }
                    None => {}
                }
            }
        }
    }
    // The posts' envelopes found, opened with every epoch key the secrets file (which the
    // passphrase opens) holds: what the examiner reads of a post is its text, not only the
    // envelope the store keeps (`replica/post_record.rs`).
    if let Ok(Some(secrets)) = super::secrets::read(home, &key) {
        let opened = crate::replica::post_record::open_with_secrets(
            findings
                .values
                .iter()
                .filter(|(tree, _)| tree == Tree::Alerts.name())
                .map(|(_, value)| value.as_slice()),
            &secrets,
        );
        findings.envelopes_opened = opened.len();
        findings.values.extend(opened.into_iter().map(|plain| {
            (
                format!("{} (envelope opened)", Tree::Alerts.name()),
                plain.to_vec(),
            )
        }));
    }
    findings.files = files;
    Ok(findings)
}

/// Tries to open a one-layer expiring value (format 3) at the start of `bytes`: its head under
/// every tree's name, then its body at every padded size under every data key.
fn recover_one_layer(
    key: &sealing::StorageKey,
    data_keys: &[DataKeys],
    bytes: &[u8],
    sizes: &[usize],
    findings: &mut Findings,
) {
    for tree in Tree::ALL {
        let Some(bucket) = key.open_head(tree.name(), bytes) else {
            continue;
        };
        let mut found = false;
        for size in sizes {
            let Some(candidate) = bytes.get(..EXPIRING_OVERHEAD + size) else {
                break;
            };
            let mut sealed = candidate[1..1 + NONCE_LEN].to_vec();
            sealed.extend_from_slice(&candidate[EXPIRING_OVERHEAD - sealing::TAG_LEN..]);
            for (_, data_key) in data_keys.iter().flat_map(DataKeys::iter) {
                if let Some((entry_key, value)) = sealing::open_expiring(
                    data_key,
                    tree.name(),
                    bucket,
                    sealed.clone(),
                    Layers::One,
                ) {
                    findings.keys.push((tree.name().to_owned(), entry_key));
                    findings
                        .values
                        .push((tree.name().to_owned(), value.to_vec()));
                    found = true;
                }
            }
        }
        if !found {
            findings.sealed_without_key += 1;
        }
    }
}

fn collect_files(dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) -> Result<(), StoreError> {
    let entries = fs::read_dir(dir).map_err(super::home::io_error("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(super::home::io_error("list", dir))?;
        let path = entry.path();
        let file_type = entry
            .file_type()
            .map_err(super::home::io_error("inspect", &path))?;
        if file_type.is_dir() {
            collect_files(&path, out)?;
        } else if file_type.is_file() {
            let bytes = fs::read(&path).map_err(super::home::io_error("read", &path))?;
            out.push((path, bytes));
        }
    }
    Ok(())
}
