//! A Triton model repository: `DIR/<model>/<version>/model.onnx`, with an optional
//! `DIR/<model>/config.pbtxt`. Each model is stored in the engine under its name, as
//! `AI.MODELSTORE` would store it (so RESP clients run it too), its configuration mapped
//! onto insitu's batching and its version kept as the model's tag. The control mode is
//! Triton's: `none` loads everything at start, `poll` also rescans, `explicit` loads what
//! `load-model` names and then what clients ask for.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use parking_lot::Mutex;

use super::config::{self, RepoConfig, VersionPolicy};
use super::status::{invalid, KsError, KsResult};
use crate::engine::{Engine, ModelControl};
use crate::model::Model;

/// A model's KServe version: its tag when that is a positive integer, else `1`.
pub fn version_of(m: &Model) -> String {
    std::str::from_utf8(&m.spec.tag)
        .ok()
        .and_then(|t| t.parse::<u64>().ok())
        .filter(|&v| v > 0)
        .map(|v| v.to_string())
        .unwrap_or_else(|| "1".into())
}

/// What identifies the files a model was loaded from (a poll reloads when it changes).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fingerprint(Vec<(PathBuf, u64, Option<SystemTime>)>);

/// A repository model's state, as the index reports it.
#[derive(Debug, Clone)]
struct Entry {
    version: Option<u64>,
    ready: bool,
    reason: String,
    fingerprint: Option<Fingerprint>,
}

/// A model as read from the repository, ready to store.
struct Found {
    config: RepoConfig,
    version: u64,
    onnx: Bytes,
    fingerprint: Option<Fingerprint>,
}

/// One entry of the repository index.
pub struct IndexEntry {
    /// The model's name.
    pub name: String,
    /// Its version ("" when none is loaded).
    pub version: String,
    /// READY or UNAVAILABLE.
    pub state: &'static str,
    /// Why it is unavailable.
    pub reason: String,
}

/// The model repository and what it has loaded.
pub struct Repository {
    dir: Option<PathBuf>,
    mode: ModelControl,
    max_model_bytes: usize,
    entries: Mutex<BTreeMap<String, Entry>>,
    /// One load or unload at a time, so a poll and an API call do not interleave.
    busy: tokio::sync::Mutex<()>,
}

fn model_file_error(name: &str, why: String) -> KsError {
    invalid(format!("failed to load '{name}': {why}"))
}

