"""The surrogate of example 04: one explicit step of 2-D heat diffusion as an ONNX model,
u_next = u + alpha * laplacian(u) with zero (Dirichlet) boundaries, i.e. one 3x3 Conv.

    python make_model.py OUT.onnx [alpha]
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

alpha = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2
w = np.array([[0, alpha, 0], [alpha, 1 - 4 * alpha, alpha], [0, alpha, 0]], dtype=np.float32).reshape(1, 1, 3, 3)
graph = helper.make_graph(
    [helper.make_node("Conv", ["u", "w"], ["u_next"], pads=[1, 1, 1, 1])],
    "heat_step",
    [helper.make_tensor_value_info("u", TensorProto.FLOAT, [1, 1, "H", "W"])],
    [helper.make_tensor_value_info("u_next", TensorProto.FLOAT, [1, 1, "H", "W"])],
    [numpy_helper.from_array(w, "w")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save_model(model, sys.argv[1])
