//! A model's Triton configuration: `config.pbtxt` (protobuf text format) in a model
//! repository, or the JSON a load request carries. insitu reads what shapes how an ONNX
//! model runs — platform/backend, `max_batch_size`, `dynamic_batching`
//! (preferred sizes, queue delay), `instance_group` (count, kind), the version policy and
//! `default_model_filename` — and skips the rest, so a configuration written for Triton
//! loads unchanged. The text format is read by the small reader below rather than by
//! prost-reflect: that crate needs every field of Triton's ModelConfig schema declared and
//! refuses a file naming any other, where a repository's files name many (optimization,
//! parameters, warmup...) that do not apply here.

use serde_json::Value as Json;

use super::status::{invalid, KsError, KsResult};
use crate::model::{Device, ModelSpec};

/// Which versions of a model the repository serves (one at a time in insitu: the newest
/// the policy allows).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum VersionPolicy {
    /// The newest version (Triton's default, `latest { num_versions: 1 }`).
    #[default]
    Latest,
    /// The newest of these.
    Specific(Vec<u64>),
}

/// What insitu takes from a model's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RepoConfig {
    /// Rows per run at most; 0: the model takes no batch dimension from Triton's view.
    pub max_batch_size: usize,
    /// Dynamic batching: preferred batch sizes and the longest wait, in microseconds.
    pub dynamic_batching: Option<(Vec<usize>, u64)>,
    /// Concurrent runs (instance_group count, summed over groups).
    pub instances: Option<usize>,
    /// An instance group of kind KIND_GPU.
    pub gpu: bool,
    /// The model file in a version directory (default `model.onnx`).
    pub model_filename: Option<String>,
    /// Which version to serve.
    pub version_policy: VersionPolicy,
}

impl RepoConfig {
    /// The model file in a version directory: `default_model_filename`, else
    /// `model.onnx`.
    pub fn model_file(&self) -> &str {
        self.model_filename.as_deref().unwrap_or("model.onnx")
    }

    /// The ModelSpec the model is stored with (`AI.MODELSTORE`'s options): batching from
    /// `dynamic_batching` — BATCHSIZE `max_batch_size`, MINBATCHSIZE the largest
    /// preferred size (else `max_batch_size`) when there is a queue delay, and
    /// MINBATCHTIMEOUT the delay rounded up to milliseconds — and its version as the tag.
    pub fn spec(&self, version: u64) -> ModelSpec {
        let (batchsize, minbatchsize, minbatchtimeout) = match &self.dynamic_batching {
            Some((preferred, delay_us)) if self.max_batch_size > 0 => {
                let min = if *delay_us == 0 {
                    0
                } else {
                    preferred
                        .iter()
                        .copied()
                        .filter(|&p| p <= self.max_batch_size)
                        .max()
                        .unwrap_or(self.max_batch_size)
                };
                (self.max_batch_size, min, delay_us.div_ceil(1000))
            }
            _ => (0, 0, 0),
        };
        ModelSpec {
            backend: "ONNX".into(),
            device: if self.gpu {
                Device::Gpu(None)
            } else {
                Device::Cpu(None)
            },
            tag: version.to_string().into(),
            batchsize,
            minbatchsize,
            minbatchtimeout,
        }
    }
}

/// A value in the text format: a scalar's text or a message's fields.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Scalar(String),
    Msg(Vec<(String, Node)>),
}

impl Node {
    fn fields<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        let all: &[(String, Node)] = match self {
            Node::Msg(f) => f,
            Node::Scalar(_) => &[],
        };
        all.iter().filter(move |(n, _)| n == name).map(|(_, v)| v)
    }
    fn field<'a>(&'a self, name: &'a str) -> Option<&'a Node> {
        self.fields(name).last()
    }
    fn scalar<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match self.field(name)? {
            Node::Scalar(s) => Some(s),
            Node::Msg(_) => None,
        }
    }
}

fn number<T: std::str::FromStr>(text: Option<&str>, field: &str) -> KsResult<Option<T>> {
    text.map(|t| {
        t.parse().map_err(|_| {
            invalid(format!(
                "model configuration: {field} must be a number, not '{t}'"
            ))
        })
    })
    .transpose()
}

