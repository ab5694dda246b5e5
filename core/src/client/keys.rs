//! Ensemble key prefixes, as SmartRedis builds them.
//!
//! `SSKEYOUT` names the prefix this member writes under; `SSKEYIN` (comma list) the
//! prefixes it may read from, the first being the default data source. A prefixed key is
//! `prefix + "." + name`. Tensors, datasets and lists are prefixed unless switched off;
//! `key_exists` / `poll_key` never are.

use crate::error::{Error, ErrorCode, Result};

/// Prefix state of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyPrefixes {
    put: String,
    get_allowed: Vec<String>,
    get: String,
    /// Prefix tensor keys.
    pub tensors: bool,
    /// Prefix dataset keys.
    pub datasets: bool,
    /// Prefix aggregation list keys.
    pub lists: bool,
    /// Prefix model keys (off by default, as in SmartRedis).
    pub models: bool,
}

impl Default for KeyPrefixes {
    fn default() -> Self {
        KeyPrefixes {
            put: String::new(),
            get_allowed: Vec::new(),
            get: String::new(),
            tensors: true,
            datasets: true,
            lists: true,
            models: false,
        }
    }
}

impl KeyPrefixes {
    /// Prefixes from explicit values (`keyout` = `SSKEYOUT`, `keyin` = `SSKEYIN`).
    ///
    /// # Errors
    /// Never for now; kept fallible so validation can be added without breaking callers.
    pub fn new(keyout: Option<&str>, keyin: Option<&str>) -> Result<KeyPrefixes> {
        let mut k = KeyPrefixes {
            put: keyout.unwrap_or("").to_string(),
            get_allowed: keyin
                .unwrap_or("")
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            ..Default::default()
        };
        if let Some(first) = k.get_allowed.first() {
            k.get = first.clone();
        }
        Ok(k)
    }

    /// Prefixes from `SSKEYOUT` and `SSKEYIN`.
    ///
    /// # Errors
    /// See [`KeyPrefixes::new`].
    pub fn from_env() -> Result<KeyPrefixes> {
        let out = std::env::var("SSKEYOUT").ok();
        let inp = std::env::var("SSKEYIN").ok();
        KeyPrefixes::new(out.as_deref(), inp.as_deref())
    }

    /// Read from `source` (one of the `SSKEYIN` prefixes).
    ///
    /// # Errors
    /// When `source` was not listed in `SSKEYIN`.
    pub fn set_data_source(&mut self, source: &str) -> Result<()> {
        if !self.get_allowed.iter().any(|p| p == source) {
            return Err(Error::err(
                ErrorCode::BadInput,
                format!("Client error: data source {source} could not be found during client initialization"),
            ));
        }
        self.get = source.to_string();
        Ok(())
    }

    fn prefix(&self, on_get: bool) -> String {
        let p = if on_get { &self.get } else { &self.put };
        if p.is_empty() {
            String::new()
        } else {
            format!("{p}.")
        }
    }

    /// [`KeyPrefixes::tensor_key`] without an allocation when no prefix applies.
    pub fn tensor_key_cow<'a>(&self, name: &'a str, on_get: bool) -> std::borrow::Cow<'a, str> {
        let p = if on_get { &self.get } else { &self.put };
        if !self.tensors || p.is_empty() {
            std::borrow::Cow::Borrowed(name)
        } else {
            std::borrow::Cow::Owned(format!("{p}.{name}"))
        }
    }

    /// The key of tensor `name` for reading (`on_get`) or writing.
    pub fn tensor_key(&self, name: &str, on_get: bool) -> String {
        if self.tensors {
            format!("{}{name}", self.prefix(on_get))
        } else {
            name.to_string()
        }
    }

    /// The base key `[prefix.]{name}` of dataset `name`.
    pub fn dataset_key(&self, name: &str, on_get: bool) -> String {
        let p = if self.datasets {
            self.prefix(on_get)
        } else {
            String::new()
        };
        format!("{p}{{{name}}}")
    }

    /// The key of aggregation list `name`.
    pub fn list_key(&self, name: &str, on_get: bool) -> String {
        if self.lists {
            format!("{}{name}", self.prefix(on_get))
        } else {
            name.to_string()
        }
    }

    /// [`KeyPrefixes::model_key`] without an allocation when no prefix applies.
    pub fn model_key_cow<'a>(&self, name: &'a str, on_get: bool) -> std::borrow::Cow<'a, str> {
        let p = if on_get { &self.get } else { &self.put };
        if !self.models || p.is_empty() {
            std::borrow::Cow::Borrowed(name)
        } else {
            std::borrow::Cow::Owned(format!("{p}.{name}"))
        }
    }

    /// The key of model `name`.
    pub fn model_key(&self, name: &str, on_get: bool) -> String {
        if self.models {
            format!("{}{name}", self.prefix(on_get))
        } else {
            name.to_string()
        }
    }

    /// The dataset name inside a base key such as `sim0.{ds}`.
    pub fn dataset_name_of(base: &str) -> String {
        match (base.find('{'), base.rfind('}')) {
            (Some(a), Some(b)) if a < b => base[a + 1..b].to_string(),
            _ => base.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_smartredis() {
        let mut k = KeyPrefixes::new(Some("sim0"), Some("sim1,sim2")).unwrap();
        assert_eq!(k.tensor_key("u", false), "sim0.u");
        assert_eq!(k.tensor_key("u", true), "sim1.u");
        assert_eq!(k.dataset_key("ds", false), "sim0.{ds}");
        k.set_data_source("sim2").unwrap();
        assert_eq!(k.list_key("l", true), "sim2.l");
        let e = k.set_data_source("simX").unwrap_err();
        assert_eq!(
            e.text(),
            "ERR Client error: data source simX could not be found during client initialization"
        );
        k.tensors = false;
        assert_eq!(k.tensor_key("u", false), "u");
        let plain = KeyPrefixes::new(None, None).unwrap();
        assert_eq!(plain.dataset_key("ds", true), "{ds}");
        assert_eq!(KeyPrefixes::dataset_name_of("sim0.{ds}"), "ds");
    }
}
