//! Models: storing, running and inspecting them.

use std::ffi::{c_char, c_void};

use insitu::{Error, ModelOptions};

use crate::*;

// ----- models -----

pub(crate) fn model_options(
    device: &str,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout_ms: u64,
) -> ModelOptions {
    ModelOptions {
        device: device.to_string(),
        batch_size,
        min_batch_size,
        min_batch_timeout_ms,
        ..ModelOptions::default()
    }
}

/// Store an ONNX model from memory. `device`: "CPU", "GPU", "CPU:n", "GPU:n".
#[no_mangle]
pub unsafe extern "C" fn insitu_client_set_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    model: *const c_void,
    model_len: usize,
    device: *const c_char,
    device_len: usize,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout_ms: u64,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let m = slice(model.cast::<u8>(), model_len, "model")?;
        let dev = text(device, device_len, "device")?;
        Ok(c.0.set_model(
            n,
            m,
            &model_options(dev, batch_size, min_batch_size, min_batch_timeout_ms),
        )?)
    })
}

/// Store an ONNX model from a file.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_set_model_from_file(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    path: *const c_char,
    path_len: usize,
    device: *const c_char,
    device_len: usize,
    batch_size: usize,
    min_batch_size: usize,
    min_batch_timeout_ms: u64,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let p = text(path, path_len, "path")?;
        let dev = text(device, device_len, "device")?;
        Ok(c.0.set_model_from_file(
            n,
            p,
            &model_options(dev, batch_size, min_batch_size, min_batch_timeout_ms),
        )?)
    })
}

pub(crate) unsafe fn names<'a>(
    ptrs: *const *const c_char,
    lens: *const usize,
    n: usize,
    what: &'static str,
) -> Result<Vec<&'a str>, Fail> {
    let ptrs = slice(ptrs, n, what)?;
    let lens = slice(lens, n, what)?;
    ptrs.iter()
        .zip(lens)
        .map(|(&p, &l)| text(p, l, what))
        .collect()
}

/// Run a model on stored tensors, storing its outputs.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_run_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    inputs: *const *const c_char,
    input_lens: *const usize,
    n_inputs: usize,
    outputs: *const *const c_char,
    output_lens: *const usize,
    n_outputs: usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let ins = names(inputs, input_lens, n_inputs, "inputs")?;
        let outs = names(outputs, output_lens, n_outputs, "outputs")?;
        Ok(c.0.run_model(n, &ins, &outs)?)
    })
}

/// Run a model on tensors and get its outputs in one round trip; nothing is stored.
/// Writes up to `outputs_cap` library-owned tensors to `outputs` and their count to
/// `n_outputs` (release each with insitu_tensor_free).
#[no_mangle]
pub unsafe extern "C" fn insitu_client_infer(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    inputs: *const *const insitu_tensor,
    n_inputs: usize,
    outputs: *mut *mut insitu_tensor,
    outputs_cap: usize,
    n_outputs: *mut usize,
) -> insitu_status {
    call(|| {
        let c = obj_mut(client, "client")?;
        let n = text(name, name_len, "name")?;
        let ins = slice(inputs, n_inputs, "inputs")?;
        check_out(n_outputs, "n_outputs")?;
        let mut tensors = Vec::with_capacity(ins.len());
        for &t in ins {
            tensors.push(obj(t, "inputs")?.0.clone());
        }
        let outs = c.0.infer(n, &tensors)?;
        if outs.len() > outputs_cap {
            return Err(Error::bad_input(format!(
                "the model has {} outputs but outputs holds {outputs_cap}",
                outs.len()
            ))
            .into());
        }
        if !outs.is_empty() && outputs.is_null() {
            return Err(Fail::Null("outputs"));
        }
        let count = outs.len();
        for (i, t) in outs.into_iter().enumerate() {
            outputs
                .add(i)
                .write(Box::into_raw(Box::new(insitu_tensor(t))));
        }
        put(n_outputs, count);
        Ok(())
    })
}

/// Delete a model.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_delete_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
) -> insitu_status {
    on_name(client, name, name_len, |c, n| c.delete_model(n))
}

/// Whether a model exists.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_model_exists(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| c.model_exists(n))
}

/// Wait up to interval_ms * tries for a model.
#[no_mangle]
pub unsafe extern "C" fn insitu_client_poll_model(
    client: *mut insitu_client,
    name: *const c_char,
    name_len: usize,
    interval_ms: u64,
    tries: u32,
    out: *mut bool,
) -> insitu_status {
    ask_name(client, name, name_len, out, |c, n| {
        c.poll_model(n, interval_ms, tries)
    })
}
