//! The C++ API's bridge (cxx). C++ code uses `insitu::Client` from include/insitu.hpp,
//! which wraps these functions and turns a non-zero status into an `insitu::Error`
//! exception carrying the status and message.

// The bridge passes tensors flattened, which takes many arguments.
#![allow(clippy::too_many_arguments)]

use insitu::{Client, DType, Error, ModelOptions, Tensor};

#[cxx::bridge(namespace = "insitu::detail")]
mod ffi {
    /// A call's outcome: status 0 is success; otherwise `message` says why.
    struct Outcome {
        status: i32,
        message: String,
    }

    extern "Rust" {
        type RClient;
        fn new_client() -> Box<RClient>;
        fn connect(self: &mut RClient, address: &str) -> Outcome;
        fn put_tensor(
            self: &mut RClient,
            name: &str,
            dtype: u8,
            dims: &[usize],
            data: &[u8],
        ) -> Outcome;
        fn get_tensor(
            self: &mut RClient,
            name: &str,
            dtype: &mut u8,
            dims: &mut Vec<usize>,
            data: &mut Vec<u8>,
        ) -> Outcome;
        fn delete_tensor(self: &mut RClient, name: &str) -> Outcome;
        fn tensor_exists(self: &mut RClient, name: &str, out: &mut bool) -> Outcome;
        fn set_model_from_file(
            self: &mut RClient,
            name: &str,
            path: &str,
            device: &str,
            batch_size: usize,
        ) -> Outcome;
        fn infer(
            self: &mut RClient,
            name: &str,
            dtypes: &[u8],
            ranks: &[usize],
            dims: &[usize],
            data: &[u8],
            out_dtypes: &mut Vec<u8>,
            out_ranks: &mut Vec<usize>,
            out_dims: &mut Vec<usize>,
            out_data: &mut Vec<u8>,
        ) -> Outcome;
    }
}

use ffi::Outcome;

/// The Rust client behind a C++ `insitu::Client`.
pub struct RClient(Option<Client>);

fn ok() -> Outcome {
    Outcome {
        status: 0,
        message: String::new(),
    }
}

fn fail(e: &Error) -> Outcome {
    Outcome {
        status: e.code() as i32,
        message: e.text().to_string(),
    }
}

fn outcome(r: insitu::Result<()>) -> Outcome {
    match r {
        Ok(()) => ok(),
        Err(e) => fail(&e),
    }
}

fn tensor(dtype: u8, dims: &[usize], data: &[u8]) -> insitu::Result<Tensor> {
    let dt = DType::from_id(dtype).ok_or_else(|| Error::bad_input("invalid data type"))?;
    Tensor::new(dt, dims, bytes::Bytes::copy_from_slice(data))
}

fn new_client() -> Box<RClient> {
    Box::new(RClient(None))
}

impl RClient {
    fn connect(&mut self, address: &str) -> Outcome {
        outcome(Client::connect(address).map(|c| self.0 = Some(c)))
    }

    fn client(&mut self) -> insitu::Result<&mut Client> {
        self.0
            .as_mut()
            .ok_or_else(|| Error::bad_input("the client is not connected"))
    }

    fn put_tensor(&mut self, name: &str, dtype: u8, dims: &[usize], data: &[u8]) -> Outcome {
        outcome((|| {
            let t = tensor(dtype, dims, data)?;
            self.client()?.put_tensor(name, &t)
        })())
    }

    fn get_tensor(
        &mut self,
        name: &str,
        dtype: &mut u8,
        dims: &mut Vec<usize>,
        data: &mut Vec<u8>,
    ) -> Outcome {
        outcome((|| {
            let t = self.client()?.get_tensor(name)?;
            *dtype = t.dtype().id();
            *dims = t.shape().to_vec();
            data.clear();
            data.extend_from_slice(t.data());
            Ok(())
        })())
    }

    fn delete_tensor(&mut self, name: &str) -> Outcome {
        outcome((|| self.client()?.delete_tensor(name))())
    }

    fn tensor_exists(&mut self, name: &str, out: &mut bool) -> Outcome {
        outcome((|| {
            *out = self.client()?.tensor_exists(name)?;
            Ok(())
        })())
    }

    fn set_model_from_file(
        &mut self,
        name: &str,
        path: &str,
        device: &str,
        batch_size: usize,
    ) -> Outcome {
        outcome((|| {
            let opts = ModelOptions {
                device: device.to_string(),
                batch_size,
                ..Default::default()
            };
            self.client()?.set_model_from_file(name, path, &opts)
        })())
    }

    #[allow(clippy::too_many_arguments)]
    fn infer(
        &mut self,
        name: &str,
        dtypes: &[u8],
        ranks: &[usize],
        dims: &[usize],
        data: &[u8],
        out_dtypes: &mut Vec<u8>,
        out_ranks: &mut Vec<usize>,
        out_dims: &mut Vec<usize>,
        out_data: &mut Vec<u8>,
    ) -> Outcome {
        outcome((|| {
            // Inputs arrive flattened: dims and bytes concatenated, split by rank and size.
            let mut inputs = Vec::with_capacity(dtypes.len());
            let (mut d, mut b) = (0usize, 0usize);
            for (&dt, &rank) in dtypes.iter().zip(ranks) {
                let shape = dims
                    .get(d..d + rank)
                    .ok_or_else(|| Error::bad_input("dims shorter than ranks"))?;
                let size = DType::from_id(dt)
                    .and_then(|t| t.size())
                    .ok_or_else(|| Error::bad_input("invalid data type"))?;
                let n = shape.iter().product::<usize>() * size;
                let bytes = data
                    .get(b..b + n)
                    .ok_or_else(|| Error::bad_input("data shorter than the tensors"))?;
                inputs.push(tensor(dt, shape, bytes)?);
                d += rank;
                b += n;
            }
            let outs = self.client()?.infer(name, &inputs)?;
            out_dtypes.clear();
            out_ranks.clear();
            out_dims.clear();
            out_data.clear();
            for t in outs {
                out_dtypes.push(t.dtype().id());
                out_ranks.push(t.shape().len());
                out_dims.extend_from_slice(t.shape());
                out_data.extend_from_slice(t.data());
            }
            Ok(())
        })())
    }
}