/// Read the fields insitu uses from a parsed configuration.
fn from_node(root: &Node) -> KsResult<RepoConfig> {
    let platform = root.scalar("platform").unwrap_or("");
    let backend = root.scalar("backend").unwrap_or("");
    if !matches!(platform, "" | "onnxruntime_onnx") || !matches!(backend, "" | "onnxruntime") {
        return Err(invalid(format!(
            "model configuration: insitu runs ONNX models (platform onnxruntime_onnx, backend onnxruntime), not platform '{platform}' backend '{backend}'"
        )));
    }
    let max_batch_size =
        number::<usize>(root.scalar("max_batch_size"), "max_batch_size")?.unwrap_or(0);
    let dynamic_batching = match root.field("dynamic_batching") {
        Some(db) => {
            let preferred = db
                .fields("preferred_batch_size")
                .map(|n| match n {
                    Node::Scalar(s) => {
                        number::<usize>(Some(s), "preferred_batch_size").map(|v| v.unwrap_or(0))
                    }
                    Node::Msg(_) => Err(invalid(
                        "model configuration: preferred_batch_size must be a number",
                    )),
                })
                .collect::<KsResult<Vec<_>>>()?;
            let delay = number::<u64>(
                db.scalar("max_queue_delay_microseconds"),
                "max_queue_delay_microseconds",
            )?
            .unwrap_or(0);
            Some((preferred, delay))
        }
        None => None,
    };
    let mut instances = None;
    let mut gpu = false;
    for g in root.fields("instance_group") {
        let n = number::<usize>(g.scalar("count"), "instance_group count")?.unwrap_or(1);
        instances = Some(instances.unwrap_or(0) + n);
        gpu |= g.scalar("kind") == Some("KIND_GPU");
    }
    let version_policy = match root.field("version_policy") {
        Some(p) => match p.field("specific") {
            Some(s) => VersionPolicy::Specific(
                s.fields("versions")
                    .filter_map(|v| match v {
                        Node::Scalar(t) => t.parse().ok(),
                        Node::Msg(_) => None,
                    })
                    .collect(),
            ),
            None => VersionPolicy::Latest,
        },
        None => VersionPolicy::Latest,
    };
    Ok(RepoConfig {
        max_batch_size,
        dynamic_batching,
        instances,
        gpu,
        model_filename: root.scalar("default_model_filename").map(String::from),
        version_policy,
    })
}

/// Read a `config.pbtxt`.
///
/// # Errors
/// Text that is not protobuf text format, or a field insitu reads with a wrong value.
pub fn from_pbtxt(text: &str) -> KsResult<RepoConfig> {
    let mut r = Reader {
        s: text.as_bytes(),
        i: 0,
        depth: 0,
    };
    let root = r.fields(None)?;
    from_node(&Node::Msg(root))
}

/// Read the JSON configuration a load request carries (Triton's JSON form of the same
/// fields).
///
/// # Errors
/// Malformed JSON, or a field insitu reads with a wrong value.
pub fn from_json(text: &str) -> KsResult<RepoConfig> {
    let j: Json = serde_json::from_str(text)
        .map_err(|e| invalid(format!("model configuration is not valid JSON: {e}")))?;
    fn node(j: &Json) -> Node {
        match j {
            Json::Object(m) => Node::Msg(
                m.iter()
                    .flat_map(|(k, v)| match v {
                        Json::Array(items) => items.iter().map(|i| (k.clone(), node(i))).collect(),
                        other => vec![(k.clone(), node(other))],
                    })
                    .collect(),
            ),
            Json::String(s) => Node::Scalar(s.clone()),
            other => Node::Scalar(other.to_string()),
        }
    }
    from_node(&node(&j))
}

/// The text-format reader: fields `name: value`, `name { ... }` (or `< ... >`), lists
/// `[a, b]`, `#` comments, quoted strings.
struct Reader<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