impl Repository {
    /// A repository over `dir` (none: only models stored by clients are served).
    pub fn new(dir: Option<PathBuf>, mode: ModelControl, max_model_bytes: usize) -> Repository {
        Repository {
            dir,
            mode,
            max_model_bytes,
            entries: Mutex::new(BTreeMap::new()),
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// The control mode.
    pub fn mode(&self) -> ModelControl {
        self.mode
    }

    /// The model names the repository directory holds (its subdirectories).
    fn names(&self) -> Vec<String> {
        let Some(dir) = &self.dir else {
            return Vec::new();
        };
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter(|e| e.file_type().map(|t| t.is_dir()).unwrap_or(false))
                    .filter_map(|e| e.file_name().into_string().ok())
                    .filter(|n| !n.starts_with('.'))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
    }

    /// Read model `name` from the directory: its configuration, the version its policy
    /// picks, the ONNX bytes.
    fn read(&self, name: &str) -> KsResult<Found> {
        self.locate(name, true)
    }

    /// Model `name` as [`Repository::read`] finds it; the ONNX bytes only when `bytes`
    /// (a poll compares fingerprints without reading every model file).
    fn locate(&self, name: &str, bytes: bool) -> KsResult<Found> {
        let dir = self.dir.as_ref().ok_or_else(|| {
            model_file_error(
                name,
                "no model repository is set (--model-repository)".into(),
            )
        })?;
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(invalid(format!("invalid model name '{name}'")));
        }
        let root = dir.join(name);
        if !root.is_dir() {
            return Err(model_file_error(
                name,
                format!("no directory {} in the model repository", root.display()),
            ));
        }
        let cfg_path = root.join("config.pbtxt");
        let config = match std::fs::read_to_string(&cfg_path) {
            Ok(text) => config::from_pbtxt(&text).map_err(|e| model_file_error(name, e.message))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => RepoConfig::default(),
            Err(e) => {
                return Err(model_file_error(
                    name,
                    format!("{}: {e}", cfg_path.display()),
                ))
            }
        };
        let file = config.model_file().to_string();
        let mut versions: Vec<u64> = std::fs::read_dir(&root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.file_name().into_string().ok()?.parse().ok())
                    .filter(|v: &u64| root.join(v.to_string()).join(&file).is_file())
                    .collect()
            })
            .unwrap_or_default();
        if let VersionPolicy::Specific(allowed) = &config.version_policy {
            versions.retain(|v| allowed.contains(v));
        }
        let version = versions.into_iter().max().ok_or_else(|| {
            model_file_error(
                name,
                format!("no version directory with {file} under {}", root.display()),
            )
        })?;
        let path = root.join(version.to_string()).join(&file);
        let meta = std::fs::metadata(&path)
            .map_err(|e| model_file_error(name, format!("{}: {e}", path.display())))?;
        if meta.len() > self.max_model_bytes as u64 {
            return Err(model_file_error(
                name,
                format!(
                    "{} is {} bytes, above max-model-bytes ({})",
                    path.display(),
                    meta.len(),
                    self.max_model_bytes
                ),
            ));
        }
        let onnx = if bytes {
            std::fs::read(&path)
                .map_err(|e| model_file_error(name, format!("{}: {e}", path.display())))?
        } else {
            Vec::new()
        };
        let mut prints = vec![(path, meta.len(), meta.modified().ok())];
        if let Ok(m) = std::fs::metadata(&cfg_path) {
            prints.push((cfg_path, m.len(), m.modified().ok()));
        }
        Ok(Found {
            config,
            version,
            onnx: Bytes::from(onnx),
            fingerprint: Some(Fingerprint(prints)),
        })
    }

    /// What a load request's parameters give instead of the directory: a JSON
    /// configuration (`config`) and files (`file:<version>/model.onnx`).
    fn from_overrides(
        name: &str,
        config_json: Option<&str>,
        files: &[(String, Bytes)],
    ) -> KsResult<Found> {
        let config = match config_json {
            Some(text) => config::from_json(text)?,
            None => {
                return Err(invalid(format!(
                    "failed to load '{name}': a load with files needs the 'config' parameter too"
                )))
            }
        };
        let file = config.model_file().to_string();
        let mut best: Option<(u64, &Bytes)> = None;
        for (path, bytes) in files {
            let rest = path.strip_prefix("file:").unwrap_or(path);
            let Some((version, fname)) = rest.split_once('/') else {
                return Err(invalid(format!(
                    "failed to load '{name}': file parameter '{path}' is not file:<version>/<file>"
                )));
            };
            let version: u64 = version.parse().map_err(|_| {
                invalid(format!(
                    "failed to load '{name}': file parameter '{path}' does not start with a version number"
                ))
            })?;
            if fname == file && best.is_none_or(|(v, _)| version > v) {
                best = Some((version, bytes));
            }
        }
        let (version, onnx) = best.ok_or_else(|| {
            invalid(format!(
                "failed to load '{name}': no file:<version>/{file} among the files given"
            ))
        })?;
        Ok(Found {
            config,
            version,
            onnx: onnx.clone(),
            fingerprint: None,
        })
    }

    async fn store(
        &self,
        engine: &Arc<Engine>,
        name: &str,
        found: KsResult<Found>,
    ) -> KsResult<()> {
        let result = match found {
            Ok(f) => {
                let spec = f.config.spec(f.version);
                let stored = match engine.store_model_with(
                    Bytes::copy_from_slice(name.as_bytes()),
                    spec,
                    f.onnx,
                    f.config.instances,
                ) {
                    Ok(run) => run.finish().await,
                    Err(e) => Err(e),
                };
                stored
                    .map(|()| (f.version, f.fingerprint))
                    .map_err(|e| model_file_error(name, e.message().to_string()))
            }
            Err(e) => Err(e),
        };
        let mut entries = self.entries.lock();
        match result {
            Ok((version, fingerprint)) => {
                tracing::info!("model '{name}' version {version} loaded");
                entries.insert(
                    name.to_string(),
                    Entry {
                        version: Some(version),
                        ready: true,
                        reason: String::new(),
                        fingerprint,
                    },
                );
                Ok(())
            }
            Err(e) => {
                tracing::warn!("{}", e.message);
                let version = entries.get(name).and_then(|e| e.version);
                entries.insert(
                    name.to_string(),
                    Entry {
                        version,
                        ready: false,
                        reason: e.message.clone(),
                        fingerprint: None,
                    },
                );
                Err(e)
            }
        }
    }

    /// Load (or reload) model `name`: from the directory, or from the files and JSON
    /// configuration a load request carries.
    ///
    /// # Errors
    /// Triton's refusal when the control mode is not explicit (`from_api`); the reason
    /// the model cannot be read or stored.
    pub async fn load(
        &self,
        engine: &Arc<Engine>,
        name: &str,
        config_json: Option<&str>,
        files: &[(String, Bytes)],
        from_api: bool,
    ) -> KsResult<()> {
        if from_api && self.mode != ModelControl::Explicit {
            return Err(not_explicit());
        }
        let _one = self.busy.lock().await;
        let found = if files.is_empty() {
            match config_json {
                // A configuration without files: the directory's model with this config.
                Some(text) => self.read(name).and_then(|mut f| {
                    f.config = config::from_json(text)?;
                    Ok(f)
                }),
                None => self.read(name),
            }
        } else {
            Self::from_overrides(name, config_json, files)
        };
        self.store(engine, name, found).await
    }

    /// Unload model `name` (delete the stored model).
    ///
    /// # Errors
    /// Triton's refusal when the control mode is not explicit (`from_api`); a key that
    /// holds something other than a model.
    pub async fn unload(&self, engine: &Arc<Engine>, name: &str, from_api: bool) -> KsResult<()> {
        if from_api && self.mode != ModelControl::Explicit {
            return Err(not_explicit());
        }
        let _one = self.busy.lock().await;
        if engine.holds_model(name.as_bytes()) {
            engine.delete(name.as_bytes())?;
        } else if engine.exists(name.as_bytes()) {
            return Err(invalid(format!(
                "failed to unload '{name}': the key holds a tensor or other data, not a model"
            )));
        }
        if let Some(e) = self.entries.lock().get_mut(name) {
            e.ready = false;
            e.reason = "unloaded".into();
            e.fingerprint = None;
        }
        tracing::info!("model '{name}' unloaded");
        Ok(())
    }

    /// Load at start: every model (modes none and poll), or those `load-model` names
    /// (explicit; `*`: all). Failures are logged and shown in the index.
    pub async fn load_initial(&self, engine: &Arc<Engine>, load_models: &[String]) {
        let names = self.names();
        let wanted: Vec<String> = match self.mode {
            ModelControl::Explicit if !load_models.iter().any(|m| m == "*") => load_models.to_vec(),
            _ => names,
        };
        for name in wanted {
            let _ = self.load(engine, &name, None, &[], false).await;
        }
    }

    /// One poll: load models that appeared or changed, unload those whose directory
    /// went away.
    pub async fn poll(&self, engine: &Arc<Engine>) {
        let names = self.names();
        let known: Vec<(String, Option<Fingerprint>, bool)> = self
            .entries
            .lock()
            .iter()
            .map(|(n, e)| (n.clone(), e.fingerprint.clone(), e.ready))
            .collect();
        for (name, _, ready) in &known {
            if *ready && !names.contains(name) {
                let _ = self.unload(engine, name, false).await;
                self.entries.lock().remove(name);
            }
        }
        for name in names {
            let before = known.iter().find(|(n, _, _)| *n == name);
            let current = self.locate(&name, false).ok().and_then(|f| f.fingerprint);
            let changed = match before {
                Some((_, print, _)) => current.is_some() && *print != current,
                None => true,
            };
            if changed {
                let _ = self.load(engine, &name, None, &[], false).await;
            }
        }
    }

    /// The index: the repository's models and every model stored in the engine, with
    /// their versions and states (`ready_only`: only those ready).
    pub fn index(&self, engine: &Engine, ready_only: bool) -> Vec<IndexEntry> {
        let stored: BTreeMap<String, String> = engine
            .models()
            .into_iter()
            .map(|(k, m)| (String::from_utf8_lossy(&k).into_owned(), version_of(&m)))
            .collect();
        let mut out: BTreeMap<String, IndexEntry> = BTreeMap::new();
        let entries = self.entries.lock().clone();
        for name in self.names().into_iter().chain(entries.keys().cloned()) {
            let e = entries.get(&name);
            let ready = stored.contains_key(&name);
            out.insert(
                name.clone(),
                IndexEntry {
                    version: stored
                        .get(&name)
                        .cloned()
                        .or_else(|| e.and_then(|e| e.version).map(|v| v.to_string()))
                        .unwrap_or_default(),
                    name,
                    state: if ready { "READY" } else { "UNAVAILABLE" },
                    reason: if ready {
                        String::new()
                    } else {
                        e.map(|e| e.reason.clone())
                            .unwrap_or_else(|| "unloaded".into())
                    },
                },
            );
        }
        for (name, version) in stored {
            out.entry(name.clone()).or_insert(IndexEntry {
                name,
                version,
                state: "READY",
                reason: String::new(),
            });
        }
        out.into_values()
            .filter(|e| !ready_only || e.state == "READY")
            .collect()
    }

    /// The repository directory.
    pub fn dir(&self) -> Option<&Path> {
        self.dir.as_deref()
    }
}

fn not_explicit() -> KsError {
    invalid("explicit model load / unload is not allowed if polling is enabled")
}
