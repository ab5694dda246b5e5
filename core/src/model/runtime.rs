//! Finding and loading ONNX Runtime at run time (`ort` with `load-dynamic`).
//!
//! Nothing is linked at build time. The library is looked for, in order, at
//! `ORT_DYLIB_PATH` (when set, nothing else is tried); at the path recorded by the project's set-up when insitu was built
//! (`INSITU_ORT_DYLIB`, which `./dev.sh` sets to the pinned `onnxruntime` wheel's
//! library); and in the `onnxruntime` Python package at `INSITU_ORT_PACKAGE_DIR` (set by
//! the `insitu` Python package) or else of `INSITU_PYTHON` or `python3`.
//! Failing all three, every model command answers one message that names each place and
//! why it did not work; data commands keep working.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::{Error, ErrorCode, Result};

/// A loaded ONNX Runtime: its library path, version and the process' environment.
pub struct OrtRuntime {
    /// The library file.
    pub path: PathBuf,
    /// Its version, e.g. `1.31.1` (from the file name; `unknown` when it has none).
    pub version: String,
    /// The process-wide ONNX Runtime environment (there can be only one).
    pub env: ort::environment::Environment,
}

/// The process' runtime once loaded, or the last failure.
static RUNTIME: Mutex<Option<std::result::Result<Arc<OrtRuntime>, Error>>> = Mutex::new(None);

fn version_of(path: &Path) -> String {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    name.split(".so.")
        .nth(1)
        .map(str::to_string)
        .unwrap_or_else(|| "unknown".into())
}

/// The versioned library file inside an `onnxruntime` wheel's `capi` directory.
fn wheel_library(dir: &Path) -> Option<PathBuf> {
    let capi = dir.join("capi");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&capi)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("libonnxruntime.so.") || n == "libonnxruntime.dylib")
        })
        .collect();
    found.sort();
    found.pop()
}

fn from_python(python: &str) -> std::result::Result<PathBuf, String> {
    let out = Command::new(python)
        .args([
            "-c",
            "import os, onnxruntime; print(os.path.dirname(onnxruntime.__file__))",
        ])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().last().unwrap_or("failed").trim().to_string();
        return Err(format!("{python}: {last}"));
    }
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    wheel_library(&dir)
        .ok_or_else(|| format!("{python}: no libonnxruntime in {}/capi", dir.display()))
}

/// Candidate library paths in search order, each with a note for the error message.
/// An explicit `ORT_DYLIB_PATH` is the only candidate: silently using another library
/// than the one the operator named would be worse than failing.
fn candidates() -> Vec<(String, std::result::Result<PathBuf, String>)> {
    if let Ok(p) = std::env::var("ORT_DYLIB_PATH") {
        if !p.is_empty() {
            return vec![("ORT_DYLIB_PATH".to_string(), Ok(PathBuf::from(p)))];
        }
    }
    let mut out = vec![("ORT_DYLIB_PATH".to_string(), Err("not set".to_string()))];
    out.push((
        "the set-up's recorded path".to_string(),
        match option_env!("INSITU_ORT_DYLIB") {
            Some(p) if !p.is_empty() => {
                let p = PathBuf::from(p);
                if p.exists() {
                    Ok(p)
                } else {
                    Err(format!("{} (missing)", p.display()))
                }
            }
            _ => Err("none recorded at build time (run ./dev.sh setup before building)".into()),
        },
    ));
    // The `insitu` Python package names the onnxruntime package of its own interpreter
    // (found without importing it); elsewhere a Python is asked where its package is.
    let package = match std::env::var_os("INSITU_ORT_PACKAGE_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            wheel_library(&dir)
                .ok_or_else(|| format!("no libonnxruntime in {}/capi", dir.display()))
        }
        None => {
            let python = std::env::var("INSITU_PYTHON").unwrap_or_else(|_| "python3".into());
            from_python(&python)
        }
    };
    out.push(("the onnxruntime Python package".to_string(), package));
    out
}

