"""The trainer of example 06: stream the simulation's (input, target) samples, fit the
surrogate — a 3x3 stencil plus a bias, by least squares — export it to ONNX with the
`onnx` package, store it where the simulation runs it, and tell the simulation.

    python trainer.py ADDRESS [SAMPLES]
"""

import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import insitu


def features(u: np.ndarray) -> np.ndarray:
    """Each point's 3x3 neighbourhood (zero outside the grid) and a 1, one row per point."""
    h, w = u.shape
    p = np.pad(u, 1)
    cols = [p[di:di + h, dj:dj + w].ravel() for di in range(3) for dj in range(3)]
    return np.stack(cols + [np.ones(h * w, u.dtype)], axis=1)


def export(stencil: np.ndarray, bias: float) -> bytes:
    """u_next = conv3x3(u, stencil) + bias as an ONNX model with the simulation's I/O names."""
    graph = helper.make_graph(
        [helper.make_node("Conv", ["u", "w", "b"], ["u_next"], pads=[1, 1, 1, 1])],
        "trained_surrogate",
        [helper.make_tensor_value_info("u", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [helper.make_tensor_value_info("u_next", TensorProto.FLOAT, [1, 1, "H", "W"])],
        [numpy_helper.from_array(stencil.reshape(1, 1, 3, 3).astype(np.float32), "w"),
         numpy_helper.from_array(np.array([bias], np.float32), "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def main() -> None:
    address = sys.argv[1]
    wanted = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    client = insitu.Client(address)
    stream = insitu.DataStream(client, "samples", sources=[], fields=("input", "target"),
                               batch_size=4, timeout=0.5)
    stream.wait_for(wanted, timeout=120)
    xs, ys = [], []
    for inputs, targets in stream:  # one epoch: every sample streamed so far
        for u, t in zip(inputs, targets):
            xs.append(features(u[0, 0].astype(np.float64)))
            ys.append(t[0, 0].astype(np.float64).ravel())
    x, y = np.concatenate(xs), np.concatenate(ys)
    coef, *_ = np.linalg.lstsq(x, y, rcond=None)
    stencil, bias = coef[:9].reshape(3, 3), coef[9]
    rms = float(np.sqrt(np.mean((x @ coef - y) ** 2)))
    print(f"trainer: {len(xs)} samples, {len(y)} points; fitted stencil\n{np.round(stencil, 4)}\n"
          f"bias {bias:.2e}, training RMS {rms:.2e}")
    client.set_model("surrogate", export(stencil, bias))
    client.put_tensor("model_version", np.array([1], np.int32))
    print("trainer: stored the trained surrogate")


if __name__ == "__main__":
    main()