impl Reader<'_> {
    fn err(&self, what: &str) -> KsError {
        let line = self.s[..self.i.min(self.s.len())]
            .iter()
            .filter(|&&c| c == b'\n')
            .count()
            + 1;
        invalid(format!("model configuration, line {line}: {what}"))
    }

    fn skip(&mut self) {
        while let Some(&c) = self.s.get(self.i) {
            if c.is_ascii_whitespace() {
                self.i += 1;
            } else if c == b'#' {
                while self.s.get(self.i).is_some_and(|&c| c != b'\n') {
                    self.i += 1;
                }
            } else {
                break;
            }
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn ident(&mut self) -> KsResult<String> {
        self.skip();
        if self.eat(b'[') {
            // An extension's name, `[pkg.ext]`.
            let start = self.i;
            while self.s.get(self.i).is_some_and(|&c| c != b']') {
                self.i += 1;
            }
            let name = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
            if !self.eat(b']') {
                return Err(self.err("unclosed '['"));
            }
            return Ok(name);
        }
        let start = self.i;
        while self
            .s
            .get(self.i)
            .is_some_and(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b'.')
        {
            self.i += 1;
        }
        if start == self.i {
            return Err(self.err("expected a field name"));
        }
        Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
    }

    fn fields(&mut self, close: Option<u8>) -> KsResult<Vec<(String, Node)>> {
        let mut out = Vec::new();
        loop {
            match (self.peek(), close) {
                (None, None) => return Ok(out),
                (None, Some(_)) => return Err(self.err("unclosed message")),
                (Some(c), Some(end)) if c == end => {
                    self.i += 1;
                    return Ok(out);
                }
                _ => {}
            }
            if out.len() >= 100_000 {
                return Err(self.err("too many fields"));
            }
            let name = self.ident()?;
            let colon = self.eat(b':');
            match self.peek() {
                Some(b'{') | Some(b'<') => {
                    let v = self.message()?;
                    out.push((name, v));
                }
                Some(b'[') => {
                    self.i += 1;
                    if !self.eat(b']') {
                        loop {
                            let v = match self.peek() {
                                Some(b'{') | Some(b'<') => self.message()?,
                                _ => Node::Scalar(self.scalar()?),
                            };
                            out.push((name.clone(), v));
                            if self.eat(b']') {
                                break;
                            }
                            if !self.eat(b',') {
                                return Err(self.err("expected ',' or ']'"));
                            }
                        }
                    }
                }
                _ if colon => {
                    let v = self.scalar()?;
                    out.push((name, Node::Scalar(v)));
                }
                _ => return Err(self.err(&format!("expected ':' or '{{' after '{name}'"))),
            }
            if !self.eat(b',') {
                self.eat(b';');
            }
        }
    }

    fn message(&mut self) -> KsResult<Node> {
        if self.depth >= 64 {
            return Err(self.err("messages nested too deep"));
        }
        let close = if self.eat(b'{') {
            b'}'
        } else if self.eat(b'<') {
            b'>'
        } else {
            return Err(self.err("expected '{'"));
        };
        self.depth += 1;
        let fields = self.fields(Some(close));
        self.depth -= 1;
        Ok(Node::Msg(fields?))
    }

    fn scalar(&mut self) -> KsResult<String> {
        match self.peek() {
            Some(q @ (b'"' | b'\'')) => {
                self.i += 1;
                let mut out = Vec::new();
                loop {
                    match self.s.get(self.i).copied() {
                        None => return Err(self.err("unclosed string")),
                        Some(c) if c == q => {
                            self.i += 1;
                            break;
                        }
                        Some(b'\\') => {
                            let e = self
                                .s
                                .get(self.i + 1)
                                .copied()
                                .ok_or_else(|| self.err("unclosed string"))?;
                            out.push(match e {
                                b'n' => b'\n',
                                b't' => b'\t',
                                b'r' => b'\r',
                                other => other,
                            });
                            self.i += 2;
                        }
                        Some(c) => {
                            out.push(c);
                            self.i += 1;
                        }
                    }
                }
                // Adjacent strings concatenate.
                let mut s = String::from_utf8_lossy(&out).into_owned();
                if matches!(self.peek(), Some(b'"' | b'\'')) {
                    s.push_str(&self.scalar()?);
                }
                Ok(s)
            }
            Some(_) => {
                let start = self.i;
                while self.s.get(self.i).is_some_and(|&c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'+')
                }) {
                    self.i += 1;
                }
                if start == self.i {
                    return Err(self.err("expected a value"));
                }
                Ok(String::from_utf8_lossy(&self.s[start..self.i]).into_owned())
            }
            None => Err(self.err("expected a value")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRITON_STYLE: &str = r#"
name: "mlp"   # the model
platform: "onnxruntime_onnx"
max_batch_size: 64
input [ { name: "x" data_type: TYPE_FP32 dims: [ 16 ] } ]
output [
  {
    name: "y"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
dynamic_batching {
  preferred_batch_size: [ 8, 32 ]
  max_queue_delay_microseconds: 1500
}
instance_group [ { count: 2 kind: KIND_CPU }, { count: 1, kind: KIND_CPU } ]
optimization { execution_accelerators { cpu_execution_accelerator : [ { name : "openvino" } ] } }
parameters { key: "k" value: { string_value: "v" } }
"#;

    #[test]
    fn reads_what_insitu_uses_and_skips_the_rest() {
        let c = from_pbtxt(TRITON_STYLE).unwrap();
        assert_eq!(c.max_batch_size, 64);
        assert_eq!(c.dynamic_batching, Some((vec![8, 32], 1500)));
        assert_eq!(c.instances, Some(3));
        assert!(!c.gpu);
        let spec = c.spec(3);
        assert_eq!(
            (spec.batchsize, spec.minbatchsize, spec.minbatchtimeout),
            (64, 32, 2)
        );
        assert_eq!(&spec.tag[..], b"3");
    }

    #[test]
    fn json_form_and_errors() {
        let c = from_json(
            r#"{"max_batch_size": 8, "dynamic_batching": {"max_queue_delay_microseconds": 0},
                "version_policy": {"specific": {"versions": [1, 3]}}}"#,
        )
        .unwrap();
        assert_eq!(c.max_batch_size, 8);
        assert_eq!(c.version_policy, VersionPolicy::Specific(vec![1, 3]));
        let spec = c.spec(1);
        assert_eq!((spec.batchsize, spec.minbatchsize), (8, 0));
        let e = from_pbtxt("platform: \"tensorrt_plan\"").unwrap_err();
        assert_eq!(
            e.message,
            "model configuration: insitu runs ONNX models (platform onnxruntime_onnx, backend onnxruntime), not platform 'tensorrt_plan' backend ''"
        );
        let e = from_pbtxt("name: \"x\"\nmax_batch_size {").unwrap_err();
        assert_eq!(e.message, "model configuration, line 2: unclosed message");
        let e = from_pbtxt("max_batch_size: eight").unwrap_err();
        assert_eq!(
            e.message,
            "model configuration: max_batch_size must be a number, not 'eight'"
        );
    }
}