/// Try each candidate in turn; the error names every one and why it failed.
fn locate(
    cands: Vec<(String, std::result::Result<PathBuf, String>)>,
    load: impl Fn(&Path) -> Result<Arc<OrtRuntime>>,
) -> Result<Arc<OrtRuntime>> {
    let mut tried = Vec::new();
    for (what, cand) in cands {
        match cand {
            Ok(p) => match load(&p) {
                Ok(rt) => return Ok(rt),
                Err(e) => tried.push(format!("{what}: {}", e.message())),
            },
            Err(why) => tried.push(format!("{what}: {why}")),
        }
    }
    Err(Error::err(
        ErrorCode::Unsupported,
        format!(
            "ONNX Runtime (>= 1.31) not found; set ORT_DYLIB_PATH to libonnxruntime.so.1.31.x, run ./dev.sh setup, or pip install onnxruntime==1.31.1. Looked at: {}",
            tried.join("; ")
        ),
    ))
}

fn load(path: &Path) -> Result<Arc<OrtRuntime>> {
    let fail = |e: String| {
        Error::err(
            ErrorCode::Unsupported,
            format!("cannot load ONNX Runtime from {}: {e}", path.display()),
        )
    };
    let builder = ort::init_from(path).map_err(|e| fail(e.to_string()))?;
    let env = builder
        .with_name("insitu")
        .build()
        .map_err(|e| fail(e.to_string()))?;
    tracing::info!(
        "ONNX Runtime {} loaded from {}",
        version_of(path),
        path.display()
    );
    Ok(Arc::new(OrtRuntime {
        path: path.to_path_buf(),
        version: version_of(path),
        env,
    }))
}

/// The loaded runtime, loading it on first use.
///
/// # Errors
/// `Unsupported` with a message naming every place looked at, when none works.
pub fn runtime() -> Result<Arc<OrtRuntime>> {
    let mut slot = RUNTIME.lock();
    if let Some(r) = slot.as_ref() {
        return r.clone();
    }
    let r = locate(candidates(), load);
    *slot = Some(r.clone());
    r
}

/// Load ONNX Runtime from `path` (`AI.CONFIG LOADBACKEND ONNX path`). Only possible
/// while none is loaded: one process holds one ONNX Runtime.
///
/// # Errors
/// The library cannot be loaded, or another one already is.
pub fn load_from(path: &Path) -> Result<Arc<OrtRuntime>> {
    let mut slot = RUNTIME.lock();
    if let Some(Ok(rt)) = slot.as_ref() {
        if rt.path == path {
            return Ok(rt.clone());
        }
        return Err(Error::err(
            ErrorCode::Unsupported,
            format!(
                "ONNX Runtime is already loaded from {}; restart to use another",
                rt.path.display()
            ),
        ));
    }
    let r = load(path);
    if r.is_ok() {
        *slot = Some(r.clone());
    }
    r
}

/// The loaded runtime, if any, without trying to load it.
pub fn loaded() -> Option<Arc<OrtRuntime>> {
    match RUNTIME.lock().as_ref() {
        Some(Ok(rt)) => Some(rt.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_every_place_looked_at() {
        let cands = vec![
            ("ORT_DYLIB_PATH".to_string(), Err("not set".to_string())),
            (
                "the set-up's recorded path".to_string(),
                Ok(PathBuf::from("/nowhere/libonnxruntime.so.1.31.1")),
            ),
            (
                "the onnxruntime Python package".to_string(),
                Err("python3: ModuleNotFoundError: No module named 'onnxruntime'".to_string()),
            ),
        ];
        let e = locate(cands, |p| {
            Err(Error::bad_input(format!("cannot load {}", p.display())))
        })
        .err()
        .unwrap();
        assert_eq!(e.code(), ErrorCode::Unsupported);
        assert_eq!(
            e.text(),
            "ERR ONNX Runtime (>= 1.31) not found; set ORT_DYLIB_PATH to libonnxruntime.so.1.31.x, run ./dev.sh setup, or pip install onnxruntime==1.31.1. Looked at: ORT_DYLIB_PATH: not set; the set-up's recorded path: cannot load /nowhere/libonnxruntime.so.1.31.1; the onnxruntime Python package: python3: ModuleNotFoundError: No module named 'onnxruntime'"
        );
        assert_eq!(
            version_of(Path::new("/x/libonnxruntime.so.1.31.1")),
            "1.31.1"
        );
        assert_eq!(version_of(Path::new("/x/onnxruntime.dll")), "unknown");
    }
}
