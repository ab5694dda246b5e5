//! A bounded walk over an ONNX model's protobuf bytes before ONNX Runtime sees them,
//! to find tensors whose data lives in external files.
//!
//! ONNX Runtime would open such files by the path written in the model; a model sent by a
//! client must not make the server read files the operator did not allow. The walk reads
//! only the fields that can hold tensors (graph initializers, node attributes, subgraphs,
//! functions, sparse tensors) and is bounded in depth.

/// Most nesting (graphs inside attributes inside nodes...) the walk follows.
const MAX_DEPTH: usize = 64;

#[derive(Clone, Copy)]
enum Kind {
    Model,
    Graph,
    Node,
    Attribute,
    Function,
    Tensor,
    Sparse,
}

/// One protobuf field: number, wire type, payload (length-delimited) and value (varint).
type Field<'a> = (u64, u64, &'a [u8], u64);

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = *self.b.get(self.at).ok_or("truncated varint")?;
            self.at += 1;
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("varint too long".into())
    }

    fn bytes(&mut self, n: u64) -> Result<&'a [u8], String> {
        let n = usize::try_from(n).map_err(|_| "length overflows")?;
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.b.len())
            .ok_or("length past end of message")?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }

    /// Next field: its number, wire type, and (for length-delimited fields) its bytes.
    fn field(&mut self) -> Result<Option<Field<'a>>, String> {
        if self.at >= self.b.len() {
            return Ok(None);
        }
        let key = self.varint()?;
        let (num, wt) = (key >> 3, key & 7);
        match wt {
            0 => {
                let v = self.varint()?;
                Ok(Some((num, wt, &[], v)))
            }
            1 => {
                self.bytes(8)?;
                Ok(Some((num, wt, &[], 0)))
            }
            2 => {
                let n = self.varint()?;
                let s = self.bytes(n)?;
                Ok(Some((num, wt, s, 0)))
            }
            5 => {
                self.bytes(4)?;
                Ok(Some((num, wt, &[], 0)))
            }
            other => Err(format!("unsupported protobuf wire type {other}")),
        }
    }
}

fn walk(b: &[u8], kind: Kind, depth: usize, out: &mut Vec<String>) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err("model nested too deeply".into());
    }
    let mut r = Reader { b, at: 0 };
    let mut external = false;
    let mut location = None;
    while let Some((num, wt, sub, v)) = r.field()? {
        let child = match (kind, num, wt) {
            (Kind::Model, 7, 2) => Some(Kind::Graph),
            (Kind::Model, 25, 2) => Some(Kind::Function),
            (Kind::Graph, 1, 2) => Some(Kind::Node),
            (Kind::Graph, 5, 2) => Some(Kind::Tensor),
            (Kind::Graph, 15, 2) => Some(Kind::Sparse),
            (Kind::Function, 7, 2) => Some(Kind::Node),
            (Kind::Node, 5, 2) => Some(Kind::Attribute),
            (Kind::Attribute, 5 | 10, 2) => Some(Kind::Tensor),
            (Kind::Attribute, 6 | 11, 2) => Some(Kind::Graph),
            (Kind::Attribute, 22 | 23, 2) => Some(Kind::Sparse),
            (Kind::Sparse, 1 | 2, 2) => Some(Kind::Tensor),
            (Kind::Tensor, 14, 0) => {
                external |= v == 1;
                None
            }
            (Kind::Tensor, 13, 2) => {
                // StringStringEntryProto { key = 1, value = 2 }
                let mut e = Reader { b: sub, at: 0 };
                let (mut key, mut val) = (&[][..], &[][..]);
                while let Some((n, w, s, _)) = e.field()? {
                    match (n, w) {
                        (1, 2) => key = s,
                        (2, 2) => val = s,
                        _ => {}
                    }
                }
                if key == b"location" {
                    location = Some(String::from_utf8_lossy(val).into_owned());
                }
                None
            }
            _ => None,
        };
        if let Some(k) = child {
            walk(sub, k, depth + 1, out)?;
        }
    }
    if external {
        out.push(location.unwrap_or_else(|| "<no location>".into()));
    }
    Ok(())
}

/// The external data files a model refers to (empty for a self-contained model).
///
/// # Errors
/// A message when the bytes are not a well-formed protobuf.
pub fn external_data_files(model: &[u8]) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    walk(model, Kind::Model, 0, &mut out)?;
    out.sort();
    out.dedup();
    Ok(out)
}

/// Whether `location` stays inside the allowed directory: relative, no `..`, no root.
pub fn is_contained(location: &str) -> bool {
    let p = std::path::Path::new(location);
    !location.is_empty()
        && p.components().all(|c| {
            matches!(
                c,
                std::path::Component::Normal(_) | std::path::Component::CurDir
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(num: u64, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![((num << 3) | 2) as u8, payload.len() as u8];
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn finds_external_initializers_at_any_depth() {
        // TensorProto { external_data { key: "location", value: "w.bin" }, data_location: EXTERNAL }
        let entry = [field(1, b"location"), field(2, b"w.bin")].concat();
        let tensor = [field(13, &entry), vec![14 << 3, 1]].concat();
        let graph = field(5, &tensor);
        // The same tensor inside a node attribute's subgraph.
        let attr = field(6, &graph);
        let node = field(5, &attr);
        let outer = [graph.clone(), field(1, &node)].concat();
        let model = field(7, &outer);
        assert_eq!(external_data_files(&model).unwrap(), vec!["w.bin"]);
        let plain = field(7, &field(5, &field(8, b"name")));
        assert!(external_data_files(&plain).unwrap().is_empty());
        assert!(external_data_files(&[0x3a, 0x7f]).is_err());
        assert!(external_data_files(&[0x3f]).is_err());
    }

    #[test]
    fn containment() {
        assert!(is_contained("w.bin"));
        assert!(is_contained("sub/w.bin"));
        assert!(!is_contained("../w.bin"));
        assert!(!is_contained("/etc/passwd"));
        assert!(!is_contained(""));
    }
}
